"""Self-checks for the exercises of notebook 05 (self-instruct and instruction tuning).

Each ``check_*`` runs the student's function on fixed cases, compares with the reference in
``self_instruct.py`` and prints right / close / wrong with the reason."""

from __future__ import annotations

from minillama import instruct as si


def _say(name: str, verdict: str, why: str = "") -> str:
    print(f"{name:44s} {verdict:5s}{'  ' + why if why else ''}")
    return verdict


def _done(verdicts: list[str], hint: str) -> bool:
    ok = all(v != "wrong" for v in verdicts)
    print("all right or close!" if ok else f"some cases are wrong: {hint}")
    return ok


def check_format_instruction(fn) -> bool:
    """Exercise 1: ``fn(user, system=None)`` builds the Llama 2 chat prompt of one user turn."""
    cases = [("Reverse a string.", None), ("  padded  ", None), ("Sum a list.", "You write Python."),
             ("Two\nlines", "Be brief.\nNo prose.")]
    verdicts = []
    for user, system in cases:
        got, want = fn(user, system), si.format_instruction(user, system)
        name = f"user={user!r:.18} system={system!r:.14}"
        if got == want:
            verdicts.append(_say(name, "right"))
        elif " ".join(str(got).split()) == " ".join(want.split()):
            verdicts.append(_say(name, "close", "only whitespace differs, but tokens differ too: "
                                               f"want {want!r}"))
        else:
            verdicts.append(_say(name, "wrong", f"got {got!r}, want {want!r}"))
    return _done(verdicts, "the system block sits inside [INST], before the user text")


def check_answer_labels(fn) -> bool:
    """Exercise 2: ``fn(prompt_ids, answer_ids)`` returns ``(ids, labels)`` for SFT with the
    loss on the answer only (``labels = -100`` on the prompt)."""
    cases = [([1, 5, 6, 7], [8, 9, 2]), ([1], [3, 2]), ([1, 4, 4, 4, 4], [2])]
    verdicts = []
    for p, a in cases:
        want = (p + a, [si.IGNORE_INDEX] * len(p) + a)
        ids, labels = fn(list(p), list(a))
        name = f"prompt {len(p)} tokens, answer {len(a)}"
        if (list(ids), list(labels)) == want:
            verdicts.append(_say(name, "right"))
        elif len(p) > 1 and list(ids) == want[0] and list(labels) == [si.IGNORE_INDEX] * (len(p) - 1) + p[-1:] + a:
            verdicts.append(_say(name, "close", "the last prompt token is labelled; the model would be "
                                               "trained to predict it, which is prompt, not answer"))
        elif list(labels[1:]) == want[1][1:] or list(labels) == want[0]:
            verdicts.append(_say(name, "wrong", "the prompt is not masked: the loss would teach the "
                                               "model to write questions"))
        else:
            verdicts.append(_say(name, "wrong", f"got {labels!r}, want {want[1]!r}"))
    return _done(verdicts, "labels are ids on the answer and -100 on the prompt; the shift happens in the loss")


def check_first_passing(fn) -> bool:
    """Exercise 3: ``fn(solutions, verdicts)`` returns the solution the pipeline keeps (the
    first passing one) or ``None``."""
    cases = [(["a", "b", "c"], [False, True, True], "b"), (["a", "b"], [False, False], None),
             (["a"], [True], "a"), ([], [], None), (["a", "b", "c"], [False, False, True], "c")]
    verdicts = []
    for sols, vs, want in cases:
        got = fn(list(sols), list(vs))
        name = f"verdicts {vs}"
        if got == want:
            verdicts.append(_say(name, "right"))
        elif want is not None and got in [s for s, v in zip(sols, vs) if v]:
            verdicts.append(_say(name, "close", "a passing solution, but not the first: the paper keeps the first"))
        else:
            verdicts.append(_say(name, "wrong", f"got {got!r}, want {want!r}"))
    return _done(verdicts, "keep the first solution whose tests pass, else None")


def check_gain_is_significant(fn, base: tuple[int, int], tuned: tuple[int, int]) -> bool:
    """Exercise 4: ``fn(base, tuned)`` answers whether the two Wilson 95% intervals of
    ``(solved, n)`` are disjoint (a conservative test that the gain is real)."""
    lo_b, hi_b = si.wilson_interval(*base)
    lo_t, hi_t = si.wilson_interval(*tuned)
    want = hi_b < lo_t or hi_t < lo_b
    got = bool(fn(base, tuned))
    why = f"base [{lo_b:.3f}, {hi_b:.3f}] vs tuned [{lo_t:.3f}, {hi_t:.3f}]"
    verdict = _say("intervals disjoint?", "right" if got == want else "wrong", why)
    return verdict == "right"
