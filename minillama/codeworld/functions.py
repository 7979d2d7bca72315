"""One function of the world: a behaviour with names, a signature, a docstring with a doctest
computed by running the reference, and a body written in one of the styles."""

from __future__ import annotations

import builtins
import random
from dataclasses import dataclass

from .chains import BY_KEY, Chain, Consts, apply, n_list_consts, trainable_family
from .inputs import ARG_NAMES, RANDOM, pseudo_word
from .names import ROLE_OF_TYPE, english, made_up, wild_name
from .phrasing import ARG_MARK, describe, docstring, example_lines, fill_names, function_name, layout_doc, param_mark
from .render import STYLES, render_body, reserved_names
from .stage import TYPE_HINTS, Undefined

STYLE_WEIGHTS = (0.55, 0.30, 0.15)  # expr, loop, oneliner
PY_BUILTINS = frozenset(dir(builtins))
PARAM_RATE = 0.25  # share of int/str constants that become a second argument
# share of functions whose argument and function names are made-up words: a name nothing
# predicts, so writing the body needs copying it from the signature (induction heads)
PSEUDO_RATE = 0.05
WORLDS = (3, 4, 5, 6)
# world v4 (names.py): the share of names still drawn from v3's small pools (the dialect MiniEval's
# tiers are written in), the share drawn from the module's own lexicon (names recur across the
# functions of a module, as in real code), the share of locals renamed from the open pools, and
# the share of docstrings with no example
V4_POOL_SHARE = 0.2
V4_LEXICON_SHARE = 0.3
V4_WILD_LOCALS = 0.35
V4_NO_EXAMPLE = 0.25
# world v5 = v4 with half of the open pools' English names replaced by blends (names.blend): words
# that start like a known one and end otherwise, so that a name's later pieces must be copied;
# world v6 takes the same share of blends from the made-up names instead, keeping v4's English ones
BLEND_SHARE = 0.5
WORLD_BLENDS = {5: (BLEND_SHARE, False), 6: (BLEND_SHARE, True)}  # world -> (share, beside English names)
V4_VERBS = ("get", "find", "compute", "make", "process", "handle", "calc", "build", "do", "run", "fix", "update",
            "parse", "transform", "collect", "pick", "apply", "prepare", "clean", "check")


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
    description: str = ""  # the docstring's sentence(s), written over placeholders (phrasing.fill_names)
    const_exprs: tuple[tuple[str, ...], ...] = ()  # each stage's constants as written (literal or placeholder)
    example: tuple | None = None  # the arguments of the docstring's example (None: no example)

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


def _v4_name(rng: random.Random, role: str, pool, used: set[str], lexicon, blends=(0.0, False)) -> str:
    r = rng.random()
    if r < V4_POOL_SHARE:
        free = [a for a in pool if a not in used]
        if free:
            return rng.choice(free)
    elif r < V4_POOL_SHARE + V4_LEXICON_SHARE:
        free = [a for a in lexicon if a not in used]
        if free:
            return rng.choice(free)
    return wild_name(rng, role, used, *blends)


def _v4_function_name(chain: Chain, rng: random.Random, used: set[str]) -> str:
    r = rng.random()
    if r < 0.45:
        return function_name(chain, rng)  # says what it does (15 % of these generic)
    if r < 0.7:
        return f"{rng.choice(V4_VERBS)}_{english(rng, rng.choice(('one', 'many')))}"
    name = made_up(rng, used, (2, 3))
    return f"{rng.choice(('get_', 'do_', 'calc_'))}{name}" if rng.random() < 0.2 else name


def _fallback(fn: "Function") -> str | None:
    """The function's value on an empty input, when the reference defines one there (said by some
    world v4 frames: "(0 if xs is empty)")."""
    tin = BY_KEY[fn.chain[0]].tin
    if tin not in ("list", "str", "words") or fn.params:
        return None
    try:
        out = fn.run(([] if tin != "str" else "",))
    except Exception:
        return None
    return repr(out) if isinstance(out, (int, bool, str)) or out == [] else None


