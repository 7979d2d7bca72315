"""Long-context tools: perplexity and per-position losses against a manual loop, the
key-retrieval prompt builder and scorer, RoPE rule swaps, the fine-tuning loop."""

from __future__ import annotations

import ast
import math

import pytest
import torch
from torch.testing import assert_close

from minillama.long_context import (METHODS, QUESTION, RetrievalFiller, eval_windows, finetune, lr_at,
                                    method_model, package_texts, position_loss, ppl_by_context, perplexity,
                                    retrieval_prompt, score_two_digit, token_losses, top_level_chunks,
                                    with_rope)
from minillama.long_context import context_sweep, sweep_ppl
from minillama.long_context import paired_difference as lc_paired
from minillama.model import ModelConfig, Transformer
from minillama.rope import RopeScaling


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Transformer(ModelConfig.from_name("debug", vocab_size=64, max_seq_len=64)).eval()


@pytest.fixture(scope="module")
def windows():
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 64, (3, 33), generator=g)


def test_token_losses_and_perplexity_match_a_manual_loop(model, windows):
    losses = token_losses(model, windows, batch_size=2)
    assert losses.shape == (3, 32)
    total, n = 0.0, 0
    with torch.no_grad():
        for w in windows:
            for t in range(1, len(w)):  # predict w[t] from w[:t], one forward per prefix
                logp = torch.log_softmax(model(w[None, :t])[0, -1], -1)
                total -= logp[w[t]].item()
                n += 1
    assert math.isclose(perplexity(model, windows), math.exp(total / n), rel_tol=1e-4)


def test_ppl_by_context_equals_evaluating_shorter_windows(model, windows):
    losses = token_losses(model, windows)
    ppl = ppl_by_context(losses, [8, 33])
    # causality: the first 8 positions of a long window are an 8-token window
    assert math.isclose(ppl[8], perplexity(model, windows[:, :8]), rel_tol=1e-4)
    assert math.isclose(ppl[33], perplexity(model, windows), rel_tol=1e-4)
    with pytest.raises(ValueError):
        ppl_by_context(losses, [34])


def test_position_loss_shape_and_mean(model, windows):
    losses = token_losses(model, windows)
    curve = position_loss(losses)
    assert curve.shape == (32,)
    assert_close(curve.mean(), losses.mean())


def test_eval_windows_round_robin_over_documents():
    docs = {"a": torch.arange(100), "b": torch.arange(1000, 1025)}
    w = eval_windows(docs, 20, 4)
    assert w.shape == (4, 20)
    assert w[1, 0] == 1000  # second window comes from the second document
    with pytest.raises(ValueError):
        eval_windows(docs, 200, 1)


def test_theta_and_scaling_change_the_rope_tables_but_not_the_weights(model):
    cos, sin = model.rope_tables(0, 40, "cpu", torch.float32)
    for theta, scaling in [(1e6, None), (1e4, RopeScaling("linear", 4)),
                           (1e4, RopeScaling("yarn", 4, original_max_seq_len=16))]:
        m = with_rope(model, theta, scaling)
        c2, s2 = m.rope_tables(0, 40, "cpu", torch.float32)
        assert not torch.allclose(c2, cos) or not torch.allclose(s2, sin)
        assert c2[0, 0] == pytest.approx(cos[0, 0].item() * (1.0 if scaling is None or scaling.type != "yarn"
                                                             else 0.1 * math.log(4) + 1))
        for (n, p), (_, q) in zip(model.named_parameters(), m.named_parameters()):
            assert torch.equal(p, q) and p is not q
    assert model.cfg.rope_theta == 1e4  # the original is untouched
    # the model output changes too (RoPE is in every layer)
    x = torch.randint(0, 64, (1, 30))
    with torch.no_grad():
        assert not torch.allclose(model(x), method_model(model, "no_ft_theta_1e6", 16)(x))


