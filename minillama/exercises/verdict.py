"""The one convention every exercise of the course follows.

An exercise is an answer cell and a test cell, in nbgrader's format (:mod:`minillama.course.assignments`
builds the students' copies with nbgrader). The answer cell holds the teacher's reference between
``### BEGIN SOLUTION`` and ``### END SOLUTION``; the students' copy replaces it with
``raise NotImplementedError``. The test cell calls one ``check_*`` function of this package and ends
with :meth:`Verdict.points`, the cell's value, which nbgrader's autograder reads as partial credit.

A check is a function decorated with :func:`exercise`. It

* calls the student's function through :func:`call` on fixed cases and on random ones drawn
  from a fixed seed (:func:`cases_rng`), so a constant answer cannot pass and every run sees
  the same cases;
* returns a :class:`Verdict` and prints it as one line, ``<mark> exercise NN.M: <status> — <why>``
  (:data:`VERDICT_LINE` parses it back);
* never raises because of the student: a stub is *not attempted*; a student's exception is
  *wrong*, reported as ``wrong — <Exception>: <message> (line N of your code: …)``, and the
  notebook goes on.

The statuses: **right** (every case within tolerance), **close** (no case wrong, but one is only
nearly right or is a known near miss; the why names the likely mistake), **wrong** (the why names
the first failing case), **not attempted** (the stub still raises ``NotImplementedError``).
Graded, right earns an exercise's points, close :data:`CLOSE_SHARE` of them, the others none.

A graded cell that writes to stderr gets no points from nbgrader, whatever its value: a check
therefore prints what the student's code warns or writes to stderr on stdout, after its verdict.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import random
import re
import sysconfig
import traceback
import warnings
from dataclasses import dataclass
from typing import Callable, Iterable

import torch

RIGHT, CLOSE, WRONG, NOT_ATTEMPTED = "right", "close", "wrong", "not attempted"
STATUSES = (RIGHT, CLOSE, WRONG, NOT_ATTEMPTED)
MARKS = {RIGHT: "✅", CLOSE: "🟡", WRONG: "❌", NOT_ATTEMPTED: "⬜"}

#: One printed verdict: mark, exercise id (notebook.exercise), status and an optional why.
VERDICT_LINE = re.compile(r"^(?:✅|🟡|❌|⬜) exercise (?P<exercise>\d{2}\.\d+): "
                          r"(?P<status>right|close|wrong|not attempted)(?: — (?P<why>.*))?$", re.M)

Outcome = tuple[str, str]  # (status, why): what a check's body and its per-case judges return

#: The share of an exercise's points that a close answer earns.
CLOSE_SHARE = 0.5


@dataclass(frozen=True)
class Verdict:
    exercise: str  # "01.2": notebook 01, exercise 2
    status: str  # one of STATUSES
    why: str = ""

    @property
    def right(self) -> bool:
        return self.status == RIGHT

    def points(self, out_of: float) -> float:
        """This verdict's grade in an exercise worth ``out_of`` points: all of them if right,
        :data:`CLOSE_SHARE` of them if close, none otherwise. An autograded test cell ends with it,
        so that nbgrader records the value as the cell's (partial) credit."""
        if isinstance(out_of, bool) or not isinstance(out_of, (int, float)) or not out_of > 0:
            raise ValueError(f"out_of must be a positive number of points, got {out_of!r}")
        return float(out_of) * {RIGHT: 1.0, CLOSE: CLOSE_SHARE}.get(self.status, 0.0)

    def __str__(self) -> str:
        line = f"{MARKS[self.status]} exercise {self.exercise}: {self.status}"
        return f"{line} — {self.why}" if self.why else line


def parse_verdicts(text: str) -> list[Verdict]:
    """Every verdict line printed in ``text``, in order."""
    return [Verdict(m["exercise"], m["status"], m["why"] or "") for m in VERDICT_LINE.finditer(text)]


class _NotAttempted(Exception):
    """The student's function is still the stub."""


class _StudentError(Exception):
    """The student's function raised; the message says what and where."""


# Frames from these folders are not the student's: the line we report is the student's own.
_LIBRARY_DIRS = tuple({os.path.realpath(sysconfig.get_paths()[k]) + os.sep for k in ("stdlib", "purelib", "platlib")}
                      | {os.path.dirname(os.path.dirname(os.path.realpath(__file__))) + os.sep})


def describe_error(exc: BaseException) -> str:
    """``"ZeroDivisionError: division by zero (line 3 of your code: return a / b)"``: the
    exception and the deepest line of the traceback that is not library code."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if not os.path.realpath(f.filename).startswith(_LIBRARY_DIRS)]
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if own:
        line = (own[-1].line or "").strip()
        text += f" (line {own[-1].lineno} of your code" + (f": {line})" if line else ")")
    return text


def call(fn: Callable, *args, **kwargs):
    """Run the student's ``fn``: its result, or the exception that makes the check report
    *not attempted* (``NotImplementedError``) or *wrong* (anything else)."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise _NotAttempted from None
    except Exception as exc:  # the student's bug: reported by the check, never a traceback
        raise _StudentError(describe_error(exc)) from None


