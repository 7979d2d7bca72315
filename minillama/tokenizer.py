"""A SentencePiece BPE tokenizer for code, with Code Llama's special pieces.

Like Code Llama's tokenizer (a Llama 2 SentencePiece model plus four infilling pieces):

* BPE with byte fallback, so any text encodes; digits are split one per token.
* No normalization and ``remove_extra_whitespaces=False``: indentation is data, and
  ``decode(encode(x)) == x`` for every corpus file.
* ``add_dummy_prefix`` on: ``encode("x")`` encodes ``" x"``. That helps at the start of a
  document, and is exactly why infilling needs :meth:`Tokenizer.encode_infilling`, which
  encodes a middle or a suffix *without* that extra space.
* The infilling pieces are named as in Code Llama (``▁<PRE>``, ``▁<SUF>``, ``▁<MID>``,
  ``▁<EOT>``) and are *control* symbols: ``encode`` never produces them, so a document that
  contains the text ``<PRE>`` cannot forge a special token.
* Newlines are never merged with other characters (training sees one line at a time), as in
  Code Llama where ``"\\n"`` is always the byte token ``<0x0A>``. ``split_lines=False`` lets
  pieces span lines instead (~6% fewer tokens on the stdlib).

Known limitation, shared with every SentencePiece tokenizer: the character ``▁`` (U+2581) in
the input decodes as a space.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import sentencepiece as spm

FIM_PIECES = {"prefix": "▁<PRE>", "suffix": "▁<SUF>", "middle": "▁<MID>", "eot": "▁<EOT>"}
# Sentinels for the causal-masking format (CM3/InCoder), see fim.causal_masking_format.
N_MASK_SENTINELS = 4
MASK_PIECES = [f"<MASK_{i}>" for i in range(N_MASK_SENTINELS)]
EOM_PIECE = "<EOM>"
# The trick from Code Llama's tokenizer: encode "☺" + s and drop the tokens of "☺" (which
# carry the dummy-prefix space). We make "☺" a user-defined piece so it is always one token
# that never merges with what follows.
INFILL_MARKER = "☺"
SETTINGS_VERSION = 1  # bump when training settings change, to invalidate cached tokenizers


class TokenizerError(ValueError):
    """Bad input to tokenizer training or loading; the message says what to do."""


class Tokenizer:
    """Load a SentencePiece model (ours or a real Code Llama ``tokenizer.model``)."""

    def __init__(self, path: str | Path | None = None, *, model_proto: bytes | None = None,
                 require_fim: bool = True):
        if (path is None) == (model_proto is None):
            raise TypeError("give exactly one of path or model_proto")
        self.path = Path(path) if path is not None else None
        if path is not None and not self.path.is_file():
            raise TokenizerError(f"no tokenizer model at {str(path)!r}; train one with "
                                 f"Tokenizer.train(...) or minillama.tokenizer.get_tokenizer()")
        self.sp = spm.SentencePieceProcessor()
        try:
            if model_proto is not None:
                self.sp.LoadFromSerializedProto(model_proto)
            else:
                self.sp.Load(str(self.path))
        except (RuntimeError, OSError) as e:
            raise TokenizerError(f"{path or 'model_proto'} is not a SentencePiece model ({e})") from None
        self.bos_id: int = self.sp.bos_id()
        self.eos_id: int = self.sp.eos_id()
        self.pad_id: int = self.sp.pad_id()  # -1 when the model has none (as in Llama)
        # Found by piece name, so a real Code Llama model (ids 32007-32010) works as well as ours.
        ids = {k: self._find(piece) for k, piece in FIM_PIECES.items()}
        missing = [FIM_PIECES[k] for k, v in ids.items() if v is None]
        if missing and require_fim:
            raise TokenizerError(
                f"tokenizer {path or ''} has no infilling pieces {missing}: infilling needs a "
                "vocabulary with ▁<PRE> ▁<SUF> ▁<MID> ▁<EOT> (Code Llama 7B/13B have them, 34B and "
                "Llama 2 do not). Train one with Tokenizer.train, or load with require_fim=False "
                "for left-to-right use only.")
        self.prefix_id, self.suffix_id, self.middle_id, self.eot_id = (
            ids["prefix"], ids["suffix"], ids["middle"], ids["eot"])
        self.mask_ids = [i for i in map(self._find, MASK_PIECES) if i is not None]
        self.eom_id = self._find(EOM_PIECE)
        self._marker_ids = self.sp.encode(INFILL_MARKER)
        self._marker_text = self.sp.decode(self._marker_ids)

    def _find(self, piece: str) -> int | None:
        i = self.sp.piece_to_id(piece)
        return None if i == self.sp.unk_id() and piece != self.sp.id_to_piece(i) else i

    # --- vocabulary -------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def __len__(self) -> int:
        return self.vocab_size

    def id_to_piece(self, i: int) -> str:
        return self.sp.id_to_piece(int(i))

    def piece_to_id(self, piece: str) -> int:
        return self.sp.piece_to_id(piece)

    @property
    def special_ids(self) -> set[int]:
        """Ids that never come from text: BOS/EOS, the FIM pieces and the mask sentinels."""
        ids = {self.bos_id, self.eos_id, self.prefix_id, self.suffix_id, self.middle_id,
               self.eot_id, self.eom_id, *self.mask_ids}
        return {i for i in ids if i is not None and i >= 0}

    def is_special(self, i: int) -> bool:
        return self.sp.is_control(int(i))

    def check_compatible(self, vocab_size: int) -> None:
        check_compatible(self, vocab_size)

    # --- encode / decode ----------------------------------------------------------------
    def encode(self, s: str, bos: bool = False, eos: bool = False) -> list[int]:
        if not isinstance(s, str):
            raise TypeError(f"encode takes a str, got {type(s).__name__}")
        return [self.bos_id] * bos + self.sp.encode(s) + [self.eos_id] * eos

    def encode_batch(self, texts: Sequence[str], bos: bool = False, eos: bool = False,
                     num_threads: int | None = None) -> list[list[int]]:
        """Encode many texts with SentencePiece's own thread pool (much faster than a loop)."""
        out = self.sp.encode(list(texts), num_threads=num_threads or os.cpu_count() or 1)
        return [[self.bos_id] * bos + ids + [self.eos_id] * eos for ids in out]

    def decode(self, ids: Iterable[int]) -> str:
        return self.sp.decode([int(i) for i in ids])

    def encode_infilling(self, s: str) -> list[int]:
        """Encode ``s`` without the implicit leading space (for FIM middles and suffixes)."""
        ids = self.sp.encode(INFILL_MARKER + s)
        n = len(self._marker_ids)
        if ids[:n] != self._marker_ids:  # would mean the marker merged with the text
            raise TokenizerError(f"the vocabulary merges {INFILL_MARKER!r} with {s[:10]!r}; "
                                 "encode_infilling needs it to stay a separate token")
        return ids[n:]

    def decode_infilling(self, ids: Iterable[int]) -> str:
        """Decode ids from :meth:`encode_infilling`: keep a leading space if there is one."""
        text = self.sp.decode(self._marker_ids + [int(i) for i in ids])
        return text[len(self._marker_text):]

    def pieces(self, ids: Iterable[int]) -> list[str]:
        return [self.id_to_piece(i) for i in ids]

    def render(self, ids: Iterable[int], per_line: int = 8) -> str:
        """Pieces with their ids, a few per line; special pieces in ⟦brackets⟧ so they stand out."""
        cells = []
        for i in ids:
            piece = self.id_to_piece(i)
            shown = repr(piece)[1:-1]  # escapes a raw tab or newline piece
            cells.append(f"⟦{piece}⟧·{i}" if self.is_special(i) else f"{shown}·{i}")
        rows = [cells[k:k + per_line] for k in range(0, len(cells), per_line)]
        width = max((len(c) for c in cells), default=0) + 1
        return "\n".join("".join(c.ljust(width) for c in row).rstrip() for row in rows)

    def __repr__(self) -> str:
        return f"Tokenizer({str(self.path) if self.path else '<proto>'!r}, vocab_size={self.vocab_size})"

    # --- training -------------------------------------------------------------------------
    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, path: str | Path, *,
              split_lines: bool = True, character_coverage: float = 0.9999,
              max_sentence_chars: int = 4096, input_sentence_size: int = 2_000_000,
              num_threads: int | None = None, seed: int = 0) -> "Tokenizer":
        """Train a BPE model on ``texts`` and save it to ``path`` (a ``.model`` file)."""
        texts = [t for t in texts if t]
        if not texts:
            raise TokenizerError("cannot train a tokenizer on an empty corpus: pass at least one "
                                 "non-empty text (check the corpus path / filters)")
        n_special = 3 + len(FIM_PIECES) + N_MASK_SENTINELS + 1 + 1 + 256  # meta, sentinels, ☺, bytes
        if vocab_size <= n_special:
            raise TokenizerError(f"vocab_size={vocab_size} is too small: {n_special} ids are taken "
                                 f"by special pieces and the 256 byte-fallback pieces; use at least "
                                 f"{n_special + 64}")
        proto = io.BytesIO()
        spm.set_random_generator_seed(seed)
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=_sentences(texts, split_lines, max_sentence_chars),
                model_writer=proto,
                model_type="bpe", vocab_size=vocab_size,
                byte_fallback=True, split_digits=True,
                allow_whitespace_only_pieces=True,  # indentation runs become pieces
                remove_extra_whitespaces=False, normalization_rule_name="identity",
                add_dummy_prefix=True,
                character_coverage=character_coverage,
                # bytes, not chars: leave room for multi-byte UTF-8 so no sentence is dropped
                max_sentence_length=4 * max_sentence_chars,
                input_sentence_size=input_sentence_size, shuffle_input_sentence=True,
                control_symbols=[*FIM_PIECES.values(), *MASK_PIECES, EOM_PIECE],
                user_defined_symbols=[INFILL_MARKER],
                hard_vocab_limit=True, num_threads=num_threads or os.cpu_count() or 1,
                minloglevel=2,
            )
        except RuntimeError as e:
            raise _explain_training_error(str(e), vocab_size, texts) from None
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_bytes(proto.getvalue())
        os.replace(tmp, path)  # atomic: a concurrent reader never sees half a model
        return cls(path)


