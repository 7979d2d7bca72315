"""Checking that training never contains a held-out program, three ways.

1. **By key** (:func:`check_plans`, fast, any number of documents): the behaviours a
   module's plan records contain no held-out stage and no held-out composition (as a whole
   or as a contiguous part), and neither they nor their prefixes have the signature of any
   held-out behaviour.
2. **By behaviour, from the text** (:func:`code_behaviours`): the functions of a rendered
   document are executed on the probe inputs; what the *code* computes, whatever its names,
   must agree with no held-out behaviour (:func:`computes_heldout`), and must agree with the
   recorded one, which proves the keys of check 1 describe the text.
3. **By text** (:func:`normalized_bodies`): function bodies with every local name replaced by
   a placeholder, compared with the bodies of held-out problems.
"""

from __future__ import annotations

import ast
import builtins
import copy
import multiprocessing
import resource
import signal
from functools import lru_cache
from typing import Iterable

from .chains import (BY_KEY, UNDEFINED, UNKNOWN, agrees, chain_types, contains_heldout, outputs, prefix_solves_heldout,
                     solves_heldout)
from .inputs import PROBE_OTHER_LISTS, PROBES

ANNOTATION_TYPES = {"int": "int", "list[int]": "list", "str": "str", "list[str]": "words", "bool": "bool"}


def plan_violations(plan: Iterable[tuple]) -> list[str]:
    """Reasons a module plan is contaminated (empty when clean)."""
    return [reason for chain, consts in plan for reason in behaviour_violations(chain, consts)]


@lru_cache(maxsize=None)
def behaviour_violations(chain: tuple, consts: tuple) -> tuple[str, ...]:
    """Reasons one behaviour may not be trained (checked once per behaviour: 10^5 modules
    hold ~3.5 x 10^5 behaviours, ~6 x 10^4 of them distinct)."""
    bad = []
    if contains_heldout(chain):
        bad.append(f"{chain}: contains a held-out stage or composition")
    for k in range(1, len(chain) + 1):
        if prefix_solves_heldout(chain[:k], consts[:k]):
            bad.append(f"{chain[:k]} {consts[:k]}: computes a held-out behaviour")
    return tuple(bad)


def check_plans(n: int, seed: int = 0) -> dict:
    """Check the plans of the first ``n`` training modules of ``seed``."""
    from .documents import plan_module
    behaviours = violations = 0
    for i in range(n):
        plan = plan_module(seed, i)
        behaviours += len(plan)
        violations += len(plan_violations(plan))
    return {"documents": n, "behaviours": behaviours, "violations": violations}


# CPU time one call of generated code may take on one probe (measured on 300 modules, 14,000
# calls: all but five return within 10 ms; those five build lists of 10^5-10^6 items, outside
# the world, where every reference is undefined, in up to 0.12 s). The calls cut are loops that
# never end, e.g. a Collatz walk from 0 or a countdown from a negative number.
CALL_SECONDS = 0.05


class _Slow(Exception):
    pass


_armed = False


def _alarm(signum, frame):
    # Python runs a signal handler at some later bytecode, not when the signal arrives: one
    # that arrives as a call ends must not raise after the call's ``try`` is left
    if _armed:
        raise _Slow


def _call(fn, args: list):
    """``fn(*args)``, or UNDEFINED if it raises or runs past :data:`CALL_SECONDS` of CPU time
    (a CPU-time timer, so that a machine busy with other jobs does not cut a call short)."""
    global _armed
    try:
        try:
            _armed = True
            signal.setitimer(signal.ITIMER_PROF, CALL_SECONDS)
            return fn(*args)
        finally:
            _armed = False
            signal.setitimer(signal.ITIMER_PROF, 0)
    except KeyboardInterrupt:
        raise
    except BaseException:  # MemoryError, _Slow (also raised in the finally above), anything the code raises
        return UNDEFINED


def _outputs_of(fn, tin: str, n_lists: int) -> tuple:
    outs = []
    for i, v in enumerate(PROBES[tin]):
        others = [list(PROBE_OTHER_LISTS[(i + j) % len(PROBE_OTHER_LISTS)]) for j in range(n_lists)]
        v = list(v) if isinstance(v, list) else v  # a copy: the probes are shared
        r = _call(fn, [v] + others)  # outside its domain, code may loop for long
        if isinstance(r, int) and not isinstance(r, bool) and abs(r) > 10**12:
            r = UNDEFINED
        outs.append(r)
    return tuple(outs)