def exercise(exercise_id: str):
    """Make ``body(*args) -> (status, why)`` a check: it returns and prints a :class:`Verdict`.

    The body calls the student's code through :func:`call`. An exception raised while the body
    reads the student's answer (a tuple where a number was due, a wrong length) is the
    answer's fault too: it is reported as wrong, with what went wrong."""
    def decorate(body: Callable[..., Outcome]) -> Callable[..., Verdict]:
        @functools.wraps(body)
        def check(*args, **kwargs) -> Verdict:
            stderr = io.StringIO()
            with warnings.catch_warnings(record=True) as warned, contextlib.redirect_stderr(stderr):
                warnings.simplefilter("default")  # each warning once per place, as a notebook shows it
                try:
                    status, why = body(*args, **kwargs)
                except _NotAttempted:
                    status, why = NOT_ATTEMPTED, ("replace `raise NotImplementedError` with your code and run the "
                                                  "cell again")
                except _StudentError as exc:
                    status, why = WRONG, str(exc)
                except Exception as exc:  # the answer has the wrong type or shape
                    status, why = WRONG, f"your answer could not be checked: {type(exc).__name__}: {exc}"
            if status not in STATUSES:
                raise ValueError(f"check {body.__name__} returned status {status!r}")  # a bug in the check
            verdict = Verdict(exercise_id, status, why)
            print(verdict)
            for note in _notes(warned, stderr.getvalue()):
                print(f"   {note}")
            return verdict
        check.exercise = exercise_id
        return check
    return decorate


def _notes(warned: list[warnings.WarningMessage], stderr: str) -> list[str]:
    """What the checked code warned or wrote to stderr, one line each, repeats dropped."""
    lines = [f"warning: {w.category.__name__}: {w.message}" for w in warned]
    lines += [f"stderr: {line}" for line in stderr.splitlines() if line.strip()]
    return list(dict.fromkeys(lines))


def cases_rng(exercise_id: str) -> random.Random:
    """The random cases of an exercise: different for each exercise, the same on every run."""
    return random.Random(f"minillama exercise {exercise_id}")


def grade(cases: Iterable, judge: Callable[..., Outcome], right_why: str) -> Outcome:
    """Judge every case: the first wrong one decides; otherwise the first close one; otherwise
    right, with ``right_why``. ``judge(case)`` returns ``(status, why)``."""
    close = None
    n = 0
    for case in cases:
        status, why = judge(case)
        n += 1
        if status == WRONG:
            return WRONG, why
        if status == CLOSE and close is None:
            close = (CLOSE, why)
    if n == 0:
        raise ValueError("a check with no cases")  # a bug in the check, never the student's
    return close or (RIGHT, right_why)


def shown(value, width: int = 60) -> str:
    """``repr(value)`` on one line, cut to ``width`` characters: how a why quotes an answer."""
    text = " ".join(repr(value).split())
    return text if len(text) <= width else text[:width - 1] + "…"


def number(value) -> float | None:
    """``value`` as a float if it is one number (int, float, numpy or one-element torch scalar), else None."""
    if isinstance(value, (bool, str, bytes)) or not hasattr(type(value), "__float__"):
        return None
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        return None


def _as_tensor(value) -> torch.Tensor:
    try:
        return torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"expected a number, a list of numbers or a tensor, got {type(value).__name__}") from None


def compare(got, want, rtol: float = 1e-6, atol: float = 0.0) -> Outcome:
    """Numbers, lists or tensors: right within ``rtol``/``atol``, close within 100× that (a float32
    step, rounding), wrong otherwise; the why says where the largest error is."""
    if isinstance(got, bool) or got is None or isinstance(got, str):  # bool/None/str are never a number here
        return WRONG, f"got {shown(got)}, expected {_describe(want)}"
    g, e = _as_tensor(got), _as_tensor(want)
    if g.shape != e.shape:
        return WRONG, f"shape {tuple(g.shape)}, expected {tuple(e.shape)}"
    if not torch.isfinite(g).all():
        return WRONG, "the answer contains NaN or inf"
    err = (g - e).abs()
    allowed = atol + rtol * e.abs()
    if bool((err <= allowed).all()):
        return RIGHT, ""
    worst = int((err - allowed).flatten().argmax())
    where = ""
    if e.dim():
        where = f" at index {tuple(int(i) for i in torch.unravel_index(torch.tensor(worst), e.shape))}"
    detail = f"got {g.flatten()[worst].item():.6g}{where}, expected {e.flatten()[worst].item():.6g}"
    if bool((err <= 100 * allowed).all()):
        return CLOSE, f"{detail}: nearly, a rounding or float32 step?"
    return WRONG, detail


def _describe(value) -> str:
    """What an answer should look like, without giving it away."""
    shape = tuple(_as_tensor(value).shape)
    if not shape:
        return "a number"
    kind = "a tensor" if isinstance(value, torch.Tensor) else "a list"
    return f"{kind} of shape {shape}"