def test_method_table():
    assert {"lcft_theta_1e6", "lcft_theta_1e4", "pi", "yarn", "base_theta_1e4", "no_ft_theta_1e6", "no_ft_pi",
            "no_ft_yarn", "pi_rescaled", "yarn_rescaled"} == set(METHODS)
    assert METHODS["lcft_theta_1e6"].theta == 1e6 and METHODS["lcft_theta_1e6"].finetune
    from minillama.long_context import FINETUNED
    assert "pi_rescaled" not in FINETUNED and METHODS["pi_rescaled"].weights_of == "pi"  # no run of its own


def test_rescaled_pi_shares_the_fine_tuned_weights_and_scales_to_the_longest_length(tmp_path, monkeypatch, model):
    """PI and YaRN fine-tuned ×factor are also evaluated with the scale set to max_multiple: the same
    weights, a different RoPE table, so each method is judged in its best configuration at T_max."""
    from dataclasses import replace as dc_replace

    import importlib

    from minillama.profiles import get_profile

    ft = importlib.import_module("minillama.long_context.finetune")  # the package re-exports a function of that name

    monkeypatch.setattr(ft, "artifacts_dir", lambda name: tmp_path)
    settings = dc_replace(get_profile("quick").long_context, ft_steps=1, ft_batch_size=1, max_multiple=8, factor=2)
    stream = torch.randint(0, 64, (400,))
    models, info = ft.all_models(model, lambda: stream, 8, settings, "quick", log=None)
    pi, rescaled = models["pi"], models["pi_rescaled"]
    assert pi.cfg.rope_scaling.factor == 2 and rescaled.cfg.rope_scaling.factor == 8
    for (name, p), (_, q) in zip(pi.state_dict().items(), rescaled.state_dict().items()):
        assert torch.equal(p, q), name
    assert models["yarn_rescaled"].cfg.rope_scaling.factor == 8 and info["pi_rescaled"]["rescaled_to"] == 8
    x = torch.randint(0, 64, (1, 40))
    with torch.no_grad():
        assert not torch.allclose(pi(x), rescaled(x))


def test_finetune_reduces_loss_on_a_toy():
    torch.manual_seed(0)
    m = Transformer(ModelConfig(dim=32, n_layers=1, n_heads=2, vocab_size=16, multiple_of=32, max_seq_len=64))
    stream = torch.arange(4000) % 7  # a period-7 pattern: learnable in a few steps
    losses = finetune(m, stream, seq_len=32, steps=20, batch_size=4, lr=1e-2, warmup=2)
    assert len(losses) == 20
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:3]) / 3


def test_lr_schedule_warms_up_then_decays_to_a_thirtieth():
    lrs = [lr_at(s, 100, 1.0, 10) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and max(lrs) == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(1 / 30, abs=0.01)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))


SOURCE = "\n".join(f"def f{i}(x):\n    '''doc {i}'''\n    return x + {i}\n\n\nclass C{i}:\n    a = {i}\n"
                   for i in range(40))


class _CharTokenizer:
    """One token per character, digits split, like our SentencePiece model does for numbers."""

    def encode(self, s, bos=False):
        return [1] * bos + [ord(c) % 60 + 2 for c in s]

    def encode_batch(self, texts):
        return [self.encode(t) for t in texts]

    def piece_to_id(self, piece):
        return ord(piece) % 60 + 2


class _Doc:
    def __init__(self, path, text):
        self.path, self.text = path, text