def _sentences(texts: list[str], split_lines: bool, max_chars: int) -> Iterator[str]:
    """Cut files into training "sentences": lines, or blocks of whole lines."""
    for text in texts:
        if split_lines:
            for line in text.split("\n"):
                if line.strip():
                    yield line[:max_chars]
            continue
        buf, n = [], 0
        for line in text.splitlines(keepends=True):
            line = line[:max_chars]
            if buf and n + len(line) > max_chars:
                yield "".join(buf)
                buf, n = [], 0
            buf.append(line)
            n += len(line)
        if buf:
            yield "".join(buf)


def _explain_training_error(msg: str, vocab_size: int, texts: list[str]) -> TokenizerError:
    """SentencePiece's errors are assertions from its C++; say what they mean and what to do."""
    size = f"{len(texts)} texts, {sum(map(len, texts)):,} chars"
    high = re.search(r"Vocabulary size too high \((\d+)\).*<= (\d+)", msg)
    if high:
        return TokenizerError(
            f"vocab_size={vocab_size} is more than this corpus ({size}) can fill: BPE ran out of "
            f"merges at {high.group(2)} pieces. Use vocab_size <= {high.group(2)}, or train on more "
            "text (e.g. a profile with more corpus files).")
    chars = re.search(r"smaller than required_chars\. (\d+) vs (\d+)", msg)
    if chars:
        return TokenizerError(
            f"vocab_size={vocab_size} is too small for this corpus ({size}): its distinct characters "
            f"and the special pieces alone need {chars.group(2)} ids. Use vocab_size > {chars.group(2)}, "
            "or pass a lower character_coverage (rare characters then use byte fallback).")
    return TokenizerError(f"SentencePiece training failed ({size}, vocab_size={vocab_size}): {msg}")


