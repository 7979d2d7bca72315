"""Pretraining data: documents -> token ids (with FIM) -> fixed-length rows on disk.

Each row holds ``seq_len + 1`` tokens: inputs are ``row[:-1]``, targets ``row[1:]``. Rows are
a numpy memmap (``uint16`` when the vocabulary allows), cached under
``data/artifacts/<profile>/pipeline/`` by a hash of corpus, tokenizer and settings, so the
second call costs a file open.

Decisions, and why:

* **Documents are pieces of files.** Code Llama's context (4,096 then 16,384 tokens) holds
  most source files whole; a 256-token laptop context holds almost none of the stdlib's. The
  paper applies FIM only to documents not cut across contexts, so at our scale FIM would
  almost never happen. We therefore cut each file at top-level statement boundaries (a blank
  line followed by a ``def``/``class``/decorator at indent ≤ 4, or any statement at column 0)
  into pieces of at most ``piece_chars`` characters: "documents" of the size our context
  holds, as files are for Code Llama. A block longer than that is cut further at blank
  lines, then at line ends.
* **FIM by the paper's rule.** A document that fits one row (:func:`minillama.fim.fim_applicable`)
  becomes a FIM example with probability 0.9 (PSM/SPM half/half, :func:`minillama.fim.fim_transform`).
  The packer then places whole documents first-fit from a small look-ahead window, so short
  documents are rarely cut; when one must be cut after all, it is written left-to-right
  instead. No document that crosses a row boundary is ever in FIM format.
* **No padding.** Rows are full; the last incomplete row is dropped.
* **Deterministic.** Document order is a permutation from ``seed``; each document's FIM
  cut points come from its own RNG seeded by ``(seed, index)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import time
import zlib
from collections import deque
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from minillama.paths import artifacts_dir, code_fingerprint
from minillama.fim import FIMConfig, fim_applicable, fim_transform

PIPELINE_VERSION = 2

# a new top-level block: column 0 code, or a def/class/decorator at indent <= 4 (methods)
_BLOCK_START = re.compile(r"^(?:[^\s#)\]}]|(?: {0,4})(?:def |async def |class |@))")


@dataclass(frozen=True)
class PipelineConfig:
    seq_len: int  # model context; rows hold seq_len + 1 tokens
    fim: FIMConfig = FIMConfig()  # FIMConfig(rate=0.0): plain left-to-right (the ablation's baseline)
    piece_chars: int | None = None  # None: 2 * seq_len characters (~half a row of tokens)
    seed: int = 0
    window: int = 256  # look-ahead of the first-fit packer

    @property
    def max_piece_chars(self) -> int:
        return self.piece_chars or 2 * self.seq_len


def _units(text: str, max_chars: int, level: int = 0) -> list[str]:
    """Split into consecutive units of at most ``max_chars`` where possible: at top-level
    boundaries, then (for a unit still too long) at blank lines, then at any line."""
    if len(text) <= max_chars or level == 3:
        return [text]
    lines = text.splitlines(keepends=True)
    units: list[str] = []
    prev_blank = True
    for line in lines:
        if level == 0:
            start = prev_blank and bool(_BLOCK_START.match(line))
        elif level == 1:
            start = prev_blank and bool(line.strip())
        else:
            start = True
        if units and start:
            units.append(line)
        elif units:
            units[-1] += line
        else:
            units.append(line)
        prev_blank = not line.strip()
    return [u for unit in units for u in _units(unit, max_chars, level + 1)]


def split_pieces(text: str, max_chars: int) -> list[str]:
    """Cut a file into consecutive pieces of at most ``max_chars`` (unless one line is longer),
    preferring top-level boundaries; ``"".join(pieces) == text``.

    Each piece aims at a size drawn from ``max_chars/4 .. max_chars`` (seeded by the text, so
    stable): mixed sizes, like real files, let the packer fill rows with whole documents.
    """
    rng = random.Random(zlib.crc32(text.encode("utf-8")))
    pieces: list[str] = []
    limit = max_chars
    for unit in _units(text, max_chars):
        if pieces and len(pieces[-1]) + len(unit) <= limit:
            pieces[-1] += unit
        else:
            pieces.append(unit)
            limit = rng.randint(max_chars // 4, max_chars)
    return pieces


def tokenize_documents(texts: Sequence[str], tok, cfg: PipelineConfig) -> tuple[list[list[int]], list[bool]]:
    """Token ids per document (``[BOS] ... [EOS]``) and whether each is a FIM example."""
    plain = tok.encode_batch(list(texts), bos=True, eos=True)
    out, is_fim = [], []
    for i, (text, ids) in enumerate(zip(texts, plain)):
        if cfg.fim.rate > 0 and fim_applicable(len(ids), cfg.seq_len + 1):
            rng = random.Random(cfg.seed * 1_000_003 + i)
            cand = fim_transform(text, tok, rng, cfg.fim)
            if len(cand) <= cfg.seq_len + 1 and cand[1] == tok.prefix_id:
                out.append(cand)
                is_fim.append(True)
                continue
        out.append(ids)
        is_fim.append(False)
    return out, is_fim


def pack(docs: list[list[int]], is_fim: list[bool], plain: list[list[int]] | None, row_len: int,
         window: int = 256) -> tuple[np.ndarray, dict]:
    """Pack documents into rows of ``row_len`` tokens, keeping documents that fit whole.

    First fit from a look-ahead ``window``: put the first waiting document that fits in the
    row's free space. If none fits, the row's end must cut one: preferably one longer than a
    row (cut anyway), else a plain one (costs no FIM example), else the oldest, whose FIM
    version is then replaced by its plain version ``plain[i]``. Without padding, each row
    boundary cuts about one document, so smaller documents mean more FIM.
    Returns the rows and counts of whole/cut/FIM documents.
    """
    flat: list[int] = []
    waiting: deque[int] = deque()
    it = iter(range(len(docs)))
    placed: list[tuple[int, bool, bool, int]] = []  # (end position, cut, fim, length) per document
    exhausted = False
    while True:
        while not exhausted and len(waiting) < window:
            i = next(it, None)
            if i is None:
                exhausted = True
            else:
                waiting.append(i)
        if not waiting:
            break
        free = row_len - len(flat) % row_len
        pick = next((j for j in waiting if len(docs[j]) <= free), None)
        cut = pick is None
        if cut:  # nothing fits: cut a long document if one waits, else the oldest
            pick = next((j for j in waiting if len(docs[j]) > row_len), None)
            if pick is None:
                pick = next((j for j in waiting if not is_fim[j]), waiting[0])
        waiting.remove(pick)
        ids, fim = docs[pick], is_fim[pick]
        if cut and fim:
            ids, fim = plain[pick], False  # the paper's rule: a cut document is never FIM
        flat.extend(ids)
        placed.append((len(flat), cut, fim, len(ids)))
    n_rows = len(flat) // row_len
    kept = [p for p in placed if p[0] <= n_rows * row_len]  # the incomplete last row is dropped
    stats = {"documents": len(kept), "fim": sum(p[2] for p in kept), "cut": sum(p[1] for p in kept),
             "fim_tokens": sum(p[3] for p in kept if p[2]), "tokens": n_rows * row_len, "rows": n_rows,
             "dropped_tokens": len(flat) - n_rows * row_len}
    arr = np.asarray(flat[: n_rows * row_len], dtype=np.int64).reshape(n_rows, row_len)
    return arr, stats


class PackedData:
    """Rows of token ids (memmap or array) with the batch helpers the trainer needs."""

    def __init__(self, rows: np.ndarray, meta: dict | None = None):
        if rows.ndim != 2 or rows.shape[0] == 0:
            raise ValueError(f"packed data must be a non-empty [rows, seq_len+1] array, got shape {rows.shape}")
        self.rows = rows
        self.meta = meta or {}

    @property
    def seq_len(self) -> int:
        return self.rows.shape[1] - 1

    @property
    def fingerprint(self) -> str:
        return self.meta.get("key") or hashlib.sha256(np.ascontiguousarray(self.rows).tobytes()).hexdigest()[:16]

    def __len__(self) -> int:
        return self.rows.shape[0]

    def batch(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inputs, targets)``, each ``[len(indices), seq_len]`` int64."""
        x = torch.from_numpy(np.asarray(self.rows[np.asarray(indices)], dtype=np.int64))
        return x[:, :-1], x[:, 1:]

    @classmethod
    def from_array(cls, rows, meta: dict | None = None) -> "PackedData":
        return cls(np.asarray(rows), meta)