def make_function(chain: Chain, consts: Consts, rng: random.Random, *, training: bool = True,
                  name: str | None = None, taken: set[str] = frozenset(), style: str | None = None,
                  world: int = 3, lexicon: tuple[str, ...] = ()) -> Function | None:
    """Dress a behaviour as a function. ``training`` checks that a constant made an argument
    keeps every value it can take trainable. None if no doctest input is found. ``world`` 3 is the
    world MiniEval is written in; 4 draws names from open pools (:mod:`.names`; ``lexicon``: the
    module's own names), renames locals, and words docstrings with more frames, sometimes
    without an example; 5 and 6 are 4 with blended names (:data:`WORLD_BLENDS`)."""
    if world not in WORLDS:
        raise ValueError(f"world={world!r}; choose one of {WORLDS}")
    v4 = world >= 4  # v5 and v6 are v4 with blended names
    blends = WORLD_BLENDS.get(world, (0.0, False))
    stages = [BY_KEY[k] for k in chain]
    reserved = reserved_names(chain) | set(taken)
    pseudo = not v4 and rng.random() < PSEUDO_RATE
    tin = stages[0].tin
    arg = _v4_name(rng, ROLE_OF_TYPE[tin], ARG_NAMES[tin], reserved, lexicon, blends) if v4 else \
        _pick_name(rng, ARG_NAMES[tin], reserved, pseudo)
    used = reserved | {arg}
    params, param_names, literal = [], [], [list(c) for c in consts]
    const_exprs: list[list[str]] = []
    marked: list[list[str]] = []  # the same, with placeholders for parameter names
    for st, (s, cs) in enumerate(zip(stages, consts)):
        row, mrow = [], []
        for sl, (spec, value) in enumerate(zip(s.consts, cs)):
            as_param = spec.always_param or (rng.random() < PARAM_RATE and
                                             (not training or trainable_family(chain, consts, (st, sl))))
            if as_param:
                if v4:
                    pname = _v4_name(rng, "many" if spec.kind == "list" else "one", spec.params, used, lexicon, blends)
                else:
                    pname = _pick_name(rng, (), used, True) if pseudo else \
                        next((p for p in spec.params if p not in used), None) or f"{spec.params[0]}{st}{sl}"
                used.add(pname)
                params.append((st, sl))
                param_names.append(pname)
                literal[st][sl] = None
                row.append(pname)
                mrow.append(param_mark(len(param_names) - 1))
            else:
                row.append(repr(value))
                mrow.append(repr(value))
        const_exprs.append(row)
        marked.append(mrow)
    if v4:
        fname = name or _v4_function_name(chain, rng, used)
    else:
        fname = name or (_pick_name(rng, (), used, True, (2, 3)) if pseudo and rng.random() < 0.5
                         else function_name(chain, rng))
    if fname in PY_BUILTINS:  # `def min(...)` would shadow the builtin its own body calls
        fname = "get_" + fname
    while fname in used:
        fname += "_2"
    style = style or rng.choices(STYLES, STYLE_WEIGHTS)[0]
    wild = (V4_WILD_LOCALS, rng, lambda r, t: wild_name(r, "one", t, *blends)) if v4 else None
    body = render_body(chain, const_exprs, arg, used | {fname}, style, rng, wild)
    signature = make_signature(fname, arg, tin, stages[-1].tout,
                               [(pname, stages[st].consts[sl].kind) for (st, sl), pname in zip(params, param_names)])
    fn = Function(chain, tuple(map(tuple, literal)), tuple(params), fname, arg, tuple(param_names), signature,
                  (), tuple("    " + line if line else "" for line in body), style)
    example = _example(fn, rng)
    if example is None:
        return None
    call, result = fn.call_text(example), repr(fn.run(example))
    if v4:
        fallback = _fallback(fn)
        template = describe(chain, marked, ARG_MARK, rng, "v4", fallback)
        lines = [] if rng.random() < V4_NO_EXAMPLE else example_lines(call, result, rng)
        doc = layout_doc(fill_names(template, arg, param_names), lines, rng.random() < 0.8)
        example = example if lines else None
    else:
        template = describe(chain, marked, ARG_MARK, rng)
        doc = docstring(fill_names(template, arg, param_names), call, result, rng)
    return Function(fn.chain, fn.consts, fn.params, fname, arg, tuple(param_names), signature, tuple(doc),
                    fn.body, style, template, tuple(map(tuple, marked)), example)


def make_signature(fname: str, arg: str, tin: str, tout: str, params: list[tuple[str, str]]) -> str:
    """``def name(arg: type, param: type, …) -> type:``; ``params`` are (name, constant kind)."""
    hints = [f"{arg}: {TYPE_HINTS[tin]}"]
    for pname, kind in params:
        hints.append(f"{pname}: {'list[int]' if kind == 'list' else 'int' if kind == 'int' else 'str'}")
    return f"def {fname}({', '.join(hints)}) -> {TYPE_HINTS[tout]}:"


def n_params(chain: Chain) -> int:
    return n_list_consts(chain)
