"""Many samples per prompt, the pass@k workload: prefill once, share the cache, drop finished rows.

pass@k draws n samples per problem (n = 20 for the course's curves, 10 solutions per question
in self-instruct) and cuts each at a stop sequence. :func:`minillama.generate.generate` (and
transformers' ``generate`` with ``num_return_sequences``) treat that as n independent prompts:
the prompt is prefilled n times and a finished row keeps its place in the batch until the
longest one ends. Here:

- each distinct prompt is prefilled **once**, into a one-row scratch cache whose keys and
  values are then copied into the rows of its samples (identical prompts in the list are
  found and share it too, so ``sample(m, [p] * 20)`` is ``sample(m, [p], n=20)``);
- rows of different prompts decode side by side at their own positions (the model's
  per-row ``start_pos``), attending only over the filled part of the cache;
- a row that meets a stop token or a stop string leaves the batch at once: the last live row
  moves into its slot (one row copied per finished row, never the whole cache), and the
  freed slots take the next prompt's samples, so the batch stays full and work shrinks as
  samples finish;
- temperature / top-p mean what :func:`minillama.generate.sample_next` means, but every sample
  draws from its own random stream, a hash of ``(seed, prompt tokens, sample index, step)``.
  A sample therefore does not depend on which other prompts share its batch, on ``max_rows``
  or on the order of the prompts: up to float rounding of the logits, which can differ
  between batch shapes by a few ulps and flips a draw only when it falls that close to a
  boundary of the cumulative distribution.

``text_sampler`` is the text-in / text-out adapter with the signature of
:class:`minillama.evaluation.Generate` (plus ``n`` and ``seed``); ``batch_generator`` the
token-level, greedy one that infilling uses (stop ids EOT / EOS).
"""

from __future__ import annotations

import hashlib
import re
import struct
from typing import Callable, Sequence

import numpy as np
import torch

from .generate import truncate_at_stop
from .model import Transformer

_MASK32 = 0xFFFFFFFF
TOP_K_FIRST = 64  # nucleus looked for among the top 64 first: a full sort of the vocab costs ~10x a top-64


# --- one random stream per sample ----------------------------------------------------------

