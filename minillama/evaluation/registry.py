"""The benchmarks ``python -m minillama evaluate --benchmark NAME`` knows: HumanEval and the code
world's MiniEval tiers.

A floor above both :mod:`minillama.evaluation.benchmarks` (the loaders) and
:mod:`minillama.codeworld.minieval` (the code world's problems), so that neither imports the other
in a circle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from minillama.evaluation.benchmarks import HUMANEVAL_STOP, load_humaneval


@dataclass(frozen=True)
class Benchmark:
    """``load(limit, seed)`` returns HumanEval-format problems (``task_id``, ``prompt``, ``test``,
    ``entry_point``, ``canonical_solution``) as a dict by task id or a list; ``limit`` is how many
    (None: the benchmark's own size), ``seed`` picks a procedurally generated set."""
    load: Callable[[int | None, int], dict[str, dict] | list[dict]]
    stop: list[str] = field(default_factory=lambda: list(HUMANEVAL_STOP))
    description: str = ""


def _minieval(tier: str) -> Benchmark:
    def load(limit, seed):
        from minillama.codeworld.minieval import tier_problems  # imported late: only the MiniEval entries need it
        return dict(list(tier_problems(tier, limit or 150, seed).items())[:limit])
    return Benchmark(load, description=f"the code world's MiniEval, tier {tier!r} (150 problems; seed picks the set)"
                     if tier != "handwritten" else "30 hand-written problems no generator of the project wrote")


def _minieval_robust(kind: str) -> Benchmark:
    def load(limit, seed):
        from minillama.codeworld.robustness import robustness_problems  # imported late, as above
        per_tier = -(-limit // 2) if limit else 150  # sources: half instances, half compositions
        return dict(list(robustness_problems(kind, per_tier, seed).items())[:limit])
    return Benchmark(load, description=f"MiniEval's robustness tier {kind!r}: instances + compositions perturbed "
                     "(300 problems; each names its unperturbed source)")


# Another benchmark is one entry (its name then appears in the CLI's choices).
BENCHMARKS: dict[str, Benchmark] = {
    "humaneval": Benchmark(lambda limit, seed: dict(list(load_humaneval().items())[:limit]),
                           description="HumanEval, 164 problems (limit: the first N)"),
    **{f"minieval-{tier}": _minieval(tier) for tier in ("instances", "compositions", "primitives", "handwritten")},
    **{f"minieval-{kind}": _minieval_robust(kind) for kind in ("renamed", "paraphrased", "no-doctest", "combined")},
}


def load_benchmark(name: str, limit: int | None = None, seed: int = 0) -> dict[str, dict]:
    """The problems of benchmark ``name`` by task id."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; known: {sorted(BENCHMARKS)}")
    problems = BENCHMARKS[name].load(limit, seed)
    return problems if isinstance(problems, dict) else {p["task_id"]: p for p in problems}
