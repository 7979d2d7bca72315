"""The code corpus: Python's own standard library, already on every machine.

Code Llama trained on 500B tokens of public code; minillama trains on the ``.py`` files of
the interpreter that runs it. That needs no download and is real, idiomatic code.

Decisions, and why:

* ``site-packages`` is skipped: it is whatever the user happened to install, so the corpus
  would differ between machines.
* Test directories (``test``, ``tests``, ``idle_test``) are skipped: they are ~60% of the
  stdlib's bytes and full of deliberately odd text (bad encodings, huge literal tables), which
  would skew a small vocabulary, and skipping them keeps the ``cpu`` profile fast.
* Files larger than ``max_file_chars`` are skipped: the only one in CPython 3.11 is
  ``pydoc_data/topics.py``, a generated table of help text rather than code.
* Files that are not valid UTF-8 are skipped (a handful of legacy-encoded files).
* Generated tables and data modules are skipped (:func:`is_data_table`): the ``encodings``
  codec tables (``'\\xc0'  #  0xC0 -> LATIN CAPITAL LETTER A WITH GRAVE`` for 256 lines),
  ``html/entities.py``, ``_compat_pickle.py``, ``_sysconfigdata_*``. They are not code, they are
  trivially predictable once one has been seen, and a split that happens to hold several of
  them is far easier than the others: 5 of the 38 validation files of the ``cpu`` profile were
  codec tables, a third of its characters.
* The train/validation/test split is per *file*, decided by a hash of the relative path, so it
  is the same on every run and every machine and a file never straddles two splits.
* Exact duplicates (same text) are removed, keeping the first path in sorted order, so the
  validation split never contains a copy of a training file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

SPLITS = ("train", "val", "test")
# Fractions for (train, val, test). Small held-out shares: the corpus is small and the model
# needs most of it; 5% of the stdlib is still ~35 files.
SPLIT_FRACTIONS = (0.90, 0.05, 0.05)
TEST_DIRS = frozenset({"test", "tests", "idle_test"})
SKIP_DIRS = frozenset({"site-packages", "dist-packages", "__pycache__"})
MAX_FILE_CHARS = 300_000


class CorpusError(ValueError):
    """A corpus source that cannot be read or yields no documents."""


@dataclass(frozen=True)
class Document:
    path: str  # relative to the source root (or "<file>:<line>" for jsonl); hashed for the split
    text: str
    split: str


@dataclass
class Corpus:
    documents: list[Document]
    source: str

    def __len__(self) -> int:
        return len(self.documents)

    def docs(self, split: str | None = None) -> list[Document]:
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return [d for d in self.documents if split is None or d.split == split]

    def texts(self, split: str | None = None) -> list[str]:
        return [d.text for d in self.docs(split)]

    def fingerprint(self, split: str | None = None) -> str:
        """A hash of paths and contents: changes whenever the corpus does (cache key)."""
        h = hashlib.sha256()
        for d in self.docs(split):
            h.update(d.path.encode("utf-8") + b"\0")
            h.update(hashlib.sha256(d.text.encode("utf-8")).digest())
        return h.hexdigest()

    def stats(self, tokenizer=None) -> dict:
        """Files, characters (and tokens, if a tokenizer is given) per split and in total."""
        out: dict = {"source": self.source}
        for split in (*SPLITS, None):
            texts = self.texts(split)
            row = {"files": len(texts), "chars": sum(map(len, texts))}
            if tokenizer is not None:
                row["tokens"] = sum(map(len, tokenizer.encode_batch(texts)))
                row["chars_per_token"] = row["chars"] / max(row["tokens"], 1)
            out[split or "total"] = row
        return out


def split_of(path: str, fractions: Sequence[float] = SPLIT_FRACTIONS) -> str:
    """The split a file belongs to, from a hash of its relative path (stable everywhere)."""
    # sha256 rather than hash(): Python's str hash is salted per process.
    digest = hashlib.sha256(Path(path).as_posix().encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    edge = 0.0
    for split, frac in zip(SPLITS, fractions):
        edge += frac
        if u < edge:
            return split
    return SPLITS[-1]


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def iter_source_files(root: str | Path, suffixes: Sequence[str] = (".py",),
                      skip_tests: bool = True) -> Iterator[Path]:
    """Source files under ``root`` in sorted order, without site-packages (and tests)."""
    skip = SKIP_DIRS | (TEST_DIRS if skip_tests else frozenset())
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        # Pruned in place, so os.walk never descends into site-packages (big and slow).
        dirnames[:] = [d for d in dirnames if d not in skip]
        found += [Path(dirpath) / f for f in filenames if f.endswith(tuple(suffixes))]
    yield from sorted(found)


def _read_utf8(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return None


_TABLE_LINE = re.compile(r"""^\s*(?:(?:'[^']*'|"[^"]*"|0x[0-9A-Fa-f]+|-?\d+|None)\s*"""
                         r"""(?::\s*(?:'[^']*'|"[^"]*"|0x[0-9A-Fa-f]+|-?\d+|None|\([^)]*\)))?\s*,?\s*(?:#.*)?"""
                         r"""|\(.*\)\s*,?\s*(?:#.*)?)$""")


