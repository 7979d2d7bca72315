"""Decontamination: no held-out program appears in training, by key on 10^5 documents, by
behaviour computed from the rendered text, and by normalised text."""

import random

import pytest

from minillama.codeworld import chains
from minillama.codeworld.decontam import (check_plans, code_behaviours, computes, computes_heldout,
                                          loose_matches_code, normalized_bodies, plan_violations, recorded_behaviour)
from minillama.codeworld.documents import modules
from minillama.codeworld.functions import make_function
from minillama.codeworld.minieval import problems


def test_no_heldout_behaviour_in_100k_training_documents():
    out = check_plans(100_000, seed=0)
    assert out["documents"] == 100_000 and out["behaviours"] > 300_000
    assert out["violations"] == 0


def test_the_key_check_can_fail():
    held = chains.heldout_compositions()[0]
    consts = next(c for c in chains.const_choices(held) if chains.is_valid(held, c))
    assert plan_violations([(held, consts)])
    prim = chains.heldout_primitive_chains()[0]
    assert plan_violations([(prim, chains.const_choices(prim)[0])])
    # the behaviour itself is what is checked, not only the key
    assert chains.solves_heldout(*chains.chain_types(held), chains.outputs(held, consts, True))


@pytest.fixture(scope="module")
def sample_modules():
    # ~1,400 functions (modules hold 2-5 functions since world v3; 300 held 3-6 before)
    return modules(400, seed=0)


def test_rendered_text_computes_what_the_plan_says_and_nothing_held_out(sample_modules):
    checked = 0
    for m, from_code in zip(sample_modules, code_behaviours([m.text for m in sample_modules])):
        for fn in m.functions:
            want = recorded_behaviour(fn)
            if want is None:
                continue
            code = from_code[fn.name]
            assert computes(code, want), fn.text  # the text is the recorded behaviour...
            assert loose_matches_code(code, recorded_behaviour(fn, loose=True)), fn.text  # ...off its domain too
            assert not computes_heldout(code), fn.text
            checked += 1
    assert checked > 700


def test_code_behaviour_check_can_fail():
    """A held-out program written by the renderer is caught from its text alone."""
    held = [c for c in chains.heldout_compositions() if chains.n_list_consts(c) == 0][5]
    consts = next(c for c in chains.const_choices(held) if chains.is_valid(held, c))
    rng = random.Random(0)
    fn = next(f for f in (make_function(held, consts, rng, training=False) for _ in range(100)) if f and not f.params)
    assert computes_heldout(code_behaviours([fn.text])[0][fn.name])


def test_no_heldout_body_in_training_text(sample_modules):
    held = set()
    for tier in ("compositions", "primitives"):
        for p in problems(tier, 150).values():
            held |= normalized_bodies(p["prompt"] + p["canonical_solution"])
    seen = set()
    for m in sample_modules:
        seen |= normalized_bodies(m.text)
    assert len(seen) > 1000
    assert not held & seen
    # the normalisation does match the same program under other names
    a = normalized_bodies("def f(nums):\n    return [x * 2 for x in nums]\n")
    b = normalized_bodies("def g(values):\n    return [v * 2 for v in values]\n")
    assert a == b
