"""The code tokenizer: exact round trips, Code Llama's special pieces, clear errors, caching."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _tok_fixtures import (CODELLAMA_VOCAB, FIXTURE_SUFFIX, TMP, fake_codellama_model, model_proto,
                           small_corpus, tiny_tokenizer)
from minillama.tokenizer import (FIM_PIECES, Tokenizer, TokenizerError, build_tokenizer,
                                 check_compatible, get_tokenizer)

# Any text except "▁" (U+2581), which SentencePiece cannot tell from an escaped space.
code_text = st.text(st.characters(blacklist_characters="\u2581", blacklist_categories=("Cs",)), max_size=80)
code_like = st.text(st.sampled_from(list("defreturn x=():._0129\n\t    \"'#<>PRESUFMID☺é中")), max_size=80)


@settings(max_examples=60, deadline=None)
@given(st.one_of(code_text, code_like))
def test_round_trip_any_text(s):
    tok = tiny_tokenizer()
    assert tok.decode(tok.encode(s)) == s
    assert tok.decode_infilling(tok.encode_infilling(s)) == s


def test_round_trip_whole_quick_corpus():
    corpus = small_corpus()
    tok = tiny_tokenizer()
    texts = corpus.texts()
    for text, ids in zip(texts, tok.encode_batch(texts)):
        assert tok.decode(ids) == text
    assert tok.encode_batch(texts[:3]) == [tok.encode(t) for t in texts[:3]]


def test_profile_tokenizer_round_trips_every_quick_file():
    from minillama.data.corpus import get_corpus

    corpus = get_corpus("quick")
    tok = get_tokenizer("quick", corpus)
    assert len(tok) == 512
    bad = [d.path for d, ids in zip(corpus.documents, tok.encode_batch(corpus.texts()))
           if tok.decode(ids) != d.text]
    assert bad == []


def test_whitespace_and_digits():
    tok = tiny_tokenizer()
    for s in ["    if x:\n        return  1\n", "\t\tx\r\n", "a  b   c", " leading", "trailing  "]:
        assert tok.decode(tok.encode(s)) == s
    digits = tok.pieces(tok.encode_infilling("12345"))
    assert digits == list("12345")  # split_digits: one token per digit


def test_special_pieces_are_control_symbols():
    tok = tiny_tokenizer()
    ids = [tok.bos_id, tok.eos_id, tok.prefix_id, tok.suffix_id, tok.middle_id, tok.eot_id]
    assert len(set(ids)) == 6
    assert [tok.id_to_piece(i) for i in ids[2:]] == list(FIM_PIECES.values())
    assert all(tok.is_special(i) for i in ids)
    # Plain text that looks like a special token stays plain text.
    text = "x = '<PRE> <SUF> <MID> <EOT> <s> </s>'"
    enc = tok.encode(text)
    assert not set(enc) & tok.special_ids
    assert tok.decode(enc) == text
    assert tok.encode("x", bos=True, eos=True) == [tok.bos_id, *tok.encode("x"), tok.eos_id]


def test_encode_infilling_has_no_leading_space():
    tok = tiny_tokenizer()
    # The dummy prefix: encode("return") means " return"; encode_infilling does not add it.
    assert tok.id_to_piece(tok.encode("return")[0]).startswith("▁")
    assert not tok.id_to_piece(tok.encode_infilling("return")[0]).startswith("▁")
    assert tok.decode_infilling(tok.encode_infilling(" return")) == " return"
    assert tok.encode_infilling("") == [] and tok.decode_infilling([]) == ""


def test_loads_a_codellama_layout_model():
    tok = Tokenizer(fake_codellama_model())
    assert len(tok) == CODELLAMA_VOCAB
    assert (tok.bos_id, tok.eos_id) == (1, 2)
    assert (tok.prefix_id, tok.suffix_id, tok.middle_id, tok.eot_id) == (32007, 32008, 32009, 32010)
    # The published suffix ids: newline byte first, no "▁" (29871).
    assert tok.encode_infilling(FIXTURE_SUFFIX) == [13, 1678, 736, 1121, 13]
    assert tok.encode(FIXTURE_SUFFIX)[:2] == [29871, 13]  # the naive encoding adds a space
    assert tok.mask_ids == [] and tok.eom_id is None


def test_missing_fim_pieces_is_a_clear_error():
    pieces = [("<unk>", 0.0, 2), ("<s>", 0.0, 3), ("</s>", 0.0, 3)]
    pieces += [(f"<0x{b:02X}>", 0.0, 6) for b in range(256)] + [("▁", -1.0, 1), ("☺", -2.0, 1)]
    path = TMP / "llama2-like.model"
    path.write_bytes(model_proto(pieces))
    with pytest.raises(TokenizerError, match="no infilling pieces"):
        Tokenizer(path)
    tok = Tokenizer(path, require_fim=False)
    assert tok.prefix_id is None and tok.decode(tok.encode("a b")) == "a b"


def test_training_errors_are_explained(tmp_path):
    with pytest.raises(TokenizerError, match="empty corpus"):
        Tokenizer.train([], 400, tmp_path / "t.model")
    with pytest.raises(TokenizerError, match="empty corpus"):
        Tokenizer.train(["", ""], 400, tmp_path / "t.model")
    with pytest.raises(TokenizerError, match="too small"):
        Tokenizer.train(["x = 1\n"], 100, tmp_path / "t.model")
    with pytest.raises(TokenizerError, match="more than this corpus.*can fill.*Use vocab_size <= "):
        Tokenizer.train(["x = 1\ny = 2\n"], 5000, tmp_path / "t.model")
    with pytest.raises(TokenizerError, match="distinct characters.*Use vocab_size > "):
        Tokenizer.train(["".join(map(chr, range(0x4E00, 0x4E00 + 400)))], 500, tmp_path / "t.model")
    with pytest.raises(TokenizerError, match="no tokenizer model"):
        Tokenizer(tmp_path / "missing.model")
    (tmp_path / "junk.model").write_bytes(b"not a model")
    with pytest.raises(TokenizerError, match="not a SentencePiece model"):
        Tokenizer(tmp_path / "junk.model")


def test_check_compatible():
    tok = tiny_tokenizer()
    check_compatible(tok, len(tok))
    tok.check_compatible(len(tok))
    with pytest.raises(TokenizerError, match="vocab_size=len\\(tokenizer\\)"):
        check_compatible(tok, len(tok) + 16)


def test_build_tokenizer_caches_by_corpus_and_settings(tmp_path):
    texts = small_corpus().texts("train")[:6]
    a = build_tokenizer(texts, 400, tmp_path)
    mtime = a.path.stat().st_mtime_ns
    b = build_tokenizer(texts, 400, tmp_path)
    assert b.path == a.path and b.path.stat().st_mtime_ns == mtime  # reused, not retrained
    assert build_tokenizer(texts, 410, tmp_path).path != a.path
    assert build_tokenizer(texts[:-1], 400, tmp_path).path != a.path
    assert a.path.with_suffix(".json").is_file()


def test_a_mismatched_model_and_tokenizer_are_refused_where_they_meet():
    from minillama.evaluation.course_models import infill_middles
    from minillama.model import ModelConfig, Transformer
    from minillama.sampling import text_sampler

    tok = tiny_tokenizer()
    model = Transformer(ModelConfig.from_name("debug", vocab_size=len(tok) - 8))
    with pytest.raises(TokenizerError, match="model's vocab_size"):
        text_sampler(model, tok)
    with pytest.raises(TokenizerError, match="model's vocab_size"):
        infill_middles(model, tok, [])
