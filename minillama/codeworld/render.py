"""Writing a chain as Python: the same behaviour as a comprehension, a builtin call or a loop.

Three styles, drawn per function:

* ``expr``: one statement per step, each a comprehension or builtin call assigned to a
  variable (runs of filters and maps are fused into one comprehension half the time);
* ``loop``: explicit ``for`` loops with accumulators, early returns where a step allows;
* ``oneliner``: the steps nested into one ``return`` expression where every step has an
  expression form (else it falls back to ``expr``).

Every rendering is checked against the reference ``fn`` of its stages (tests/test_codeworld*).
"""

from __future__ import annotations

import ast
import builtins
import keyword
import random
import re
from dataclasses import dataclass

from .chains import BY_KEY, Chain
from .inputs import ELEMENT_NAMES, INDEX_NAMES
from .stage import Stage

STYLES = ("expr", "loop", "oneliner")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BUILTINS = set(dir(builtins))


def template_names(text: str) -> set[str]:
    """Identifiers a template uses itself (locals such as ``rest`` or ``seen``), which the
    function's own names must avoid."""
    bare = re.sub(r"\{[a-z0-9]+\}", " ", text)
    bare = re.sub(r"'[^']*'", " ", bare)
    return {w for w in _IDENT.findall(bare) if not keyword.iskeyword(w) and w not in _BUILTINS
            and not w.startswith(("isalpha", "isdigit", "isupper"))} - {
        "append", "insert", "sort", "reverse", "count", "index", "replace", "split", "join", "strip", "upper",
        "lower", "swapcase", "title", "startswith", "endswith", "isalpha", "isdigit", "isupper", "fromkeys",
        "True", "False", "None", "key", "_"}


def is_atomic(expr: str) -> bool:
    """An expression that needs no parentheses wherever it is put."""
    try:
        node = ast.parse(expr, mode="eval").body
    except SyntaxError:
        return False
    return isinstance(node, (ast.Name, ast.Constant, ast.Call, ast.Subscript, ast.Attribute, ast.List,
                             ast.ListComp)) and not (isinstance(node, ast.Constant) and expr.startswith("-"))


def _is_listcomp(expr: str) -> bool:
    try:
        return isinstance(ast.parse(expr, mode="eval").body, ast.ListComp)
    except SyntaxError:
        return False


def fill(template: str, **values: str) -> str:
    """Replace ``{name}`` placeholders, adding parentheses around compound expressions
    unless they stand alone (a sole call argument, after ``return`` or ``=``)."""
    out = template
    for name, expr in values.items():
        token = "{" + name + "}"
        if token not in out:
            continue
        pieces = out.split(token)
        res = pieces[0]
        for after in pieces[1:]:
            res += _wrapped(expr, res, after) + after
        out = res
    return out


def _wrapped(expr: str, before: str, after: str) -> str:
    if is_atomic(expr):
        return expr
    b, a = before.rstrip()[-1:], after.lstrip()[:1]
    line_start = before.rsplit("\n", 1)[-1]
    alone_left = b in ("(", "[", ",") or line_start.strip() in ("return",) or line_start.rstrip().endswith(" =") \
        or before.strip() == ""
    alone_right = a in (")", "]", ",", "") or after.startswith("\n")
    if alone_left and alone_right:
        return expr
    return f"({expr})"


@dataclass
class Names:
    """Names taken in one function: arguments, variables, and what templates use.

    ``wild`` (world v4): ``(rate, rng, draw)``; with probability ``rate`` a local variable gets a
    name from ``draw(rng, taken)`` (an open pool) instead of the stage's usual one, so the body
    can only be continued by copying the name it introduced."""
    taken: set[str]
    wild: tuple | None = None

    def fresh(self, preferred: str | tuple[str, ...], rng: random.Random | None = None) -> str:
        if self.wild is not None:
            rate, wrng, draw = self.wild
            if wrng.random() < rate:
                name = draw(wrng, self.taken)
                self.taken.add(name)
                return name
        options = (preferred,) if isinstance(preferred, str) else tuple(preferred)
        if rng is not None and len(options) > 1:
            options = tuple(rng.sample(list(options), len(options)))
        for name in options:
            if name not in self.taken:
                self.taken.add(name)
                return name
        base, k = options[0], 2
        while f"{base}{k}" in self.taken:
            k += 1
        self.taken.add(f"{base}{k}")
        return f"{base}{k}"


class Step:
    """A stage at one position of a chain, with its constants as written (a chain may hold
    the same stage twice with different constants)."""

    def __init__(self, stage: Stage, consts: list[str]):
        self.stage = stage
        self.consts = {f"c{j}": v for j, v in enumerate(consts)}

    def __getattr__(self, name):
        return getattr(self.stage, name)