def is_data_table(text: str, min_lines: int = 200, share: float = 0.6) -> bool:
    """True for a generated table or data module: at least ``min_lines`` non-blank lines, more than
    ``share`` of them a bare literal entry (``'\\x00'  # 0x00 -> NULL``, ``'amp': '&',``,
    ``(1, 2),``). Code with a table inside it stays below: in CPython 3.11 the highest is
    ``locale.py`` (its alias table) at 52 %, the next ``opcode.py`` at 35 %."""
    lines = [line for line in text.splitlines() if line.strip()]
    return len(lines) >= min_lines and sum(bool(_TABLE_LINE.match(line)) for line in lines) > share * len(lines)


def load_directory(root: str | Path, suffixes: Sequence[str] = (".py",), skip_tests: bool = True,
                   max_file_chars: int | None = MAX_FILE_CHARS,
                   skip_tables: bool = True) -> list[tuple[str, str]]:
    """``(relative path, text)`` for every readable source file under ``root``; generated tables
    (:func:`is_data_table`) are left out unless ``skip_tables`` is False."""
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"corpus directory {str(root)!r} does not exist; pass a folder of "
                          f"source files or a .jsonl file with one {{\"text\": ...}} per line")
    pairs = []
    for path in iter_source_files(root, suffixes, skip_tests):
        text = _read_utf8(path)
        if text is None or (max_file_chars is not None and len(text) > max_file_chars):
            continue
        if skip_tables and is_data_table(text):
            continue
        pairs.append((path.relative_to(root).as_posix(), text))
    return pairs


