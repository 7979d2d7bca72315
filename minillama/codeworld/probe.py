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
def _repeated_random(tok, n: int, length: int, seed: int, pool=None) -> tuple[torch.Tensor, int]:
    """``n`` rows of ``[BOS] R R``: ``R`` is ``length`` random ordinary ids (from ``pool`` when given;
    never special or byte pieces), drawn with ``seed``; and how many ids it drew from."""
    special = set(tok.special_ids) | {tok.sp.unk_id()}
    ordinary = torch.tensor([i for i in (range(tok.vocab_size) if pool is None else pool)
                             if i not in special and not tok.sp.is_byte(i)])
    g = torch.Generator().manual_seed(seed)
    r = ordinary[torch.randint(len(ordinary), (n, length), generator=g)]
    return torch.cat([torch.full((n, 1), tok.bos_id), r, r], dim=1), len(ordinary)


def copying_probe(model, tok, n: int = 32, length: int = 48, seed: int = 0, pool=None) -> dict:
    """Mean loss on the first and second copy of ``n`` random sequences of ``length`` tokens
    (the first token of each copy excluded: nothing predicts it). ``pool``: the token ids to
    draw from (default: every ordinary id). Ids the model has hardly seen have a loss above
    uniform whatever it does, so a pool of frequent ids (:func:`frequent_ids`) isolates copying
    from rare-token calibration."""
    was_training = model.training
    model.eval()
    device = model.tok_embeddings.weight.device
    x, n_ordinary = _repeated_random(tok, n, length, seed, pool)
    x = x.to(device)
    logits = model(x[:, :-1]).float()
    nll = F.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten(), reduction="none").view(n, -1)
    # targets: position t predicts x[t + 1]; first copy is x[1 .. L], second x[L+1 .. 2L]
    first = nll[:, 1:length].mean().item()  # x[2..L]
    second = nll[:, length + 1:2 * length].mean().item()  # x[L+2..2L]
    model.train(was_training)
    return {"first": first, "second": second, "ratio": second / first, "uniform": math.log(n_ordinary)}


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


def _token_ends(tok, ids: list[int]) -> list[int]:
    """Character offset where each token of ``ids`` (no BOS) ends in ``tok.decode(ids)``."""
    return [len(tok.decode(ids[:k + 1])) for k in range(len(ids))]


def _occurrences(text: str, name: str, start: int = 0) -> list[tuple[int, int]]:
    import re
    return [(m.start(), m.end()) for m in re.finditer(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])",
                                                      text[start:])]


@torch.no_grad()
def name_probe(model, tok, problems: list[dict]) -> dict:
    """Does the model copy an argument's name? For each problem (prompt + canonical body), the mean
    loss per token on the argument's uses in the body, against the loss on its first appearance in
    the signature, where nothing predicts it. With names the model has never seen
    (MiniEval's ``renamed`` tier), a model that copies predicts the later uses from the first
    (ratio ≪ 1); one that writes the names it knows does not (ratio near 1).

    Returns ``first`` / ``later`` (nats per token), ``ratio``, ``n`` (names), and ``later_first_piece``:
    the loss on the first token of each later use alone (choosing *which* name comes, where a
    model that only completes a started word gets no help)."""
    was_training = model.training
    model.eval()
    device = model.tok_embeddings.weight.device
    first, later, head = [], [], []
    for p in problems:
        arg = p["prompt"].split("(", 1)[1].split(":", 1)[0].strip()
        text = p["prompt"] + p["canonical_solution"]
        ids = tok.encode(text)
        ends = _token_ends(tok, ids)
        x = torch.tensor([[tok.bos_id] + ids], device=device)
        nll = F.cross_entropy(model(x[:, :-1])[0].float(), x[0, 1:], reduction="none").tolist()  # nll[k]: ids[k]

        def covering(a: int, b: int) -> list[int]:
            return [k for k, e in enumerate(ends) if e > a and (k == 0 or ends[k - 1] < b)]

        sig = _occurrences(text, arg)[:1]
        uses = [(a + len(p["prompt"]), b + len(p["prompt"])) for a, b in _occurrences(p["canonical_solution"], arg)]
        if not sig or not uses:
            continue
        toks = covering(*sig[0])
        first.append(sum(nll[k] for k in toks) / len(toks))
        use_toks = [covering(a, b) for a, b in uses]
        later.append(sum(nll[k] for t in use_toks for k in t) / sum(map(len, use_toks)))
        head.append(sum(nll[t[0]] for t in use_toks) / len(use_toks))
    model.train(was_training)
    mean = lambda xs: sum(xs) / max(len(xs), 1)
    return {"first": mean(first), "later": mean(later), "ratio": mean(later) / max(mean(first), 1e-9),
            "later_first_piece": mean(head), "n": len(first)}


