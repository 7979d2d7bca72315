"""Text generation with the KV cache: greedy, temperature and top-p (nucleus) sampling.

A batch of prompts of different lengths is handled as in Meta's reference code: the
prompts are right-padded into one buffer, decoding starts at the shortest prompt, and a row
that is still inside its own prompt keeps its prompt token instead of the sampled one.
Every row therefore sees exactly the positions it would see alone, with a plain causal
mask, and no padding token ever enters attention.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence

import torch

from minillama.model import Transformer


def check_decoding(model: Transformer, prompts: Sequence[Sequence[int]], max_new_tokens: int,
                   temperature: float, top_p: float) -> None:
    """Refuse bad decoding settings before any work, saying what to use instead (shared by
    :func:`generate` and :func:`minillama.sampling.sample`)."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0 (0 is greedy), got {temperature!r}")
    if not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
        raise ValueError(f"top_p must lie in (0, 1] (1 keeps every token), got {top_p!r}")
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token (start it with BOS)")
    vocab = model.cfg.vocab_size
    if any(t < 0 or t >= vocab for p in prompts for t in p):
        raise ValueError(f"prompt token ids must lie in [0, {vocab}): the tokenizer does not match the model "
                         f"(check tokenizer.check_compatible(model.cfg.vocab_size))")
    longest = max(len(p) for p in prompts)
    if longest + max_new_tokens > model.cfg.max_seq_len:
        raise ValueError(f"a prompt of {longest} tokens plus max_new_tokens={max_new_tokens} exceeds the model's "
                         f"context of {model.cfg.max_seq_len} tokens (cfg.max_seq_len); shorten the prompt or ask "
                         f"for at most {max(model.cfg.max_seq_len - longest, 0)} new tokens")


def sample_next(logits: torch.Tensor, temperature: float = 0.0, top_p: float = 1.0,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Next token ``[B]`` from logits ``[B, vocab]``. ``temperature == 0`` is greedy."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # drop a token when the tokens ranked above it already hold top_p of the mass
        drop = sorted_probs.cumsum(dim=-1) - sorted_probs > top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        choice = torch.multinomial(sorted_probs, 1, generator=generator)
        return order.gather(-1, choice).squeeze(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate(model: Transformer, prompts: Sequence[Sequence[int]], max_new_tokens: int,
             temperature: float = 0.0, top_p: float = 1.0, stop_ids: Sequence[int] = (),
             seed: int | None = None,
             should_stop: Callable[[int, list[int]], bool] | None = None) -> list[list[int]]:
    """Continue each prompt by up to ``max_new_tokens`` tokens; returns the new tokens only.

    A row stops at the first token in ``stop_ids`` (not included in its output) or when
    ``should_stop(row, new_tokens)`` returns True (e.g. a stop string appeared; checked
    after each token, the tokens so far are kept).
    """
    check_decoding(model, prompts, max_new_tokens, temperature, top_p)
    device = model.tok_embeddings.weight.device
    B, lens = len(prompts), [len(p) for p in prompts]
    total = max(lens) + max_new_tokens
    tokens = torch.zeros(B, total, dtype=torch.long, device=device)
    in_prompt = torch.zeros(B, total, dtype=torch.bool, device=device)
    for b, p in enumerate(prompts):
        tokens[b, : len(p)] = torch.tensor(list(p), dtype=torch.long, device=device)
        in_prompt[b, : len(p)] = True
    generator = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    stops = torch.tensor(sorted(set(stop_ids)), dtype=torch.long, device=device)
    cache = model.new_cache(B, total)
    done = torch.zeros(B, dtype=torch.bool, device=device)
    n_new = [0] * B  # tokens generated so far per row (stop token excluded)

    prev = 0
    for cur in range(min(lens), total):
        logits = model(tokens[:, prev:cur], prev, cache)[:, -1]
        nxt = sample_next(logits, temperature, top_p, generator)
        generated = ~in_prompt[:, cur] & ~done
        nxt = torch.where(in_prompt[:, cur], tokens[:, cur], nxt)
        tokens[:, cur] = nxt
        hit_stop = generated & torch.isin(nxt, stops) if len(stops) else torch.zeros_like(generated)
        for b in torch.nonzero(generated & ~hit_stop).flatten().tolist():
            n_new[b] += 1
            if should_stop is not None and should_stop(b, tokens[b, lens[b]: lens[b] + n_new[b]].tolist()):
                done[b] = True
        done |= hit_stop
        for b in range(B):  # a row whose budget is used up is finished too
            if n_new[b] >= max_new_tokens:
                done[b] = True
        prev = cur
        if bool(done.all()):
            break
    return [tokens[b, lens[b]: lens[b] + n_new[b]].tolist() for b in range(B)]


def word_start_variants(stop: Iterable[str]) -> list[str]:
    r"""``stop`` plus, for each stop string that starts with a newline, the same string with
    one space after the newline (``"\ndef "`` -> ``"\n def "``).

    A SentencePiece tokenizer with a word-start piece (``▁def``) can write a new top-level
    ``def`` as ``"\n"`` + ``"▁def"``, which decodes as ``"\n def"``: HumanEval's stop
    strings miss it, the completion runs on into a second, mis-indented function and the
    program fails to compile. No valid 4-space-indented Python has a line that starts with
    exactly one space followed by one of these words, so the variants cut nothing else."""
    out = list(stop)
    for s in list(out):
        if s.startswith("\n") and s[1:2] not in (" ", "\t", "\n", ""):
            v = "\n " + s[1:]
            if v not in out:
                out.append(v)
    return out


def truncate_at_stop(text: str, stop: Iterable[str]) -> str:
    """Cut ``text`` at the earliest occurrence of any stop string or of its word-start
    variant (:func:`word_start_variants`)."""
    cut = min((i for s in word_start_variants(stop) if (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]


def completion_fn(model: Transformer, tokenizer, bos: bool = True) -> Callable[..., list[str]]:
    """Adapter ``generate(prompts: list[str], *, temperature, top_p, max_new_tokens, stop) -> list[str]``
    used by the evaluation code: text in, text out, stop strings (and their word-start variants)
    honoured during decoding."""

    def run(prompts: list[str], *, temperature: float = 0.0, top_p: float = 1.0, max_new_tokens: int = 256,
            stop: Sequence[str] = (), seed: int | None = None) -> list[str]:
        ids = [tokenizer.encode(p, bos=bos) for p in prompts]

        def decode(new_tokens):
            # a continuation can start with "▁" pieces (a space, indentation) that a plain
            # SentencePiece decode would strip as the sentence's dummy prefix
            return tokenizer.decode_infilling(new_tokens)

        stops = word_start_variants(stop)

        def should_stop(_, new_tokens):
            text = decode(new_tokens)
            return any(s in text for s in stops)

        outs = generate(model, ids, max_new_tokens, temperature, top_p, stop_ids=[tokenizer.eos_id],
                        seed=seed, should_stop=should_stop if stop else None)
        return [truncate_at_stop(decode(o), stop) for o in outs]

    return run
