"""Fill-in-the-middle (FIM), formatted exactly as Code Llama does it.

Training (PAPER §2.3, FIM paper): a document is cut at two uniform character positions into
prefix / middle / suffix and rearranged so that a left-to-right model learns to write the
middle after seeing both sides. With probability ``rate`` (0.9), half PSM and half SPM::

    PSM  [PRE] enc(prefix) [SUF] enc_inf(suffix) [MID] enc_inf(middle) [EOT]
    SPM  [PRE] [SUF] enc_inf(suffix) [MID] enc(prefix + middle) [EOT]

``enc_inf`` drops SentencePiece's implicit leading space (``Tokenizer.encode_infilling``): the
suffix and middle continue text, they do not start it. SPM encodes prefix and middle *together*
(the FIM paper's App. D variant), so the model never sees a token split at the prefix/middle
boundary during training; at inference the prompt ends with ``enc(prefix)`` and the middle
continues it, which is the same tokenization when the prefix ends at a token boundary.

One decision of ours: with an empty prefix the PSM middle is encoded with ``enc`` (it starts
the document), because PSM and SPM prompts are then the same sequence; see :func:`psm_tokens`.

Where BOS and EOS go (the paper does not say): every training example is
``[BOS] + body + [EOS]``, FIM or not. BOS makes the training layout start exactly like the
inference prompt (``[BOS, PRE, ...]``), and a uniform EOS lets the packer separate documents
the same way for both. Generation stops at EOT (and at EOS, for safety).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from minillama.tokenizer import Tokenizer, TokenizerError

GenerateFn = Callable[[list[int], int, list[int]], list[int]]
NextLogitsFn = Callable[[list[int]], torch.Tensor]


@dataclass(frozen=True)
class FIMConfig:
    rate: float = 0.9  # share of (eligible) documents turned into FIM examples
    spm_rate: float = 0.5  # share of FIM examples in SPM rather than PSM layout

    def __post_init__(self):
        for name in ("rate", "spm_rate"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"FIMConfig.{name} must be a probability in [0, 1], got {v}")


# --- training-time transform ----------------------------------------------------------------
def fim_applicable(n_tokens: int, seq_len: int) -> bool:
    """The paper's rule: FIM only for documents not cut across model contexts.

    ``n_tokens`` is the document's plain length including BOS and EOS. A FIM example has four
    extra tokens (PRE, SUF, MID, EOT) and may tokenize a little longer at the cuts, so we keep
    a small margin to be sure the transformed example still fits one context.
    """
    return n_tokens + 4 + 4 <= seq_len


def split_document(document: str, rng: random.Random) -> tuple[str, str, str]:
    """Cut at two positions drawn uniformly from ``0..len`` (character level)."""
    a, b = sorted(rng.randint(0, len(document)) for _ in range(2))
    return document[:a], document[a:b], document[b:]


def psm_tokens(tok: Tokenizer, prefix: str, middle: str, suffix: str) -> list[int]:
    # An empty prefix makes the PSM prompt identical to the SPM one ([PRE][SUF] suffix [MID]);
    # SPM then writes enc(middle), so PSM must too, or the two layouts would teach different
    # tokens for the same prompt. In words: the text that starts the document gets the dummy
    # space, in both layouts.
    enc_middle = tok.encode_infilling(middle) if prefix else tok.encode(middle)
    return ([tok.prefix_id] + tok.encode(prefix) + [tok.suffix_id] + tok.encode_infilling(suffix)
            + [tok.middle_id] + enc_middle + [tok.eot_id])


def spm_tokens(tok: Tokenizer, prefix: str, middle: str, suffix: str) -> list[int]:
    return ([tok.prefix_id, tok.suffix_id] + tok.encode_infilling(suffix) + [tok.middle_id]
            + tok.encode(prefix + middle) + [tok.eot_id])


def fim_transform(document: str, tok: Tokenizer, rng: random.Random,
                  config: FIMConfig = FIMConfig(), bos: bool = True, eos: bool = True) -> list[int]:
    """One training example for ``document``: FIM with probability ``config.rate``, else plain.

    Call it only for documents where :func:`fim_applicable` holds; others get ``tok.encode``.
    """
    if rng.random() < config.rate:
        prefix, middle, suffix = split_document(document, rng)
        layout = spm_tokens if rng.random() < config.spm_rate else psm_tokens
        body = layout(tok, prefix, middle, suffix)
    else:
        body = tok.encode(document)
    return [tok.bos_id] * bos + body + [tok.eos_id] * eos


def _index(ids: list[int], token: int, what: str, start: int = 0) -> int:
    try:
        return ids.index(token, start)
    except ValueError:
        raise ValueError(f"not a FIM example: no {what} token after position {start}") from None


def fim_parts(ids: Sequence[int], tok: Tokenizer) -> tuple[str, str, str, str]:
    """``(layout, prefix, middle, suffix)`` of a training example; layout is psm/spm/plain.

    For SPM, prefix and middle are encoded together and cannot be told apart: the prefix is
    returned empty and the middle holds both. A PSM example with an empty prefix is the same
    sequence as an SPM one (see :func:`psm_tokens`) and is reported as "spm".
    """
    ids = [int(i) for i in ids]
    if ids and ids[0] == tok.bos_id:
        ids = ids[1:]
    if ids and ids[-1] == tok.eos_id:
        ids = ids[:-1]
    if not ids or ids[0] != tok.prefix_id:
        return "plain", "", tok.decode(ids), ""
    mid = _index(ids, tok.middle_id, "MID")
    end = _index(ids, tok.eot_id, "EOT", mid)
    if ids[1] == tok.suffix_id:  # SPM: [PRE][SUF] suffix [MID] prefix+middle [EOT]
        return "spm", "", tok.decode(ids[mid + 1:end]), tok.decode_infilling(ids[2:mid])
    suf = _index(ids, tok.suffix_id, "SUF")
    return ("psm", tok.decode(ids[1:suf]), tok.decode_infilling(ids[mid + 1:end]),
            tok.decode_infilling(ids[suf + 1:mid]))


def fim_to_document(ids: Sequence[int], tok: Tokenizer) -> str:
    """The inverse of :func:`fim_transform`: the original document."""
    _, prefix, middle, suffix = fim_parts(ids, tok)
    return prefix + middle + suffix


# --- inference ---------------------------------------------------------------------------
def infilling_prompt(tok: Tokenizer, prefix: str, suffix: str, spm: bool = False) -> list[int]:
    """Code Llama's infilling prompt; the model writes the middle next, then EOT."""
    if spm:
        return ([tok.bos_id, tok.prefix_id, tok.suffix_id] + tok.encode_infilling(suffix)
                + [tok.middle_id] + tok.encode(prefix))
    return ([tok.bos_id, tok.prefix_id] + tok.encode(prefix) + [tok.suffix_id]
            + tok.encode_infilling(suffix) + [tok.middle_id])