def check_compatible(tokenizer: Tokenizer, vocab_size: int) -> None:
    """Raise a clear error unless ``tokenizer`` matches a model's embedding size."""
    if tokenizer.vocab_size != vocab_size:
        raise TokenizerError(
            f"tokenizer has {tokenizer.vocab_size} pieces but the model's vocab_size is {vocab_size}: "
            "token ids would index the wrong embedding rows. Use the tokenizer the model was "
            "trained with, or build the model with vocab_size=len(tokenizer).")


def check_model_tokenizer(model, tokenizer) -> None:
    """Where a model and a tokenizer meet (decoding, evaluation): refuse a mismatched pair up front.
    Tokenizer stand-ins without a SentencePiece model (tests' toys) are not checked."""
    if isinstance(tokenizer, Tokenizer) and model is not None:
        check_compatible(tokenizer, model.cfg.vocab_size)


# --- cached tokenizer per profile --------------------------------------------------------


def tokenizer_dir(profile_name: str) -> Path:
    from minillama.paths import artifacts_dir

    return artifacts_dir(profile_name) / "tokenizer"


def build_tokenizer(texts: Sequence[str], vocab_size: int, cache_dir: str | Path, *,
                    corpus_key: str | None = None, split_lines: bool = True,
                    verbose: bool = False) -> Tokenizer:
    """Train on ``texts`` unless a model for the same corpus and settings is cached."""
    from minillama.paths import code_fingerprint

    settings = {"version": SETTINGS_VERSION, "code": code_fingerprint(Tokenizer.train, _sentences),
                "vocab_size": vocab_size, "split_lines": split_lines,
                "sentencepiece": spm.__version__}
    if corpus_key is None:
        h = hashlib.sha256()
        for t in texts:
            h.update(hashlib.sha256(t.encode("utf-8")).digest())
        corpus_key = h.hexdigest()
    key = hashlib.sha256(json.dumps([corpus_key, settings], sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"tokenizer-{key}.model"
    if path.is_file():
        if verbose:
            print(f"tokenizer: cached {path}")
        return Tokenizer(path)
    t0 = time.perf_counter()
    tok = Tokenizer.train(texts, vocab_size, path, split_lines=split_lines)
    seconds = time.perf_counter() - t0
    meta = {"settings": settings, "corpus_key": corpus_key, "train_seconds": round(seconds, 2),
            "texts": len(texts), "chars": sum(map(len, texts))}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    if verbose:
        print(f"tokenizer: trained vocab {vocab_size} on {len(texts)} files in {seconds:.1f}s -> {path}")
    return tok


def get_tokenizer(profile=None, corpus=None, verbose: bool = False) -> Tokenizer:
    """The profile's tokenizer, trained on its corpus's train split once and then cached."""
    from minillama.data.corpus import get_corpus
    from minillama.profiles import get_profile

    if profile is None or isinstance(profile, str):
        profile = get_profile(profile)
    corpus = corpus or get_corpus(profile)
    return build_tokenizer(corpus.texts("train"), profile.vocab_size, tokenizer_dir(profile.name),
                           corpus_key=corpus.fingerprint("train"), verbose=verbose)
