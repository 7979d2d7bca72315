"""Long-context extension: Code Llama's LCFT (θ 10⁴ → 10⁶) against its alternatives.

Code Llama fine-tunes a 4,096-token model on 16,384-token sequences with RoPE's base θ
raised from 10,000 to 1,000,000 (paper §2.4). minillama does the same at laptop scale: a
base trained at ``L`` tokens is fine-tuned at ``4L`` and evaluated up to ``16L``.

Methods (the keys every table and ``results/summary.json`` use):

=====================  ===========================================  ============
key                    RoPE at evaluation                           fine-tuned?
=====================  ===========================================  ============
``base_theta_1e4``     θ = 1e4 (the base, unchanged)                no
``no_ft_theta_1e6``    θ = 1e6                                      no
``no_ft_pi``           θ = 1e4, position interpolation ×4           no
``no_ft_yarn``         θ = 1e4, YaRN ×4                             no
``lcft_theta_1e6``     θ = 1e6 (Code Llama)                         at 4L
``lcft_theta_1e4``     θ = 1e4 (the paper's ablation)               at 4L
``pi``                 θ = 1e4, position interpolation ×4           at 4L
``yarn``               θ = 1e4, YaRN ×4                             at 4L
=====================  ===========================================  ============

Evaluation decisions, and why:

* **Held-out long documents.** Few test-split files reach ``16L`` tokens, so the files of one
  top-level package (``asyncio/…``, ``email/…``) are concatenated in path order: related code
  that refers back to itself, the nearest thing to a repository the stdlib offers.
* **Perplexity against context on fixed targets.** For each context length T we score the same
  tokens, the last L of each ``16L`` window, given the T tokens before them
  (:func:`context_sweep`): only the amount of context changes. The ``16L`` forward also gives
  the per-position loss curve. (The causal prefix trick, :func:`ppl_by_context`, is cheaper
  but scores different tokens at each T.)
* **Differences are paired.** All methods see the same windows; a difference counts only
  beyond two standard errors of the per-window difference (:func:`paired_difference`).
* **Key retrieval is scored among the 90 two-digit values.** Our tokenizer splits digits, so
  an answer is two digit tokens after the prompt's trailing ``▁``. We score log p(d₁) +
  log p(d₂ | d₁) for every value 10..99 (one forward of the prompt plus one batched one-token step
  over the KV cache) and call a prompt solved when the right value ranks first — the greedy
  answer restricted to two-digit numbers. Chance is 1/90; we also report the mean probability
  of the right value, which moves before accuracy does.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import math
import random
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from .model import Transformer
from .rope import RopeScaling

REPO_ROOT = Path(__file__).resolve().parent.parent
LONG_CONTEXT_VERSION = 1


# --------------------------------------------------------------------------------------
# Settings per profile
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LongContextSettings:
    factor: int = 4  # fine-tuning length = factor × pretraining length (paper: 4096 → 16384)
    max_multiple: int = 16  # evaluate up to this many times the pretraining length
    ft_steps: int = 20
    ft_batch_size: int = 2
    # Paper: 2e-5 after a 3e-4 pretraining peak, 1/15 of it; None keeps that ratio to the
    # profile's pretraining lr (cpu: 2e-3 -> 1.3e-4).
    ft_lr: float | None = None
    ft_warmup: int = 4
    eval_windows: int = 6  # 16L-token windows per method
    retrieval_multiples: tuple[float, ...] = (1, 4)  # prompt lengths, × pretraining length
    retrieval_positions: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    retrieval_prompts: int = 3  # prompts per (length, position); the paper uses 64
    cost_lengths: tuple[int, ...] = (256, 512, 1024, 2048, 4096, 8192, 16384)


SETTINGS = {
    "quick": LongContextSettings(ft_steps=3, ft_batch_size=1, ft_warmup=1, eval_windows=2,
                                 retrieval_multiples=(1, 2), retrieval_positions=(0.0, 0.5, 1.0),
                                 retrieval_prompts=1, cost_lengths=(128, 512, 2048)),
    "cpu": LongContextSettings(),
    "gpu": LongContextSettings(ft_steps=300, ft_batch_size=8, ft_warmup=30, eval_windows=16,
                               retrieval_multiples=(1, 4, 8, 16), retrieval_prompts=16,
                               cost_lengths=(1024, 2048, 4096, 8192, 16384, 32768)),
}


def get_settings(profile) -> LongContextSettings:
    settings = SETTINGS.get(profile.name, SETTINGS["cpu"])
    if settings.ft_lr is None:
        settings = replace(settings, ft_lr=getattr(profile, "lr", 1e-3) / 15)
    return settings


# --------------------------------------------------------------------------------------
# Methods: which RoPE rule, fine-tuned or not
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Method:
    key: str
    label: str
    theta: float
    scaling: str | None  # None, "linear" (PI) or "yarn"
    finetune: bool


METHODS: dict[str, Method] = {m.key: m for m in [
    Method("base_theta_1e4", "base, θ=1e4", 1e4, None, False),
    Method("no_ft_theta_1e6", "no FT, θ=1e6", 1e6, None, False),
    Method("no_ft_pi", "no FT, PI ×4", 1e4, "linear", False),
    Method("no_ft_yarn", "no FT, YaRN ×4", 1e4, "yarn", False),
    Method("lcft_theta_1e6", "LCFT θ=1e6 (Code Llama)", 1e6, None, True),
    Method("lcft_theta_1e4", "LCFT θ=1e4", 1e4, None, True),
    Method("pi", "LCFT + PI ×4", 1e4, "linear", True),
    Method("yarn", "LCFT + YaRN ×4", 1e4, "yarn", True),
]}
FINETUNED = [k for k, m in METHODS.items() if m.finetune]


def method_scaling(method: Method, pretrain_len: int, factor: float) -> RopeScaling | None:
    if method.scaling is None:
        return None
    if method.scaling == "yarn":
        return RopeScaling("yarn", factor, original_max_seq_len=pretrain_len)
    return RopeScaling(method.scaling, factor)


def with_rope(model: Transformer, theta: float | None = None, scaling: RopeScaling | None = None,
              max_seq_len: int | None = None, copy_weights: bool = True) -> Transformer:
    """The same weights under another RoPE rule (a copy unless ``copy_weights=False``).

    RoPE has no parameters: changing θ or the scaling changes only the cos/sin tables, which
    the model rebuilds from its config, so the cached tables must be dropped.
    """
    out = copy.deepcopy(model) if copy_weights else model
    out.cfg = replace(model.cfg, rope_theta=model.cfg.rope_theta if theta is None else theta,
                      rope_scaling=scaling, max_seq_len=max_seq_len or model.cfg.max_seq_len)
    out._rope_cache = None
    return out


def method_model(base: Transformer, method: Method | str, pretrain_len: int, factor: float = 4) -> Transformer:
    """The base weights under ``method``'s RoPE rule (no fine-tuning)."""
    method = METHODS[method] if isinstance(method, str) else method
    return with_rope(base, method.theta, method_scaling(method, pretrain_len, factor))


