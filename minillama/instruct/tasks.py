"""A procedural generator of small programming tasks: the course's stand-in for Llama 2 70B.

The paper's self-instruct pipeline starts from ~62,000 interview questions written by a 70B
model. A 7M-parameter model cannot invent questions, so here a generator writes them from
*families* ("return the sum of a list", "reverse a string", ...). Each family is
parameterised by function name, argument name, wording and (for some) a constant, so one
family yields many distinct questions, and exact duplicates happen, as they do in the paper.

Every :class:`Task` carries a natural-language question, a function name and signature, a
reference solution and reference unit tests (``assert`` lines computed by running the
reference behaviour). Families are split into ``train`` and ``heldout`` at the family level,
so scores on held-out families measure generalisation to *kinds* of tasks never seen in
fine-tuning, not recall of a seen family with new constants.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any, Callable

# --- inputs ------------------------------------------------------------------------------
WORDS = ("apple", "banana", "cherry", "data", "echo", "fox", "grape", "hello", "world", "python",
         "llama", "code", "test", "alpha", "beta", "Zed", "Moon", "sun")
LIST_ARGS = ("xs", "nums", "values", "numbers", "items", "lst")
STR_ARGS = ("s", "text", "word", "line")
INT_ARGS = ("n", "x", "num", "value")


def _int_list(rng: random.Random, nonempty: bool) -> list[int]:
    return [rng.randint(-9, 9) for _ in range(rng.randint(1 if nonempty else 0, 6))]


def _string(rng: random.Random, nonempty: bool) -> str:
    words = rng.sample(WORDS, rng.randint(1, 2))
    s = " ".join(words) if rng.random() < 0.5 else words[0]
    return s


def _padded(rng: random.Random, nonempty: bool) -> str:
    return " " * rng.randint(0, 3) + _string(rng, nonempty) + " " * rng.randint(0, 3)


def _small_int(rng: random.Random, nonempty: bool) -> int:
    return rng.randint(-20, 20)


INPUTS: dict[str, Callable[[random.Random, bool], Any]] = {
    "list": _int_list, "str": _string, "padded": _padded, "int": _small_int}
ARG_NAMES = {"list": LIST_ARGS, "str": STR_ARGS, "padded": STR_ARGS, "int": INT_ARGS}


@dataclass(frozen=True)
class Family:
    """One kind of task. ``body`` and ``wordings`` are templates over ``{a}`` (the argument
    name) and ``{n}`` (the family's constant, if ``n_range`` is set); ``fn(value, n)`` is the
    reference behaviour used to compute expected outputs."""

    key: str
    kind: str  # input kind: list / str / padded / int
    names: tuple[str, ...]
    wordings: tuple[str, ...]
    body: str
    fn: Callable[[Any, int | None], Any]
    n_range: tuple[int, int] | None = None
    nonempty: bool = False  # inputs must be non-empty (max, first element, ...)
    split: str = "train"


def _f(key, kind, names, wordings, body, fn, n_range=None, nonempty=False, split="train"):
    return Family(key, kind, tuple(names), tuple(wordings), body, fn, n_range, nonempty, split)


# Train and held-out families come in loose pairs (min/max, first/last, upper/lower...), so a
# held-out family is new but not alien: what transfers is the format and the idioms.
FAMILIES: tuple[Family, ...] = (
    # --- train ---------------------------------------------------------------------------
    _f("sum_list", "list", ["sum_list", "total", "list_sum"],
       ["Return the sum of the numbers in the list {a}.", "Add up all the numbers in {a} and return the total."],
       "return sum({a})", lambda v, n: sum(v)),
    _f("max_list", "list", ["max_value", "largest", "find_max"],
       ["Return the largest number in the list {a}.", "Return the maximum of the list {a}."],
       "return max({a})", lambda v, n: max(v), nonempty=True),
    _f("first_elem", "list", ["first", "head", "first_element"],
       ["Return the first element of the list {a}.", "Return the element at index 0 of {a}."],
       "return {a}[0]", lambda v, n: v[0], nonempty=True),
    _f("reverse_str", "str", ["reverse", "reverse_string", "backwards"],
       ["Return the string {a} reversed.", "Return the characters of {a} in reverse order."],
       "return {a}[::-1]", lambda v, n: v[::-1]),
    _f("upper_str", "str", ["to_upper", "shout", "upper"],
       ["Return the string {a} in upper case.", "Convert {a} to uppercase and return it."],
       "return {a}.upper()", lambda v, n: v.upper()),
    _f("strip_str", "padded", ["strip", "trim", "clean"],
       ["Return {a} without leading and trailing spaces.", "Strip the whitespace from both ends of {a}."],
       "return {a}.strip()", lambda v, n: v.strip()),
    _f("is_even", "int", ["is_even", "even"],
       ["Return True if {a} is even, else False.", "Return whether the integer {a} is even."],
       "return {a} % 2 == 0", lambda v, n: v % 2 == 0),
    _f("add_n_each", "list", ["add_{n}", "add_to_each", "shift"],
       ["Return a new list with {n} added to each element of {a}.", "Add {n} to every number in {a} and return the list."],
       "return [x + {n} for x in {a}]", lambda v, n: [x + n for x in v], n_range=(1, 9)),
    _f("filter_positive", "list", ["positives", "keep_positive", "filter_positive"],
       ["Return the positive numbers of {a}, in order.", "Return a list of the elements of {a} that are greater than 0."],
       "return [x for x in {a} if x > 0]", lambda v, n: [x for x in v if x > 0]),
    _f("count_x", "list", ["count_{n}", "how_many", "count_value"],
       ["Return how many times {n} occurs in the list {a}.", "Count the occurrences of {n} in {a}."],
       "return {a}.count({n})", lambda v, n: v.count(n), n_range=(-3, 3)),
    _f("sort_list", "list", ["sort_list", "sorted_copy", "ascending"],
       ["Return the numbers of {a} sorted in increasing order.", "Return a sorted copy of the list {a}."],
       "return sorted({a})", lambda v, n: sorted(v)),
    _f("square", "int", ["square", "squared"],
       ["Return the square of {a}.", "Return {a} multiplied by itself."],
       "return {a} * {a}", lambda v, n: v * v),
    _f("add_n", "int", ["add_{n}", "plus_{n}", "increment"],
       ["Return {a} plus {n}.", "Add {n} to the number {a} and return the result."],
       "return {a} + {n}", lambda v, n: v + n, n_range=(1, 9)),
    _f("is_empty", "list", ["is_empty", "empty"],
       ["Return True if the list {a} is empty, else False.", "Return whether {a} has no elements."],
       "return len({a}) == 0", lambda v, n: len(v) == 0),
    _f("str_len", "str", ["length", "str_len", "count_chars"],
       ["Return the number of characters in {a}.", "Return the length of the string {a}."],
       "return len({a})", lambda v, n: len(v)),
    _f("negate", "int", ["negate", "opposite"],
       ["Return the negation of {a}.", "Return {a} with its sign flipped."],
       "return -{a}", lambda v, n: -v),
    _f("contains_x", "list", ["contains_{n}", "has_{n}", "contains"],
       ["Return True if {n} is in the list {a}, else False.", "Return whether {a} contains the number {n}."],
       "return {n} in {a}", lambda v, n: n in v, n_range=(-3, 3)),
    _f("double_each", "list", ["double", "double_all", "twice"],
       ["Return a new list with every element of {a} doubled.", "Multiply each number in {a} by 2 and return the list."],
       "return [x * 2 for x in {a}]", lambda v, n: [x * 2 for x in v]),
    _f("split_words", "str", ["split_words", "words", "tokenize"],
       ["Return the list of words in {a}, split on whitespace.", "Split the string {a} into words and return them."],
       "return {a}.split()", lambda v, n: v.split()),
    _f("remove_spaces", "str", ["remove_spaces", "squash", "no_spaces"],
       ["Return {a} with all spaces removed.", "Remove every space character from {a} and return the result."],
       "return {a}.replace(' ', '')", lambda v, n: v.replace(" ", "")),
    _f("sum_squares", "list", ["sum_squares", "square_sum"],
       ["Return the sum of the squares of the numbers in {a}.", "Square each number in {a} and return the total."],
       "return sum(x * x for x in {a})", lambda v, n: sum(x * x for x in v)),
    # --- held out ----------------------------------------------------------------------
    _f("min_list", "list", ["min_value", "smallest", "find_min"],
       ["Return the smallest number in the list {a}.", "Return the minimum of the list {a}."],
       "return min({a})", lambda v, n: min(v), nonempty=True, split="heldout"),
    _f("last_elem", "list", ["last", "tail", "last_element"],
       ["Return the last element of the list {a}.", "Return the final element of {a}."],
       "return {a}[-1]", lambda v, n: v[-1], nonempty=True, split="heldout"),
    _f("len_list", "list", ["count", "size", "list_len"],
       ["Return the number of elements in the list {a}.", "Return the length of the list {a}."],
       "return len({a})", lambda v, n: len(v), split="heldout"),
    _f("lower_str", "str", ["to_lower", "lower", "quiet"],
       ["Return the string {a} in lower case.", "Convert {a} to lowercase and return it."],
       "return {a}.lower()", lambda v, n: v.lower(), split="heldout"),
    _f("is_odd", "int", ["is_odd", "odd"],
       ["Return True if {a} is odd, else False.", "Return whether the integer {a} is odd."],
       "return {a} % 2 == 1", lambda v, n: v % 2 == 1, split="heldout"),
    _f("subtract_n_each", "list", ["subtract_{n}", "minus_each", "lower_all"],
       ["Return a new list with {n} subtracted from each element of {a}.", "Subtract {n} from every number in {a} and return the list."],
       "return [x - {n} for x in {a}]", lambda v, n: [x - n for x in v], n_range=(1, 9), split="heldout"),
    _f("filter_negative", "list", ["negatives", "keep_negative", "filter_negative"],
       ["Return the negative numbers of {a}, in order.", "Return a list of the elements of {a} that are less than 0."],
       "return [x for x in {a} if x < 0]", lambda v, n: [x for x in v if x < 0], split="heldout"),
    _f("multiply_n", "int", ["times_{n}", "multiply", "scale"],
       ["Return {a} multiplied by {n}.", "Multiply the number {a} by {n} and return the result."],
       "return {a} * {n}", lambda v, n: v * n, n_range=(2, 9), split="heldout"),
    _f("abs_value", "int", ["absolute", "abs_value", "magnitude"],
       ["Return the absolute value of {a}.", "Return {a} without its sign."],
       "return abs({a})", lambda v, n: abs(v), split="heldout"),
    _f("is_positive", "int", ["is_positive", "positive"],
       ["Return True if {a} is greater than 0, else False.", "Return whether the number {a} is positive."],
       "return {a} > 0", lambda v, n: v > 0, split="heldout"),
    _f("triple_each", "list", ["triple", "triple_all", "thrice"],
       ["Return a new list with every element of {a} tripled.", "Multiply each number in {a} by 3 and return the list."],
       "return [x * 3 for x in {a}]", lambda v, n: [x * 3 for x in v], split="heldout"),
    _f("reverse_list", "list", ["reverse_list", "reversed_copy", "flip"],
       ["Return the elements of the list {a} in reverse order.", "Return a reversed copy of the list {a}."],
       "return {a}[::-1]", lambda v, n: v[::-1], split="heldout"),
    _f("greater_than_n", "list", ["above_{n}", "greater_than", "filter_big"],
       ["Return the elements of {a} that are greater than {n}, in order.", "Keep only the numbers in {a} larger than {n}."],
       "return [x for x in {a} if x > {n}]", lambda v, n: [x for x in v if x > n], n_range=(0, 5), split="heldout"),
    _f("title_str", "str", ["title_case", "capitalize_words", "titled"],
       ["Return {a} with the first letter of every word in upper case.", "Convert {a} to title case and return it."],
       "return {a}.title()", lambda v, n: v.title(), split="heldout"),
)
FAMILY_BY_KEY = {f.key: f for f in FAMILIES}
SPLITS = ("train", "heldout")


def families(split: str | None = None) -> list[Family]:
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    return [f for f in FAMILIES if split is None or f.split == split]


@dataclass(frozen=True)
class Task:
    task_id: str
    family: str
    entry_point: str  # the function name
    signature: str  # "def name(arg):"
    question: str  # the natural-language instruction
    solution: str  # reference implementation, a complete function
    tests: tuple[str, ...] = field(default_factory=tuple)  # reference ``assert`` lines

    @property
    def test_code(self) -> str:
        return "\n".join(self.tests) + "\n"


def make_task(family: Family, rng: random.Random, n_tests: int = 5) -> Task:
    """One task of ``family`` with name, argument, wording and constant drawn from ``rng``."""
    n = rng.randint(*family.n_range) if family.n_range else None
    fmt = {"n": n}
    name = rng.choice(family.names).format(**fmt).replace("-", "neg")
    arg = rng.choice(ARG_NAMES[family.kind])
    fmt["a"] = arg
    wording = rng.choice(family.wordings).format(**fmt)
    signature = f"def {name}({arg}):"
    question = f"Write a function {name}({arg}). {wording}"
    solution = f"{signature}\n    {family.body.format(**fmt)}\n"
    inputs, seen = [], set()
    for _ in range(20 * n_tests):  # distinct inputs; small input spaces may give fewer
        v = INPUTS[family.kind](rng, family.nonempty)
        if repr(v) not in seen:
            seen.add(repr(v))
            inputs.append(v)
        if len(inputs) == n_tests:
            break
    tests = tuple(f"assert {name}({v!r}) == {family.fn(v, n)!r}" for v in inputs)
    digest = hashlib.sha1(question.encode()).hexdigest()[:8]
    return Task(f"{family.key}/{digest}", family.key, name, signature, question, solution, tests)


def generate_tasks(n: int, split: str = "train", seed: int = 0, n_tests: int = 5,
                   unique: bool = False, exclude: set[str] | None = None) -> list[Task]:
    """``n`` tasks drawn from the families of ``split``, round-robin over families (so every
    family is represented) with a seeded RNG: the same arguments give the same tasks.

    ``unique=True`` skips questions already drawn (for evaluation sets); the default keeps the
    duplicates a real question writer produces. ``exclude`` skips given question texts (to
    make an evaluation set of *unseen* instances of training families)."""
    fams = families(split)
    rng = random.Random(f"{split}-{seed}")
    seen = set(exclude or ())
    out: list[Task] = []
    for attempt in range(200 * n + 100):
        if len(out) == n:
            break
        task = make_task(fams[attempt % len(fams)], rng, n_tests)
        if task.question in seen:
            continue
        if unique:
            seen.add(task.question)
        out.append(task)
    if len(out) < n:
        raise ValueError(f"only {len(out)} distinct tasks found for split {split!r}; ask for fewer")
    return out


def check_reference(task: Task) -> None:
    """Run the reference solution against its tests in-process (our own, trusted code)."""
    namespace: dict = {}
    exec(task.solution, namespace)
    exec(task.test_code, namespace)
