"""Values the functions of the world are called with: random inputs, edge cases, the fixed
probe inputs that define a behaviour's signature, and names for arguments."""

from __future__ import annotations

import keyword
import random

WORDS = ("apple", "banana", "cherry", "data", "echo", "fox", "grape", "hello", "world", "python", "llama",
         "code", "test", "alpha", "beta", "sun", "moon", "tree", "river", "stone", "bird", "cat", "dog", "red",
         "blue", "green", "sky", "sea", "map", "key", "open", "idea", "under", "egg", "ice", "owl", "ant", "up",
         "in", "on", "a", "is", "an", "it", "art", "level", "noon", "radar", "book", "door", "tea", "zoo",
         "kite", "lemon", "mango", "night", "ocean", "piano", "queen", "rose", "table", "umbrella", "violin")

# Few names per role, on purpose: a 7M model trained for minutes learns what a name stands
# for only if it sees it often (world v1, with 8-11 names per type and 6 per element,
# wrote a plausible body with the wrong names 2 times out of 3). Made-up names
# (:func:`pseudo_word`, functions.PSEUDO_RATE) keep some pressure to copy.
ARG_NAMES = {
    "list": ("nums", "numbers", "values", "xs"),
    "str": ("s", "text", "word", "line"),
    "int": ("n", "x", "num"),
    "words": ("words", "names", "tokens"),
}
ELEMENT_NAMES = {"list": ("x", "v"), "str": ("ch", "c"), "words": ("w", "word")}
INDEX_NAMES = ("i", "j")


def random_list(rng: random.Random) -> list[int]:
    n = rng.choice((0, 1, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 8))
    if rng.random() < 0.7:
        return [rng.randint(-9, 9) for _ in range(n)]
    return [rng.randint(0, 20) for _ in range(n)]


def _word(rng: random.Random) -> str:
    w = rng.choice(WORDS)
    r = rng.random()
    if r < 0.15:
        w = w.capitalize()
    elif r < 0.18:
        w = w.upper()
    elif r < 0.23:
        w = w + str(rng.randint(0, 99))
    return w


def random_str(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.4:
        s = _word(rng)
    else:
        s = " ".join(_word(rng) for _ in range(rng.randint(2, 4)))
    if rng.random() < 0.08:
        s = " " * rng.randint(1, 2) + s + " " * rng.randint(0, 2)
    return s


def random_int(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.5:
        return rng.randint(-10, 20)
    if r < 0.8:
        return rng.randint(0, 12)
    return rng.randint(0, 120)


def random_words(rng: random.Random) -> list[str]:
    return [_word(rng) for _ in range(rng.choice((0, 1, 2, 3, 3, 4, 4, 5)))]


RANDOM = {"list": random_list, "str": random_str, "int": random_int, "words": random_words}

EDGES = {"list": ([], [0], [7], [-3], [2, 2]), "str": ("", "a", " ", "aa", "A"),
         "int": (0, 1, -1, 2, 10), "words": ([], ["a"], ["hello"])}


def _probe_set(kind: str, n: int) -> tuple:
    rng = random.Random(f"codeworld-probes-{kind}")
    out = list(EDGES[kind])
    extra = {"int": [-4, -3, -2, 3, 4, 5, 6, 7, 9, 12, 16, 27, 36, 100]}.get(kind, [])
    out += extra
    while len(out) < n + len(extra):
        v = RANDOM[kind](rng)
        if v not in out:
            out.append(v)
    return tuple(out)


# Inputs on which every behaviour is run to get its signature (name-free: what it computes).
PROBES = {kind: _probe_set(kind, 13) for kind in RANDOM}
# Values of a second-list argument, cycled over the probes.
PROBE_OTHER_LISTS = ([1, 2, 3], [0, -1, 5, 2, 2], [], [3, 3, 9, 1])


_ONSETS = "bdfgklmnprstvz"
_VOWELS = "aeiou"


def pseudo_word(rng: random.Random, syllables: tuple[int, int] = (1, 3)) -> str:
    """A made-up identifier ("vuzo", "tamrik"): a name no prior can guess, only copy."""
    while True:
        w = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + (rng.choice(_ONSETS) if rng.random() < 0.3 else "")
                    for _ in range(rng.randint(*syllables)))
        if not keyword.iskeyword(w) and w not in dir(__builtins__) and len(w) > 1:
            return w