@dataclass
class Infill:
    text: str  # prefix + middle + suffix
    middle: str
    ids: list[int]  # generated ids, stop token excluded
    stopped: bool  # False: hit max_new_tokens before EOT (the middle may be cut short)


def cut_at_stop(ids: Sequence[int], stop_ids: Sequence[int]) -> tuple[list[int], bool]:
    """The ids before the first stop id, and whether there was one."""
    for i, t in enumerate(ids):
        if t in stop_ids:
            return list(ids[:i]), True
    return list(ids), False


def _middle_text(tok: Tokenizer, prefix: str, ids: list[int], spm: bool) -> str:
    if not spm and prefix:
        return tok.decode_infilling(ids)  # trained as enc_inf(middle)
    # SPM: the middle continues enc(prefix); decode them together so a token that spans the
    # boundary (or a leading space) comes out right, then take the part after the prefix.
    full = tok.decode(tok.encode(prefix) + ids)
    return full[len(prefix):]


def infill_details(generate: GenerateFn, tok: Tokenizer, prefix: str, suffix: str,
                   spm: bool = False, max_new_tokens: int = 128) -> Infill:
    stop_ids = [tok.eot_id, tok.eos_id]
    out = generate(infilling_prompt(tok, prefix, suffix, spm), max_new_tokens, stop_ids)
    ids, stopped = cut_at_stop(out, stop_ids)  # don't trust generate to have stopped
    middle = _middle_text(tok, prefix, ids, spm)
    return Infill(prefix + middle + suffix, middle, ids, stopped)


