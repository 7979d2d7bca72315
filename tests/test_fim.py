"""FIM: training layouts invert exactly, inference prompts match Code Llama's, generation stops."""

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from _tok_fixtures import (FIXTURE_PREFIX, FIXTURE_PSM_IDS, FIXTURE_SUFFIX, fake_codellama_model,
                           small_corpus, tiny_tokenizer)
from minillama.fim import (FIMConfig, causal_masking_format, causal_masking_text, fim_applicable,
                           fim_parts, fim_to_document, fim_transform, greedy_generate_fn,
                           infill, infill_details, infilling_prompt, psm_tokens, spm_tokens)
from minillama.healing import heal_prompt, healed_generate, piece_texts
from minillama.tokenizer import Tokenizer, TokenizerError

documents = st.text(st.characters(blacklist_characters="\u2581", blacklist_categories=("Cs",)), max_size=120)
code_docs = st.text(st.sampled_from(list("def f(x):\n    return x + 1  # é\t\"\"\"")), max_size=120)


@settings(max_examples=80, deadline=None)
@given(st.one_of(documents, code_docs), st.integers(0, 2**32), st.sampled_from([0.0, 1.0]))
def test_every_example_decodes_to_its_document(doc, seed, spm_rate):
    tok = tiny_tokenizer()
    ids = fim_transform(doc, tok, random.Random(seed), FIMConfig(rate=1.0, spm_rate=spm_rate))
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert ids[-2] == tok.eot_id and ids[1] == tok.prefix_id
    if spm_rate == 1.0:
        assert ids[2] == tok.suffix_id
    assert fim_to_document(ids, tok) == doc


def test_real_files_round_trip_under_the_default_mix():
    tok = tiny_tokenizer()
    rng = random.Random(0)
    for doc in small_corpus().texts()[:12]:
        for _ in range(3):
            assert fim_to_document(fim_transform(doc, tok, rng), tok) == doc


def test_layouts_psm_and_spm():
    tok = tiny_tokenizer()
    p, m, s = "def f(x):\n    ret", "urn x", " + 1\n"
    psm = psm_tokens(tok, p, m, s)
    assert psm == ([tok.prefix_id] + tok.encode(p) + [tok.suffix_id] + tok.encode_infilling(s)
                   + [tok.middle_id] + tok.encode_infilling(m) + [tok.eot_id])
    spm = spm_tokens(tok, p, m, s)
    # SPM encodes prefix and middle together: "return" is one whole piece, never "ret"+"urn".
    assert spm == ([tok.prefix_id, tok.suffix_id] + tok.encode_infilling(s) + [tok.middle_id]
                   + tok.encode(p + m) + [tok.eot_id])
    assert fim_parts(psm, tok) == ("psm", p, m, s)
    assert fim_parts(spm, tok) == ("spm", "", p + m, s)
    assert fim_parts(tok.encode("x = 1", bos=True, eos=True), tok) == ("plain", "", "x = 1", "")
    with pytest.raises(ValueError, match="no MID"):
        fim_parts([tok.prefix_id, 300, tok.suffix_id], tok)


def test_rates_and_config():
    tok = tiny_tokenizer()
    rng = random.Random(1)
    doc = "x = 1\n" * 50  # long enough that an empty prefix (PSM that looks like SPM) is rare
    kinds = [fim_parts(fim_transform(doc, tok, rng), tok)[0] for _ in range(2000)]
    assert 0.87 < (kinds.count("psm") + kinds.count("spm")) / 2000 < 0.93
    assert 0.45 < kinds.count("spm") / (2000 - kinds.count("plain")) < 0.55
    assert fim_transform("x", tok, rng, FIMConfig(rate=0.0)) == tok.encode("x", bos=True, eos=True)
    with pytest.raises(ValueError, match="probability"):
        FIMConfig(rate=1.5)
    assert fim_applicable(100, 128) and not fim_applicable(125, 128)


def test_cut_points_are_uniform_over_characters():
    from minillama.fim import split_document

    rng = random.Random(0)
    cuts = [len(split_document("a" * 10, rng)[0]) for _ in range(4000)]
    assert min(cuts) == 0 and max(cuts) == 10  # both ends reachable (empty prefix, empty middle)


def test_prompt_matches_the_published_7b_ids():
    tok = Tokenizer(fake_codellama_model())
    assert infilling_prompt(tok, FIXTURE_PREFIX, FIXTURE_SUFFIX) == FIXTURE_PSM_IDS
    spm = infilling_prompt(tok, FIXTURE_PREFIX, FIXTURE_SUFFIX, spm=True)
    suffix_ids = FIXTURE_PSM_IDS[FIXTURE_PSM_IDS.index(32008) + 1:-1]
    prefix_ids = FIXTURE_PSM_IDS[2:FIXTURE_PSM_IDS.index(32008)]
    assert spm == [1, 32007, 32008] + suffix_ids + [32009] + prefix_ids


