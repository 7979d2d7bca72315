"""World v4 and MiniEval's robustness tiers: held-out names and frames never reach training,
every perturbed problem is correct, paired with its source and perturbed as its tier says."""

import random
import re

import pytest

from minillama.codeworld import documents
from minillama.codeworld.documents import modules
from minillama.codeworld.minieval import check_problem, problems
from minillama.codeworld.names import HELDOUT_WORDS, heldout_name, heldout_pseudo, is_heldout_name, wild_name
from minillama.codeworld.phrasing import FRAMES
from minillama.codeworld.robustness import (PERTURBATIONS, identifiers, rename_identifiers, robustness_problems,
                                            source_problems)

N = 40  # problems per source tier in these tests (the tiers themselves use 150)


def _frame_prefix(frame: str) -> str:
    """The fixed words a frame starts with (up to its first placeholder)."""
    return frame.split("{", 1)[0].strip()


@pytest.fixture(scope="module")
def v4_docs():
    return documents(600, seed=0, world=4)


def test_world_v3_is_unchanged_by_the_v4_switch():
    # world=3 is the default and what MiniEval's tiers are written in
    assert documents(5, seed=0) == documents(5, seed=0, world=3)
    assert documents(5, seed=0, world=4) != documents(5, seed=0)


def test_worlds_v5_and_v6_are_v4_with_blended_names():
    # v4's stream is untouched by the switches; v5 draws blends where v4 drew English names, v6 where
    # v4 drew made-up ones
    from minillama.codeworld.names import _BLEND_HEADS, blend, known_words
    v4, v5, v6 = (documents(20, seed=0, world=w) for w in (4, 5, 6))
    assert len({tuple(v4), tuple(v5), tuple(v6)}) == 3 and documents(20, seed=0, world=4) == v4
    rng = random.Random(3)
    words = [blend(rng) for _ in range(3000)]
    assert not {w for w in words if is_heldout_name(w) or w in known_words()}
    assert all(any(w.startswith(h[:2]) for h in _BLEND_HEADS) for w in words)
    assert len(set(words)) > 2500  # an open pool, not a few memorisable words
    heads, known = {h[:3] for h in _BLEND_HEADS}, known_words()

    def blend_like(docs):  # name parts that start like a known word but are none
        parts = [p for d in docs for n in identifiers(d) for p in n.split("_")]
        return sum(p not in known and len(p) >= 4 and p[:3] in heads for p in parts) / len(parts)
    assert blend_like(v5) > 1.3 * blend_like(v4) and blend_like(v6) > 1.3 * blend_like(v4)

    def english_share(docs):  # v6 keeps v4's English names, v5 replaces half of them
        names = [n for d in docs for n in identifiers(d)]
        return sum(n.split("_")[-1] in known for n in names) / len(names)
    assert english_share(v5) < english_share(v6)


def test_heldout_names_are_never_drawn_for_training():
    rng = random.Random(0)
    drawn = {wild_name(rng, rng.choice(("one", "many"))) for _ in range(20000)}
    drawn |= {wild_name(rng, rng.choice(("one", "many")), blends=0.5, beside=b) for _ in range(10000)
              for b in (False, True)}
    assert not {n for n in drawn if is_heldout_name(n)}
    rng = random.Random(1)
    for _ in range(200):
        assert is_heldout_name(heldout_name(rng)) and is_heldout_name(heldout_pseudo(rng))


def test_heldout_words_are_not_words_the_world_knows():
    # a held-out English word that the world's own texts (templates, frames, pools) use would reach training
    from minillama.codeworld.names import HELDOUT_WORDS, known_words
    assert len(HELDOUT_WORDS) >= 50
    assert not set(HELDOUT_WORDS) & known_words()


