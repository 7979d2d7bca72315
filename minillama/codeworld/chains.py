"""Chains of stages: what a function of the world computes, its signature, and the tiers.

A *behaviour* is a chain of stage keys plus the constants of each stage, e.g.
``(("keep_gt", "square", "sum"), ((3,), (), ()))``. Its *signature* is a hash of its
outputs on fixed probe inputs: two programs with the same signature compute the same thing,
whatever their names and however they are written. Decontamination is checked on
signatures, so it holds "by behaviour, not only by text".

Tiers, fixed in code:

* ``primitives``: stages marked ``heldout`` are never trained (the negative control).
* ``compositions``: chains of depth 2-3 of trained stages whose key hashes into the held-out
  bucket (:data:`HELDOUT_PERMILLE`). Training never uses such a chain, nor any chain that
  contains one as a contiguous part, nor any behaviour whose signature equals one of theirs.
* ``instances``: everything else, the training distribution itself.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from functools import lru_cache
from typing import Iterable

from . import stages_int, stages_list, stages_text
from .inputs import PROBE_OTHER_LISTS, PROBES, RANDOM
from .stage import Stage, Undefined, lenient

ALL_STAGES: tuple[Stage, ...] = tuple(stages_list.STAGES + stages_int.STAGES + stages_text.STAGES)
BY_KEY: dict[str, Stage] = {s.key: s for s in ALL_STAGES}
assert len(BY_KEY) == len(ALL_STAGES), "stage keys must be unique"
SOURCE_TYPES = ("list", "str", "int", "words")
SOURCE_WEIGHTS = (0.36, 0.30, 0.20, 0.14)
HELDOUT_PRIMITIVES = tuple(sorted(s.key for s in ALL_STAGES if s.heldout))
# share (per mille) of the depth-2 / depth-3 chains held out as unseen compositions: ~150 and
# ~360 chains, enough distinct chains for the tier, few enough to check every constant
HELDOUT_PERMILLE = {2: 30, 3: 2}
MAX_DEPTH = 3

Chain = tuple[str, ...]
Consts = tuple[tuple, ...]


@lru_cache(maxsize=None)
def stages_from(tin: str, final: bool, trained: bool | None = True) -> tuple[Stage, ...]:
    """Stages that can follow a value of type ``tin``; ``bool`` only ends a chain."""
    return tuple(s for s in ALL_STAGES if s.tin == tin and (final or s.tout != "bool")
                 and (trained is None or s.heldout != trained))


def chain_types(chain: Chain) -> tuple[str, str]:
    return BY_KEY[chain[0]].tin, BY_KEY[chain[-1]].tout


def apply(chain: Chain, consts: Consts, value, others: Iterable = ()):
    """Run a behaviour on ``value``; ``others`` feed the list-valued constants in order.
    Raises :class:`Undefined` (or any error) outside its domain."""
    others = iter(others)
    for key, cs in zip(chain, consts):
        stage = BY_KEY[key]
        args = [next(others) if c.kind == "list" else v for c, v in zip(stage.consts, cs)]
        value = stage.fn(value, *args)
    return value


def _safe(chain: Chain, consts: Consts, value, others=()):
    try:
        out = apply(chain, consts, value, others)
    except (Undefined, ValueError, IndexError, ZeroDivisionError, TypeError, OverflowError):
        return "<undefined>"
    if isinstance(out, int) and not isinstance(out, bool) and abs(out) > 10**12:
        return "<undefined>"
    return out


@lru_cache(maxsize=None)
def n_list_consts(chain: Chain) -> int:
    return sum(c.kind == "list" for k in chain for c in BY_KEY[k].consts)


UNDEFINED = "<undefined>"
UNKNOWN = "<unknown>"  # loose outputs: the reference stops here, the code may compute anything
_ERRORS = (Undefined, ValueError, IndexError, ZeroDivisionError, TypeError, OverflowError)


@lru_cache(maxsize=None)
def outputs(chain: Chain, consts: Consts, loose: bool = False) -> tuple:
    """Outputs on the probe inputs of the chain's input type (``"<undefined>"`` where it
    fails). ``loose``: without the references' domain checks, i.e. what the code computes.
    Built step by step from the prefix's outputs, which are cached: a chain costs one
    stage's work once its prefix is known."""
    tin = BY_KEY[chain[0]].tin
    if len(chain) == 1:
        values = PROBES[tin]
        first_list = 0
    else:
        values = outputs(chain[:-1], consts[:-1], loose)
        first_list = n_list_consts(chain[:-1])
    if loose:
        with lenient():
            return _step(chain, consts, values, first_list, True)
    return _step(chain, consts, values, first_list, False)