# --------------------------------------------------------------------------------------
# Fine-tuning
# --------------------------------------------------------------------------------------
def lr_at(step: int, steps: int, peak: float, warmup: int, final_ratio: float = 1 / 30) -> float:
    """Linear warm-up then cosine down to peak/30 (the paper's schedule shape)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(steps - warmup, 1)
    return peak * (final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def random_windows(stream: torch.Tensor, seq_len: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """``[batch, seq_len + 1]`` windows at random offsets of a 1-D token stream."""
    if len(stream) < seq_len + 1:
        raise ValueError(f"token stream has {len(stream)} tokens, a window needs {seq_len + 1}")
    starts = torch.randint(0, len(stream) - seq_len, (batch_size,), generator=generator)
    return torch.stack([stream[s: s + seq_len + 1] for s in starts.tolist()])


def finetune(model: Transformer, stream: torch.Tensor, seq_len: int, steps: int, batch_size: int = 2,
             lr: float = 1e-4, warmup: int = 4, weight_decay: float = 0.1, grad_clip: float = 1.0,
             seed: int = 0, log: Callable[[str], None] | None = None) -> list[float]:
    """Continue training ``model`` in place on random ``seq_len`` windows of ``stream``.

    AdamW (β 0.9/0.95, Llama 2's weight decay and clipping), warm-up + cosine. The same seed
    gives every method the same batches, so they differ only in RoPE. Returns the losses.
    """
    gen = torch.Generator().manual_seed(seed)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]  # norms: no decay
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95))
    model.train()
    losses = []
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, steps, lr, warmup)
        batch = random_windows(stream, seq_len, batch_size, gen)
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1).float(), batch[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        losses.append(loss.item())
        if log is not None:
            log(f"step {step + 1}/{steps} loss {losses[-1]:.3f}")
    model.eval()
    return losses


# --------------------------------------------------------------------------------------
# Held-out long documents and per-position losses
# --------------------------------------------------------------------------------------
def package_of(path: str) -> str:
    """Top-level package of a stdlib path; a top-level module is its own package."""
    return path.split("/", 1)[0] if "/" in path else path


def package_texts(docs) -> dict[str, str]:
    """Concatenate the files of each top-level package, in path order."""
    groups: dict[str, list] = defaultdict(list)
    for d in sorted(docs, key=lambda d: d.path):
        groups[package_of(d.path)].append(d.text)
    return {name: "\n\n".join(texts) for name, texts in groups.items()}


def long_documents(corpus, tokenizer, split: str = "test", min_tokens: int = 0) -> dict[str, torch.Tensor]:
    """Token ids (BOS first) of each package of ``split`` with at least ``min_tokens`` tokens."""
    texts = package_texts(corpus.docs(split))
    names = sorted(texts)
    ids = tokenizer.encode_batch([texts[n] for n in names], bos=True)
    return {n: torch.tensor(i, dtype=torch.long) for n, i in zip(names, ids) if len(i) >= min_tokens}


def eval_windows(docs: dict[str, torch.Tensor], seq_len: int, max_windows: int) -> torch.Tensor:
    """``[N, seq_len]`` non-overlapping windows, taken round-robin over documents so that a
    few windows still cover several packages."""
    per_doc = [[doc[i: i + seq_len] for i in range(0, len(doc) - seq_len + 1, seq_len)]
               for doc in docs.values()]
    out, k = [], 0
    while len(out) < max_windows and any(k < len(w) for w in per_doc):
        out += [w[k] for w in per_doc if k < len(w)]
        k += 1
    if not out:
        raise ValueError(f"no held-out document reaches {seq_len} tokens; use a shorter length")
    return torch.stack(out[:max_windows])


@torch.no_grad()
def token_losses(model: Transformer, windows: torch.Tensor, batch_size: int = 1) -> torch.Tensor:
    """Cross-entropy ``[N, T-1]`` of predicting token t+1 from tokens 0..t of each window.

    Batch size 1 by default: at 16L the logits alone are T × vocab floats per row.
    """
    model.eval()
    out = []
    for i in range(0, len(windows), batch_size):
        w = windows[i: i + batch_size]
        logits = model(w[:, :-1])
        out.append(F.cross_entropy(logits.float().transpose(1, 2), w[:, 1:], reduction="none"))
    return torch.cat(out)


def perplexity(model: Transformer, windows: torch.Tensor, batch_size: int = 1) -> float:
    """exp(mean next-token loss) over all positions of the windows."""
    return math.exp(token_losses(model, windows, batch_size).mean().item())


def ppl_by_context(losses: torch.Tensor, lengths: Sequence[int]) -> dict[int, float]:
    """Perplexity of T-token windows for each T, from the losses of longer windows.

    A T-token window predicts T-1 tokens; by causality they are the first T-1 losses here.
    """
    if max(lengths) > losses.shape[1] + 1:
        raise ValueError(f"losses cover windows of {losses.shape[1] + 1} tokens, asked for {max(lengths)}")
    return {T: math.exp(losses[:, : T - 1].mean().item()) for T in lengths}


@torch.no_grad()
def context_sweep(model: Transformer, windows: torch.Tensor, lengths: Sequence[int], n_targets: int,
                  full_losses: torch.Tensor | None = None) -> dict[int, torch.Tensor]:
    """Mean loss ``[N]`` per window on the same last ``n_targets`` tokens, given T tokens of
    context for each T in ``lengths``: the input is the last T+1 tokens of the window.

    The targets never change, only how much precedes them, so a falling curve means more
    context helps (the first T positions of a window would also change *which* tokens are
    scored: file headers at the start of a window are harder than code in the middle).
    ``full_losses`` (from :func:`token_losses` on the whole windows) saves the longest forward.
    """
    out = {}
    for T in lengths:
        if not n_targets <= T <= windows.shape[1] - 1:
            raise ValueError(f"context {T} must lie between n_targets={n_targets} and the window's "
                             f"{windows.shape[1] - 1} predicted tokens")
        if full_losses is not None and T == windows.shape[1] - 1:
            losses = full_losses
        else:
            losses = token_losses(model, windows[:, -(T + 1):])
        out[T] = losses[:, -n_targets:].mean(dim=1)
    return out


def sweep_ppl(sweep: dict[int, torch.Tensor]) -> dict[int, float]:
    return {T: math.exp(v.mean().item()) for T, v in sweep.items()}


def paired_difference(window_loss_a: torch.Tensor, window_loss_b: torch.Tensor) -> dict:
    """Is method A's perplexity really lower than B's? Both were scored on the same windows,
    so compare window by window: the mean and standard error of the per-window difference in
    mean loss. ``verdict`` is "lower", "higher" or "indistinguishable" (within two standard
    errors)."""
    d = window_loss_a - window_loss_b
    mean = d.mean().item()
    se = d.std().item() / math.sqrt(len(d)) if len(d) > 1 else float("inf")
    verdict = "indistinguishable" if abs(mean) <= 2 * se else ("lower" if mean < 0 else "higher")
    return {"loss_diff": mean, "se": se, "ppl_ratio": math.exp(mean), "verdict": verdict}


def position_loss(losses: torch.Tensor) -> torch.Tensor:
    """Mean loss at each position ``[T-1]`` over windows."""
    return losses.mean(dim=0)


def log_binned(curve: torch.Tensor, n_bins: int = 40) -> tuple[list[float], list[float]]:
    """Average a per-position curve over log-spaced bins (positions 1..T), for a log-x plot."""
    T = len(curve)
    edges = sorted({int(round(x)) for x in torch.logspace(0, math.log10(T), n_bins + 1).tolist()})
    xs, ys = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        xs.append(math.sqrt(a * b))
        ys.append(curve[a - 1: b - 1].mean().item())
    return xs, ys


# --------------------------------------------------------------------------------------
# Key retrieval (paper App. G.2)
# --------------------------------------------------------------------------------------
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
    ids = tokenizer.encode(prompt, bos=True)
    digit = [tokenizer.piece_to_id(str(d)) for d in range(10)]
    probe = tokenizer.encode(prompt + "42", bos=True)
    if probe != ids + [digit[4], digit[2]]:
        raise ValueError("the tokenizer does not encode '<prompt>42' as the prompt plus two digit tokens; "
                         "two-digit scoring needs split digits (SentencePiece split_digits=True)")
    T = len(ids)
    cache = model.new_cache(1, T)
    first = torch.log_softmax(model(torch.tensor([ids]), 0, cache)[0, -1].float(), -1)
    # the nine first digits 1..9 as one batch of one-token steps, each row over a copy of the prompt's cache
    batch = model.new_cache(9, T + 1)
    for layer in range(model.cfg.n_layers):
        batch.k[layer][:, :, :T] = cache.k[layer]
        batch.v[layer][:, :, :T] = cache.v[layer]
    steps = torch.tensor([[digit[d1]] for d1 in range(1, 10)])
    second = torch.log_softmax(model(steps, T, batch)[:, -1].float(), -1)  # (9, vocab)
    scores = first[[digit[d1] for d1 in range(1, 10)]][:, None] + second[:, digit]  # (9, 10)
    return scores.flatten()  # index v - 10 for value v


def key_retrieval(model: Transformer, tokenizer, filler: RetrievalFiller, lengths: Sequence[int],
                  positions: Sequence[float], n_prompts: int, seed: int = 0) -> dict:
    """Accuracy and mean p(right value) per (length, position); same prompts for every model."""
    rng = random.Random(seed)
    acc, prob = {}, {}
    for T in lengths:
        for pos in positions:
            hits, ps = 0, 0.0
            for k in range(n_prompts):
                value = rng.randint(10, 99)
                start = rng.randrange(len(filler.chunks))
                p = retrieval_prompt(filler, T, pos, value, start_chunk=start)
                logp = score_two_digit(model, tokenizer, p.text)
                probs = torch.softmax(logp, 0)  # normalised over the 90 answers
                hits += int(probs.argmax()) == value - 10
                ps += probs[value - 10].item()
            acc[(T, pos)] = hits / n_prompts
            prob[(T, pos)] = ps / n_prompts
    return {"accuracy": acc, "p_correct": prob}


# --------------------------------------------------------------------------------------
# Cost of attention: time and memory against context length
# --------------------------------------------------------------------------------------
def _proc_status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) * 1024
    return out


def peak_cpu_memory(fn: Callable[[], object]) -> int | None:
    """Extra peak resident memory (bytes) while ``fn`` runs; None where it cannot be measured.

    Linux lets a process reset its high-water mark (write 5 to /proc/self/clear_refs); large
    tensors are mmap'ed and returned on free, so the peak follows what torch really holds.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _proc_status()["VmRSS"]
        fn()
        return max(_proc_status()["VmHWM"] - before, 0)
    except (OSError, KeyError):
        return None


def attention_memory(lengths: Sequence[int], n_heads: int = 8, head_dim: int = 32,
                     naive_max: int = 4096) -> list[dict]:
    """Peak extra memory of one causal attention call: SDPA with ``is_causal`` against the
    textbook ``softmax(q kᵀ) v``, which builds the heads × T × T score matrix."""
    rows = []
    for T in lengths:
        q = torch.randn(1, n_heads, T, head_dim)
        row = {"seq_len": T, "sdpa_mib": None, "naive_mib": None,
               "scores_mib": n_heads * T * T * 4 / 2**20}
        sdpa = peak_cpu_memory(lambda: F.scaled_dot_product_attention(q, q, q, is_causal=True))
        row["sdpa_mib"] = None if sdpa is None else sdpa / 2**20
        if T <= naive_max:  # beyond this the naive version needs gigabytes

            def naive():
                mask = torch.ones(T, T, dtype=torch.bool).triu(1)
                scores = (q @ q.transpose(-1, -2) / math.sqrt(head_dim)).masked_fill(mask, float("-inf"))
                return scores.softmax(-1) @ q

            mem = peak_cpu_memory(naive)
            row["naive_mib"] = None if mem is None else mem / 2**20
        rows.append(row)
    return rows


@torch.no_grad()
def forward_cost(model: Transformer, lengths: Sequence[int], with_memory: bool = True) -> list[dict]:
    """Batch-1 forward time and extra peak memory per context length (one timed call, the
    memory of the logits, T × vocab floats, included)."""
    model.eval()
    rows = []
    for T in lengths:
        x = torch.randint(0, model.cfg.vocab_size, (1, T))
        model(x[:, :8])  # warm-up (kernels); the rope tables grow to T on the measured call
        timed = {}

        def run():
            t0 = time.perf_counter()
            model(x)
            timed["s"] = time.perf_counter() - t0

        mem = peak_cpu_memory(run) if with_memory else None
        if "s" not in timed:  # no memory measurement on this platform: just time it
            run()
        row = {"seq_len": T, "seconds": timed["s"], "tokens_per_s": T / timed["s"],
               "peak_mib": None if mem is None else mem / 2**20}
        rows.append(row)
    return rows


def naive_attention_scores_mib(cfg, T: int, dtype_bytes: int = 4) -> float:
    """Memory of one layer's explicit score matrix (heads × T × T), what SDPA never builds."""
    return cfg.n_heads * T * T * dtype_bytes / 2**20


# --------------------------------------------------------------------------------------
# Whole experiment (cached fine-tuned models)
# --------------------------------------------------------------------------------------
def artifacts_dir(profile_name: str) -> Path:
    return REPO_ROOT / "data" / "artifacts" / profile_name / "long_context"


def state_fingerprint(model: Transformer) -> str:
    h = hashlib.sha256(model.cfg.to_json().encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def train_stream(corpus, tokenizer, max_tokens: int = 2_000_000) -> torch.Tensor:
    """Train-split files, whole and BOS-separated, as one stream: long-range structure stays
    intact inside each file (the pretraining pipeline cuts files into context-sized pieces)."""
    ids = tokenizer.encode_batch(corpus.texts("train"), bos=True)
    flat = [t for doc in ids for t in doc][:max_tokens]
    return torch.tensor(flat, dtype=torch.long)


def get_finetuned(base: Transformer, key: str, stream_fn: Callable[[], torch.Tensor], pretrain_len: int,
                  settings: LongContextSettings, profile_name: str, seed: int = 0,
                  log: Callable[[str], None] | None = None) -> tuple[Transformer, dict]:
    """Fine-tune the base at ``factor × pretrain_len`` under method ``key``; cached on disk."""
    method = METHODS[key]
    ft_len = settings.factor * pretrain_len
    meta = {"version": LONG_CONTEXT_VERSION, "method": asdict(method), "base": state_fingerprint(base),
            "seq_len": ft_len, "steps": settings.ft_steps, "batch": settings.ft_batch_size,
            "lr": settings.ft_lr, "warmup": settings.ft_warmup, "seed": seed}
    tag = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:12]
    path = artifacts_dir(profile_name) / f"{key}-{tag}.pt"
    model = method_model(base, method, pretrain_len, settings.factor)
    model.cfg = replace(model.cfg, max_seq_len=max(model.cfg.max_seq_len, ft_len))
    if path.is_file():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(saved["state_dict"])
        model.eval()
        return model, {**json.loads(saved["meta"]), "cached": True}
    t0 = time.perf_counter()
    losses = finetune(model, stream_fn(), ft_len, settings.ft_steps, settings.ft_batch_size, settings.ft_lr,
                      settings.ft_warmup, seed=seed, log=log)
    meta.update(losses=losses, seconds=time.perf_counter() - t0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"state_dict": model.state_dict(), "meta": json.dumps(meta)}, tmp)
    tmp.replace(path)
    return model, {**meta, "cached": False}


