"""The notebooks' exercises: one module of checks per notebook, one convention for all
(:mod:`minillama.exercises.verdict`).

Each notebook imports its module (``from minillama.exercises import rope as ex``) and calls
``ex.check_*(student_function)``, which prints and returns a :class:`Verdict`: right, close,
wrong or not attempted, and why.
"""

from minillama.exercises.verdict import (CLOSE, NOT_ATTEMPTED, RIGHT, STATUSES, VERDICT_LINE, WRONG, Verdict,
                                         parse_verdicts)

__all__ = ["CLOSE", "NOT_ATTEMPTED", "RIGHT", "STATUSES", "VERDICT_LINE", "WRONG", "Verdict", "parse_verdicts"]