@pytest.mark.parametrize("position", [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
def test_retrieval_prompt_places_the_function_and_ends_with_the_question(position):
    tok = _CharTokenizer()
    filler = RetrievalFiller.from_docs([_Doc("pkg/a.py", "from __future__ import annotations\n" + SOURCE)], tok)
    assert not any("__future__" in c for c in filler.chunks)
    p = retrieval_prompt(filler, 2000, position, 37)
    assert p.text.endswith("assert my_function() == ") and p.text.endswith(QUESTION)
    assert p.text.count("def my_function() -> int:") == 1 and "return 37\n" in p.text
    ast.parse(p.text + "37")  # valid Python once the answer is written
    code = p.text[: -len(QUESTION)]
    rel = p.inserted_at / len(code)
    assert abs(rel - position) < 0.1, (rel, position)
    assert 1500 < len(tok.encode(p.text)) <= 2000
    with pytest.raises(ValueError):
        retrieval_prompt(filler, 2000, position, 7)  # one digit
    with pytest.raises(ValueError):
        retrieval_prompt(filler, 2000, 1.5, 42)


def test_top_level_chunks_rejoin_to_the_source():
    chunks = top_level_chunks(SOURCE)
    assert "".join(chunks) == SOURCE and len(chunks) == 80
    assert top_level_chunks("def broken(:\n") == []


def test_package_texts_group_by_top_level_directory():
    docs = [_Doc("email/b.py", "B"), _Doc("email/a.py", "A"), _Doc("json.py", "J")]
    assert package_texts(docs) == {"email": "A\n\nB", "json.py": "J"}


def test_score_two_digit_matches_teacher_forcing(model):
    tok = _CharTokenizer()
    prompt = "x = 1\nassert my_function() == "
    scores = score_two_digit(model, tok, prompt)
    assert scores.shape == (90,)
    ids = tok.encode(prompt + "58", bos=True)
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids]))[0], -1)
    expected = logp[-3, ids[-2]] + logp[-2, ids[-1]]
    assert scores[58 - 10].item() == pytest.approx(expected.item(), abs=1e-4)


def test_paired_difference_separates_signal_from_noise():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(8, generator=g)
    assert lc_paired(a, a + 0.5)["verdict"] == "lower"
    assert lc_paired(a + 0.5, a)["verdict"] == "higher"
    noise = torch.randn(8, generator=g)
    assert lc_paired(a, a + noise - noise.mean())["verdict"] == "indistinguishable"
    assert lc_paired(a, a + 0.5)["ppl_ratio"] == pytest.approx(math.exp(-0.5), rel=1e-5)
    # 4 windows, mean 2.6 standard errors below 0: beyond ±2 s.e., inside the t interval (t₃ = 3.18)
    d = torch.tensor([-1.0, -0.2, -0.6, -0.2])
    r = lc_paired(a[:4] + d, a[:4])
    assert r["verdict"] == "indistinguishable" and abs(r["loss_diff"]) > 2 * r["se"]
    assert r["ci95"][0] < 0 < r["ci95"][1]


def test_context_sweep_scores_the_same_targets_with_more_context(model, windows):
    sweep = context_sweep(model, windows, [8, 16, 32], n_targets=8)
    assert set(sweep) == {8, 16, 32} and sweep[8].shape == (3,)
    # by hand: the last 8 targets given only the last 8 tokens of context before each window end
    short = windows[:, -9:]
    assert_close(sweep[8], token_losses(model, short)[:, -8:].mean(dim=1))
    full = token_losses(model, windows)
    assert_close(context_sweep(model, windows, [32], 8, full_losses=full)[32], full[:, -8:].mean(dim=1))
    assert sweep_ppl(sweep)[32] == pytest.approx(math.exp(full[:, -8:].mean().item()), rel=1e-5)
    with pytest.raises(ValueError):
        context_sweep(model, windows, [4], n_targets=8)


def test_cost_measured_in_a_fresh_process_sees_the_score_matrix():
    """A fresh process shows what one forward adds: the naive attention holds at least its
    T × T scores, SDPA far less, and a forward at 4× the length costs more memory."""
    from minillama.long_context.cost import fresh_process_cost
    from minillama.model import ModelConfig

    forward, attention = fresh_process_cost(ModelConfig.from_name("debug", vocab_size=512), [256, 1024],
                                            naive_max=1024, threads=1)
    assert [r["seq_len"] for r in forward] == [256, 1024] and all(r["seconds"] > 0 for r in forward)
    big = attention[-1]
    if big["naive_mib"] is None:  # not Linux: nothing to measure
        return
    assert big["naive_mib"] >= big["scores_mib"] > 4 * big["sdpa_mib"]
    assert forward[-1]["peak_mib"] > forward[0]["peak_mib"]


