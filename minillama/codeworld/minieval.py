"""MiniEval: held-out problems of the code world in HumanEval's format, in three tiers.

* ``instances``: behaviours of the training distribution (seen compositions), with new
  names, constants, inputs and wordings; their prompts are excluded from training.
* ``compositions``: chains of depth 2-3 that training never contains (not as a whole, not as
  a contiguous part, not as any program with the same signature), each of whose stages is
  trained in other chains.
* ``primitives``: chains that use one stage never trained at all: the negative control.

A problem is ``{"task_id", "prompt", "canonical_solution", "test", "entry_point"}`` like
HumanEval's (``test`` defines ``check(candidate)`` with 4-6 asserts, the first on an edge
case), plus ``chain`` and ``depth`` for analysis. Infilling sets are built from a tier by
HumanEval-Infilling's own rule (:func:`minillama.evaluation.benchmarks.load_humaneval_infilling`).
"""

from __future__ import annotations

import random
from functools import lru_cache

from .chains import (BY_KEY, HELDOUT_PRIMITIVES, heldout_compositions, heldout_primitive_chains, is_valid,
                     random_consts, sample_training_behaviour)
from .functions import Function, make_function
from .inputs import EDGES, RANDOM

TIERS = ("instances", "compositions", "primitives")


def _edge_args(fn: Function, rng: random.Random) -> tuple | None:
    tin = BY_KEY[fn.chain[0]].tin
    for value in EDGES[tin]:
        for _ in range(5):
            extra = []
            for st, sl in fn.params:
                c = BY_KEY[fn.chain[st]].consts[sl]
                extra.append(RANDOM["list"](rng) if c.kind == "list" else rng.choice(c.values))
            args = (value,) + tuple(extra)
            try:
                fn.run(args)
                return args
            except Exception:
                continue
    return None


def test_code(fn: Function, rng: random.Random, example: str) -> str | None:
    """``def check(candidate):`` with 4-6 asserts: an edge case first, then random inputs
    other than the doctest's, with at least two different expected values."""
    want = rng.randint(4, 6)
    calls: list[tuple] = []
    edge = _edge_args(fn, rng)
    if edge is not None:
        calls.append(edge)
    for _ in range(60):
        if len(calls) == want:
            break
        args = fn.random_args(rng)
        if args is None:
            return None
        if args not in calls and fn.call_text(args) != example:
            calls.append(args)
    outs = [fn.run(a) for a in calls]
    if len(calls) < 4 or len({repr(o) for o in outs}) < 2:
        return None
    lines = ["def check(candidate):"]
    lines += [f"    assert candidate({', '.join(repr(a) for a in args)}) == {out!r}" for args, out in zip(calls, outs)]
    return "\n".join(lines) + "\n"


def _problem(tier: str, i: int, fn: Function, rng: random.Random) -> dict | None:
    example = next((line.strip()[4:] for line in fn.doc if line.strip().startswith(">>> ")), "")
    test = test_code(fn, rng, example)
    if test is None:
        return None
    return {"task_id": f"MiniEval/{tier}/{i}", "prompt": fn.prompt, "canonical_solution": fn.solution,
            "test": test, "entry_point": fn.name, "chain": ">".join(fn.chain), "depth": len(fn.chain),
            "style": fn.style}


def _behaviours(tier: str, rng: random.Random):
    """An endless stream of ``(chain, consts)`` for a tier."""
    if tier == "instances":
        while True:
            yield sample_training_behaviour(rng)
    if tier == "compositions":
        by_depth = {d: [c for c in heldout_compositions() if len(c) == d] for d in (2, 3)}
        pools = {d: [] for d in by_depth}
        k = 0
        while True:
            d = 2 + k % 2  # alternate depths, so both are half the tier
            k += 1
            if not pools[d]:  # each chain once before any repeats
                pools[d] = rng.sample(by_depth[d], len(by_depth[d]))
            chain = pools[d].pop()
            for _ in range(50):
                consts = random_consts(rng, chain)
                if is_valid(chain, consts):
                    yield chain, consts
                    break
    if tier == "primitives":
        by_prim = {p: [c for c in heldout_primitive_chains() if p in c] for p in HELDOUT_PRIMITIVES}
        k = 0
        while True:
            prim = HELDOUT_PRIMITIVES[k % len(HELDOUT_PRIMITIVES)]  # every held-out stage equally
            k += 1
            chains = by_prim[prim]
            chain = chains[0] if rng.random() < 0.3 and len(chains[0]) == 1 else rng.choice(chains)
            for _ in range(50):
                consts = random_consts(rng, chain)
                if is_valid(chain, consts):
                    yield chain, consts
                    break
    raise ValueError(f"unknown tier {tier!r}; choose one of {TIERS}")


@lru_cache(maxsize=16)
def tier_functions(tier: str, n: int, seed: int) -> tuple[tuple[dict, Function], ...]:
    """The problems of a tier with the :class:`Function` each was written from (the
    robustness tiers rename and reword these)."""
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; choose one of {TIERS}")
    rng = random.Random(f"minieval-{tier}-{seed}")
    out: list[tuple[dict, Function]] = []
    prompts: set[str] = set()
    stream = _behaviours(tier, rng)
    for _ in range(50 * n):
        if len(out) == n:
            break
        chain, consts = next(stream)
        fn = make_function(chain, consts, rng, training=False)
        if fn is None or fn.prompt in prompts:
            continue
        prob = _problem(tier, len(out), fn, rng)
        if prob is None:
            continue
        prompts.add(fn.prompt)
        out.append((prob, fn))
    if len(out) < n:
        raise RuntimeError(f"only {len(out)} problems for tier {tier!r}")
    return tuple(out)


def _problems(tier: str, n: int, seed: int) -> tuple[tuple[str, dict], ...]:
    return tuple((p["task_id"], p) for p, _ in tier_functions(tier, n, seed))


def problems(tier: str, n: int = 150, seed: int = 0) -> dict[str, dict]:
    """``n`` problems of ``tier`` by task id; the same arguments give the same problems."""
    return {k: dict(v) for k, v in _problems(tier, n, seed)}


def tier_problems(tier: str, n: int = 150, seed: int = 0) -> dict[str, dict]:
    """MiniEval problems of ``tier`` (``instances``, ``compositions``, ``primitives``; ``seed``
    picks the set), or all 30 ``handwritten`` problems no generator wrote."""
    from . import handwritten

    return handwritten.problems() if tier == "handwritten" else problems(tier, n, seed)


def infilling(kind: str, tier: str, n: int = 150, seed: int = 0) -> dict[str, dict]:
    """Single-line or multi-line infilling tasks built from a tier's problems exactly as
    HumanEval-Infilling is built from HumanEval (every non-blank line / every block of lines
    whose ends are non-blank)."""
    from minillama.evaluation.benchmarks import load_humaneval_infilling
    return load_humaneval_infilling(kind, problems(tier, n, seed))


def check_problem(problem: dict, completion: str | None = None) -> None:
    """Run a problem's tests on ``prompt + completion`` (the canonical solution by default)
    in-process: for our own trusted reference code only; models' code goes to the sandbox."""
    ns: dict = {}
    exec(problem["prompt"] + (problem["canonical_solution"] if completion is None else completion), ns)
    exec(problem["test"], ns)
    ns["check"](ns[problem["entry_point"]])
