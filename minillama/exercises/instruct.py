"""Checks for the exercises of notebook 05 (self-instruct and instruction tuning), against
:mod:`minillama.instruct`."""

from __future__ import annotations

from minillama.evaluation.metrics import wilson_interval
from minillama.exercises.verdict import CLOSE, RIGHT, WRONG, call, cases_rng, exercise, grade, shown
from minillama.instruct.formats import format_instruction
from minillama.instruct.sft import IGNORE_INDEX

_WORDS = "sort reverse a list string of numbers return the sum count words in python write function".split()


def _text(rng, n_words: int) -> str:
    words = [rng.choice(_WORDS) for _ in range(n_words)]
    text = " ".join(words).capitalize() + "."
    if rng.random() < 0.5:  # stray whitespace around the text, or a second line
        text = rng.choice(["  ", "\n", " "]) + text + rng.choice(["  ", "\n", ""])
    return text.replace(" in ", "\nin ", 1) if rng.random() < 0.3 else text


@exercise("05.1")
def check_format_instruction(fn) -> tuple[str, str]:
    """``fn(user, system=None)``: the Llama 2 chat prompt of one user turn."""
    rng = cases_rng("05.1")
    cases = [("Reverse a string.", None), ("  padded  ", None), ("Sum a list.", "You write Python."),
             ("Two\nlines", "Be brief.\nNo prose.")]
    cases += [(_text(rng, rng.randint(2, 8)), _text(rng, rng.randint(2, 6)) if rng.random() < 0.6 else None)
              for _ in range(4)]

    def judge(case):
        user, system = case
        want = format_instruction(user, system)
        got = call(fn, user, system)
        name = f"user {shown(user, 24)}, system {shown(system, 20)}"
        if got == want:
            return RIGHT, ""
        if isinstance(got, str) and got.split() == want.split():
            return CLOSE, f"{name}: only whitespace differs, and whitespace is tokens too: expected {shown(want)}"
        return WRONG, f"{name}: got {shown(got)}, expected {shown(want)}"

    return grade(cases, judge, f"the [INST] prompt, with and without a system prompt, on {len(cases)} turns")


@exercise("05.2")
def check_answer_labels(fn) -> tuple[str, str]:
    """``fn(prompt_ids, answer_ids)``: ``(ids, labels)`` for SFT with the loss on the answer only."""
    rng = cases_rng("05.2")
    cases = [([1, 5, 6, 7], [8, 9, 2]), ([1], [3, 2]), ([1, 4, 4, 4, 4], [2])]
    cases += [([1] + [rng.randint(3, 999) for _ in range(rng.randint(1, 20))],
               [rng.randint(3, 999) for _ in range(rng.randint(1, 10))] + [2]) for _ in range(4)]

    def judge(case):
        p, a = case
        want = (p + a, [IGNORE_INDEX] * len(p) + a)
        got = call(fn, list(p), list(a))
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            return WRONG, f"got {shown(got)}, expected a pair (ids, labels)"
        ids, labels = (list(x) for x in got)
        name = f"prompt of {len(p)} tokens, answer of {len(a)}"
        if (ids, labels) == want:
            return RIGHT, ""
        if ids != want[0]:
            return WRONG, f"{name}: ids should be prompt + answer, got {shown(ids)}"
        if labels == [IGNORE_INDEX] * (len(p) - 1) + p[-1:] + a:
            return CLOSE, (f"{name}: the last prompt token is labelled: the model would learn to predict it, "
                           "and it is prompt, not answer")
        if labels == want[0]:
            return WRONG, f"{name}: the prompt is not masked: the loss would teach the model to write questions"
        return WRONG, f"{name}: labels {shown(labels)}, expected {shown(want[1])}"

    return grade(cases, judge, f"ids = prompt + answer, labels {IGNORE_INDEX} on the prompt, on {len(cases)} pairs")


@exercise("05.3")
def check_first_passing(fn) -> tuple[str, str]:
    """``fn(solutions, verdicts)``: the solution the pipeline keeps (the first passing one) or None."""
    rng = cases_rng("05.3")
    cases = [(["a", "b", "c"], [False, True, True]), (["a", "b"], [False, False]), (["a"], [True]), ([], []),
             (["a", "b", "c"], [False, False, True])]
    for _ in range(4):
        n = rng.randint(2, 10)
        verdicts = [rng.random() < 0.3 for _ in range(n)]
        verdicts[rng.randrange(n)] = True  # at least one passes: None is not the answer
        cases.append(([f"def f(x):\n    return x + {i}" for i in range(n)], verdicts))

    def judge(case):
        solutions, verdicts = case
        want = next((s for s, ok in zip(solutions, verdicts) if ok), None)
        got = call(fn, list(solutions), list(verdicts))
        if got == want:
            return RIGHT, ""
        name = f"verdicts {verdicts}"
        if want is not None and got in [s for s, ok in zip(solutions, verdicts) if ok]:
            return CLOSE, f"{name}: a passing solution, but not the first: the pipeline keeps the first"
        return WRONG, f"{name}: got {shown(got)}, expected {shown(want)}"

    return grade(cases, judge, f"the first passing solution, or None, on {len(cases)} questions")


@exercise("05.4")
def check_disjoint_95(fn) -> tuple[str, str]:
    """``fn(base, tuned)`` for ``(solved, n)`` pairs: are the two 95 % Wilson intervals disjoint
    (a conservative sign that the difference is real)?"""
    rng = cases_rng("05.4")
    cases = [((10, 100), (40, 100)), ((10, 100), (15, 100)), ((50, 164), (20, 164)), ((0, 120), (0, 120)),
             ((3, 20), (12, 20))]
    while len(cases) < 11:
        n = rng.choice([20, 120, 164, 500])
        cases.append(((rng.randint(0, n), n), (rng.randint(0, n), n)))

    def judge(case):
        base, tuned = case
        (lo_b, hi_b), (lo_t, hi_t) = wilson_interval(*base), wilson_interval(*tuned)
        want = hi_b < lo_t or hi_t < lo_b
        got = call(fn, base, tuned)
        why = f"base {base} → [{lo_b:.3f}, {hi_b:.3f}], tuned {tuned} → [{lo_t:.3f}, {hi_t:.3f}]"
        if type(got).__name__ not in ("bool", "bool_"):  # numpy's bool_ is fine too
            return WRONG, f"{why}: got {shown(got)}, expected True or False"
        if bool(got) == want:
            return RIGHT, ""
        return WRONG, f"{why}: the intervals are {'disjoint' if want else 'overlapping'}"

    # The fixed cases hold both answers, so a constant True or False is wrong.
    return grade(cases, judge, f"disjoint or overlapping, on {len(cases)} pairs of pass rates")