def _step(chain: Chain, consts: Consts, values: tuple, first_list: int, loose: bool) -> tuple:
    stage, cs = BY_KEY[chain[-1]], consts[-1]
    out = []
    for i, v in enumerate(values):
        if v in (UNDEFINED, UNKNOWN):
            out.append(v)
            continue
        j = first_list
        args = []
        for c, val in zip(stage.consts, cs):
            if c.kind == "list":  # the j-th list argument of the chain, cycled over the probes
                val = PROBE_OTHER_LISTS[(i + j) % len(PROBE_OTHER_LISTS)]
                j += 1
            args.append(val)
        try:
            r = stage.fn(v, *args)
        except _ERRORS:
            # strict: outside the domain. loose: the reference gives up (a safety limit, or an
            # error a rendering may not raise, like ``s[:1]`` where the reference has ``s[0]``)
            r = UNKNOWN if loose else UNDEFINED
        if isinstance(r, int) and not isinstance(r, bool) and abs(r) > 10**12:
            # strict: outside the world. loose: the code goes on with it (a later step may
            # bring it back, e.g. to its number of digits): make no claim
            r = UNKNOWN if loose else UNDEFINED
        out.append(r)
    return tuple(out)


@lru_cache(maxsize=None)
def signature(chain: Chain, consts: Consts) -> str:
    """What a behaviour computes, independent of names and of how it is written."""
    tin, tout = chain_types(chain)
    return hashlib.sha1(repr((tin, tout, outputs(chain, consts))).encode()).hexdigest()[:16]


def const_choices(chain: Chain) -> list[Consts]:
    """Every constant assignment of a chain (list constants are arguments, marked None)."""
    per_stage = []
    for key in chain:
        slots = [c.values if c.kind != "list" else (None,) for c in BY_KEY[key].consts]
        per_stage.append(list(itertools.product(*slots)))
    return [tuple(p) for p in itertools.product(*per_stage)]


def agrees(code: tuple, behaviour: tuple) -> bool:
    """Could ``code`` pass every test of ``behaviour``? Both are probe outputs of the same
    input; equal (same repr: True is not 1) wherever the behaviour is defined, an UNKNOWN
    code output counting as equal (the check errs on the side of "yes")."""
    for a, b in zip(code, behaviour):  # a loop, not all(...): called ~10^6 times by the key check
        if not (b == UNDEFINED or a == UNKNOWN or (a != UNDEFINED and repr(a) == repr(b))):
            return False
    return True


@lru_cache(maxsize=None)
def is_valid(chain: Chain, consts: Consts) -> bool:
    """Defined on enough probes, not constant, and not doing the same, on its domain, as the
    chain with one stage removed (``sort -> sum`` is just ``sum``; ``triangle -> sign`` is
    ``sign`` on non-negative numbers) or as nothing at all."""
    outs = outputs(chain, consts)
    defined = [o for o in outs if o != UNDEFINED]
    if len(defined) < 5 or len({repr(o) for o in defined}) < 2:
        return False
    tin, tout = chain_types(chain)
    if tin == tout and agrees(PROBES[tin], outs):
        return False
    for drop in range(len(chain)):
        sub = chain[:drop] + chain[drop + 1:]
        if not sub or not _typed(sub) or chain_types(sub) != (tin, tout):
            continue
        if agrees(outputs(sub, consts[:drop] + consts[drop + 1:], True), outs):
            return False
    return True


def _typed(chain: Chain) -> bool:
    return all(BY_KEY[a].tout == BY_KEY[b].tin for a, b in zip(chain, chain[1:]))


def all_chains(depth: int, trained: bool = True) -> list[Chain]:
    """Every well-typed chain of ``depth`` stages (trained stages only, or with at least one
    held-out stage when ``trained`` is False), in a fixed order."""
    out: list[Chain] = []

    def grow(prefix: Chain, tin: str):
        if len(prefix) == depth:
            if trained or any(BY_KEY[k].heldout for k in prefix):
                out.append(prefix)
            return
        for s in stages_from(tin, len(prefix) == depth - 1, trained=True if trained else None):
            grow(prefix + (s.key,), s.tout)

    for t in SOURCE_TYPES:
        grow((), t)
    return out


def heldout_bucket(chain: Chain) -> bool:
    h = hashlib.sha256(("codeworld-heldout-v1:" + "|".join(chain)).encode()).hexdigest()
    return int(h[:8], 16) % 1000 < HELDOUT_PERMILLE.get(len(chain), 0)


