"""The procedural task generator: deterministic, split by family, references correct."""

import pytest

from minillama.instruct.tasks import FAMILIES, SPLITS, check_reference, families, generate_tasks, make_task


def test_generator_is_deterministic():
    a = generate_tasks(40, "train", seed=3)
    b = generate_tasks(40, "train", seed=3)
    c = generate_tasks(40, "train", seed=4)
    assert a == b
    assert [t.question for t in a] != [t.question for t in c]


def test_family_split_is_disjoint_and_covers_all():
    train, held = families("train"), families("heldout")
    assert {f.key for f in train}.isdisjoint({f.key for f in held})
    assert len(train) + len(held) == len(FAMILIES) and len(held) >= 8
    for split, fams in zip(SPLITS, (train, held)):
        tasks = generate_tasks(3 * len(fams), split, seed=0)
        assert {t.family for t in tasks} == {f.key for f in fams}
    with pytest.raises(ValueError):
        families("test")


@pytest.mark.parametrize("split", SPLITS)
def test_every_reference_solution_passes_its_tests(split):
    for task in generate_tasks(150, split, seed=1, unique=True):
        assert len(task.tests) >= 3, task
        check_reference(task)  # raises on a failing assert
        assert task.solution.startswith(task.signature + "\n")
        assert task.entry_point in task.question


def test_a_wrong_solution_fails_the_reference_tests():
    import random
    wrong_bodies = {"list": "return None", "str": "return ''", "padded": "return 'x'", "int": "return 'x'"}
    for fam in FAMILIES:
        task = make_task(fam, random.Random(fam.key))
        ns: dict = {}
        exec(f"{task.signature}\n    {wrong_bodies[fam.kind]}\n", ns)
        with pytest.raises(AssertionError):
            exec(task.test_code, ns)


def test_questions_repeat_without_unique_and_not_with_it():
    dup = generate_tasks(300, "train", seed=0)
    assert len({t.question for t in dup}) < len(dup)  # dedup has work to do, as in the paper
    uniq = generate_tasks(300, "train", seed=0, unique=True)
    assert len({t.question for t in uniq}) == 300


def test_exclude_gives_unseen_instances():
    seen = {t.question for t in generate_tasks(200, "train", seed=0)}
    fresh = generate_tasks(50, "train", seed=9, unique=True, exclude=seen)
    assert not seen & {t.question for t in fresh}
