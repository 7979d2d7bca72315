"""Key retrieval (PAPER App. G.2): find a value defined far back in a long prompt.

A long prompt of valid held-out Python has ``my_function`` returning a two-digit value
inserted at a relative position; it ends with ``assert my_function() == ``. Our tokenizer
splits digits, so an answer is two digit tokens after the prompt's trailing ``▁``. We score
log p(d₁) + log p(d₂ | d₁) for every value 10..99 (one forward of the prompt plus one batched
one-token step over the KV cache) and call a prompt solved when the right value ranks first:
the greedy answer restricted to two-digit numbers. Chance is 1/90; we also report the mean
probability of the right value, which moves before accuracy does.
"""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass
from typing import Sequence

import torch

from minillama.model import Transformer
from minillama.progress import progress
from minillama.tokenizer import check_model_tokenizer


FUNCTION_TEMPLATE = ('def my_function() -> int:\n'
                     '    """Note that this function is used at the end"""\n'
                     '    unused = "{distractor}"\n'
                     '    return {value}\n')

QUESTION = "assert my_function() == "

DISTRACTOR = "the answer is elsewhere"


def top_level_chunks(text: str) -> list[str]:
    """Cut valid Python into its top-level statements (with the comments and blank lines
    before each), so that code inserted between two chunks stays valid Python."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    lines = text.splitlines(keepends=True)
    starts = []
    for node in tree.body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        starts.append(first - 1)
    if not starts:
        return []
    starts[0] = 0
    bounds = starts + [len(lines)]
    chunks = ["".join(lines[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    # `from __future__` must open a module; once concatenated with other files it would not.
    return [c for c in chunks if not c.lstrip().startswith("from __future__")]


@dataclass
class RetrievalFiller:
    """Held-out top-level code chunks and their token counts, reused by every prompt."""
    chunks: list[str]
    n_tokens: list[int]
    overhead: int = 60  # tokens of the function, the question and the separators

    @classmethod
    def from_docs(cls, docs, tokenizer) -> "RetrievalFiller":
        chunks = []
        for d in sorted(docs, key=lambda d: d.path):
            for c in top_level_chunks(d.text):
                chunks.append(c if c.endswith("\n") else c + "\n")
        if not chunks:
            raise ValueError("no parseable held-out Python to build retrieval prompts from")
        extra = "\n\n" + FUNCTION_TEMPLATE.format(value=42, distractor=DISTRACTOR) + "\n\n\n" + QUESTION
        counts = tokenizer.encode_batch(chunks + [extra])
        return cls(chunks, [len(t) for t in counts[:-1]], overhead=len(counts[-1]) + 4)


@dataclass
class RetrievalPrompt:
    text: str
    value: int
    position: float  # requested relative position
    inserted_at: int  # character offset of the function
    n_tokens: int  # approximate prompt length (sum of chunk token counts)


def retrieval_prompt(filler: RetrievalFiller, n_tokens: int, position: float, value: int,
                     start_chunk: int = 0, distractor: str = DISTRACTOR) -> RetrievalPrompt:
    """A prompt of about ``n_tokens`` tokens of held-out code with ``my_function`` returning
    ``value`` inserted at relative ``position`` (0 = first, 1 = just before the question),
    ending with ``assert my_function() == ``."""
    if not 10 <= value <= 99:
        raise ValueError(f"value must be a two-digit number, got {value}")
    if not 0.0 <= position <= 1.0:
        raise ValueError(f"position must lie in [0, 1], got {position}")
    function = FUNCTION_TEMPLATE.format(value=value, distractor=distractor)
    budget = n_tokens - filler.overhead
    # Whole top-level chunks in file order from start_chunk; one that would overflow the
    # budget is skipped (statements are independent at top level, so the code stays valid).
    picked, total, i = [], 0, start_chunk % len(filler.chunks)
    for _ in range(len(filler.chunks)):
        if filler.n_tokens[i] <= budget - total:
            picked.append(i)
            total += filler.n_tokens[i]
        if total >= 0.97 * budget:
            break
        i = (i + 1) % len(filler.chunks)
    # insert between chunks, at the boundary whose token offset is closest to position × total
    offsets = [0]
    for j in picked:
        offsets.append(offsets[-1] + filler.n_tokens[j])
    k = min(range(len(offsets)), key=lambda b: abs(offsets[b] - position * total))
    before = "".join(filler.chunks[j] for j in picked[:k])
    after = "".join(filler.chunks[j] for j in picked[k:])
    sep = "\n\n" if before else ""
    text = before + sep + function + "\n\n" + after + "\n" + QUESTION
    return RetrievalPrompt(text, value, position, len(before) + len(sep), total + filler.overhead)


@torch.no_grad()
def score_two_digit(model: Transformer, tokenizer, prompt: str) -> torch.Tensor:
    """Log-probabilities ``[90]`` of the answers 10..99 after ``prompt``.

    The prompt ends in a space, which our tokenizer encodes as a final ``▁`` piece followed by
    one token per digit, exactly as in ``prompt + "42"``.
    """
    check_model_tokenizer(model, tokenizer)
    ids = tokenizer.encode(prompt, bos=True)
    digit = [tokenizer.piece_to_id(str(d)) for d in range(10)]
    probe = tokenizer.encode(prompt + "42", bos=True)
    if probe != ids + [digit[4], digit[2]]:
        raise ValueError("the tokenizer does not encode '<prompt>42' as the prompt plus two digit tokens; "
                         "two-digit scoring needs split digits (SentencePiece split_digits=True)")
    T = len(ids)
    device = model.tok_embeddings.weight.device
    cache = model.new_cache(1, T)
    first = torch.log_softmax(model(torch.tensor([ids], device=device), 0, cache)[0, -1].float(), -1)
    # the nine first digits 1..9 as one batch of one-token steps, each row over a copy of the prompt's cache
    batch = model.new_cache(9, T + 1)
    for layer in range(model.cfg.n_layers):
        batch.k[layer][:, :, :T] = cache.k[layer]
        batch.v[layer][:, :, :T] = cache.v[layer]
    steps = torch.tensor([[digit[d1]] for d1 in range(1, 10)], device=device)
    second = torch.log_softmax(model(steps, T, batch)[:, -1].float(), -1)  # (9, vocab)
    scores = first[[digit[d1] for d1 in range(1, 10)]][:, None] + second[:, digit]  # (9, 10)
    return scores.flatten().cpu()  # index v - 10 for value v


def retrieval_trial(model: Transformer, tokenizer, filler: RetrievalFiller, n_tokens: int, position: float,
                    rng: random.Random) -> tuple[RetrievalPrompt, torch.Tensor]:
    """One prompt drawn with ``rng`` (its value, then the chunk its filler starts at) and the
    probabilities ``[90]`` of the answers 10..99, normalised over them (index v - 10 for value v)."""
    value = rng.randint(10, 99)
    start = rng.randrange(len(filler.chunks))
    prompt = retrieval_prompt(filler, n_tokens, position, value, start_chunk=start)
    return prompt, torch.softmax(score_two_digit(model, tokenizer, prompt.text), 0)


def prompt_counts(settings, lengths: Sequence[int]) -> dict[int, int]:
    """Prompts per (length, position) for each length: ``settings.retrieval_prompts``, and
    ``settings.retrieval_prompts_longest`` (when set) at the longest length."""
    longest = getattr(settings, "retrieval_prompts_longest", None)
    return {T: longest if longest and T == max(lengths) else settings.retrieval_prompts for T in lengths}


def key_retrieval(model: Transformer, tokenizer, filler: RetrievalFiller, lengths: Sequence[int],
                  positions: Sequence[float], n_prompts: int | dict[int, int], seed: int = 0,
                  desc: str = "key retrieval", show_progress: bool = True) -> dict:
    """Accuracy and mean p(right value) per (length, position); same prompts for every model.
    ``n_prompts``: per (length, position), one number or one per length (:func:`prompt_counts`)."""
    counts = n_prompts if isinstance(n_prompts, dict) else {T: n_prompts for T in lengths}
    rng = random.Random(seed)
    acc, prob = {}, {}
    bar = progress(total=sum(counts[T] for T in lengths) * len(positions), desc=desc, enabled=show_progress,
                   unit="prompt")
    for T in lengths:
        n_prompts = counts[T]
        for pos in positions:
            hits, ps = 0, 0.0
            for k in range(n_prompts):
                p, probs = retrieval_trial(model, tokenizer, filler, T, pos, rng)
                hits += int(probs.argmax()) == p.value - 10
                ps += probs[p.value - 10].item()
                bar.update(1)
            acc[(T, pos)] = hits / n_prompts
            prob[(T, pos)] = ps / n_prompts
    bar.close()
    return {"accuracy": acc, "p_correct": prob}


def retrieval_summary(result: dict) -> dict[str, float]:
    """Mean accuracy and mean p(right value) of one method over all (length, position) cells."""
    acc, prob = result["accuracy"], result["p_correct"]
    return {"accuracy": sum(acc.values()) / len(acc), "p_correct": sum(prob.values()) / len(prob)}


def format_retrieval_table(retrieval: dict[str, dict]) -> str:
    lines = [f"{'method':<18}{'accuracy':>10}{'p(right)':>10}   (chance {1 / 90:.3f})"]
    for key, res in retrieval.items():
        s = retrieval_summary(res)
        lines.append(f"{key:<18}{s['accuracy']:>10.3f}{s['p_correct']:>10.4f}")
    return "\n".join(lines)
