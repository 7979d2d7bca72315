"""Saying what a chain does: docstring sentences and function names.

Two grammars, drawn per function: *nested* noun phrases ("Return the sum of the squares of
the even numbers in nums.") and *steps* ("Keep only the even numbers of nums, then square each
number in the result, and return the sum of the result."). Each stage has several phrasings,
so the same behaviour is worded many ways.

Three sets of sentence frames around them (:data:`FRAMES`):

* ``v3``: the frames of world v3 (four openings), which MiniEval's tiers are written in;
* ``v4``: many more, plain-English ones among them ("Write a function to find …", "Given the
  list xs, return …", a fallback such as "(0 if xs is empty)" where the reference says so),
  for world v4's training documents;
* ``heldout``: frames no training document uses, for MiniEval's ``paraphrased`` tier (held out
  the way ``compositions`` holds out behaviours: every word in them is trained elsewhere or is
  filler, only the frames are new).

Names are placed last (:func:`fill_names`): a description is written over placeholders, so the
same description can be given other names (MiniEval's ``renamed`` tier) without changing a word.
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


# --- frames -------------------------------------------------------------------------------
FRAMES = {
    "v3": {"open": OPENINGS, "steps": ("{a}, then {b}.", "{a}, then {b}, and {c}.", "First {a}. Then {b}. Finally, {c}.")},
    "v4": {"open": OPENINGS + ("Compute {np}.", "Calculate {np}.", "Find {np}.", "Get {np}.", "Compute and return {np}.",
                               "Write a function that returns {np}.", "Write a function to find {np}.",
                               "Write a python function to compute {np}.", "This function returns {np}.",
                               "{NP}.", "The result is {np}.", "Return {np} as the result.",
                               "Given {src}, return {np}.", "Given {src}, compute {np}.",
                               "Compute {np} and return it.", "This returns {np}.", "Returns: {np}.",
                               "The return value is {np}.", "Produces {np}.", "Gives {np}.", "Answer: {np}.",
                               "For {src}, return {np}."),
           "steps": ("{a}, then {b}.", "{a}, then {b}, and {c}.", "First {a}. Then {b}. Finally, {c}.",
                     "{a}; then {b}; {c}.", "Start here: {a_low}. Next, {b}. Last, {c}.",
                     "Given {src}: {a_low}, then {b}.", "Start here: {a_low}, then {b}.", "{a}, and after this {b}.",
                     "Step 1: {a_low}. Step 2: {b}.", "Step 1: {a_low}. Step 2: {b}. Step 3: {c}.",
                     "First, {a_low}. Second, {b}. Third, {c}.", "{a}. Next {b}. Then {c}.",
                     "{a}. Afterwards, {b}. Lastly, {c}.", "Do the following: {a_low}; {b}; {c}.",
                     "Given {src}, {a_low}, then {b}, then {c}.", "{a}. Now {b}.")},
    "heldout": {"open": ("Your task is to produce {np}.", "Determine {np}.", "Output {np}.", "Hand back {np}.",
                         "Work out {np} and return it.", "The function should give back {np}.",
                         "We want {np}.", "Figure out {np}.", "Take {src} and give back {np}.",
                         "{NP} is what this function returns."),
                "steps": ("To begin, {a_low}. After that, {b}. In the end, {c}.",
                          "{a}. Once that is done, {b}.", "Take {src}: {a_low}, and afterwards {b}.")},
}
GRAMMARS = tuple(FRAMES)
SOURCES = {  # how a frame names the input when it names it itself ("Given ...")
    "v4": {"list": ("the list {a}", "a list of integers {a}", "the list of numbers {a}"),
           "str": ("the string {a}", "a string {a}", "the text {a}"), "int": ("the number {a}", "an integer {a}"),
           "words": ("the list of words {a}", "a list of strings {a}")},
    "heldout": {"list": ("the sequence {a}", "the provided list {a}"), "str": ("the provided string {a}",),
                "int": ("the provided number {a}",), "words": ("the provided words {a}",)},
}
FALLBACKS = {"v4": (" ({v} if {a} is empty)", ", or {v} for an empty {kind}"),
             "heldout": (", and {v} when {a} has nothing in it",)}
KIND_WORD = {"list": "list", "str": "string", "words": "list"}

# placeholders the descriptions are written over (never in any text of the world)
ARG_MARK = "\x01a\x01"


def param_mark(k: int) -> str:
    return f"\x01p{k}\x01"


def fill_names(text: str, arg: str, params: tuple[str, ...] | list[str]) -> str:
    """Put the names into a description written over :data:`ARG_MARK` / :func:`param_mark`, then
    capitalise its first letter (a name may start the sentence)."""
    text = text.replace(ARG_MARK, arg)
    for k, p in enumerate(params):
        text = text.replace(param_mark(k), p)
    return _cap(text)


def _fmt(template: str, X: str, consts: list[str]) -> str:
    out = template.replace("{X}", X)
    for j, c in enumerate(consts):
        out = out.replace("{c%d}" % j, c)
    return out


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def describe(chain: Chain, const_phrases: list[list[str]], arg: str, rng: random.Random,
             grammar: str = "v3", fallback: str | None = None) -> str:
    """One sentence (or two) saying what the function returns, constants and argument names
    spelled out. ``grammar`` picks the frames (:data:`FRAMES`); ``v3`` is world v3's exactly.
    ``fallback``: the value of the function on an empty input, said by some ``v4``/``heldout``
    frames (the caller checks it is the reference's)."""
    if grammar != "v3":
        return _describe_framed(chain, const_phrases, arg, rng, grammar, fallback)
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


def _low(s: str) -> str:
    return s[:1].lower() + s[1:]


def _describe_framed(chain: Chain, const_phrases: list[list[str]], arg: str, rng: random.Random, grammar: str,
                     fallback: str | None) -> str:
    stages = [BY_KEY[k] for k in chain]
    tin = stages[0].tin
    frames = FRAMES[grammar]
    src = rng.choice(SOURCE_PHRASES[tin]).format(a=arg)
    given = rng.choice(SOURCES[grammar][tin]).format(a=arg)
    if len(stages) == 1 or (len(stages) == 2 and rng.random() < 0.7):
        np = src
        for s, cs in zip(stages, const_phrases):
            np = _fmt(rng.choice(s.nps), np, cs)
        if fallback is not None and tin in KIND_WORD and rng.random() < 0.5:
            np += rng.choice(FALLBACKS[grammar]).format(v=fallback, a=arg, kind=KIND_WORD[tin])
        frame = rng.choice(frames["open"])
        return _cap(frame.format(np=np, NP=_cap(np), src=given))
    clauses = [_fmt(rng.choice(stages[0].verbs), src, const_phrases[0])]
    for s, cs in zip(stages[1:-1], const_phrases[1:-1]):
        clauses.append(_fmt(rng.choice(s.verbs), "the result", cs))
    final = "return " + _fmt(rng.choice(stages[-1].nps), "the result", const_phrases[-1])
    options = [f for f in frames["steps"] if ("{c}" in f) == (len(clauses) == 2)]
    frame = rng.choice(options)
    parts = {"a": clauses[0], "a_low": _low(clauses[0]), "src": given}
    if len(clauses) == 1:
        parts["b"] = final
    else:
        parts["b"], parts["c"] = clauses[1], final
    return _cap(frame.format(**parts))


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
    return layout_doc(description, [f">>> {call}", result] if call else [], rng.random() < 0.8, width)


def layout_doc(description: str, example: list[str], blank: bool, width: int = 88) -> list[str]:
    """Docstring lines: the description wrapped, an optional blank line, the example lines."""
    lines = textwrap.wrap(description, width - 8) or [description]
    out = [f'    """{lines[0]}'] + [f"    {line}" for line in lines[1:]]
    if example:
        if blank:
            out.append("")
        out += [f"    {line}" for line in example]
        out.append('    """')
    else:
        out[-1] += '"""'
    return [line.rstrip() if line.strip() else "" for line in out]


EXAMPLE_FORMATS = (("{call}", "{result}"), ("Example: {call} -> {result}",), ("For example, {call} returns {result}.",))


def example_lines(call: str, result: str, rng: random.Random) -> list[str]:
    """World v4's examples: mostly a doctest, sometimes the example said in words."""
    r = rng.random()
    if r < 0.8:
        return [f">>> {call}", result]
    fmt = EXAMPLE_FORMATS[1] if r < 0.9 else EXAMPLE_FORMATS[2]
    return [fmt[0].format(call=call, result=result)]