def test_prompt_structure_with_our_tokenizer():
    tok = tiny_tokenizer()
    prefix, suffix = "def f(x):\n    return ", "\n\nprint(f(2))\n"
    ids = infilling_prompt(tok, prefix, suffix)
    assert ids[:2] == [tok.bos_id, tok.prefix_id] and ids[-1] == tok.middle_id
    suf = ids.index(tok.suffix_id)
    assert tok.decode(ids[2:suf]) == prefix
    assert tok.id_to_piece(ids[suf + 1]) == "<0x0A>"  # the suffix starts at its newline, no "▁"
    assert tok.decode_infilling(ids[suf + 1:-1]) == suffix


def _scripted(tok, continuation):
    """A fake model that writes ``continuation`` then keeps going (ignores stop ids)."""
    def generate(prompt, max_new_tokens, stop_ids):
        assert prompt[0] == tok.bos_id and max_new_tokens == 20 and tok.eot_id in stop_ids
        return (continuation + [99] * 50)[:max_new_tokens]
    return generate


def test_infill_stops_at_eot_and_reassembles():
    tok = tiny_tokenizer()
    prefix, middle, suffix = "def f(x):\n    ", "return x", " + 1\n"
    gen = _scripted(tok, tok.encode_infilling(middle) + [tok.eot_id])
    assert infill(gen, tok, prefix, suffix, max_new_tokens=20) == prefix + middle + suffix
    res = infill_details(gen, tok, prefix, suffix, max_new_tokens=20)
    assert res.stopped and res.middle == middle and tok.eot_id not in res.ids
    # SPM: the model continues enc(prefix); a leading space in the middle survives.
    prefix, middle = "def f(x):\n    return", " x"
    whole, head = tok.encode(prefix + middle), tok.encode(prefix)
    assert whole[:len(head)] == head
    gen = _scripted(tok, whole[len(head):] + [tok.eos_id])
    assert infill_details(gen, tok, prefix, suffix, spm=True, max_new_tokens=20).middle == middle
    # An empty prefix: PSM and SPM prompts coincide and the middle starts the document.
    gen = _scripted(tok, tok.encode("x = 1") + [tok.eot_id])
    assert infill(gen, tok, "", "\n", max_new_tokens=20) == "x = 1\n"
    # No EOT within the budget: the result says so.
    assert not infill_details(_scripted(tok, []), tok, prefix, suffix, max_new_tokens=20).stopped


def _toy_logits(tok, target: str):
    """next_logits for a toy 'model' that always wants to write ``target`` next."""
    texts = piece_texts(tok)

    def next_logits(ids):
        written = tok.decode(ids[1:]) if ids and ids[0] == tok.bos_id else tok.decode(ids)
        logits = torch.zeros(tok.vocab_size)
        for i, t in enumerate(texts):
            if t and target.startswith(written + t):
                logits[i] = len(t)  # prefer the longest piece that continues the target
        if written == target:
            logits[tok.eos_id] = 100.0
        return logits
    return next_logits


def test_token_healing_on_a_toy():
    tok = tiny_tokenizer()
    target = "    return self"
    prompt = tok.encode("    ret")
    kept, removed = heal_prompt(tok, prompt, back_off=1)
    assert kept == prompt[:-1] and tok.decode(kept) + removed == "    ret"
    new, text = healed_generate(_toy_logits(tok, target), tok, prompt, 10, [tok.eos_id])
    assert "    ret" + text == target
    first = piece_texts(tok)[new[0]]
    assert first.startswith(removed) or removed.startswith(first)  # the constraint held
    assert new[-1] == tok.eos_id
    # Special tokens are never backed off.
    assert heal_prompt(tok, [tok.bos_id, tok.middle_id], back_off=3) == ([tok.bos_id, tok.middle_id], "")


def test_generate_adapter_stops_at_a_stop_id():
    tok = tiny_tokenizer()
    gen = greedy_generate_fn(lambda ids: torch.nn.functional.one_hot(torch.tensor(tok.eot_id), tok.vocab_size).float())
    assert gen([1, 2], 5, [tok.eot_id]) == [tok.eot_id]


def test_causal_masking():
    doc = "def f(x):\n    return x + 1\n"
    spans = [(4, 5), (21, 26)]
    assert causal_masking_text(doc, spans) == (
        "def <MASK_0>(x):\n    return <MASK_1>\n<MASK_0>f<EOM><MASK_1>x + 1<EOM>")
    tok = tiny_tokenizer()
    ids = causal_masking_format(tok, doc, spans)
    assert ids.count(tok.mask_ids[0]) == 2 and ids.count(tok.eom_id) == 2
    assert tok.decode(ids) == "def (x):\n    return \nfx + 1"  # sentinels are control pieces
    with pytest.raises(ValueError, match="sorted, non-overlapping"):
        causal_masking_text(doc, [(5, 3)])
    with pytest.raises(TokenizerError, match="sentinels"):
        causal_masking_format(Tokenizer(fake_codellama_model()), doc, spans)


