"""The pretraining data pipeline: pieces, FIM only on whole documents, determinism, cache."""

import numpy as np
import pytest

import minillama.data.pipeline as pipeline
from minillama.data.pipeline import PackedData, PipelineConfig, build_stream, split_pieces
from minillama.fim import FIMConfig


class CharTokenizer:
    """One token per character: enough for the packer, no SentencePiece training needed."""
    bos_id, eos_id, prefix_id, suffix_id, middle_id, eot_id = 1, 2, 3, 4, 5, 6
    vocab_size = 300

    def encode(self, s, bos=False, eos=False):
        return [self.bos_id] * bos + [7 + ord(c) % 290 for c in s] + [self.eos_id] * eos

    encode_infilling = encode

    def encode_batch(self, texts, bos=False, eos=False):
        return [self.encode(t, bos, eos) for t in texts]


def _texts(n=40, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        body = "".join(f"def f{i}_{j}(x):\n    return x + {j}\n\n" for j in range(int(rng.integers(1, 12))))
        out.append(f"import os\n\n{body}class C{i}:\n    def m(self):\n        pass\n")
    return out


def test_split_pieces_roundtrip_and_size():
    for text in _texts():
        pieces = split_pieces(text, 120)
        assert "".join(pieces) == text
        assert all(len(p) <= 120 for p in pieces)
    # top-level boundaries are preferred: no piece starts inside a function body here
    assert all(p.startswith(("import", "def", "class", "    def")) for p in split_pieces(_texts()[3], 200))


def _fim_spans_whole(data: PackedData, tok) -> tuple[int, int]:
    """Every FIM example (PRE ... EOT) lies inside one row; returns (#FIM, #rows)."""
    n = 0
    for row in np.asarray(data.rows):
        pre = np.flatnonzero(row == tok.prefix_id)
        eot = np.flatnonzero(row == tok.eot_id)
        # a row may start inside a plain document, but never inside or end inside a FIM one
        assert len(pre) == len(eot), f"FIM example cut across rows: PRE at {pre}, EOT at {eot}"
        assert (pre < eot).all()
        n += len(pre)
    return n, len(data)


def test_fim_only_on_whole_documents():
    tok = CharTokenizer()
    data = build_stream(_texts(), tok, PipelineConfig(seq_len=96, piece_chars=120, seed=1))
    n_fim, n_rows = _fim_spans_whole(data, tok)
    stats = data.meta["stats"]
    assert n_fim == stats["fim"] > 0 and stats["cut"] > 0  # some documents are cut: those stay plain
    assert data.rows.shape[1] == 97 and data.rows.dtype == np.uint16
    # about 90% of whole documents become FIM
    whole = stats["documents"] - stats["cut"]
    assert 0.7 < stats["fim"] / whole <= 1.0


def test_long_documents_never_fim():
    tok = CharTokenizer()
    long_text = ["x = [" + "1, " * 400 + "]\n"]  # one 1,200-char line: a piece longer than a row
    data = build_stream(long_text, tok, PipelineConfig(seq_len=64, piece_chars=500))
    assert data.meta["stats"]["fim"] == 0
    assert not (np.asarray(data.rows) == tok.prefix_id).any()


def test_no_fim_stream_is_plain_and_same_text():
    tok = CharTokenizer()
    l2r = build_stream(_texts(), tok, PipelineConfig(seq_len=96, fim=FIMConfig(rate=0.0), piece_chars=120))
    assert l2r.meta["stats"]["fim"] == 0
    assert not np.isin(np.asarray(l2r.rows), [tok.prefix_id, tok.suffix_id, tok.middle_id, tok.eot_id]).any()


def test_deterministic_given_seed():
    tok = CharTokenizer()
    a = build_stream(_texts(), tok, PipelineConfig(seq_len=96, seed=3))
    b = build_stream(_texts(), tok, PipelineConfig(seq_len=96, seed=3))
    c = build_stream(_texts(), tok, PipelineConfig(seq_len=96, seed=4))
    np.testing.assert_array_equal(a.rows, b.rows)
    assert a.rows.shape != c.rows.shape or not np.array_equal(a.rows, c.rows)


def test_cache_is_reused_and_keyed_by_settings(tmp_path, monkeypatch):
    tok = CharTokenizer()
    cfg = PipelineConfig(seq_len=96, seed=0)
    first = build_stream(_texts(), tok, cfg, tmp_path, "train")
    assert isinstance(first.rows, np.memmap)

    def boom(*a, **k):
        raise AssertionError("rebuilt although cached")

    monkeypatch.setattr(pipeline, "pack", boom)
    again = build_stream(_texts(), tok, cfg, tmp_path, "train")
    np.testing.assert_array_equal(first.rows, again.rows)
    assert again.fingerprint == first.fingerprint
    with pytest.raises(AssertionError, match="rebuilt"):  # other settings: another cache entry
        build_stream(_texts(), tok, PipelineConfig(seq_len=64), tmp_path, "train")
    with pytest.raises(AssertionError, match="rebuilt"):  # other corpus
        build_stream(_texts(seed=1), tok, cfg, tmp_path, "train")


def test_batches_shift_by_one():
    rows = np.arange(3 * 9).reshape(3, 9)
    x, y = PackedData.from_array(rows).batch([2, 0])
    assert x.shape == (2, 8) and (y[:, :-1] == x[:, 1:]).all() and x[0, 0] == 18


def test_too_little_text_is_a_clear_error():
    with pytest.raises(ValueError, match="fewer than"):
        build_stream(["x = 1\n"], CharTokenizer(), PipelineConfig(seq_len=64))