def _mul32(x: torch.Tensor, m: int) -> torch.Tensor:
    """(x * m) mod 2^32 for x < 2^32 held in int64, without overflowing int64."""
    lo = (x * (m & 0xFFFF)) & _MASK32
    hi = ((x * (m >> 16)) & 0xFFFF) << 16
    return (lo + hi) & _MASK32


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash with full avalanche (Wellons' "lowbias32")."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def uniforms(key_lo: torch.Tensor, key_hi: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """A uniform in [0, 1) per row from its 64-bit key and step: a counter-based generator, so
    a row's numbers do not depend on which rows share the batch."""
    h = _hash32(_hash32(key_lo ^ _hash32(step)) ^ key_hi)
    return (h >> 8).to(torch.float32) * 2.0 ** -24  # 24 bits: exact in float32, never 1.0


def sample_key(seed: int, prompt: Sequence[int], index: int) -> tuple[int, int]:
    """The 64-bit key of sample ``index`` of ``prompt`` under ``seed``, as two 32-bit halves."""
    h = hashlib.blake2b(struct.pack("<qq", seed, index) + np.asarray(prompt, dtype=np.int64).tobytes(),
                        digest_size=8).digest()
    key = int.from_bytes(h, "little")
    return key & _MASK32, key >> 32


def draw(logits: torch.Tensor, u: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """Next token ``[B]`` from logits ``[B, vocab]`` and one uniform per row, by inverse CDF.

    The distribution of :func:`minillama.generate.sample_next`: softmax(logits / T), cut to
    the nucleus (a token is dropped when the tokens ranked above it already hold ``top_p``).
    The nucleus is found among the top ``TOP_K_FIRST`` tokens when they hold more than
    ``top_p``; other rows sort the whole vocabulary. Tokens tied exactly at the nucleus'
    edge are all kept (sample_next keeps those its sort put first)."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    B, V = probs.shape
    out = torch.empty(B, dtype=torch.long, device=probs.device)
    rest = torch.arange(B, device=probs.device)
    if top_p < 1.0 and V > TOP_K_FIRST:
        top, idx = probs.topk(TOP_K_FIRST, dim=-1)  # sorted, descending
        cum = top.cumsum(dim=-1)
        inside = cum[:, -1] > top_p  # the nucleus ends within the top K
        if bool(inside.any()):
            kept = top[inside].masked_fill((cum - top)[inside] > top_p, 0.0)
            pick = _inverse_cdf(kept, u[inside])
            out[inside] = idx[inside].gather(-1, pick[:, None]).squeeze(-1)
        rest = rest[~inside]
    if len(rest):
        p = probs[rest]
        if top_p < 1.0:
            p = p * (p >= _nucleus_floor(p, top_p)[:, None])
        out[rest] = _inverse_cdf(p, u[rest])
    return out


def _nucleus_floor(p: torch.Tensor, top_p: float) -> torch.Tensor:
    """Per row, the smallest probability inside the nucleus. Only the sorted values are needed
    (no indices): numpy's vectorised sort is ~5x faster than torch.sort on a CPU."""
    if p.device.type == "cpu":
        vals = torch.from_numpy(np.sort(p.numpy(), axis=-1)[:, ::-1].copy())
    else:
        vals = p.sort(dim=-1, descending=True).values
    n_kept = ((vals.cumsum(dim=-1) - vals) <= top_p).sum(dim=-1)  # a prefix: the rule of sample_next
    return vals.gather(-1, (n_kept - 1).clamp(min=0)[:, None]).squeeze(-1)


def _inverse_cdf(p: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Index ``i`` with cdf[i-1] <= u * total < cdf[i]: never a zero-probability index."""
    cdf = p.cumsum(dim=-1)
    i = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True).squeeze(-1)
    last = (p > 0).long().cumsum(-1).argmax(-1)  # the last kept index, for u * total rounding up
    return torch.minimum(i, last)


# --- the sampler ---------------------------------------------------------------------------

@torch.no_grad()  # no inference_mode: the model's RoPE tables, cached here, are reused in training
def sample(model: Transformer, prompts: Sequence[Sequence[int]], n: int = 1, max_new_tokens: int = 128,
           temperature: float = 0.0, top_p: float = 1.0, stop_ids: Sequence[int] = (),
           should_stop: Callable[[int, list[int]], bool] | None = None, seed: int | None = None,
           max_rows: int = 128, keep_stop_id: bool = False, offset: int = 0) -> list[list[int]]:
    """``n`` continuations of each prompt: ``out[i * n + j]`` is sample ``offset + j`` of
    ``prompts[i]`` (new tokens only). Stops as :func:`minillama.generate.generate`: at a token
    in ``stop_ids`` (returned only with ``keep_stop_id``), when ``should_stop(row, new_tokens)``
    says so (``row`` indexes ``out``; the tokens so far are kept), or after ``max_new_tokens``.

    At most ``max_rows`` samples decode at once (the KV cache holds that many rows).
    ``seed=None`` draws one from torch's global generator (so ``torch.manual_seed`` fixes it).
    With a fixed seed, a caller that splits a prompt's samples over several calls passes
    ``offset`` so that the calls draw different samples.
    """
    if n < 1 or max_rows < 1 or max_new_tokens < 0:
        raise ValueError(f"need n >= 1, max_rows >= 1 and max_new_tokens >= 0 (got {n}, {max_rows}, "
                         f"{max_new_tokens})")
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token (start it with BOS)")
    vocab = model.cfg.vocab_size
    if any(t < 0 or t >= vocab for p in prompts for t in p):
        raise ValueError(f"prompt token ids must lie in [0, {vocab}); does the tokenizer match the model?")
    if seed is None:
        seed = int(torch.randint(0, 2 ** 62, (1,)))
    outs: list[list[int]] = [[] for _ in range(len(prompts) * n)]
    if max_new_tokens == 0:
        return outs
    # identical prompts share one prefill: the k-th copy of a prompt owns its samples k*n .. k*n+n-1
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(tuple(int(t) for t in p), []).append(i)
    queue = [(p, [(i * n + j, offset + k * n + j) for k, i in enumerate(copies) for j in range(n)])
             for p, copies in groups.items()]  # (prompt, [(index into out, sample index)])
    batch = _Batch(model, min(max_rows, len(outs)), max(len(p) for p in groups) + max_new_tokens,
                   max_new_tokens, temperature, top_p, set(stop_ids), should_stop, seed, keep_stop_id, outs)
    return batch.run(queue)


class _Batch:
    """The live rows of :func:`sample`. They are always slots ``0 .. R-1`` of the cache, so
    every decoding step works on a plain prefix of it."""

    def __init__(self, model, max_rows, max_len, max_new_tokens, temperature, top_p, stop_ids,
                 should_stop, seed, keep_stop_id, outs):
        self.model, self.C = model, max_rows
        self.max_new, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        self.stop_ids, self.should_stop, self.seed, self.keep_stop_id = stop_ids, should_stop, seed, keep_stop_id
        self.outs = outs
        self.device = model.tok_embeddings.weight.device
        self.cache = model.new_cache(max_rows, max_len)
        self.scratch = model.new_cache(1, max_len)  # the prompt being admitted, prefilled once
        z = lambda: torch.zeros(max_rows, dtype=torch.long, device=self.device)  # noqa: E731
        # per slot: next cache position, last token, random-stream key, tokens drawn so far
        self.slot_state = [z() for _ in range(5)]
        self.pos, self.last, self.key_lo, self.key_hi, self.step = self.slot_state
        self.out_row: list[int] = []  # slot -> index into outs
        self.R = 0

    def run(self, queue):
        head, taken, first = None, 0, None  # the prompt being admitted, its samples in, its last logits
        while True:
            while self.R < self.C and (head is not None or queue):
                if head is None:
                    head, taken = queue.pop(0), 0
                    first = self._prefill(head[0])
                k = min(self.C - self.R, len(head[1]) - taken)
                self._admit(head[0], head[1][taken:taken + k], first)
                taken += k
                if taken == len(head[1]):
                    head = None
            if self.R == 0:
                return self.outs
            R = self.R
            pos = self.pos[:R]
            lo, hi = pos.aminmax()
            # rows all at one position (one prompt's samples, batch 1): the plain path, no mask
            start = int(lo) if int(lo) == int(hi) else pos
            logits = self.model(self.last[:R, None], start, self.cache)[:, -1]
            pos += 1
            self._take(logits, 0, R)

    def _prefill(self, prompt) -> torch.Tensor:
        x = torch.tensor([prompt], dtype=torch.long, device=self.device)
        return self.model(x, 0, self.scratch)[:, -1]  # [1, vocab]

    def _admit(self, prompt, rows: list[tuple[int, int]], logits):
        L, a, b = len(prompt), self.R, self.R + len(rows)
        for c_all, c1 in zip(self.cache.k + self.cache.v, self.scratch.k + self.scratch.v):
            c_all[a:b, :, :L] = c1[:, :, :L]  # broadcast: one prefill, a copy per sample
        keys = [sample_key(self.seed, prompt, j) for _, j in rows]
        self.key_lo[a:b] = torch.tensor([k[0] for k in keys], device=self.device)
        self.key_hi[a:b] = torch.tensor([k[1] for k in keys], device=self.device)
        self.pos[a:b], self.step[a:b] = L, 0
        self.out_row += [r for r, _ in rows]
        self.R = b
        self._take(logits.expand(b - a, -1), a, b)

    def _take(self, logits, a: int, b: int):
        """Draw the next token of slots ``a .. b-1``, record it, drop the rows that are done."""
        u = uniforms(self.key_lo[a:b], self.key_hi[a:b], self.step[a:b]) if self.temperature > 0 else None
        nxt = draw(logits, u, self.temperature, self.top_p)
        self.last[a:b] = nxt
        self.step[a:b] += 1
        done = []
        for s, t in zip(range(a, b), nxt.tolist()):
            row = self.out_row[s]
            out = self.outs[row]
            if t in self.stop_ids:
                if self.keep_stop_id:
                    out.append(t)
                done.append(s)
                continue
            out.append(t)
            if len(out) >= self.max_new or (self.should_stop is not None and self.should_stop(row, out)):
                done.append(s)
        if done:
            self._drop(done)

    def _drop(self, done: list[int]):
        """Remove finished slots: the last live rows move into the holes (one row copied per
        finished row; the cache is never gathered as a whole)."""
        R, gone = self.R, set(done)
        R_new = R - len(done)
        holes = [s for s in done if s < R_new]
        movers = [s for s in range(R_new, R) if s not in gone]
        if holes:
            h = torch.tensor(holes, device=self.device)
            m = torch.tensor(movers, device=self.device)
            L = int(self.pos[m].max())  # filled positions of the moving rows
            for c in self.cache.k + self.cache.v:
                c[h, :, :L] = c[m, :, :L]
            for t in self.slot_state:
                t[h] = t[m]
            for hole, mover in zip(holes, movers):
                self.out_row[hole] = self.out_row[mover]
        del self.out_row[R_new:]
        self.R = R_new


# --- stop strings, checked as the text grows -------------------------------------------------

class StopStrings:
    """``should_stop(row, new_tokens)`` for stop strings in the decoded text (and an optional
    regex), e.g. HumanEval's. Each call decodes only the tokens added since the last call of
    that row, as their piece texts, and searches only the text that could complete a match;
    a row that produced a byte or special piece falls back to decoding all its tokens with
    ``tok.decode_infilling``, whose text the pieces otherwise reproduce exactly."""

    def __init__(self, tok, stop: Sequence[str] = (), pattern: re.Pattern | None = None, lookback: int = 1):
        from .fim import piece_texts

        self.tok, self.stop, self.pattern = tok, [s for s in stop if s], pattern
        self.texts = piece_texts(tok)
        # a match may start this many characters before the new text (a regex: ``lookback``)
        self.back = max([len(s) - 1 for s in self.stop] + [lookback])
        self.state: dict[int, tuple[int, str, bool]] = {}  # row -> (tokens decoded, text, exact pieces)

    def text(self, row: int, new: Sequence[int]) -> tuple[str, int]:
        """The decoded text of ``new`` and where the part added since the last call starts."""
        seen, text, pieces = self.state.get(row, (0, "", True))
        if seen > len(new):  # a new sequence under an old row id
            seen, text, pieces = 0, "", True
        added = [self.texts[t] for t in new[seen:]]
        if pieces and None not in added:
            start, text = len(text), text + "".join(added)
        else:  # a byte piece (part of a character) or a special piece: decode it all
            start, text, pieces = 0, self.tok.decode_infilling(new), False
        self.state[row] = (len(new), text, pieces)
        return text, start

    def __call__(self, row: int, new: Sequence[int]) -> bool:
        text, start = self.text(row, new)
        start = max(0, start - self.back)
        return (any(text.find(s, start) >= 0 for s in self.stop)
                or (self.pattern is not None and self.pattern.search(text, start) is not None))


# --- adapters for the callers ------------------------------------------------------------------

def text_sampler(model: Transformer, tok, context: int | None = None, max_rows: int = 128,
                 stop_ids: Sequence[int] | None = None) -> Callable[..., list[str]]:
    """A :class:`minillama.evaluation.Generate` over :func:`sample`, a drop-in for
    :func:`minillama.model_eval.text_generator`: ``run(prompts, *, temperature, top_p,
    max_new_tokens, stop, seed=None, n=1)`` returns ``n`` texts per prompt (prompt-major),
    each cut at its first stop string. A prompt is ``[BOS] + encode(prompt)``, trimmed from
    the left to fit ``context`` tokens (the model's ``max_seq_len``) with room for the answer;
    a sample also ends at EOS / EOT (``stop_ids``)."""
    context = context or model.cfg.max_seq_len
    ends = list(stop_ids) if stop_ids is not None else [tok.eos_id, tok.eot_id]

    def run(prompts: list[str], *, temperature: float = 0.0, top_p: float = 1.0, max_new_tokens: int = 256,
            stop: Sequence[str] = (), seed: int | None = None, n: int = 1, offset: int = 0) -> list[str]:
        keep = max(1, context - max_new_tokens - 1)
        ids = [[tok.bos_id] + tok.encode(p)[-keep:] for p in prompts]
        checker = StopStrings(tok, stop) if stop else None
        outs = sample(model, ids, n, max_new_tokens, temperature, top_p, stop_ids=ends, should_stop=checker,
                      seed=seed, max_rows=max_rows, offset=offset)
        return [truncate_at_stop(tok.decode_infilling(o), stop) for o in outs]

    return run


def batch_generator(model: Transformer, max_rows: int = 128) -> Callable[[list[list[int]], int, list[int]],
                                                                          list[list[int]]]:
    """Greedy ``run(prompt_ids, max_new_tokens, stop_ids) -> new ids`` (the stop id, when met,
    is the last one returned), the shape :func:`minillama.model_eval.infill_middles` takes."""

    def run(prompts, max_new_tokens, stop_ids):
        return sample(model, prompts, 1, max_new_tokens, stop_ids=stop_ids, max_rows=max_rows, keep_stop_id=True)

    return run
