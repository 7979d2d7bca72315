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


@torch.no_grad()
def list_copy_probe(model, tok, n: int = 200, seed: int = 123) -> dict:
    """Copying in the world's own surface: ``a = [items]`` then ``b = [items]`` (made-up words
    or numbers, as in the copy documents). Mean loss per token on the items of the first and of
    the second list (each list's first token excluded). A model that copies predicts the second
    list from the first; the random-id probe above asks the same of an input unlike anything
    it was trained on."""
    import random

    from .inputs import pseudo_word

    was_training = model.training
    model.eval()
    device = model.tok_embeddings.weight.device
    rng = random.Random(seed)
    first, second = [], []
    for i in range(n):
        a, b = pseudo_word(rng, (1, 2)), pseudo_word(rng, (1, 2))
        items = ([repr(pseudo_word(rng)) for _ in range(8)] if i % 2 else [str(rng.randint(0, 99)) for _ in range(10)])
        if a == b:
            continue
        listed = "[" + ", ".join(items) + "]"
        seq = tok.encode(listed)
        ids = [tok.bos_id] + tok.encode(f"{a} = {listed}\n{b} = {listed}\n")
        starts = [j for j in range(len(ids) - len(seq) + 1) if ids[j:j + len(seq)] == seq]
        if len(starts) < 2:
            continue  # the list did not tokenize the same way twice
        x = torch.tensor([ids], device=device)
        nll = F.cross_entropy(model(x[:, :-1])[0].float(), x[0, 1:], reduction="none")
        for start, out in zip(starts[:2], (first, second)):  # nll[t - 1] is the loss on ids[t]
            out.append(nll[start:start + len(seq) - 1].mean().item())
    model.train(was_training)
    return {"first": sum(first) / len(first), "second": sum(second) / len(second), "n": len(first),
            "ratio": sum(second) / sum(first)}


def main(argv=None) -> int:
    """``python -m minillama.codeworld.probe RUN [RUN …]``: both probes for finished recipe runs."""
    import sys

    from minillama.training.trainer import load_model

    from .recipe import cache_dir, run_tokenizer
    for name in (argv if argv is not None else sys.argv[1:]):
        run = cache_dir() / "runs" / name
        model, tok = load_model(run), run_tokenizer(run)
        lists, rand = list_copy_probe(model, tok), copying_probe(model, tok)
        print(f"{name}: world lists first {lists['first']:.3f} / second {lists['second']:.3f} nats "
              f"(ratio {lists['ratio']:.2f}, n = {lists['n']}); random ids {rand['first']:.2f} / {rand['second']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