def _valid_consts(chain: Chain, limit: int | None = None) -> list[Consts]:
    choices = const_choices(chain)
    return [c for c in choices[:limit] if is_valid(chain, c)]


def _candidate_compositions() -> list[Chain]:
    return [c for d in (2, 3) for c in all_chains(d) if heldout_bucket(c) and _valid_consts(c)]


@lru_cache(maxsize=1)
def heldout_compositions() -> tuple[Chain, ...]:
    """The held-out chains: in the bucket, valid for some constants, and not solved by a
    single trained stage (such a chain is no new composition, and holding it out would
    remove that stage from training)."""
    cands = _candidate_compositions()
    index = _Index((c, k) for c in cands for k in _valid_consts(c))
    solved = set()
    for s in ALL_STAGES:
        if not s.heldout:
            for k in const_choices((s.key,)):
                solved |= {chain for chain, _ in index.covered_by(s.tin, s.tout, outputs((s.key,), k, True))}
    return tuple(c for c in cands if c not in solved)


class _Index:
    """Behaviours ``(chain, consts)`` filed under two *anchors*, their last two defined probes
    (random inputs, whose outputs vary most), keyed by the anchors' positions and the values
    there, to answer "could this code pass every test of some indexed behaviour?" without
    comparing it with all of them. A behaviour the code agrees with has, at each anchor,
    either the code's value or a probe where the code is UNKNOWN: one of four lookups finds it."""

    def __init__(self, behaviours):
        self.table: dict[tuple, list] = {}
        self.anchors: dict[tuple[str, str], set[tuple[int, int]]] = {}  # anchor positions in use, by type
        for chain, consts in behaviours:
            outs = outputs(chain, consts)
            t = chain_types(chain)
            a1, a2 = [j for j, o in enumerate(outs) if o != UNDEFINED][-2:]
            v1, v2 = repr(outs[a1]), repr(outs[a2])
            item = (chain, consts, outs)
            self.anchors.setdefault(t, set()).add((a1, a2))
            for key in ((a1, v1, a2, v2), (a1, v1, a2, UNKNOWN), (a1, UNKNOWN, a2, v2), (a1, UNKNOWN, a2, UNKNOWN)):
                self.table.setdefault((*t, *key), []).append(item)
        self.anchors_sorted = {t: sorted(pairs) for t, pairs in self.anchors.items()}

    def covered_by(self, tin: str, tout: str, code: tuple) -> list[tuple[Chain, Consts]]:
        # only anchor pairs where the code is usable (not UNDEFINED) can hold a behaviour it
        # agrees with; the few pairs in use are tried, not every pair of probes
        cands: dict[int, tuple] = {}
        for i, j in self.anchors_sorted.get((tin, tout), ()):
            a, b = code[i], code[j]
            if a == UNDEFINED or b == UNDEFINED:
                continue
            vi = UNKNOWN if a == UNKNOWN else repr(a)
            vj = UNKNOWN if b == UNKNOWN else repr(b)
            for item in self.table.get((tin, tout, i, vi, j, vj), ()):
                cands[id(item)] = item
        return [(chain, consts) for chain, consts, outs in cands.values() if agrees(code, outs)]


@lru_cache(maxsize=1)
def heldout_primitive_chains() -> tuple[Chain, ...]:
    """Chains of depth 1-2 with a held-out stage: the `primitives` tier draws from these."""
    out = []
    for depth in (1, 2):
        for chain in all_chains(depth, trained=False):
            if sum(BY_KEY[k].heldout for k in chain) == 1 and _valid_consts(chain):
                out.append(chain)
    return tuple(out)


@lru_cache(maxsize=1)
def heldout_index() -> _Index:
    """Every behaviour of every held-out chain (all constants): none may be trained."""
    return _Index((c, k) for c in heldout_compositions() + heldout_primitive_chains() for k in _valid_consts(c))


def solves_heldout(tin: str, tout: str, code: tuple) -> bool:
    """Could code with these probe outputs pass the tests of some held-out behaviour?"""
    return bool(heldout_index().covered_by(tin, tout, code))


@lru_cache(maxsize=None)
def prefix_solves_heldout(chain: Chain, consts: Consts) -> bool:
    """Could the code of this behaviour (run without domain checks) pass the tests of a
    held-out behaviour?"""
    return solves_heldout(BY_KEY[chain[0]].tin, BY_KEY[chain[-1]].tout, outputs(chain, consts, True))