@torch.no_grad()
def attention_patterns(model, tokens: torch.Tensor) -> list[torch.Tensor]:
    """Attention probabilities ``[B, n_heads, T, T]`` of every layer for ``tokens``, recomputed from
    each attention block's input (the forward itself uses a fused kernel that returns none)."""
    from minillama.rope import apply_rope

    captured: list[tuple] = []
    hooks = [layer.attention.register_forward_pre_hook(lambda mod, args: captured.append((mod, args[0], args[1],
                                                                                            args[2])))
             for layer in model.layers]
    try:
        model(tokens)
    finally:
        for h in hooks:
            h.remove()
    out = []
    for mod, x, cos, sin in captured:
        B, T, _ = x.shape
        q = mod.wq(x).view(B, T, mod.n_heads, mod.head_dim).transpose(1, 2)
        k = mod.wk(x).view(B, T, mod.n_kv_heads, mod.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        k = k.repeat_interleave(mod.n_heads // mod.n_kv_heads, dim=1)
        scores = (q @ k.transpose(-1, -2)).float() / math.sqrt(mod.head_dim)
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        out.append(scores.masked_fill(~mask, float("-inf")).softmax(-1))
    return out


@torch.no_grad()
def induction_scores(model, tok, n: int = 16, length: int = 48, seed: int = 0, pool=None) -> list[list[float]]:
    """Prefix-matching score of every head (Olsson et al. 2022, "In-context Learning and
    Induction Heads"): on ``[BOS] R R`` (``R`` random tokens), the mean attention a token of the
    second copy pays to the token *after* its earlier occurrence. An induction head puts most of
    its attention there (score near 1); other heads score about 1 / position. ``scores[layer][head]``."""
    was_training = model.training
    model.eval()
    device = model.tok_embeddings.weight.device
    x, n_ordinary = _repeated_random(tok, n, length, seed, pool)
    x = x.to(device)
    patterns = attention_patterns(model, x)
    model.train(was_training)
    # query at position t (second copy, t = L+1 .. 2L) attends to t - L + 1: the token after the
    # same token's first occurrence (position t - L)
    q = torch.arange(length + 2, 2 * length + 1, device=device)
    return [[float(a[:, h, q, q - length + 1].mean()) for h in range(a.shape[1])] for a in patterns]


def main(argv=None) -> int:
    """``python -m minillama.codeworld.probe RUN [RUN …]``: both probes for finished recipe runs."""
    import sys

    from minillama.training.trainer import load_model

    from .runs import cache_dir, run_tokenizer
    for name in (argv if argv is not None else sys.argv[1:]):
        run = cache_dir() / "runs" / name
        model, tok = load_model(run), run_tokenizer(run)
        lists, rand = list_copy_probe(model, tok), copying_probe(model, tok)
        print(f"{name}: world lists first {lists['first']:.3f} / second {lists['second']:.3f} nats "
              f"(ratio {lists['ratio']:.2f}, n = {lists['n']}); random ids {rand['first']:.2f} / {rand['second']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