def _segments(steps: list[Step], fuse: bool) -> list[list[Step]]:
    """Group a chain: runs of filters/maps (plus a reduce right after them) become one
    segment when ``fuse``; every other step is a segment of its own."""
    segs: list[list[Step]] = []
    for s in steps:
        prev = segs[-1] if segs else None
        joins = s.elementwise or (s.kind == "reduce" and s.init and s.exprs and not any("{x}" in e for e in s.exprs))
        if fuse and prev and all(p.elementwise for p in prev) and joins:
            prev.append(s)
        else:
            segs.append([s])
    return segs


class Writer:
    """Builds the body of one function, line by line."""

    def __init__(self, steps: list[Step], arg: str, names: Names, style: str, rng: random.Random):
        self.steps, self.names, self.style, self.rng = steps, names, style, rng
        self.lines: list[str] = []
        self.cur = arg  # the expression holding the current value

    @staticmethod
    def c(step: Step) -> dict[str, str]:
        return step.consts

    def emit(self, text: str, indent: int = 0):
        for line in text.split("\n"):
            self.lines.append("    " * indent + line)

    def as_name(self, var_hint: str) -> str:
        """Make the current value a plain variable (templates that use it twice need one)."""
        if _IDENT.fullmatch(self.cur):
            return self.cur
        v = self.names.fresh(var_hint)
        self.emit(f"{v} = {self.cur}")
        self.cur = v
        return v

    def elem_var(self, coll: str) -> str:
        return self.names.fresh(ELEMENT_NAMES[coll], self.rng)

    def index_var(self) -> str:
        return self.names.fresh(INDEX_NAMES, self.rng)

    # --- expression forms ---------------------------------------------------------------
    def run_expr(self, seg: list[Step]) -> str | None:
        """A fused run (filters/maps, then maybe a reduce) as one expression."""
        elems = [s for s in seg if s.elementwise]
        red = seg[-1] if seg[-1].kind == "reduce" else None
        if red is not None and (not red.exprs or any("{x}" in e for e in red.exprs)):
            if elems or not red.exprs:
                return None
            return fill(self.rng.choice(red.exprs), e=self.cur, x=self.elem_var(red.tin), **self.c(red))
        coll = None
        if elems:
            if len(elems) == 1 and elems[0].exprs and self.rng.random() < 0.5:
                coll = fill(self.rng.choice(elems[0].exprs), e=self.cur, **self.c(elems[0]))
            else:
                x = self.elem_var(elems[0].tin)
                val, conds = x, []
                for s in elems:
                    if s.cond:
                        conds.append(fill(s.cond, x=val, **self.c(s)))
                    if s.kind == "map":
                        val = fill(s.val, x=val, **self.c(s))
                cond = f" if {' and '.join(conds)}" if conds else ""
                body = f"{val} for {x} in {self.cur}{cond}"
                if elems[-1].tout == "str":
                    coll = f"''.join({body})" if self.rng.random() < 0.6 else f"''.join([{body}])"
                else:
                    coll = f"[{body}]"
        else:
            coll = self.cur
        if red is None:
            return coll
        tmpl = self.rng.choice(red.exprs)
        if red.gen and "({e})" in tmpl and _is_listcomp(coll) and self.rng.random() < 0.7:
            return fill(tmpl, **self.c(red)).replace("({e})", "(" + coll[1:-1] + ")")
        return fill(tmpl, e=coll, **self.c(red))

    def whole_expr(self, s: Step) -> str | None:
        if not s.exprs:
            return None
        tmpl = self.rng.choice(s.exprs)
        if tmpl.count("{e}") > 1:
            self.as_name(s.var if s.var != "result" else "value")
        extra = {"x": self.elem_var(s.tin)} if "{x}" in tmpl else {}
        if "{y}" in tmpl:
            extra["y"] = self.names.fresh(("y", "other_item", "b"), self.rng)
        if "{i}" in tmpl:
            extra["i"] = self.index_var()
        return fill(tmpl, e=self.cur, **extra, **self.c(s))

    # --- loop forms ---------------------------------------------------------------------
    def run_loop(self, seg: list[Step], last: bool) -> bool:
        """A run as a ``for`` loop with an accumulator; False if the run has no loop form."""
        elems = [s for s in seg if s.elementwise]
        red = seg[-1] if seg[-1].kind == "reduce" else None
        if red is not None and not red.init:
            return False
        src = self.as_name("values")
        coll = (elems[0] if elems else red).tin
        x = self.elem_var(coll)
        out = self.names.fresh(red.var if red else seg[-1].var)
        if red is not None:
            self.emit(fill(red.init, acc=out, **self.c(red)))
        else:
            self.emit(f"{out} = ''" if elems[-1].tout == "str" else f"{out} = []")
        self.emit(f"for {x} in {src}:")
        depth, val = 1, x
        for k, s in enumerate(elems):
            if s.cond:
                self.emit(f"if {fill(s.cond, x=val, **self.c(s))}:", depth)
                depth += 1
            if s.kind == "map":
                new = fill(s.val, x=val, **self.c(s))
                if k + 1 < len(elems):  # later steps use the value: name it
                    tmp = self.names.fresh(("y", "z", "t", "tmp"), self.rng)
                    self.emit(f"{tmp} = {new}", depth)
                    val = tmp
                else:
                    val = new
        if red is not None:
            self.emit(fill(red.update, acc=out, v=val, **self.c(red)), depth)
            result = fill(red.result, acc=out)
        else:
            self.emit(f"{out} += {val}" if elems[-1].tout == "str" else f"{out}.append({val})", depth)
            result = out
        self.cur = result
        return True

    def whole_block(self, s: Step, last: bool) -> bool:
        options = list(s.blocks)
        finals = list(s.finals) if last else []
        if not options and not finals:
            return False
        use_final = finals and (not options or self.rng.random() < 0.7)
        tmpl = self.rng.choice(finals if use_final else options)
        src = self.as_name("values")
        extra = {"x": self.elem_var(s.tin) if s.tin in ELEMENT_NAMES else "item"}
        if "{y}" in tmpl:
            extra["y"] = self.names.fresh(("y", "other_item", "b"), self.rng)
        if "{i}" in tmpl:
            extra["i"] = self.index_var()
        if use_final:
            self.emit(fill(tmpl, e=src, **extra, **self.c(s)))
            self.cur = ""
            return True
        out = self.names.fresh(s.var)
        self.emit(fill(tmpl, e=src, out=out, **extra, **self.c(s)))
        self.cur = out
        return True

    # --- the whole body -----------------------------------------------------------------
    def body(self) -> list[str]:
        fuse = self.style != "expr" or self.rng.random() < 0.5
        segs = _segments(self.steps, fuse)
        for k, seg in enumerate(segs):
            last = k == len(segs) - 1
            if self.style == "loop" and self._loop_segment(seg, last):
                if self.cur == "":
                    return self.lines
                continue
            expr = self._expr_segment(seg)
            if expr is None:  # no expression form: write the loop
                if not self._loop_segment(seg, last):
                    raise ValueError(f"no way to write {[s.key for s in seg]}")
                if self.cur == "":
                    return self.lines
                continue
            if last:
                self.cur = expr
            elif self.style == "oneliner" and len(expr) < 60 and " for " not in expr:  # no nested comprehensions
                self.cur = expr
            else:
                v = self.names.fresh(seg[-1].var)
                self.emit(f"{v} = {expr}")
                self.cur = v
        self.emit(f"return {self.cur}")
        return self.lines

    def _loop_segment(self, seg: list[Step], last: bool) -> bool:
        if len(seg) == 1 and seg[0].kind == "whole":
            return self.whole_block(seg[0], last)
        if len(seg) == 1 and seg[0].kind == "reduce" and seg[0].finals and last and self.rng.random() < 0.7:
            return self.whole_block(seg[0], last)
        return self.run_loop(seg, last)

    def _expr_segment(self, seg: list[Step]) -> str | None:
        if len(seg) == 1 and seg[0].kind == "whole":
            return self.whole_expr(seg[0])
        return self.run_expr(seg)


def render_body(chain: Chain, const_exprs: list[list[str]], arg: str, taken: set[str], style: str,
                rng: random.Random, wild: tuple | None = None) -> list[str]:
    """Body lines (without indentation) computing ``chain`` on ``arg`` (``wild``: see :class:`Names`)."""
    stages = [BY_KEY[k] for k in chain]
    names = Names(set(taken) | {n for s in stages for t in _templates(s) for n in template_names(t)}, wild)
    steps = [Step(s, cs) for s, cs in zip(stages, const_exprs)]
    return Writer(steps, arg, names, style, rng).body()


def _templates(s: Step) -> list[str]:
    return [s.cond, s.val, *s.exprs, *s.blocks, *s.finals, s.init, s.update, s.result]


def reserved_names(chain: Chain) -> set[str]:
    """Names the chain's templates use on their own: arguments must not take them."""
    return {n for k in chain for t in _templates(BY_KEY[k]) for n in template_names(t)}