def contains_heldout(chain: Chain) -> bool:
    """True if a held-out stage or a held-out composition (as a contiguous part) is in ``chain``."""
    if any(BY_KEY[k].heldout for k in chain):
        return True
    held = _heldout_set()
    return any(chain[a:b] in held for a in range(len(chain)) for b in range(a + 2, len(chain) + 1))


@lru_cache(maxsize=1)
def _heldout_set() -> frozenset[Chain]:
    return frozenset(heldout_compositions())


@lru_cache(maxsize=None)
def trainable(chain: Chain, consts: Consts) -> bool:
    """May this behaviour appear in training? Valid, no held-out part by key, and neither it
    nor any of its prefixes (the program's intermediate values), run as code (without the
    references' domain checks), passes the tests of a held-out behaviour."""
    if not is_valid(chain, consts) or contains_heldout(chain):
        return False
    return not any(prefix_solves_heldout(chain[:k], consts[:k]) for k in range(1, len(chain) + 1))


def trainable_family(chain: Chain, consts: Consts, slot: tuple[int, int]) -> bool:
    """A constant that becomes an argument covers every value of its range: all must be trainable."""
    stage, j = slot
    values = BY_KEY[chain[stage]].consts[j].values
    for v in values:
        cs = list(map(list, consts))
        cs[stage][j] = v
        cs = tuple(map(tuple, cs))
        if is_valid(chain, cs) and not trainable(chain, cs):
            return False
    return True


DEPTH_WEIGHTS = {1: 0.35, 2: 0.45, 3: 0.2}


def random_chain(rng: random.Random, depth: int, trained: bool = True) -> Chain | None:
    """A random well-typed chain (a random walk over stages); None at a dead end."""
    t = rng.choices(SOURCE_TYPES, SOURCE_WEIGHTS)[0]
    chain: list[str] = []
    for k in range(depth):
        options = stages_from(t, k == depth - 1, trained=True if trained else None)
        if not options:
            return None
        s = rng.choice(options)
        chain.append(s.key)
        t = s.tout
    return tuple(chain)


def random_consts(rng: random.Random, chain: Chain) -> Consts:
    return tuple(tuple(rng.choice(c.values) if c.kind != "list" else None for c in BY_KEY[k].consts)
                 for k in chain)


def in_training_pool(chain: Chain) -> bool:
    """Depth-3 chains are too many (~180k) to each be seen in a short training run, so
    training draws them from a fixed pool of ~1.5 % of them: an `instances` problem of depth 3
    is then a chain training has seen several times, not a new composition in disguise."""
    if len(chain) < 3:
        return True
    h = hashlib.sha256(("codeworld-pool-v1:" + "|".join(chain)).encode()).hexdigest()
    return int(h[:8], 16) % 1000 < DEPTH3_POOL_PERMILLE


DEPTH3_POOL_PERMILLE = 15


@lru_cache(maxsize=1)
def depth3_pool() -> dict[str, tuple[Chain, ...]]:
    """The depth-3 training pool by input type (held-out parts removed)."""
    pool = [c for c in all_chains(3) if in_training_pool(c) and not contains_heldout(c)]
    return {t: tuple(c for c in pool if BY_KEY[c[0]].tin == t) for t in SOURCE_TYPES}


def sample_training_behaviour(rng: random.Random, depth: int | None = None) -> tuple[Chain, Consts]:
    """A behaviour of the training distribution (rejection sampling over random walks)."""
    d = depth or rng.choices(list(DEPTH_WEIGHTS), list(DEPTH_WEIGHTS.values()))[0]
    for _ in range(100_000):
        if d == 3:
            pool = depth3_pool()[rng.choices(SOURCE_TYPES, SOURCE_WEIGHTS)[0]]
            chain = pool[rng.randrange(len(pool))]
        else:
            chain = random_chain(rng, d)
        if chain is None:
            continue
        consts = random_consts(rng, chain)
        if trainable(chain, consts):
            return chain, consts
    raise RuntimeError("could not sample a trainable behaviour")


def random_input(rng: random.Random, chain: Chain, consts: Consts, tries: int = 200):
    """``(value, others)`` on which the behaviour is defined, or None."""
    tin = BY_KEY[chain[0]].tin
    k = n_list_consts(chain)
    for _ in range(tries):
        v = RANDOM[tin](rng)
        others = [RANDOM["list"](rng) for _ in range(k)]
        if _safe(chain, consts, v, others) != "<undefined>":
            return v, others
    return None