@lru_cache(maxsize=1)
def _code_key() -> str:
    """The code that turns documents into rows: pieces, FIM, tokenization, packing."""
    from minillama import fim
    from minillama.tokenizer import Tokenizer

    return code_fingerprint(_units, split_pieces, tokenize_documents, pack, fim.fim_applicable, fim.split_document,
                            fim.psm_tokens, fim.spm_tokens, fim.fim_transform, Tokenizer.encode,
                            Tokenizer.encode_batch, Tokenizer.encode_infilling)


def _dtype_for(vocab_size: int):
    return np.uint16 if vocab_size <= 65536 else np.uint32


def tokenizer_fingerprint(tok) -> str:
    """A hash of the tokenizer model (its serialized SentencePiece proto)."""
    if hasattr(tok, "sp"):
        return hashlib.sha256(tok.sp.serialized_model_proto()).hexdigest()[:16]
    return hashlib.sha256(repr(sorted(vars(tok).items())).encode()).hexdigest()[:16]


def build_stream(texts: Sequence[str], tok, cfg: PipelineConfig, cache_dir: str | Path | None = None,
                 name: str = "stream", corpus_key: str | None = None, verbose: bool = False) -> PackedData:
    """Pack ``texts`` into rows, or open the cached rows built from the same inputs."""
    if corpus_key is None:
        h = hashlib.sha256()
        for t in texts:
            h.update(hashlib.sha256(t.encode("utf-8")).digest())
        corpus_key = h.hexdigest()
    key_src = json.dumps([PIPELINE_VERSION, _code_key(), corpus_key, tokenizer_fingerprint(tok), asdict(cfg)],
                         sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    row_len = cfg.seq_len + 1
    dtype = _dtype_for(tok.vocab_size)
    if cache_dir is not None:
        path = Path(cache_dir) / f"{name}-{key}.bin"
        meta_path = path.with_suffix(".json")
        if path.is_file() and meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            rows = np.memmap(path, dtype=np.dtype(meta["dtype"]), mode="r", shape=tuple(meta["shape"]))
            if verbose:
                print(f"pipeline: cached {name} ({meta['shape'][0]:,} rows) {path}")
            return PackedData(rows, meta)

    t0 = time.perf_counter()
    pieces = [p for t in texts for p in split_pieces(t, cfg.max_piece_chars) if p.strip()]
    order = np.random.default_rng(cfg.seed).permutation(len(pieces))
    pieces = [pieces[i] for i in order]
    docs, is_fim = tokenize_documents(pieces, tok, cfg)
    plain = tok.encode_batch(pieces, bos=True, eos=True) if any(is_fim) else None
    arr, stats = pack(docs, is_fim, plain, row_len, cfg.window)
    if len(arr) == 0:
        raise ValueError(f"{name}: the corpus gives fewer than {row_len} tokens, not one row of "
                         f"seq_len+1; use more text or a shorter seq_len")
    meta = {"key": key, "name": name, "config": asdict(cfg), "dtype": np.dtype(dtype).name,
            "shape": list(arr.shape), "stats": stats, "build_seconds": round(time.perf_counter() - t0, 2),
            "tokenizer": tokenizer_fingerprint(tok)}
    if cache_dir is None:
        return PackedData(arr.astype(dtype), meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    mm = np.memmap(tmp, dtype=dtype, mode="w+", shape=arr.shape)
    mm[:] = arr
    mm.flush()
    del mm
    os.replace(tmp, path)  # rows first, then the meta that marks them complete
    tmp_meta = meta_path.with_name(meta_path.name + f".tmp{os.getpid()}")
    tmp_meta.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp_meta, meta_path)
    if verbose:
        s = stats
        print(f"pipeline: built {name}: {s['rows']:,} rows x {row_len} tokens from {s['documents']:,} documents "
              f"({s['fim']:,} FIM, {s['cut']:,} cut) in {meta['build_seconds']}s")
    return PackedData(np.memmap(path, dtype=dtype, mode="r", shape=arr.shape), meta)


def pipeline_dir(profile_name: str) -> Path:
    return artifacts_dir(profile_name) / "pipeline"


def get_streams(profile=None, fim: bool = True, seed: int = 0, verbose: bool = False) -> dict[str, PackedData]:
    """The profile's packed streams: ``train`` (FIM or not), ``val`` (same format as train)
    and ``val_fim`` / ``val_l2r`` (validation with and without FIM, for the ablation)."""
    from minillama.data.corpus import get_corpus
    from minillama.profiles import get_profile
    from minillama.tokenizer import get_tokenizer

    if profile is None or isinstance(profile, str):
        profile = get_profile(profile)
    corpus = get_corpus(profile)
    tok = get_tokenizer(profile, corpus=corpus)
    cache = pipeline_dir(profile.name)
    on = PipelineConfig(profile.seq_len, FIMConfig(), seed=seed)
    off = PipelineConfig(profile.seq_len, FIMConfig(rate=0.0), seed=seed)

    def stream(split, cfg, tag):
        return build_stream(corpus.texts(split), tok, cfg, cache, f"{split}-{tag}",
                            corpus.fingerprint(split), verbose)

    val_fim, val_l2r = stream("val", on, "fim"), stream("val", off, "l2r")
    return {"train": stream("train", on if fim else off, "fim" if fim else "l2r"),
            "val": val_fim if fim else val_l2r, "val_fim": val_fim, "val_l2r": val_l2r}
