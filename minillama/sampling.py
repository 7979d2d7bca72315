"""Many samples per prompt, the pass@k workload: prefill once, share the cache, drop finished rows.

pass@k draws n samples per problem (n = 20 for the course's curves, 10 solutions per question
in self-instruct) and cuts each at a stop sequence. :func:`minillama.generate.generate` (and
transformers' ``generate`` with ``num_return_sequences``) treat that as n independent prompts:
the prompt is prefilled n times and a finished row keeps its place in the batch until the
longest one ends. Here:

- each distinct prompt is prefilled **once** (identical prompts in the list are found and
  share it too, so ``sample(m, [p] * 20)`` is ``sample(m, [p], n=20)``). Its keys and values
  are stored once for all of its samples (:class:`PromptCache`): the samples' queries meet
  them in one matrix product per prompt, so a decoding step reads each prompt's cache once,
  not once per sample ("shared-prefix" attention). With one sample per prompt (infilling,
  batch 1) the plain layout is used, the prompt copied into the sample's row
  (:class:`CopiedCache`);
- rows of different prompts decode side by side at their own positions (the model's
  per-row ``start_pos``), attending only over the filled part of the cache;
- a row that meets a stop token or a stop string leaves the batch at once: the last live row
  moves into its place (one row copied per finished row, never the whole cache), and the
  freed rows take the next prompt's samples, so the batch stays full and work shrinks as
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
from collections import deque
from typing import Callable, Sequence

import numpy as np
import torch

from minillama.generate import check_decoding, truncate_at_stop, word_start_variants
from minillama.model import KVCache, Transformer
from minillama.tokenizer import check_model_tokenizer
from minillama.progress import progress as progress_bar

_MASK32 = 0xFFFFFFFF
TOP_K_FIRST = 64  # the nucleus is looked for among the top 64 first: ~1/10 the cost of sorting 4,096 logits


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
           max_rows: int = 128, keep_stop_id: bool = False, offset: int = 0,
           progress: bool | str = False) -> list[list[int]]:
    """``n`` continuations of each prompt: ``out[i * n + j]`` is sample ``offset + j`` of
    ``prompts[i]`` (new tokens only). Stops as :func:`minillama.generate.generate`: at a token
    in ``stop_ids`` (returned only with ``keep_stop_id``), when ``should_stop(row, new_tokens)``
    says so (``row`` indexes ``out``; the tokens so far are kept), or after ``max_new_tokens``.

    At most ``max_rows`` samples decode at once (the KV cache holds that many rows).
    ``seed=None`` draws one from torch's global generator (so ``torch.manual_seed`` fixes it).
    With a fixed seed, a caller that splits a prompt's samples over several calls passes
    ``offset`` so that the calls draw different samples. ``progress`` (True or a label) shows
    a bar of finished samples (stderr in a terminal, a widget in a notebook).
    """
    if n < 1 or max_rows < 1:
        raise ValueError(f"need n >= 1 and max_rows >= 1 (got {n}, {max_rows})")
    check_decoding(model, prompts, max_new_tokens, temperature, top_p)
    if seed is None:
        seed = int(torch.randint(0, 2 ** 62, (1,)))
    outs: list[list[int]] = [[] for _ in range(len(prompts) * n)]
    if max_new_tokens == 0:
        return outs
    # identical prompts share one prefill: the k-th copy of a prompt owns its samples k*n .. k*n+n-1
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(tuple(int(t) for t in p), []).append(i)
    queue = deque((p, [(i * n + j, offset + k * n + j) for k, i in enumerate(copies) for j in range(n)])
                  for p, copies in groups.items())  # (prompt, [(index into out, sample index)])
    rows = min(max_rows, len(outs))
    longest = max(len(p) for p in groups)
    if any(len(r) > 1 for _, r in queue):  # several samples of a prompt: store its keys once
        cache = PromptCache(model, rows, min(rows, len(groups)), longest, max_new_tokens)
    else:
        cache = CopiedCache(model, rows, longest + max_new_tokens)
    bar = progress_bar(total=len(outs), desc=progress if isinstance(progress, str) else "sampling",
                       enabled=bool(progress), unit="sample")
    batch = _Batch(model, cache, rows, longest, max_new_tokens, temperature, top_p, set(stop_ids), should_stop,
                   seed, keep_stop_id, outs, bar)
    with bar:
        return batch.run(queue)


class _Batch:
    """The live samples of :func:`sample`. They are always rows ``0 .. R-1`` of the cache, so
    every decoding step works on a plain prefix of it."""

    def __init__(self, model, cache, max_rows, longest, max_new_tokens, temperature, top_p, stop_ids,
                 should_stop, seed, keep_stop_id, outs, bar):
        self.model, self.cache, self.C, self.bar = model, cache, max_rows, bar
        self.max_new, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        self.stop_ids, self.should_stop, self.seed, self.keep_stop_id = stop_ids, should_stop, seed, keep_stop_id
        self.outs = outs
        self.device = model.tok_embeddings.weight.device
        self.scratch = model.new_cache(1, longest)  # the prompt being admitted, prefilled once
        z = lambda: torch.zeros(max_rows, dtype=torch.long, device=self.device)  # noqa: E731
        # per row: next position, last token, random-stream key, tokens drawn so far
        self.row_state = [z() for _ in range(5)]
        self.pos, self.last, self.key_lo, self.key_hi, self.step = self.row_state
        self.out_idx: list[int] = []  # row -> index into outs
        self.R = 0

    def run(self, queue):
        head, taken, first = None, 0, None  # the prompt being admitted, its samples in, its last logits
        while True:
            while self.R < self.C and (head is not None or queue):
                if head is None:
                    head, taken = queue.popleft(), 0
                    first = self.model(torch.tensor([head[0]], device=self.device), 0, self.scratch)[:, -1]
                    self.cache.add_prompt(self.scratch, len(head[0]))
                k = min(self.C - self.R, len(head[1]) - taken)
                self._admit(head[0], head[1][taken:taken + k], first)
                taken += k
                if taken == len(head[1]):
                    head = None
                    self.cache.prompt_admitted()
            if self.R == 0:
                return self.outs
            R = self.R
            pos = self.pos[:R]
            lo, hi = pos.aminmax()
            # rows all at one position (one prompt's samples, batch 1): the plain path, no mask
            start = int(lo) if int(lo) == int(hi) else pos
            self.cache.begin_step(R)
            logits = self.model(self.last[:R, None], start, self.cache)[:, -1]
            pos += 1
            self._take(logits, 0, R)

    def _admit(self, prompt, rows: list[tuple[int, int]], logits):
        a, b = self.R, self.R + len(rows)
        self.cache.add_rows(a, b, self.scratch, len(prompt))
        keys = [sample_key(self.seed, prompt, j) for _, j in rows]
        self.key_lo[a:b] = torch.tensor([k[0] for k in keys], device=self.device)
        self.key_hi[a:b] = torch.tensor([k[1] for k in keys], device=self.device)
        self.pos[a:b], self.step[a:b] = len(prompt), 0
        self.out_idx += [i for i, _ in rows]
        self.R = b
        self._take(logits.expand(b - a, -1), a, b)

    def _take(self, logits, a: int, b: int):
        """Draw the next token of rows ``a .. b-1``, record it, drop the rows that are done."""
        u = uniforms(self.key_lo[a:b], self.key_hi[a:b], self.step[a:b]) if self.temperature > 0 else None
        nxt = draw(logits, u, self.temperature, self.top_p)
        self.last[a:b] = nxt
        self.step[a:b] += 1
        done = []
        for r, t in zip(range(a, b), nxt.tolist()):
            i = self.out_idx[r]
            out = self.outs[i]
            if t in self.stop_ids:
                if self.keep_stop_id:
                    out.append(t)
                done.append(r)
                continue
            out.append(t)
            if len(out) >= self.max_new or (self.should_stop is not None and self.should_stop(i, out)):
                done.append(r)
        if done:
            self._drop(done)

    def _drop(self, done: list[int]):
        """Remove finished rows: the last live rows move into the holes (one row copied per
        finished row; the cache is never gathered as a whole)."""
        R, gone = self.R, set(done)
        R_new = R - len(done)
        self.bar.update(len(done))
        self.cache.release(done)
        holes = [r for r in done if r < R_new]
        movers = [r for r in range(R_new, R) if r not in gone]
        if holes:
            h = torch.tensor(holes, device=self.device)
            m = torch.tensor(movers, device=self.device)
            self.cache.move_rows(h, m, int(self.pos[m].max()))
            for t in self.row_state:
                t[h] = t[m]
            for hole, mover in zip(holes, movers):
                self.out_idx[hole] = self.out_idx[mover]
        del self.out_idx[R_new:]
        self.cache.truncate(R_new)
        self.R = R_new


class CopiedCache(KVCache):
    """The model's KV cache with each sample's copy of its prompt's keys and values (the
    simple layout: for one sample per prompt, as infilling and batch-1 decoding)."""

    def __init__(self, model, rows: int, max_len: int):
        w = model.tok_embeddings.weight
        super().__init__(model.cfg, rows, max_len, device=w.device, dtype=w.dtype)

    def add_prompt(self, scratch, L):
        pass  # copied per row in add_rows

    def prompt_admitted(self):
        pass

    def add_rows(self, a, b, scratch, L):
        for c, c1 in zip(self.k + self.v, scratch.k + scratch.v):
            c[a:b, :, :L] = c1[:, :, :L]  # broadcast over the rows

    def begin_step(self, R):
        pass

    def release(self, rows):
        pass

    def move_rows(self, holes, movers, filled: int):
        for c in self.k + self.v:
            c[holes, :, :filled] = c[movers, :, :filled]

    def truncate(self, R):
        pass


class PromptCache:
    """Keys and values of a prompt stored once, however many of its samples decode; each
    sample keeps only its own (generated) keys and values. The model hands attention to it
    (:meth:`attend`): the queries of all samples of a prompt meet the prompt's keys in one
    matrix product (a prompt-sized read instead of one per sample: the "shared prefix" or
    cascade attention of serving engines), then each row's own keys; one softmax over both.

    Rows are the rows of the batch; a prompt lives in a prompt slot ``p``, and a row that
    samples it has an index ``j`` among that slot's rows, so that the queries of slot ``p``
    form the block ``[p, 0 .. J-1]`` of a padded ``[P, J]`` layout."""

    def __init__(self, model, rows: int, prompts: int, prompt_len: int, new_len: int):
        cfg, w = model.cfg, model.tok_embeddings.weight
        kv = lambda n, L: [torch.zeros(n, cfg.n_kv_heads, L, cfg.head_dim, device=w.device, dtype=w.dtype)  # noqa
                           for _ in range(cfg.n_layers)]
        self.kp, self.vp = kv(prompts, prompt_len), kv(prompts, prompt_len)  # per prompt slot
        self.k, self.v = kv(rows, new_len), kv(rows, new_len)  # per row: the sample's own tokens
        self.rep, self.scale = cfg.n_heads // cfg.n_kv_heads, cfg.head_dim ** -0.5
        z = lambda n: torch.zeros(n, dtype=torch.long, device=w.device)  # noqa: E731
        self.prompt_len = z(prompts)
        self.slot, self.j, self.own = z(rows), z(rows), z(rows)  # per row: prompt slot, index in it, own keys
        self.free = list(range(prompts))[::-1]  # free prompt slots, lowest last
        self.members: dict[int, set[int]] = {}  # prompt slot -> indices j in use
        self.open = None  # the slot whose prompt is still being admitted
        self.row_slot: list[int] = []  # row -> prompt slot (Python copies of slot, j)
        self.row_j: list[int] = []

    # --- bookkeeping, called by the sampler --------------------------------------------------
    def add_prompt(self, scratch, L):
        p = self.free.pop()
        for c, c1 in zip(self.kp + self.vp, scratch.k + scratch.v):
            c[p, :, :L] = c1[0, :, :L]  # the only copy of the prompt's keys and values
        self.prompt_len[p], self.members[p], self.open = L, set(), p

    def prompt_admitted(self):
        p, self.open = self.open, None
        if not self.members[p]:  # all its samples already ended with their first token
            self.free.append(p)

    def add_rows(self, a, b, scratch, L):
        p, used = self.open, self.members[self.open]
        js = [j for j in range(len(used) + b - a) if j not in used][: b - a]
        used.update(js)
        self.slot[a:b], self.j[a:b], self.own[a:b] = p, torch.tensor(js, device=self.slot.device), 0
        self.row_slot += [p] * (b - a)
        self.row_j += js

    def release(self, rows):
        for r in rows:
            p = self.row_slot[r]
            self.members[p].discard(self.row_j[r])
            if not self.members[p] and p != self.open:
                self.free.append(p)

    def move_rows(self, holes, movers, filled: int):
        n = int(self.own[movers].max())
        for c in self.k + self.v:
            c[holes, :, :n] = c[movers, :, :n]
        for t in (self.slot, self.j, self.own):
            t[holes] = t[movers]
        for hole, mover in zip(holes.tolist(), movers.tolist()):
            self.row_slot[hole], self.row_j[hole] = self.row_slot[mover], self.row_j[mover]

    def truncate(self, R):
        del self.row_slot[R:], self.row_j[R:]

    def begin_step(self, R):
        """Indices and the additive mask of this step, shared by every layer."""
        slot, j, own = self.slot[:R], self.j[:R], self.own[:R].clone()
        self.write = own  # this step writes each row's new key after the ones it has
        self.own[:R] += 1
        self.P, self.J = int(slot.max()) + 1, int(j.max()) + 1
        plen = self.prompt_len[slot]
        self.Lp, self.Ls = int(plen.max()), int(own.max()) + 1
        self.flat = slot * self.J + j  # a row's place in the padded [P, J] layout
        dev = slot.device
        self.rows = torch.arange(R, device=dev)
        visible = torch.cat([torch.arange(self.Lp, device=dev) < plen[:, None],
                             torch.arange(self.Ls, device=dev) <= own[:, None]], dim=-1)
        self.bias = torch.zeros(visible.shape, device=dev, dtype=self.k[0].dtype).masked_fill(~visible, -torch.inf)
        self.bias = self.bias[:, None, None, :]  # (R, 1, 1, Lp + Ls)

    # --- attention, called by the model --------------------------------------------------------
    def attend(self, layer: int, q, k, v):
        """Attention output ``(R, n_heads, 1, hd)`` for one new token per row (q, k, v after RoPE)."""
        if q.shape[2] != 1:
            raise ValueError("PromptCache decodes one token per row; prefill with a KVCache")
        R, P, J, Lp, Ls, rep = q.shape[0], self.P, self.J, self.Lp, self.Ls, self.rep
        nkv, hd = k.shape[1], k.shape[-1]
        self.k[layer][self.rows, :, self.write] = k[:, :, 0]
        self.v[layer][self.rows, :, self.write] = v[:, :, 0]
        q = q.view(R, nkv, rep, hd)  # query heads grouped by their kv head (GQA)

        def to_prompts(x):  # (R, nkv, rep, X) -> (P, nkv, J*rep, X), zeros where no row
            pad = x.new_zeros(P * J, *x.shape[1:])
            pad[self.flat] = x
            return pad.view(P, J, nkv, rep, -1).transpose(1, 2).reshape(P, nkv, J * rep, -1)

        def to_rows(x):  # (P, nkv, J*rep, X) -> (R, nkv, rep, X)
            return x.view(P, nkv, J, rep, -1).transpose(1, 2).reshape(P * J, nkv, rep, -1)[self.flat]

        scores = torch.cat([to_rows(to_prompts(q) @ self.kp[layer][:P, :, :Lp].transpose(-1, -2)),
                            q @ self.k[layer][:R, :, :Ls].transpose(-1, -2)], dim=-1)  # (R, nkv, rep, Lp+Ls)
        w = torch.softmax(scores * self.scale + self.bias, dim=-1)
        y = to_rows(to_prompts(w[..., :Lp]) @ self.vp[layer][:P, :, :Lp]) + w[..., Lp:] @ self.v[layer][:R, :, :Ls]
        return y.view(R, nkv * rep, 1, hd)


# --- stop strings, checked as the text grows -------------------------------------------------

class StopStrings:
    """``should_stop(row, new_tokens)`` for stop strings in the decoded text (and their
    word-start variants, :func:`minillama.generate.word_start_variants`; and an optional
    regex), e.g. HumanEval's. Each call decodes only the tokens added since the last call of
    that row, as their piece texts, and searches only the text that could complete a match;
    a row that produced a byte or special piece falls back to decoding all its tokens with
    ``tok.decode_infilling``, whose text the pieces otherwise reproduce exactly."""

    def __init__(self, tok, stop: Sequence[str] = (), pattern: re.Pattern | None = None, lookback: int = 1):
        from minillama.healing import piece_texts

        self.tok, self.stop, self.pattern = tok, word_start_variants(s for s in stop if s), pattern
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
    :func:`minillama.evaluation.course_models.text_generator`: ``run(prompts, *, temperature, top_p,
    max_new_tokens, stop, seed=None, n=1)`` returns ``n`` texts per prompt (prompt-major),
    each cut at its first stop string. A prompt is ``[BOS] + encode(prompt)``, trimmed from
    the left to fit ``context`` tokens (the model's ``max_seq_len``) with room for the answer;
    a sample also ends at EOS / EOT (``stop_ids``)."""
    check_model_tokenizer(model, tok)
    context = context or model.cfg.max_seq_len
    ends = list(stop_ids) if stop_ids is not None else [tok.eos_id, tok.eot_id]

    def run(prompts: list[str], *, temperature: float = 0.0, top_p: float = 1.0, max_new_tokens: int = 256,
            stop: Sequence[str] = (), seed: int | None = None, n: int = 1, offset: int = 0,
            progress: bool | str = False) -> list[str]:
        keep = max(1, context - max_new_tokens - 1)
        ids = [[tok.bos_id] + tok.encode(p)[-keep:] for p in prompts]
        checker = StopStrings(tok, stop) if stop else None
        outs = sample(model, ids, n, max_new_tokens, temperature, top_p, stop_ids=ends, should_stop=checker,
                      seed=seed, max_rows=max_rows, offset=offset, progress=progress)
        return [truncate_at_stop(tok.decode_infilling(o), stop) for o in outs]

    return run


def batch_generator(model: Transformer, max_rows: int = 128) -> Callable[[list[list[int]], int, list[int]],
                                                                          list[list[int]]]:
    """Greedy ``run(prompt_ids, max_new_tokens, stop_ids) -> new ids`` (the stop id, when met,
    is the last one returned), the shape :func:`minillama.model_eval.infill_middles` takes."""

    def run(prompts, max_new_tokens, stop_ids):
        return sample(model, prompts, 1, max_new_tokens, stop_ids=stop_ids, max_rows=max_rows, keep_stop_id=True)

    return run