def test_heldout_names_do_not_occur_in_training_documents(v4_docs):
    """Checked against the documents themselves: no held-out word and no identifier of the
    held-out bucket occurs anywhere in training text (v3 to v6 streams, copy documents)."""
    from minillama.codeworld import copy_documents
    text = "\n".join(v4_docs + documents(300, seed=0) + documents(300, seed=0, world=5)
                     + documents(300, seed=0, world=6) + copy_documents(200))
    words = {w.lower() for w in re.findall(r"[A-Za-z0-9]+", text)}  # "_"-joined parts apart too
    assert not words & set(HELDOUT_WORDS)
    tier_names = set()
    for kind in ("renamed", "combined"):
        for p in robustness_problems(kind).values():
            tier_names |= {part.lower() for n in identifiers(p["prompt"].splitlines()[0]) for part in n.split("_")}
    tier_names -= {"def", "int", "str", "list", "bool"}
    assert len(tier_names) > 500
    assert not words & tier_names, sorted(words & tier_names)[:10]
    code_names = {n for d in v4_docs for n in identifiers(d)}  # names in code, not in strings
    assert len(code_names) > 2000
    assert not {n for n in code_names if is_heldout_name(n)}


def test_heldout_frames_are_not_used_in_training(v4_docs):
    text = "\n".join(v4_docs)
    for frame in FRAMES["heldout"]["open"] + FRAMES["heldout"]["steps"]:
        prefix = _frame_prefix(frame)
        if len(prefix) > 4:
            assert prefix not in text, frame


def test_v4_names_come_from_open_pools(v4_docs):
    """Most arguments are not v3's pool names: only reading the signature gives them."""
    from minillama.codeworld.inputs import ARG_NAMES
    pool = {n for names in ARG_NAMES.values() for n in names}
    args = [a for d in v4_docs for a in re.findall(r"^def \w+\((\w+):", d, flags=re.M)]
    assert len(args) > 1000
    share = sum(a in pool for a in args) / len(args)
    assert 0.15 < share < 0.5, share
    assert len(set(args)) > 0.3 * len(args)


def test_v4_modules_run_their_own_asserts():
    for m in modules(60, seed=3, world=4):
        ns: dict = {}
        exec(m.text, ns)  # every function compiles, every assert line holds


def test_rename_identifiers_keeps_attributes_keywords_and_strings():
    code = "def f(key: str) -> int:\n    return sorted(key, key=len) + key.count('key')  # key\n"
    out = rename_identifiers(code, {"f": "g", "key": "zz", "count": "cc"})
    assert out == "def g(zz: str) -> int:\n    return sorted(zz, key=len) + zz.count('key')  # key\n"


@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_robustness_tiers_are_correct_and_paired(kind):
    probs = robustness_problems(kind, n=N)
    sources = source_problems(n=N)
    assert len(probs) == 2 * N
    for p in probs.values():
        src = sources[p["source"]]
        check_problem(p)  # the canonical solution passes the (unchanged) tests
        assert p["test"] == src["test"]
        renamed = kind in ("renamed", "combined")
        assert (p["entry_point"] != src["entry_point"]) == renamed
        sig = p["prompt"].splitlines()[0]
        if renamed:
            names = identifiers(sig) - {"def", "int", "str", "list", "bool"}
            assert names and all(is_heldout_name(n) for n in names), sig
        else:
            assert sig == src["prompt"].splitlines()[0]
        assert (">>>" in p["prompt"]) == (kind in ("renamed", "paraphrased"))
        if kind in ("paraphrased", "combined"):
            assert p["prompt"] != src["prompt"]


def test_renamed_prompts_say_the_new_names_only():
    for p in robustness_problems("renamed", n=N).values():
        src = source_problems(n=N)[p["source"]]
        old_args = identifiers(src["prompt"].splitlines()[0]) - {"def", "int", "str", "list", "bool"}
        doc = p["prompt"].split('"""')[1]
        for old in old_args - {src["entry_point"]}:
            # an old argument name may still be an English word of the sentence ("the list of words words")
            if not re.search(rf"\b{old}\b", src["prompt"].split('"""')[1].replace(old, "", 1)):
                assert not re.search(rf"(?<![\w']){old}(?![\w'])", doc.split(">>>")[0]) or old in (
                    "words", "text", "word", "line", "values", "numbers", "names", "tokens"), (old, doc)


def test_tiers_are_fixed_by_seed():
    a = robustness_problems("combined", n=10)
    b = robustness_problems("combined", n=10, seed=0)
    assert a == b
    assert list(problems("instances", n=10)) == [p["source"] for p in a.values()][:10]
