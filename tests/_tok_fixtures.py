"""Tokenizer fixtures for the tokenizer / FIM / data tests (owned by those tests).

* :func:`tiny_tokenizer` trains a small model on a few standard-library files, once per run.
* :func:`fake_codellama_model` writes a SentencePiece model *by hand* whose vocabulary is laid
  out like Code Llama 7B's for the pieces of the published infilling example (same ids, the FIM
  pieces at 32007-32010), so the published token ids can be checked without the real
  ``tokenizer.model``. SentencePiece models are protobuf messages; the few fields we need are
  written directly in the wire format, so the test needs no protobuf package.
"""

from __future__ import annotations

import functools
import struct
import tempfile
from pathlib import Path

from minillama.data.corpus import load_corpus
from minillama.tokenizer import Tokenizer

TMP = Path(tempfile.mkdtemp(prefix="minillama-tok-"))


@functools.lru_cache(maxsize=None)
def small_corpus():
    return load_corpus(max_files=24)


@functools.lru_cache(maxsize=None)
def tiny_tokenizer(vocab_size: int = 400) -> Tokenizer:
    return Tokenizer.train(small_corpus().texts("train"), vocab_size, TMP / f"tiny{vocab_size}.model")


# --- a protobuf ModelProto written by hand -----------------------------------------------
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, value) -> bytes:
    if isinstance(value, bytes):  # length-delimited
        return _varint(num << 3 | 2) + _varint(len(value)) + value
    if isinstance(value, float):  # fixed32
        return _varint(num << 3 | 5) + struct.pack("<f", value)
    return _varint(num << 3 | 0) + _varint(int(value))  # varint (ints, bools, enums)


def model_proto(pieces: list[tuple[str, float, int]], *, byte_fallback=True,
                trainer: dict[int, int] | None = None) -> bytes:
    """A BPE ``ModelProto`` with Llama's normalizer settings (identity, dummy prefix on)."""
    body = b"".join(_field(1, _field(1, p.encode()) + _field(2, float(s)) + _field(3, t))
                    for p, s, t in pieces)
    spec = {3: 2, 35: int(byte_fallback)}  # model_type=BPE, byte_fallback
    spec.update(trainer or {})
    body += _field(2, b"".join(_field(k, v) for k, v in spec.items()))
    normalizer = (_field(1, b"identity") + _field(2, b"") + _field(3, 1)  # add_dummy_prefix
                  + _field(4, 0) + _field(5, 1))  # keep extra whitespace; escape spaces as ▁
    return body + _field(3, normalizer)


# The published Code Llama 7B example (REFERENCE.md) and the pieces behind its ids.
FIXTURE_PREFIX = 'def remove_non_ascii(s: str) -> str:\n    """ '
FIXTURE_SUFFIX = "\n    return result\n"
FIXTURE_PSM_IDS = [1, 32007, 822, 3349, 29918, 5464, 29918, 294, 18869, 29898, 29879, 29901, 851,
                   29897, 1599, 851, 29901, 13, 1678, 9995, 29871, 32008, 13, 1678, 736, 1121, 13,
                   32009]
_FIXED = {822: "▁def", 3349: "▁remove", 29918: "_", 5464: "non", 294: "as", 18869: "cii",
          29898: "(", 29879: "s", 29901: ":", 851: "▁str", 29897: ")", 1599: "▁->", 1678: "▁▁▁",
          9995: '▁"""', 29871: "▁", 736: "▁return", 1121: "▁result"}
# Merge intermediates, in priority order: words merge before runs of spaces (so indentation
# ends as "▁▁▁" + "▁return", as in the real vocabulary).
_CHAINS = ["▁d", "▁de", "▁r", "▁re", "▁rem", "▁remo", "▁remov", "▁ret", "▁retu", "▁retur",
           "▁res", "▁resu", "▁resul", "no", "ci", "▁s", "▁st", "▁-", '▁"', '▁""', "▁▁"]
_CHARS = list("defrmovnacitu->\"l") + ["☺"]
CODELLAMA_VOCAB = 32016


@functools.lru_cache(maxsize=None)
def fake_codellama_model() -> Path:
    """A 32016-piece model laid out like Code Llama 7B's for the example's pieces."""
    table: dict[int, tuple[str, int]] = {0: ("<unk>", UNKNOWN), 1: ("<s>", CONTROL), 2: ("</s>", CONTROL)}
    table.update({3 + b: (f"<0x{b:02X}>", BYTE) for b in range(256)})
    table.update({i: (p, NORMAL) for i, p in _FIXED.items()})
    table.update({20000 + k: (p, NORMAL) for k, p in enumerate(_CHAINS)})
    table.update({29950 + k: (p, NORMAL) for k, p in enumerate(_CHARS)})
    table.update({32007: ("▁<PRE>", CONTROL), 32008: ("▁<SUF>", CONTROL), 32009: ("▁<MID>", CONTROL),
                  32010: ("▁<EOT>", CONTROL)})
    pieces = []
    for i in range(CODELLAMA_VOCAB):
        piece, kind = table.get(i, (f"<unused{i}>", UNUSED))
        pieces.append((piece, -float(i) if kind == NORMAL else 0.0, kind))
    path = TMP / "fake-codellama-tokenizer.model"
    path.write_bytes(model_proto(pieces))
    return path
