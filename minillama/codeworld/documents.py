"""Training documents: modules of several functions, some followed by a block of asserts.

A module is what one training document holds (``BOS … EOS``): 2-5 functions of the world,
two blank lines apart. Two additions serve later chapters:

* an **assert block** (half the modules): ``assert name(args) == value`` lines for functions
  defined above, values computed by running the reference. Self-instruct (notebook 05) asks
  the model to write tests that call a function by its name; this is where it learns how.
* **constant functions** (:data:`RETRIEVAL_SHARE` of the modules): a zero-argument function
  returning a two-digit number, defined among the others and checked at the end by
  ``assert name() == value``. The model can only finish that line by finding the definition
  and copying the value: key retrieval, in a surface different from the paper's App. G
  prompt (no ``my_function``, no distractor string, other names and wording), which is
  never trained.

Every document is a pure function of ``(seed, index)``: ``documents(10)`` is the first ten of
``documents(100)``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import lru_cache

from .chains import sample_training_behaviour
from .functions import WORLD_BLENDS, Function, make_function
from .inputs import pseudo_word
from .names import CONST_ADJ, CONST_DOCS, CONST_NOUN, wild_name

ASSERT_SHARE = 0.5
RETRIEVAL_SHARE = 0.12
N_FUNCTIONS = (2, 3, 3, 4, 4, 5)

@dataclass
class Part:
    """A top-level piece of a module: a world function, or a constant function."""
    text: str
    function: Function | None = None
    constant: tuple[str, int] | None = None  # (name, value) of a constant function


@dataclass
class Module:
    parts: list[Part]
    asserts: list[str] = field(default_factory=list)

    @property
    def functions(self) -> list[Function]:
        return [p.function for p in self.parts if p.function is not None]

    def without_constants(self) -> "Module":
        """The module with its constant functions and the asserts that call them removed:
        plain world code, in which a zero-argument function returning a number is never found."""
        names = {p.constant[0] for p in self.parts if p.constant is not None}
        return Module([p for p in self.parts if p.constant is None],
                      [a for a in self.asserts if not any(a.startswith(f"assert {n}()") for n in names)])

    @property
    def text(self) -> str:
        text = "\n\n".join(p.text for p in self.parts)
        if self.asserts:
            text += "\n\n" + "\n".join(self.asserts) + "\n"
        return text


def constant_function(rng: random.Random, taken: set[str]) -> Part:
    while True:
        adj, noun = rng.choice(CONST_ADJ), rng.choice(CONST_NOUN)
        name = f"{adj}_{noun}" if rng.random() < 0.8 else f"get_{adj}_{noun}"
        if name not in taken:
            break
    value = rng.randint(10, 99)
    words = f"{adj} {noun}"
    r = rng.random()
    if r < 0.4:
        body = [f'    """{rng.choice(CONST_DOCS).format(w=words)}"""', f"    return {value}"]
    elif r < 0.7:
        body = [f"    return {value}"]
    else:
        var = rng.choice(("value", "result", noun, "n"))
        body = [f"    {var} = {value}", f"    return {var}"]
    return Part("\n".join([f"def {name}() -> int:"] + body) + "\n", constant=(name, value))


def _assert_line(fn: Function, rng: random.Random) -> str | None:
    args = fn.random_args(rng)
    if args is None:
        return None
    return f"assert {fn.call_text(args)} == {fn.run(args)!r}"


def plan_module(seed: int, index: int) -> list[tuple]:
    """The behaviours ``(chain, consts)`` of module ``index``: drawn from their own RNG, so
    that checking what training contains needs no rendering (and a slot whose rendering
    fails is dropped, never redrawn)."""
    rng = random.Random(f"codeworld-plan-{seed}-{index}")
    return [sample_training_behaviour(rng) for _ in range(rng.choice(N_FUNCTIONS))]


def make_module(plan: list[tuple], rng: random.Random, excluded: frozenset[str] = frozenset(),
                world: int = 3) -> Module:
    """Render a planned module. ``excluded`` holds prompts (signature + docstring) that must
    not appear, e.g. those of the evaluation's `instances` tier. In world v4 the module first
    draws its own lexicon of a few names, which its functions share."""
    parts: list[Part] = []
    taken: set[str] = set()
    lexicon: tuple[str, ...] = ()
    if world >= 4:
        blends = WORLD_BLENDS.get(world, (0.0, False))
        lexicon = tuple(wild_name(rng, rng.choice(("one", "many")), taken, *blends) for _ in range(rng.randint(3, 6)))
    for chain, consts in plan:
        fn = None
        for _attempt in range(5):  # new names and wording, same behaviour
            fn = make_function(chain, consts, rng, taken=taken, world=world, lexicon=lexicon)
            if fn is not None and fn.prompt not in excluded:
                break
            fn = None
        if fn is None:
            continue
        taken.add(fn.name)
        parts.append(Part(fn.text, function=fn))
    asserts: list[str] = []
    if parts and rng.random() < ASSERT_SHARE:
        fns = [p.function for p in parts]
        for _ in range(rng.randint(2, 6)):
            line = _assert_line(rng.choice(fns), rng)
            if line and line not in asserts:
                asserts.append(line)
    if rng.random() < RETRIEVAL_SHARE:
        consts = [constant_function(rng, taken)]
        taken.add(consts[0].constant[0])
        if rng.random() < 0.5:  # a second constant: the model must match the name, not copy the last number
            consts.append(constant_function(rng, taken))
        for c in consts:
            parts.insert(rng.randint(0, len(parts)), c)
        name, value = rng.choice(consts).constant
        asserts.append(f"assert {name}() == {value}")
    return Module(parts, asserts)


@lru_cache(maxsize=1)
def _instance_prompts() -> frozenset[str]:
    from .minieval import problems  # the evaluation's unseen instances stay unseen
    return frozenset(p["prompt"] for p in problems("instances", n=500, seed=0).values())


def _render_rng(seed: int, i: int, world: int) -> random.Random:
    return random.Random(f"codeworld-render-{seed}-{i}" if world == 3 else f"codeworld-v{world}-render-{seed}-{i}")


def modules(n: int, seed: int = 0, start: int = 0, world: int = 3) -> list[Module]:
    """Modules ``start .. start+n`` of the stream for ``seed`` (``world``: 3 to 6, see
    :func:`~minillama.codeworld.functions.make_function`; the same behaviours in both)."""
    excluded = _instance_prompts()
    return [make_module(plan_module(seed, i), _render_rng(seed, i, world), excluded, world)
            for i in range(start, start + n)]


def documents(n: int, seed: int = 0, world: int = 3) -> list[str]:
    """``n`` training documents (module texts; the packer adds BOS and EOS around each)."""
    return [m.text for m in modules(n, seed, world=world)]


def copy_document(rng: random.Random) -> str:
    """A short module whose lines repeat a random sequence seen a few lines above (made-up
    words or numbers): nothing but looking back and copying predicts the repeat. A small
    share of these in training is the plainest signal for induction heads to form."""
    blocks = []
    for _ in range(rng.randint(2, 4)):
        a, b = pseudo_word(rng, (1, 2)), pseudo_word(rng, (1, 2))
        if a == b:
            continue
        if rng.random() < 0.5:
            items = [repr(pseudo_word(rng)) for _ in range(rng.randint(3, 9))]
        else:
            items = [str(rng.randint(0, 99)) for _ in range(rng.randint(3, 12))]
        seq = "[" + ", ".join(items) + "]"
        kind = rng.random()
        if kind < 0.4:
            blocks.append(f"{a} = {seq}\n{b} = {seq}\nassert {a} == {b}\n")
        elif kind < 0.7:
            blocks.append(f"{a} = {seq}\nassert {a} == {seq}\n")
        else:
            blocks.append(f"def {a}() -> list:\n    return {seq}\n\n\nassert {a}() == {seq}\n")
    return "\n\n".join(blocks)


def copy_documents(n: int, seed: int = 0) -> list[str]:
    return [copy_document(random.Random(f"codeworld-copy-{seed}-{i}")) for i in range(n)]