def program_key(node: ast.FunctionDef) -> str | None:
    """The function's program up to the names of its arguments and local variables (the
    fingerprint :func:`normalized_bodies` compares): two functions with the same key compute
    the same thing. None when the function reads a name that is neither local nor a builtin
    (a module constant, another function, itself), or declares global or nested scopes:
    what it computes then depends on more than its own text."""
    local: set[str] = set()
    loads: set[str] = set()
    for n in ast.walk(node):
        if n is not node and isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda,
                                            ast.Global, ast.Nonlocal, ast.Import, ast.ImportFrom)):
            return None
        if isinstance(n, ast.arg):
            local.add(n.arg)
        elif isinstance(n, ast.Name):
            (loads if isinstance(n.ctx, ast.Load) else local).add(n.id)
        elif isinstance(n, ast.ExceptHandler) and n.name:
            local.add(n.name)
    if node.decorator_list or loads - local - set(dir(builtins)):
        return None
    return _normalized(node)


def _behaviours_here(sources: list[str]) -> list[dict]:
    # the child's limits: code run outside its domain may try to build a huge string
    resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, resource.getrlimit(resource.RLIMIT_AS)[1]))
    signal.signal(signal.SIGPROF, _alarm)
    by_program: dict[str, tuple] = {}  # the same program under other names is run once
    out = []
    for source in sources:
        tree = ast.parse(source)
        ns: dict = {}
        exec(compile(tree, "<module>", "exec"), ns)
        found = {}
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef) or not node.args.args or node.returns is None:
                continue
            kinds = [ANNOTATION_TYPES.get(ast.unparse(a.annotation)) if a.annotation else None
                     for a in node.args.args]
            tout = ANNOTATION_TYPES.get(ast.unparse(node.returns))
            if kinds[0] not in PROBES or tout is None or any(k != "list" for k in kinds[1:]):
                continue
            key = program_key(node)
            if key is None or key not in by_program:
                outs = _outputs_of(ns[node.name], kinds[0], len(kinds) - 1)
                if key is not None:
                    by_program[key] = outs
            found[node.name] = (kinds[0], tout, by_program[key] if key is not None else outs)
        out.append(found)
    return out


def code_behaviours(sources: list[str]) -> list[dict[str, tuple]]:
    """For each source, ``name -> (input type, output type, outputs on the probes)`` of every
    function whose arguments are the main input plus ``list[int]`` lists (functions with
    int/str parameters are families: skipped). Our own generated code, run in a forked child
    with a memory limit and a limit of :data:`CALL_SECONDS` of CPU time per call: on probes
    outside a function's domain its code may build a huge string or loop for long (that
    probe is then undefined)."""
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(1) as pool:
        return pool.apply(_behaviours_here, (list(sources),))


def computes_heldout(code: tuple) -> bool:
    """Does code with these ``(input type, output type, probe outputs)`` pass the tests of
    some held-out behaviour?"""
    return solves_heldout(*code)


def computes(code: tuple, behaviour: tuple) -> bool:
    """Does the code compute the recorded behaviour (wherever the behaviour is defined)?"""
    return code[:2] == behaviour[:2] and agrees(code[2], behaviour[2])


def recorded_behaviour(fn, loose: bool = False) -> tuple | None:
    """``(input type, output type, outputs)`` the generator recorded for a world function
    (None for families: functions with an int/str parameter); ``loose``: the outputs the
    decontamination check assumes its code has (see :func:`minillama.codeworld.chains.outputs`)."""
    if any(BY_KEY[fn.chain[st]].consts[sl].kind != "list" for st, sl in fn.params):
        return None
    return (*chain_types(fn.chain), outputs(fn.chain, fn.consts, loose))


def loose_matches_code(code: tuple, loose: tuple) -> bool:
    """The assumption the key check rests on: wherever the loose reference gives a value, the
    code gives the same one (UNKNOWN: the reference makes no claim)."""
    return code[:2] == loose[:2] and all(b == UNKNOWN or repr(a) == repr(b) for a, b in zip(code[2], loose[2]))


class _Rename(ast.NodeTransformer):
    def __init__(self):
        self.names: dict[str, str] = {}

    def _name(self, n: str) -> str:
        if n in dir(builtins):
            return n
        return self.names.setdefault(n, f"v{len(self.names)}")

    def visit_Name(self, node):
        node.id = self._name(node.id)
        return node

    def visit_arg(self, node):
        node.arg = self._name(node.arg)  # the annotation stays: a program's types are part of it
        return node


def _normalized(node: ast.FunctionDef) -> str:
    """A function's signature types and body (docstring dropped) with every name but the
    builtins' replaced in order of appearance (``node`` itself is left as it is)."""
    node = copy.deepcopy(node)
    body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    fn = ast.FunctionDef("f", node.args, body, [], node.returns, None)
    return ast.dump(_Rename().visit(ast.fix_missing_locations(fn)))


def normalized_bodies(source: str) -> set[str]:
    """Each function's signature types and body (docstring dropped) with every name replaced
    in order of appearance."""
    return {_normalized(node) for node in ast.parse(source).body if isinstance(node, ast.FunctionDef)}