def infill(generate: GenerateFn, tok: Tokenizer, prefix: str, suffix: str, spm: bool = False,
           max_new_tokens: int = 128) -> str:
    """Fill the gap between ``prefix`` and ``suffix``; returns ``prefix + middle + suffix``.

    ``generate(prompt_ids, max_new_tokens, stop_ids) -> new_ids`` is any decoder (greedy,
    sampling, a real model or a toy); it should stop at a stop id, and anything after one is
    ignored here anyway.
    """
    return infill_details(generate, tok, prefix, suffix, spm, max_new_tokens).text


def greedy_generate_fn(next_logits: NextLogitsFn) -> GenerateFn:
    """Adapt a ``next_logits(ids) -> tensor[vocab]`` callable to the ``generate`` interface."""
    def generate(prompt_ids: list[int], max_new_tokens: int, stop_ids: list[int]) -> list[int]:
        ids, out = list(prompt_ids), []
        for _ in range(max_new_tokens):
            t = int(torch.argmax(next_logits(ids)))
            out.append(t)
            ids.append(t)
            if t in stop_ids:
                break
        return out
    return generate


# --- causal masking (CM3 / InCoder), for comparison -------------------------------------------
def causal_masking_text(document: str, spans: Sequence[tuple[int, int]]) -> str:
    """The causal-masking layout rendered as text: each span replaced by ``<MASK_k>`` and moved
    to the end after its sentinel, each closed by ``<EOM>``."""
    return "".join(_causal_masking_parts(document, spans, str, "<MASK_{}>", "<EOM>"))


def causal_masking_format(tok: Tokenizer, document: str, spans: Sequence[tuple[int, int]]) -> list[int]:
    """The same layout as token ids, with the tokenizer's ``<MASK_k>`` / ``<EOM>`` control pieces.

    ``spans`` are ``(start, end)`` character ranges, sorted and not overlapping. Text after a
    sentinel is encoded without the dummy leading space, like FIM's middle and suffix.
    """
    if len(spans) > len(tok.mask_ids) or tok.eom_id is None:
        raise TokenizerError(f"this tokenizer has {len(tok.mask_ids)} <MASK_k> sentinels (and "
                             f"{'an' if tok.eom_id is not None else 'no'} <EOM>); {len(spans)} spans need "
                             "more. Use fewer spans or a tokenizer trained by minillama.")
    parts = _causal_masking_parts(document, spans, None, None, None)
    ids: list[int] = []
    for i, part in enumerate(parts):
        if isinstance(part, tuple):  # ("mask", k) or ("eom",)
            ids.append(tok.mask_ids[part[1]] if part[0] == "mask" else tok.eom_id)
        elif part:
            ids += tok.encode(part) if i == 0 else tok.encode_infilling(part)
    return ids


def _causal_masking_parts(document, spans, render, mask_fmt, eom):
    last = 0
    for a, b in spans:
        if not 0 <= last <= a <= b <= len(document):
            raise ValueError(f"spans must be sorted, non-overlapping (start, end) ranges inside the "
                             f"document (length {len(document)}); got {list(spans)}")
        last = b
    mask = (lambda k: mask_fmt.format(k)) if render else (lambda k: ("mask", k))
    end = eom if render else ("eom",)
    parts, pos = [], 0
    for k, (a, b) in enumerate(spans):
        parts += [document[pos:a], mask(k)]
        pos = b
    parts.append(document[pos:])
    for k, (a, b) in enumerate(spans):
        parts += [mask(k), document[a:b], end]
    return parts
