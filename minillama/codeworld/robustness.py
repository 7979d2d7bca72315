"""MiniEval's robustness tiers: the same problems, perturbed so that only a model that reads its
prompt keeps solving them (in the spirit of ReCode, Wang et al. 2022, arXiv:2212.10264).

ReCode perturbs HumanEval/MBPP prompts in four families (docstring, function name, code
syntax, code format) and reports how much pass@1 drops. MiniEval's tiers are built in code
from the ``instances`` and ``compositions`` problems, each perturbed problem paired with its
source (``"source"``), so the drop is measured on the same problems (McNemar):

* ``renamed``: the function and every argument renamed to identifiers that never occur in
  training (:func:`minillama.codeworld.names.heldout_name`: held-out English words and
  made-up words), in the signature, the docstring's sentence and its example;
* ``paraphrased``: the docstring's sentence rewritten with frames held out of training
  (:data:`minillama.codeworld.phrasing.FRAMES` ``["heldout"]``; the behaviour's own phrases
  stay, the sentence around them is new), sometimes with a fallback ("… when xs has nothing in
  it") where the reference defines one;
* ``no-doctest``: the example removed, the sentence alone;
* ``combined``: all three at once.

Tests (``check``) are the source's: they call ``candidate``, whatever its name.
"""

from __future__ import annotations

import io
import random
import tokenize
from dataclasses import replace
from functools import lru_cache

from .chains import BY_KEY
from .functions import Function, _fallback, make_signature
from .minieval import tier_functions
from .names import heldout_name
from .phrasing import ARG_MARK, describe, fill_names, layout_doc

PERTURBATIONS = ("renamed", "paraphrased", "no-doctest", "combined")
SOURCE_TIERS = ("instances", "compositions")


def identifiers(code: str) -> set[str]:
    """The NAME tokens of a piece of Python (keywords included)."""
    return {t.string for t in _tokens(code) if t.type == tokenize.NAME}


def _tokens(code: str):
    try:
        return list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, IndentationError):  # a lone signature line is not a whole statement
        return list(tokenize.generate_tokens(io.StringIO(code + "\n    pass\n").readline))


def rename_identifiers(code: str, mapping: dict[str, str]) -> str:
    """``code`` with every NAME token in ``mapping`` replaced; strings, comments and spacing kept."""
    lines = code.splitlines(keepends=True)
    spans: dict[int, list[tuple[int, int, str]]] = {}
    toks = [t for t in _tokens(code) if t.type not in (tokenize.NL, tokenize.COMMENT)]
    for i, t in enumerate(toks):
        if t.type != tokenize.NAME or t.string not in mapping or t.start[0] > len(lines):
            continue
        before = toks[i - 1].string if i else ""
        after = toks[i + 1].string if i + 1 < len(toks) else ""
        if before == "." or (after == "=" and before in ("(", ",")):  # an attribute, a keyword argument
            continue
        spans.setdefault(t.start[0] - 1, []).append((t.start[1], t.end[1], mapping[t.string]))
    for row, edits in spans.items():
        line = lines[row]
        for a, b, new in sorted(edits, reverse=True):
            line = line[:a] + new + line[b:]
        lines[row] = line
    return "".join(lines)


def _example_lines(fn: Function, name: str) -> list[str]:
    if fn.example is None:
        return []
    call = f"{name}({', '.join(repr(a) for a in fn.example)})"
    return [f">>> {call}", repr(fn.run(fn.example))]


def _blank_before_example(fn: Function) -> bool:
    return "" in fn.doc


def perturb(fn: Function, kind: str, rng: random.Random) -> Function:
    """``fn`` under one perturbation of :data:`PERTURBATIONS` (names drawn from ``rng``)."""
    if kind not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {kind!r}; choose one of {PERTURBATIONS}")
    name, arg, params, body, signature = fn.name, fn.arg, list(fn.param_names), fn.body, fn.signature
    if kind in ("renamed", "combined"):
        taken = identifiers("\n".join((fn.signature, *fn.body)))
        new: dict[str, str] = {}
        for old in (fn.name, fn.arg, *fn.param_names):
            new[old] = heldout_name(rng, taken | set(new.values()))
        name, arg, params = new[fn.name], new[fn.arg], [new[p] for p in fn.param_names]
        body = tuple(rename_identifiers("\n".join(fn.body) + "\n", new).rstrip("\n").split("\n"))
        stages = [BY_KEY[k] for k in fn.chain]
        signature = make_signature(name, arg, stages[0].tin, stages[-1].tout,
                                   [(p, stages[st].consts[sl].kind) for (st, sl), p in zip(fn.params, params)])
    description = fn.description
    if kind in ("paraphrased", "combined"):
        description = describe(fn.chain, [list(r) for r in fn.const_exprs], ARG_MARK, rng, "heldout", _fallback(fn))
    example = [] if kind in ("no-doctest", "combined") else _example_lines(fn, name)
    doc = layout_doc(fill_names(description, arg, params), example, _blank_before_example(fn))
    return replace(fn, name=name, arg=arg, param_names=tuple(params), signature=signature, doc=tuple(doc),
                   body=body, description=description, example=fn.example if example else None)


@lru_cache(maxsize=8)
def _robust(kind: str, n: int, seed: int) -> tuple[tuple[str, dict], ...]:
    out = []
    for tier in SOURCE_TIERS:
        for prob, fn in tier_functions(tier, n, seed):
            rng = random.Random(f"minieval-{kind}-{prob['task_id']}")
            p = perturb(fn, kind, rng)
            suffix = prob["task_id"].split("/", 1)[1]  # "instances/12"
            out.append((f"MiniEval/{kind}/{suffix}",
                        {"task_id": f"MiniEval/{kind}/{suffix}", "prompt": p.prompt, "canonical_solution": p.solution,
                         "test": prob["test"], "entry_point": p.name, "chain": prob["chain"], "depth": prob["depth"],
                         "style": prob["style"], "source": prob["task_id"], "source_tier": tier}))
    return tuple(out)


def robustness_problems(kind: str, n: int = 150, seed: int = 0) -> dict[str, dict]:
    """The ``kind`` tier: each of ``n`` ``instances`` and ``n`` ``compositions`` problems
    perturbed (``2 n`` problems, each with its ``source`` task id)."""
    if kind not in PERTURBATIONS:
        raise ValueError(f"unknown robustness tier {kind!r}; choose one of {PERTURBATIONS}")
    return {k: dict(v) for k, v in _robust(kind, n, seed)}


def source_problems(n: int = 150, seed: int = 0) -> dict[str, dict]:
    """The unperturbed sources of every robustness tier (``instances`` then ``compositions``)."""
    return {p["task_id"]: dict(p) for tier in SOURCE_TIERS for p, _ in tier_functions(tier, n, seed)}
