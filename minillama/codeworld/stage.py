"""A stage: one typed step of a program (filter, map, reduce or a whole-value transform).

A function of the code world is a chain of 1-3 stages, e.g. ``keep_even -> square -> sum``
over ``list[int]``. A stage carries everything needed to *run* it (the reference ``fn``), to
*write* it (templates for a comprehension, a builtin call, a loop) and to *say* it (noun
phrases and imperative clauses for the docstring).

Types are short names: ``int``, ``list`` (list[int]), ``str``, ``words`` (list[str]),
``bool``. Filters and maps work element-wise on a collection: the ints of a list, the
characters of a string, the words of a list of words.

Template placeholders: ``{x}`` an element, ``{y}`` a second element (zip), ``{e}`` the input
value, ``{out}`` the output variable, ``{acc}`` an accumulator, ``{v}`` the value fed to an
accumulator, ``{i}`` an index variable, ``{c0}`` / ``{c1}`` the stage's constants (a literal
or a parameter name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

TYPE_HINTS = {"int": "int", "list": "list[int]", "str": "str", "words": "list[str]", "bool": "bool"}
COLLECTIONS = ("list", "str", "words")


@dataclass(frozen=True)
class Const:
    """A constant slot of a stage: drawn from ``values`` (or a random list, kind ``list``),
    written as a literal or, in a function of several arguments, as a parameter."""
    kind: str  # int | char | sep | list
    values: tuple = ()
    params: tuple[str, ...] = ("k",)  # parameter names when the constant becomes an argument
    always_param: bool = False  # list constants are always arguments


@dataclass(frozen=True)
class Stage:
    key: str
    kind: str  # filter | map | reduce | whole
    tin: str
    tout: str
    fn: Callable[..., Any]  # reference: fn(value, *consts)
    nps: tuple[str, ...]  # noun phrases of the output, over {X} (the input's phrase)
    verbs: tuple[str, ...]  # imperative clauses, over {X}
    names: tuple[str, ...]  # words for function names
    consts: tuple[Const, ...] = ()
    cond: str = ""  # filter condition (also an optional guard of a map)
    val: str = ""  # map value
    exprs: tuple[str, ...] = ()  # builtin / comprehension forms over {e}
    blocks: tuple[str, ...] = ()  # loop forms assigning {out}
    finals: tuple[str, ...] = ()  # loop forms that return (last stage only)
    init: str = ""  # reduce: accumulator initialisation
    update: str = ""  # reduce: per-element update (may be several lines)
    result: str = "{acc}"  # reduce: the value after the loop
    gen: bool = False  # reduce: its expression takes a bare generator expression
    var: str = "result"  # a name for the stage's output variable
    heldout: bool = False  # a primitive never trained (the `primitives` tier)

    @property
    def elementwise(self) -> bool:
        return self.kind in ("filter", "map")


class Undefined(Exception):
    """A stage applied outside its domain (max of an empty list, factorial of -3...)."""


_LENIENT = [False]


def need(ok: bool) -> None:
    """A reference's domain check. Under :func:`lenient` it is off, so the reference computes
    what its code would compute outside the domain the world chose for it."""
    if not ok and not _LENIENT[0]:
        raise Undefined


def nonempty(f: Callable) -> Callable:
    """A reference defined only on a non-empty input (a list, a string, a list of words)."""
    def g(v, *c):
        need(len(v) > 0)
        return f(v, *c)
    return g


def guard(ok: bool) -> None:
    """A safety limit (no 10**9-element list, no endless loop): always on."""
    if not ok:
        raise Undefined


class lenient:
    """``with lenient(): ...`` runs references without their domain checks."""

    def __enter__(self):
        self.before = _LENIENT[0]
        _LENIENT[0] = True

    def __exit__(self, *exc):
        _LENIENT[0] = self.before


def _collect(tout: str, items: list) -> Any:
    return "".join(items) if tout == "str" else list(items)


def filt(key, tin, cond, el, nps, verbs, names, consts=(), exprs=(), var="result", heldout=False) -> Stage:
    """Keep the elements for which ``el(element, *consts)`` is true."""
    def fn(value, *c):
        return _collect(tin, [x for x in value if el(x, *c)])
    return Stage(key, "filter", tin, tin, fn, tuple(nps), tuple(verbs), tuple(names), tuple(consts),
                 cond=cond, exprs=tuple(exprs), var=var, heldout=heldout)


def emap(key, tin, tout, val, el, nps, verbs, names, consts=(), exprs=(), cond="", keep=None, var="result",
         heldout=False) -> Stage:
    """Replace each element by ``el(element, *consts)`` (optionally only those passing ``keep``)."""
    def fn(value, *c):
        return _collect(tout, [el(x, *c) for x in value if keep is None or keep(x, *c)])
    return Stage(key, "map", tin, tout, fn, tuple(nps), tuple(verbs), tuple(names), tuple(consts),
                 cond=cond, val=val, exprs=tuple(exprs), var=var, heldout=heldout)


def red(key, tin, tout, fn, nps, verbs, names, exprs=(), init="", update="", result="{acc}", gen=False,
        consts=(), finals=(), var="total", heldout=False) -> Stage:
    """Fold a collection into one value; ``init``/``update``/``result`` give the loop form."""
    return Stage(key, "reduce", tin, tout, fn, tuple(nps), tuple(verbs), tuple(names), tuple(consts),
                 exprs=tuple(exprs), finals=tuple(finals), init=init, update=update, result=result,
                 gen=gen, var=var, heldout=heldout)


def whole(key, tin, tout, fn, nps, verbs, names, exprs=(), blocks=(), finals=(), consts=(), var="result",
          heldout=False) -> Stage:
    """Any other step, written as expressions and/or loops."""
    return Stage(key, "whole", tin, tout, fn, tuple(nps), tuple(verbs), tuple(names), tuple(consts),
                 exprs=tuple(exprs), blocks=tuple(blocks), finals=tuple(finals), var=var, heldout=heldout)


def ints(lo: int, hi: int, *params: str) -> Const:
    return Const("int", tuple(range(lo, hi + 1)), tuple(params) or ("k",))


def chars(letters: str, *params: str) -> Const:
    return Const("char", tuple(letters), tuple(params) or ("ch",))


def seps(options: tuple[str, ...], *params: str) -> Const:
    return Const("sep", tuple(options), tuple(params) or ("sep",))


def other_list(*params: str) -> Const:
    return Const("list", (), tuple(params) or ("other",), always_param=True)
