"""FIM designs for the code world: the paper's, and the course's own, as token documents for
:func:`minillama.data.pipeline.pack`.

* ``paper`` (Code Llama §2.3 / the FIM paper, what :mod:`minillama.data.pipeline` does): a module is
  cut into pieces that fit a context (:func:`minillama.data.pipeline.split_pieces`); each piece
  becomes a FIM example with probability ``rate``, its two cut points uniform over its
  characters, half PSM and half SPM.
* ``function`` (the course's, not the paper's): FIM *per function*. Each function of a
  module becomes, with probability ``rate``, its own FIM example (and leaves the module,
  which stays a left-to-right document ending with EOS). The span is, with probability
  ``line_share``, whole lines of the body (one line 60 % of the time, else 2-4 lines), as
  HumanEval-Infilling masks them; otherwise two uniform character cuts inside the function,
  as the paper. Half PSM, half SPM. A middle that ends at a line end, followed by a suffix
  that starts a line, is where a small model can learn when to write EOT.

Both use :func:`minillama.fim.psm_tokens` / :func:`~minillama.fim.spm_tokens`, so the layout
(and the inference prompt) is Code Llama's in every case: only *where the cuts fall* and
*what a FIM example holds* differ.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from minillama.fim import FIMConfig, fim_applicable, psm_tokens, spm_tokens
from minillama.data.pipeline import PipelineConfig, split_pieces, tokenize_documents

from .documents import Module

DESIGNS = ("none", "paper", "function")


@dataclass(frozen=True)
class FimDesign:
    kind: str = "function"  # none | paper | function
    rate: float = 0.5  # share of FIM examples (pieces for paper, functions for function)
    spm_rate: float = 0.5
    line_share: float = 0.7  # function design: share of line-aligned spans
    single_line: float = 0.6  # of line-aligned spans: share of one-line middles

    def __post_init__(self):
        if self.kind not in DESIGNS:
            raise ValueError(f"FIM design {self.kind!r}; choose one of {DESIGNS}")
        FIMConfig(self.rate, self.spm_rate)  # validates the probabilities


def function_span(text: str, prompt_len: int, rng: random.Random, design: FimDesign) -> tuple[str, str, str]:
    """``(prefix, middle, suffix)`` of one function; ``prompt_len`` is where its body starts."""
    if rng.random() < design.line_share:
        body = text[prompt_len:].splitlines(keepends=True)
        filled = [i for i, line in enumerate(body) if line.strip()]
        if filled:
            k = 1 if rng.random() < design.single_line else rng.randint(2, 4)
            a = rng.choice(filled)
            b = min(a + k, len(body))
            while b > a + 1 and not body[b - 1].strip():  # end on a non-blank line
                b -= 1
            start = prompt_len + sum(map(len, body[:a]))
            end = start + sum(map(len, body[a:b]))
            return text[:start], text[start:end], text[end:]
    a, b = sorted(rng.randint(0, len(text)) for _ in range(2))
    return text[:a], text[a:b], text[b:]


def fim_example(tok, prefix: str, middle: str, suffix: str, spm: bool) -> list[int]:
    body = spm_tokens(tok, prefix, middle, suffix) if spm else psm_tokens(tok, prefix, middle, suffix)
    return [tok.bos_id] + body + [tok.eos_id]


def encode_modules(mods: list[Module], tok, design: FimDesign, seq_len: int, seed: int = 0):
    """Token documents ``(docs, is_fim, plain)`` for :func:`minillama.data.pipeline.pack`."""
    if design.kind == "paper":
        pieces = [p for m in mods for p in split_pieces(m.text, 2 * seq_len) if p.strip()]
        cfg = PipelineConfig(seq_len, FIMConfig(design.rate, design.spm_rate), seed=seed)
        docs, is_fim = tokenize_documents(pieces, tok, cfg)
        return docs, is_fim, tok.encode_batch(pieces, bos=True, eos=True)
    texts, fims = [], []
    for i, m in enumerate(mods):
        rng = random.Random(f"codeworld-fim-{seed}-{i}")
        keep = []
        for part in m.parts:
            fn = part.function
            if design.kind == "function" and fn is not None and rng.random() < design.rate:
                prefix, middle, suffix = function_span(part.text, len(fn.prompt), rng, design)
                ids = fim_example(tok, prefix, middle, suffix, rng.random() < design.spm_rate)
                if fim_applicable(len(ids) - 4, seq_len + 1):
                    fims.append((ids, part.text))
                    continue
            keep.append(part)
        if keep:
            names = {p.function.name for p in keep if p.function} | {p.constant[0] for p in keep if p.constant}
            asserts = [a for a in m.asserts if a[len("assert "):].split("(")[0] in names]
            texts.append(Module(keep, asserts).text)
    plain = tok.encode_batch(texts, bos=True, eos=True)
    docs = plain + [ids for ids, _ in fims]
    is_fim = [False] * len(plain) + [True] * len(fims)
    plain_all = plain + tok.encode_batch([t for _, t in fims], bos=True, eos=True)
    return docs, is_fim, plain_all
