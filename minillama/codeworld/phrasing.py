"""Saying what a chain does: docstring sentences and function names.

Two grammars, drawn per function: *nested* noun phrases ("Return the sum of the squares of
the even numbers in nums.") and *steps* ("Keep only the even numbers of nums, then square each
number in the result, and return the sum of the result."). Each stage has several phrasings,
so the same behaviour is worded many ways.
"""

from __future__ import annotations

import random
import textwrap

from .chains import BY_KEY, Chain

SOURCE_PHRASES = {"list": ("{a}", "{a}", "the list {a}"), "str": ("{a}", "{a}", "the string {a}"),
                  "int": ("{a}", "{a}", "the number {a}"), "words": ("{a}", "{a}", "the list of words {a}")}
OPENINGS = ("Return {np}.", "Return {np}.", "Return {np}.", "Returns {np}.")
GENERIC_NAMES = ("solve", "process", "transform", "compute", "calc", "helper", "func", "apply_rule",
                 "task", "run", "evaluate", "handle", "convert", "do_work")
NAME_PREFIXES = ("", "", "", "get_", "compute_", "find_", "make_")


def _fmt(template: str, X: str, consts: list[str]) -> str:
    out = template.replace("{X}", X)
    for j, c in enumerate(consts):
        out = out.replace("{c%d}" % j, c)
    return out


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def describe(chain: Chain, const_phrases: list[list[str]], arg: str, rng: random.Random) -> str:
    """One sentence (or two) saying what the function returns, constants and argument names
    spelled out."""
    stages = [BY_KEY[k] for k in chain]
    src = rng.choice(SOURCE_PHRASES[stages[0].tin]).format(a=arg)
    # nested noun phrases read well up to two steps; three steps are said in order, as the code runs
    if len(stages) == 1 or (len(stages) == 2 and rng.random() < 0.7):
        np = src
        for s, cs in zip(stages, const_phrases):
            np = _fmt(rng.choice(s.nps), np, cs)
        return rng.choice(OPENINGS).format(np=np)
    clauses = [_fmt(rng.choice(stages[0].verbs), src, const_phrases[0])]
    for s, cs in zip(stages[1:-1], const_phrases[1:-1]):
        clauses.append(_fmt(rng.choice(s.verbs), "the result", cs))
    final = "return " + _fmt(rng.choice(stages[-1].nps), "the result", const_phrases[-1])
    if len(clauses) == 1:
        text = f"{clauses[0]}, then {final}."
    elif rng.random() < 0.5:
        text = f"{clauses[0]}, then {clauses[1]}, and {final}."
    else:
        text = f"First {clauses[0]}. Then {clauses[1]}. Finally, {final}."
    return _cap(text)


def function_name(chain: Chain, rng: random.Random) -> str:
    """A name in the spirit of the behaviour (sometimes a generic one, so that the model must
    read the docstring rather than the name)."""
    if rng.random() < 0.15:
        name = rng.choice(GENERIC_NAMES)
        return name + (f"_{rng.randint(1, 9)}" if rng.random() < 0.3 else "")
    last, first = BY_KEY[chain[-1]], BY_KEY[chain[0]]
    head = rng.choice(last.names)
    if len(chain) > 1 and rng.random() < 0.6:
        tail = rng.choice(first.names)
        if tail != head:
            head = f"{head}{rng.choice(('_', '_of_'))}{tail}"
    if BY_KEY[chain[-1]].tout != "bool" and not head.startswith(("is_", "has_")):
        head = rng.choice(NAME_PREFIXES) + head
    return head


def docstring(description: str, call: str, result: str, rng: random.Random, width: int = 88) -> list[str]:
    """The docstring lines (indented), HumanEval style: a description and one doctest."""
    lines = textwrap.wrap(description, width - 8) or [description]
    out = [f'    """{lines[0]}'] + [f"    {line}" for line in lines[1:]]
    if rng.random() < 0.8:
        out.append("")
    out += [f"    >>> {call}", f"    {result}", '    """']
    return [line.rstrip() if line.strip() else "" for line in out]