@settings(max_examples=40, deadline=None)
@given(st.one_of(documents, code_docs))
def test_token_boundaries_match_decoding(text):
    from minillama.healing import token_boundaries

    tok = tiny_tokenizer()
    ids = tok.encode(text)
    heads = [tok.decode(ids[:k]) for k in range(1, len(ids) + 1)]
    slow = {0} | {len(h) for h in heads if text.startswith(h)}  # skips half-decoded characters
    assert token_boundaries(tok, text) == slow


def test_middle_loss_scores_the_same_middle_tokens_in_both_orders():
    """The fair infilling baseline: PSM examples taken out of packed rows, and the loss on their
    middle tokens (EOT excluded) in FIM order and in natural order, checked against a direct
    computation on one sequence."""
    import numpy as np
    import torch.nn.functional as F

    from minillama.data.pipeline import PackedData
    from minillama.model import ModelConfig, Transformer
    from minillama.training.pretrain import middle_loss, psm_middles

    tok = tiny_tokenizer()
    docs = [("def f(x):\n    ret", "urn x", " + 1\n"), ("a = 1\n", "b = 2\n", "c = 3\n")]
    row = [tok.bos_id]
    for p, m, s in docs:
        row += psm_tokens(tok, p, m, s) + [tok.eos_id, tok.bos_id]
    row += spm_tokens(tok, "x = ", "1", "\n") + [tok.eos_id]  # SPM: left out
    row += [tok.prefix_id] + tok.encode("y = ")  # a PSM example cut by the row's end: left out
    examples = psm_middles(PackedData(np.array([row])), tok)
    assert [(tok.decode(p), tok.decode_infilling(m)) for p, m, _ in examples] == [(p, m) for p, m, _ in docs]

    torch.manual_seed(0)
    model = Transformer(ModelConfig(vocab_size=tok.vocab_size, dim=32, n_layers=1, n_heads=2, max_seq_len=128))
    prefix, middle, suffix = examples[0]
    for order, seq, head in (
            ("fim", [tok.bos_id, tok.prefix_id, *prefix, tok.suffix_id, *suffix, tok.middle_id, *middle], None),
            ("natural", [tok.bos_id, *prefix, *middle, *suffix], None)):
        head = len(seq) - len(middle) if order == "fim" else 1 + len(prefix)
        with torch.no_grad():
            logits = model(torch.tensor([seq[:-1]]))[0]
        want = F.cross_entropy(logits[head - 1:head - 1 + len(middle)], torch.tensor(middle)).item()
        assert middle_loss(model, tok, examples[:1], order) == pytest.approx(want, rel=1e-5)
    both = middle_loss(model, tok, examples, "natural", batch_size=2)  # padding does not leak in
    one_by_one = [middle_loss(model, tok, [e], "natural") for e in examples]
    weights = [len(m) for _, m, _ in examples]
    assert both == pytest.approx(sum(w * v for w, v in zip(weights, one_by_one)) / sum(weights), rel=1e-5)
    with pytest.raises(ValueError, match="order must be"):
        middle_loss(model, tok, examples, "spm")


def test_per_middle_and_per_row_losses_pool_to_the_reported_means():
    """The per-item losses kept for paired intervals give back the pooled numbers of the notebook:
    middles weighted by their tokens, rows by plain mean (every row has the same targets)."""
    import numpy as np

    from minillama.data.pipeline import PackedData
    from minillama.model import ModelConfig, Transformer
    from minillama.training.pretrain import middle_loss, middle_losses, psm_middles, row_losses
    from minillama.training.trainer import validation_loss

    tok = tiny_tokenizer()
    row = [tok.bos_id]
    for p, m, s in [("def f(x):\n    ret", "urn x", " + 1\n"), ("a = 1\n", "b = 2\nb += 1\n", "c = 3\n")]:
        row += psm_tokens(tok, p, m, s) + [tok.eos_id, tok.bos_id]
    examples = psm_middles(PackedData(np.array([row])), tok)
    torch.manual_seed(0)
    model = Transformer(ModelConfig(vocab_size=tok.vocab_size, dim=32, n_layers=1, n_heads=2, max_seq_len=128))
    per = middle_losses(model, tok, examples, "fim", batch_size=2)
    assert per["tokens"] == [len(m) for _, m, _ in examples] and per["tokens"][0] != per["tokens"][1]
    assert per["loss"][1] == pytest.approx(middle_loss(model, tok, examples[1:], "fim"), rel=1e-5)
    assert middle_loss(model, tok, examples, "fim") == pytest.approx(
        np.average(per["loss"], weights=per["tokens"]), rel=1e-6)
    rows = PackedData(np.array([(row * 3)[i: i + 17] for i in (0, 11, 23)]))  # 3 rows of 16 targets
    per_row = row_losses(model, rows, batch_size=2)
    assert len(per_row) == 3 and len(set(per_row)) == 3
    assert np.mean(per_row) == pytest.approx(validation_loss(model, rows, 2), rel=1e-5)