def all_models(base: Transformer, stream_fn: Callable[[], torch.Tensor], pretrain_len: int,
               settings: LongContextSettings, profile_name: str,
               log: Callable[[str], None] | None = print) -> tuple[dict[str, Transformer], dict[str, dict]]:
    """Every method's model: the no-fine-tuning variants are the base under a new RoPE rule."""
    models, info = {}, {}
    stream = None

    def cached_stream():
        nonlocal stream
        if stream is None:
            stream = stream_fn()
        return stream

    for key, method in METHODS.items():
        if method.finetune:
            models[key], info[key] = get_finetuned(base, key, cached_stream, pretrain_len, settings, profile_name)
            if log:
                how = "cached" if info[key]["cached"] else f"{info[key]['seconds']:.0f}s"
                losses = info[key]["losses"]
                log(f"{key:<16} fine-tuned ({how}): loss {losses[0]:.3f} -> {losses[-1]:.3f}")
        else:
            models[key] = method_model(base, method, pretrain_len, settings.factor)
    return models, info


def format_ppl_table(ppl: dict[str, dict[int, float]], pretrain_len: int) -> str:
    lengths = sorted(next(iter(ppl.values())))
    head = f"{'method':<18}" + "".join(f"{f'{T // pretrain_len}x ({T})':>14}" if T >= pretrain_len
                                      else f"{T:>14}" for T in lengths)
    lines = [head]
    for key, row in ppl.items():
        lines.append(f"{key:<18}" + "".join(f"{row[T]:>14.2f}" for T in lengths))
    return "\n".join(lines)


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