def test_prompt_counts_lower_only_the_longest_length():
    from minillama.long_context.retrieval import prompt_counts
    from minillama.profiles import LongContextSizes
    s = LongContextSizes(retrieval_prompts=32, retrieval_prompts_longest=8)
    assert prompt_counts(s, [256, 1024, 4096]) == {256: 32, 1024: 32, 4096: 8}
    assert prompt_counts(LongContextSizes(retrieval_prompts=32, retrieval_prompts_longest=None), [256, 1024]) \
        == {256: 32, 1024: 32}


def test_key_retrieval_takes_a_count_per_length():
    from minillama.long_context.retrieval import RetrievalFiller, key_retrieval
    from minillama.data.corpus import Document
    from minillama.tokenizer import get_tokenizer
    tok = get_tokenizer("quick")
    torch.manual_seed(0)
    model = Transformer(ModelConfig.from_name("debug", vocab_size=tok.vocab_size, max_seq_len=256)).eval()
    code = "".join(f"def f{i}(x):\n    return x + {i}\n\n\n" for i in range(40))
    filler = RetrievalFiller.from_docs([Document("pkg/a.py", code, "test")], tok)
    out = key_retrieval(model, tok, filler, [96, 160], [0.0, 1.0], {96: 3, 160: 1}, show_progress=False)
    assert set(out["accuracy"]) == {(96, 0.0), (96, 1.0), (160, 0.0), (160, 1.0)}
    assert all(v in (0.0, 1 / 3, 2 / 3, 1.0) for k, v in out["accuracy"].items() if k[0] == 96)
    assert all(v in (0.0, 1.0) for k, v in out["accuracy"].items() if k[0] == 160)


def test_world_corpus_packages_are_long_held_out_and_split():
    from minillama.codeworld.corpus import world_corpus
    c = world_corpus(train_packages=2, test_packages=3, modules_per_package=4)
    assert len(c.docs("train")) == 2 and len(c.docs("test")) == 3 and not c.docs("val")
    assert {d.path.split("/")[0] for d in c.docs("test")} == {"pkg000", "pkg001", "pkg002"}
    train, test = set(c.texts("train")), set(c.texts("test"))
    assert not train & test and all(t.count("def ") >= 4 for t in test)
    assert world_corpus(2, 3, 4).texts() == c.texts()  # deterministic
    with pytest.raises(ValueError):
        world_corpus(0, 1, 1)


def test_world_corpus_leaves_out_competing_keys_unless_asked():
    import re

    from minillama.codeworld.corpus import world_corpus
    from minillama.codeworld.documents import modules
    # the test packages (retrieval filler) hold no zero-argument function but the needle; the train
    # packages (fine-tuning) keep the pretraining mix, which has them in 12 % of modules
    zero_arg = re.compile(r"def \w+\(\) -> int:|assert \w+\(\) ==")
    default, full = world_corpus(8, 8, 6), world_corpus(8, 8, 6, constants_in=("train", "test"))
    assert not any(zero_arg.search(t) for t in default.texts("test"))
    assert sum(len(zero_arg.findall(t)) for t in default.texts("train")) >= 4
    assert sum(len(zero_arg.findall(t)) for t in full.texts("test")) >= 4
    assert default.texts("train") == full.texts("train") and default.source != full.source
    assert not any(zero_arg.search(t) for t in world_corpus(8, 8, 6, constants_in=()).texts())
    with pytest.raises(ValueError, match="splits"):
        world_corpus(1, 1, 1, constants_in=("val",))
    # dropping them keeps every world function and every other assert
    for m in modules(60, seed=31_000):
        p = m.without_constants()
        assert [f.name for f in p.functions] == [f.name for f in m.functions]
        assert len(m.asserts) - len(p.asserts) == sum(1 for a in m.asserts if zero_arg.search(a))
