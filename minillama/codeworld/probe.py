"""The copying probe: has the model learned to copy (induction heads, Olsson et al. 2022)?

Feed ``[BOS] R R`` where ``R`` is a random sequence of ordinary tokens. The first copy is
unpredictable (loss near ln(vocab)); the second is predictable only by looking back and
copying. A model with induction-style heads has a much lower loss on the second copy; one
without has about the same loss on both.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


@torch.no_grad()
def copying_probe(model, tok, n: int = 32, length: int = 48, seed: int = 0, pool=None) -> dict:
    """Mean loss on the first and second copy of ``n`` random sequences of ``length`` tokens
    (the first token of each copy excluded: nothing predicts it). ``pool``: the token ids to
    draw from (default: every ordinary id). Ids the model has hardly seen have a loss above
    uniform whatever it does, so a pool of frequent ids (:func:`frequent_ids`) isolates copying
    from rare-token calibration."""
    was_training = model.training
    model.eval()
    device = model.tok_embeddings.weight.device
    special = set(tok.special_ids) | {tok.sp.unk_id()}
    ordinary = torch.tensor([i for i in (range(tok.vocab_size) if pool is None else pool)
                             if i not in special and not tok.sp.is_byte(i)])
    g = torch.Generator().manual_seed(seed)
    r = ordinary[torch.randint(len(ordinary), (n, length), generator=g)]
    x = torch.cat([torch.full((n, 1), tok.bos_id), r, r], dim=1).to(device)
    logits = model(x[:, :-1]).float()
    nll = F.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten(), reduction="none").view(n, -1)
    # targets: position t predicts x[t + 1]; first copy is x[1 .. L], second x[L+1 .. 2L]
    first = nll[:, 1:length].mean().item()  # x[2..L]
    second = nll[:, length + 1:2 * length].mean().item()  # x[L+2..2L]
    model.train(was_training)
    return {"first": first, "second": second, "ratio": second / first, "uniform": math.log(len(ordinary))}


def frequent_ids(rows, k: int = 512) -> list[int]:
    """The ``k`` most frequent token ids of training rows (an integer array)."""
    counts = torch.bincount(torch.as_tensor(rows).flatten())
    return counts.argsort(descending=True)[:k].tolist()


def _arg(prompt: str) -> str:
    return prompt.split("(", 1)[1].split(":", 1)[0]


@torch.no_grad()
def conditioning_probe(model, tok, problems: list[dict]) -> dict:
    """Does the model read the prompt? Mean loss on each canonical body after its own prompt,
    after the prompt of another problem of the same input type rewritten to use the same
    argument name (what the body should compute changes, the names do not), and after its own
    prompt with the argument renamed in the body's prompt only (the names change). The gaps
    are how much the model gets from the docstring and from the signature's names."""
    was_training = model.training
    model.eval()
    device = model.tok_embeddings.weight.device

    def body_loss(prompt: str, body: str) -> float:
        p = [tok.bos_id] + tok.encode(prompt)
        ids = [tok.bos_id] + tok.encode(prompt + body)
        x = torch.tensor([ids], device=device)
        nll = F.cross_entropy(model(x[:, :-1])[0].float(), x[0, 1:], reduction="none")
        return nll[len(p) - 1:].mean().item()

    own, swapped, renamed = [], [], []
    by_type: dict[str, list[dict]] = {}
    for p in problems:
        by_type.setdefault(p["prompt"].split(":", 2)[1].split(")")[0].split(",")[0].strip(), []).append(p)
    for group in by_type.values():
        for i, p in enumerate(group):
            if len(group) < 2:
                continue
            q = group[(i + 1) % len(group)]
            a, b = _arg(p["prompt"]), _arg(q["prompt"])
            other = q["prompt"].replace(b, a) if b not in a else None
            own.append(body_loss(p["prompt"], p["canonical_solution"]))
            if other is not None and a not in ("s", "n", "x"):
                swapped.append((own[-1], body_loss(other, p["canonical_solution"])))
                renamed.append((own[-1], body_loss(p["prompt"].replace(a, "zqv" + a), p["canonical_solution"])))
    model.train(was_training)
    mean = lambda xs: sum(xs) / max(len(xs), 1)
    return {"own": mean(own), "n": len(own),
            "docstring_gain": mean([b - a for a, b in swapped]), "name_gain": mean([b - a for a, b in renamed]),
            "pairs": len(swapped)}
