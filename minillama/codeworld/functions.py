"""One function of the world: a behaviour with names, a signature, a docstring with a doctest
computed by running the reference, and a body written in one of the styles."""

from __future__ import annotations

import builtins
import random
from dataclasses import dataclass

from .chains import BY_KEY, Chain, Consts, apply, n_list_consts, trainable_family
from .inputs import ARG_NAMES, RANDOM, pseudo_word
from .phrasing import describe, docstring, function_name
from .render import STYLES, render_body, reserved_names
from .stage import TYPE_HINTS, Undefined

STYLE_WEIGHTS = (0.55, 0.30, 0.15)  # expr, loop, oneliner
PY_BUILTINS = frozenset(dir(builtins))
PARAM_RATE = 0.25  # share of int/str constants that become a second argument
# share of functions whose argument and function names are made-up words: a name nothing
# predicts, so writing the body needs copying it from the signature (induction heads)
PSEUDO_RATE = 0.05


@dataclass(frozen=True)
class Function:
    chain: Chain
    consts: Consts  # the literal constants (None for slots that are arguments)
    params: tuple[tuple[int, int], ...]  # (stage, slot) of each extra argument, in order
    name: str
    arg: str
    param_names: tuple[str, ...]
    signature: str
    doc: tuple[str, ...]
    body: tuple[str, ...]
    style: str

    @property
    def prompt(self) -> str:
        """Signature and docstring: what a HumanEval-style problem shows."""
        return "\n".join((self.signature, *self.doc)) + "\n"

    @property
    def solution(self) -> str:
        return "\n".join(self.body) + "\n"

    @property
    def text(self) -> str:
        return self.prompt + self.solution

    @property
    def key(self) -> tuple:
        """What decontamination checks: the chain and its literal constants."""
        return self.chain, self.consts

    def run(self, args: tuple):
        """The reference output for a call ``name(*args)``."""
        main, extra = args[0], list(args[1:])
        consts = [list(c) for c in self.consts]
        others = []
        for (stage, slot), value in zip(self.params, extra):
            if BY_KEY[self.chain[stage]].consts[slot].kind == "list":
                others.append(value)
            else:
                consts[stage][slot] = value
        return apply(self.chain, tuple(map(tuple, consts)), main, others)

    def random_args(self, rng: random.Random, tries: int = 200) -> tuple | None:
        """Arguments on which the function is defined (None if none found)."""
        tin = BY_KEY[self.chain[0]].tin
        for _ in range(tries):
            extra = tuple(_random_param(rng, self.chain, st, sl) for st, sl in self.params)
            args = (RANDOM[tin](rng),) + extra
            try:
                out = self.run(args)
            except (Undefined, ValueError, IndexError, ZeroDivisionError, TypeError, OverflowError):
                continue
            if not (isinstance(out, int) and abs(out) > 10**12):
                return args
        return None

    def call_text(self, args: tuple) -> str:
        return f"{self.name}({', '.join(repr(a) for a in args)})"


def _pick_name(rng: random.Random, options, taken: set[str], pseudo: bool, syllables=(1, 3)) -> str:
    if not pseudo:
        return rng.choice([a for a in options if a not in taken])
    while True:
        w = pseudo_word(rng, syllables)
        if w not in taken and w not in PY_BUILTINS:
            return w


def _example(fn: Function, rng: random.Random):
    """The doctest's input: of three random calls, one whose input and output say the most
    (not an empty list, not an empty result)."""
    best, score = None, -1
    for _ in range(3):
        args = fn.random_args(rng)
        if args is None:
            continue
        out = fn.run(args)
        s = (len(repr(args[0])) > 4) + (out not in ([], "", 0)) + rng.random()
        if s > score:
            best, score = args, s
    return best


def _random_param(rng, chain, stage, slot):
    c = BY_KEY[chain[stage]].consts[slot]
    return RANDOM["list"](rng) if c.kind == "list" else rng.choice(c.values)


def make_function(chain: Chain, consts: Consts, rng: random.Random, *, training: bool = True,
                  name: str | None = None, taken: set[str] = frozenset(), style: str | None = None) -> Function | None:
    """Dress a behaviour as a function. ``training`` checks that a constant made an argument
    keeps every value it can take trainable. None if no doctest input is found."""
    stages = [BY_KEY[k] for k in chain]
    reserved = reserved_names(chain) | set(taken)
    pseudo = rng.random() < PSEUDO_RATE
    arg = _pick_name(rng, ARG_NAMES[stages[0].tin], reserved, pseudo)
    used = reserved | {arg}
    params, param_names, literal = [], [], [list(c) for c in consts]
    const_exprs: list[list[str]] = []
    for st, (s, cs) in enumerate(zip(stages, consts)):
        row = []
        for sl, (spec, value) in enumerate(zip(s.consts, cs)):
            as_param = spec.always_param or (rng.random() < PARAM_RATE and
                                             (not training or trainable_family(chain, consts, (st, sl))))
            if as_param:
                pname = _pick_name(rng, (), used, True) if pseudo else \
                    next((p for p in spec.params if p not in used), None) or f"{spec.params[0]}{st}{sl}"
                used.add(pname)
                params.append((st, sl))
                param_names.append(pname)
                literal[st][sl] = None
                row.append(pname)
            else:
                row.append(repr(value))
        const_exprs.append(row)
    fname = name or (_pick_name(rng, (), used, True, (2, 3)) if pseudo and rng.random() < 0.5
                     else function_name(chain, rng))
    if fname in PY_BUILTINS:  # `def min(...)` would shadow the builtin its own body calls
        fname = "get_" + fname
    while fname in used:
        fname += "_2"
    style = style or rng.choices(STYLES, STYLE_WEIGHTS)[0]
    body = render_body(chain, const_exprs, arg, used | {fname}, style, rng)
    hints = [f"{arg}: {TYPE_HINTS[stages[0].tin]}"]
    for (st, sl), pname in zip(params, param_names):
        kind = stages[st].consts[sl].kind
        hints.append(f"{pname}: {'list[int]' if kind == 'list' else 'int' if kind == 'int' else 'str'}")
    signature = f"def {fname}({', '.join(hints)}) -> {TYPE_HINTS[stages[-1].tout]}:"
    fn = Function(chain, tuple(map(tuple, literal)), tuple(params), fname, arg, tuple(param_names), signature,
                  (), tuple("    " + line if line else "" for line in body), style)
    example = _example(fn, rng)
    if example is None:
        return None
    description = describe(chain, const_exprs, arg, rng)
    doc = docstring(description, fn.call_text(example), repr(fn.run(example)), rng)
    return Function(fn.chain, fn.consts, fn.params, fname, arg, tuple(param_names), signature, tuple(doc),
                    fn.body, style)


def n_params(chain: Chain) -> int:
    return n_list_consts(chain)
