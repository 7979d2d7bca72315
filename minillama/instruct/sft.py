"""Supervised fine-tuning in the chat format ``[INST] {prompt} [/INST] {answer}``, with the loss on
answer tokens only, mixed with rehearsal rows of pretraining text (PAPER §2.5)."""

from __future__ import annotations

import random
from typing import Sequence

import torch
import torch.nn.functional as F

from minillama.instruct.formats import E_CODE, solution_head, solution_prompt
from minillama.instruct.pipeline import Example, _encode_plain
from minillama.training.schedule import lr_at, make_optimizer, set_lr


IGNORE_INDEX = -100  # F.cross_entropy's default ignore_index: prompt tokens carry no loss


def encode_example(tok, ex: Example, system: str | None = None) -> tuple[list[int], list[int]]:
    """Token ids and labels of one example; labels are ``IGNORE_INDEX`` on the prompt so the
    loss is on the answer only (``[PYTHON]``, the code, ``[/PYTHON]`` and EOS)."""
    prompt = tok.encode(solution_prompt(ex.question, ex.shown_test, system), bos=True)
    code = ex.code.rstrip()
    if ex.signature and code.startswith(ex.signature + "\n"):
        head, rest = solution_head(ex.signature), code[len(ex.signature) + 1:]
    else:
        head, rest = solution_head(None), code
    answer = tok.encode(head) + _encode_plain(tok, f"{rest}\n{E_CODE}") + [tok.eos_id]
    return prompt + answer, [IGNORE_INDEX] * len(prompt) + answer


def rehearsal_chunks(tok, texts: Sequence[str], n: int, length: int, seed: int = 0) -> list[list[int]]:
    """``n`` random windows of ``length`` tokens from pretraining texts (rehearsal rows keep
    the model's code modelling from drifting while it learns the chat format)."""
    rng = random.Random(seed)
    texts = [t for t in texts if len(t) > 8 * length] or list(texts)
    out = []
    while len(out) < n:
        t = rng.choice(texts)
        start = rng.randrange(max(1, len(t) - 6 * length))
        ids = _encode_plain(tok, t[start:start + 6 * length])[:length]
        if len(ids) >= length // 2:
            out.append(ids)
    return out


def finetune(model, tok, examples: Sequence[Example], *, steps: int, batch_size: int = 16, lr: float = 1e-4,
             rehearsal: Sequence[Sequence[int]] = (), rehearsal_frac: float = 0.1, max_len: int = 256,
             weight_decay: float = 0.0, warmup: int = 10, seed: int = 0, system: str | None = None,
             log_every: int = 0, encode=None) -> list[float]:
    """AdamW on answer-only loss, with a ``rehearsal_frac`` share of rows drawn from
    ``rehearsal`` (loss on all their tokens). Modifies ``model`` in place; returns the
    per-step losses. ``encode(tok, example, system)`` gives an example's ids and labels (default:
    :func:`encode_example`, the chat format). The course's schedule: linear warm-up, then cosine decay to 10 %."""
    if not examples:
        raise ValueError("no examples to fine-tune on")
    device = next(model.parameters()).device
    encoded = [(encode or encode_example)(tok, ex, system) for ex in examples]
    encoded = [(i[:max_len], l[:max_len]) for i, l in encoded]
    opt = make_optimizer(model, lr, weight_decay)
    rng = random.Random(seed)
    losses = []
    model.train()
    for step in range(steps):
        set_lr(opt, lr_at(step, steps, lr, warmup, min_ratio=0.1))
        rows = []
        for _ in range(batch_size):
            if rehearsal and rng.random() < rehearsal_frac:
                ids = list(rng.choice(rehearsal))[:max_len]
                rows.append((ids, ids))
            else:
                rows.append(rng.choice(encoded))
        T = max(len(i) for i, _ in rows)
        ids = torch.zeros(batch_size, T, dtype=torch.long)
        labels = torch.full((batch_size, T), IGNORE_INDEX, dtype=torch.long)
        for b, (i, l) in enumerate(rows):  # right padding: causal attention never looks ahead
            ids[b, :len(i)] = torch.tensor(i)
            labels[b, :len(l)] = torch.tensor(l)
        ids, labels = ids.to(device), labels.to(device)
        logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), labels[:, 1:].reshape(-1),
                               ignore_index=IGNORE_INDEX)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if log_every and (step % log_every == 0 or step == steps - 1):
            print(f"step {step:4d}  loss {loss.item():.3f}")
    model.eval()
    return losses