def run_experiment(profile=None, log: Callable[[str], None] | None = print, retrieval: bool = True,
                   cost: bool = True) -> dict:
    """The whole study for a profile: fine-tune (cached), perplexity vs context, key retrieval,
    cost. Used by the CLI; the notebook runs the same steps one section at a time."""
    from .artifacts import get_pretrained
    from .data import get_corpus
    from .profiles import get_profile
    from .tokenizer import get_tokenizer

    profile = get_profile(profile) if profile is None or isinstance(profile, str) else profile
    settings = get_settings(profile)
    torch.manual_seed(0)
    corpus, tok = get_corpus(profile), get_tokenizer(profile)
    base = get_pretrained(profile, fim=True).float().eval()
    L = profile.seq_len
    models, info = all_models(base, lambda: train_stream(corpus, tok), L, settings, profile.name, log)
    T_max = settings.max_multiple * L
    windows = eval_windows(long_documents(corpus, tok, "test", T_max + 1), T_max + 1, settings.eval_windows)
    lengths = [L * m for m in (1, 2, 4, 8, 16) if m <= settings.max_multiple]
    ppl = {}
    for k, m in models.items():
        ppl[k] = sweep_ppl(context_sweep(m, windows, lengths, L, full_losses=token_losses(m, windows)))
    out = {"ppl": ppl, "lengths": lengths, "info": info, "n_windows": len(windows)}
    if log:
        log(f"perplexity of the last {L} tokens of {len(windows)} held-out windows, given T tokens of context:")
        log(format_ppl_table(ppl, L))
    if retrieval:
        filler = RetrievalFiller.from_docs(corpus.docs("test"), tok)
        r_lengths = [int(m * L) for m in settings.retrieval_multiples]
        out["retrieval"] = {k: key_retrieval(m, tok, filler, r_lengths, settings.retrieval_positions,
                                             settings.retrieval_prompts) for k, m in models.items()}
    if cost:
        out["cost"] = forward_cost(base, settings.cost_lengths)
    return out