def load_jsonl(path: str | Path, text_key: str = "text", path_key: str = "path") -> list[tuple[str, str]]:
    """``(path, text)`` from a jsonl file; ``path`` defaults to ``<file>:<line>``."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"corpus file {str(path)!r} does not exist")
    pairs = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise CorpusError(f"{path}:{lineno} is not valid JSON ({e.msg}); each line must be "
                                  f'an object like {{"{text_key}": "def f(): ..."}}') from None
            if not isinstance(row, dict) or not isinstance(row.get(text_key), str):
                raise CorpusError(f"{path}:{lineno} has no string field {text_key!r}; each line must "
                                  f'be an object like {{"{text_key}": "def f(): ..."}}')
            pairs.append((str(row.get(path_key) or f"{path.name}:{lineno}"), row[text_key]))
    return pairs


def _dedup(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    seen, out = set(), []
    for path, text in sorted(pairs):
        key = hashlib.sha256(text.encode("utf-8")).digest()
        if key not in seen and text.strip():
            seen.add(key)
            out.append((path, text))
    return out


def _subset(pairs: list[tuple[str, str]], max_files: int) -> list[tuple[str, str]]:
    # Ranked by a *salted* path hash (the split uses the unsalted one, so ranking by it would
    # put the whole subset in "train"): a spread over the whole library, the same everywhere.
    # Validation and test keep at least two files each, so even tiny profiles can evaluate.
    def rank(pair):
        return hashlib.sha256(b"subset:" + pair[0].encode("utf-8")).digest()

    by_split = {s: sorted((p for p in pairs if split_of(p[0]) == s), key=rank) for s in SPLITS}
    n_held = {s: max(min(2, max_files // 4), round(f * max_files))
              for s, f in zip(SPLITS[1:], SPLIT_FRACTIONS[1:])}
    chosen = by_split["val"][:n_held["val"]] + by_split["test"][:n_held["test"]]
    chosen += by_split["train"][:max(max_files - len(chosen), 0)]
    return sorted(chosen[:max_files])


def load_corpus(sources: str | Path | Sequence[str | Path] | None = None, *,
                max_files: int | None = None, skip_tests: bool = True,
                max_file_chars: int | None = MAX_FILE_CHARS) -> Corpus:
    """Load, deduplicate and split a corpus.

    ``sources``: ``None`` for the standard library, or one or more directories (``.py`` files,
    recursively), single ``.py`` files and ``.jsonl`` files (one ``{"text": ..., "path": ...}`` per line).
    ``max_files`` keeps a stable subset, for fast profiles.
    """
    if sources is None:
        names, pairs = ["stdlib:" + str(stdlib_root())], load_directory(
            stdlib_root(), skip_tests=skip_tests, max_file_chars=max_file_chars)
    else:
        if isinstance(sources, (str, Path)):
            sources = [sources]
        names, pairs = [], []
        for src in sources:
            src = Path(src)
            names.append(str(src))
            if src.suffix == ".jsonl":
                pairs += load_jsonl(src)
            elif src.is_file() and src.suffix == ".py":
                text = _read_utf8(src)
                if text is None:
                    raise CorpusError(f"{src} is not valid UTF-8; save it as UTF-8 or leave it out")
                pairs.append((src.name, text))
            elif src.is_file():
                raise CorpusError(f"{str(src)!r} is a file but neither a .py nor a .jsonl file; a corpus "
                                  f"source is a folder of .py files, a .py file, or a .jsonl file with one "
                                  f'{{"text": ...}} per line')
            else:
                pairs += load_directory(src, skip_tests=skip_tests, max_file_chars=max_file_chars)
    pairs = _dedup(pairs)
    if max_files is not None:
        pairs = _subset(pairs, max_files)
    if not pairs:
        raise CorpusError(f"no documents found in {', '.join(names)}: it needs UTF-8 .py files "
                          f"(or non-empty 'text' fields in a .jsonl)")
    docs = [Document(path, text, split_of(path)) for path, text in pairs]
    return Corpus(docs, source=" + ".join(names))


def get_corpus(profile=None) -> Corpus:
    """The corpus for a profile (``quick`` uses ``max_corpus_files`` of the stdlib)."""
    from minillama.profiles import get_profile

    if profile is None or isinstance(profile, str):
        profile = get_profile(profile)
    return load_corpus(max_files=profile.max_corpus_files)


def format_stats(stats: dict) -> str:
    """A small table of :meth:`Corpus.stats` for the CLI and notebooks."""
    has_tokens = "tokens" in stats["total"]
    head = f"{'split':<6} {'files':>6} {'chars':>12}"
    if has_tokens:
        head += f" {'tokens':>11} {'chars/tok':>9}"
    lines = [f"corpus: {stats['source']}", head]
    for split in (*SPLITS, "total"):
        r = stats[split]
        line = f"{split:<6} {r['files']:>6} {r['chars']:>12,}"
        if has_tokens:
            line += f" {r['tokens']:>11,} {r['chars_per_token']:>9.2f}"
        lines.append(line)
    return "\n".join(lines)
