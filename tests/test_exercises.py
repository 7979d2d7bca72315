"""The exercises: one convention (:mod:`minillama.exercises.verdict`) in nbgrader's format, and checks
that tell a stub, a trivial answer, a known mistake and a student's bug from the reference solution.

The notebook tests run each notebook's "## Exercises" section as the notebook does (cell by cell, in
one namespace) and read the printed verdict lines and the points each test cell gives (its last
value, which nbgrader reads as the cell's credit): the teacher's copy must print *right* and earn
every point, the student's copy (``student/``, nbgrader's release: ``tests/test_student.py`` keeps it
current) *not attempted* and none. The names a section reads from earlier in its notebook are built
cheaply by :func:`section_context`; nbval runs the same cells in the real notebooks (``make test``),
where a ``teacher-only`` ``assert`` fails the notebook if a reference solution is not graded right.
``tests/test_nbgrader.py`` grades submissions with nbgrader itself.
"""

from __future__ import annotations

import ast
import io
import json
import linecache
import math
import re
from contextlib import redirect_stderr, redirect_stdout
from types import SimpleNamespace

import pytest
import torch

from _tok_fixtures import small_corpus, tiny_tokenizer
from minillama.course.assignments import CODE_STUB, TEACHER_ONLY_TAG
from minillama.exercises import (CLOSE, NOT_ATTEMPTED, RIGHT, WRONG, Verdict, evaluation, fim, instruct, long_context,
                                 parse_verdicts, pretraining, rope)
from minillama.exercises.verdict import CLOSE_SHARE, call, compare, describe_error, exercise, grade
from minillama.fim import fim_to_document, infilling_prompt
from minillama.paths import repo_root

NOTEBOOKS = sorted((repo_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))
NAMES = [p.stem for p in NOTEBOOKS]


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _nbgrader(cell: dict) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def section(nb: dict) -> list[dict]:
    """The cells after the markdown cell that opens "## Exercises"."""
    starts = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown" and "\n## Exercises" in
              "\n" + _source(c)]
    assert len(starts) == 1, "one '## Exercises' heading per notebook"
    return nb["cells"][starts[0] + 1:]


def teacher(name: str) -> dict:
    return json.loads((repo_root() / "notebooks" / f"{name}.ipynb").read_text())


def student_copy(name: str) -> dict:
    return json.loads((repo_root() / "student" / f"{name}.ipynb").read_text())


def section_context(name: str) -> dict:
    """What each exercise section uses from earlier cells of its notebook (built small here)."""
    import minillama.fim
    from minillama import instruct as si
    from minillama.model import ModelConfig
    from minillama.profiles import get_profile

    return {
        "01_rope": lambda: {"math": math, "torch": torch},
        "02_fim": lambda: {"tok": tiny_tokenizer(), "val": small_corpus().texts("val")},
        "03_pretraining": lambda: {"get_profile": get_profile, "fim": minillama.fim, "profile": get_profile("quick"),
                                   "mcfg": ModelConfig.from_name("debug"), "tokens": 7_680},
        "04_long_context": lambda: {"math": math, "torch": torch},
        "05_self_instruct": lambda: {"si": si, "b": SimpleNamespace(passed=[True] + [False] * 9),
                                     "fl": SimpleNamespace(passed=[True] * 3 + [False] * 7)},
        "06_evaluation": lambda: {},
    }[name]()


def run_section(name: str, cells: list[dict]) -> tuple[list[Verdict], str, list[tuple[float, float]]]:
    """Execute the code cells in one namespace, as the kernel does: the verdicts they print, the
    printed text, and ``(points given, points)`` of each test cell, whose last line is its value."""
    namespace = section_context(name)
    out, err, points = io.StringIO(), io.StringIO(), []
    with redirect_stdout(out), redirect_stderr(err):
        for i, cell in enumerate(c for c in cells if c["cell_type"] == "code"):
            filename = f"<{name} exercise cell {i}>"
            source = _source(cell)
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # as IPython does
            if _nbgrader(cell).get("grade"):
                *body, last = source.splitlines()
                exec(compile("\n".join(body), filename, "exec"), namespace)
                points.append((eval(compile(last, filename, "eval"), namespace), _nbgrader(cell)["points"]))
            else:
                exec(compile(source, filename, "exec"), namespace)
    assert not err.getvalue(), f"a section wrote to stderr (nbgrader gives a test cell that does no points):\n{err}"
    return parse_verdicts(out.getvalue()), out.getvalue(), points


def answer_cells(cells: list[dict]) -> list[dict]:
    return [c for c in cells if _nbgrader(c).get("solution")]


def answer_fn(cell: dict) -> ast.FunctionDef:
    (fn,) = ast.parse(_source(cell)).body
    assert isinstance(fn, ast.FunctionDef), "an answer cell defines one function"
    return fn


def replace_answers(cells: list[dict], body: str) -> list[dict]:
    """The student's copy with every answer replaced by ``def <name>(*args, **kwargs): <body>``."""
    return [{**c, "source": [f"def {answer_fn(c).name}(*args, **kwargs):\n    {body}\n"]}
            if _nbgrader(c).get("solution") else c for c in cells]


def expected_ids(name: str, cells: list[dict]) -> list[str]:
    return [f"{name[:2]}.{i}" for i in range(1, len(answer_cells(cells)) + 1)]


# --- every notebook: the convention, the solutions, the stubs ---------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_each_exercise_is_a_statement_an_answer_and_a_test_in_nbgraders_format(name):
    cells = section(teacher(name))
    assert answer_cells(cells), f"{name} has no exercise"
    assert {"grade": False, "locked": True, "solution": False} == {k: _nbgrader(cells[0]).get(k) for k in
                                                                   ("grade", "locked", "solution")}, \
        f"{name}: the section's first cell (the checks' import) is read-only"
    for n, answer in enumerate(answer_cells(cells), 1):
        fn, i = answer_fn(answer), cells.index(answer)
        statement, test = cells[i - 1], cells[i + 1]
        meta = _nbgrader(test)
        assert meta.get("grade") and meta.get("locked") and not meta.get("solution"), f"{name}: {fn.name}'s test"
        points = meta["points"]
        assert _nbgrader(statement).get("locked") and _source(statement).startswith(
            f"**Exercise {n}** ({points} points)."), f"{name}: exercise {n}'s statement is read-only, with its points"
        # the whole body is the solution region: the release leaves the signature and the stub
        lines = _source(answer).splitlines()
        assert lines[1] == "    ### BEGIN SOLUTION" and lines[-1] == "    ### END SOLUTION", f"{name}: {fn.name}"
        source = _source(test)
        assert source.startswith(f"# Test of exercise {n}, {points} points ({points * CLOSE_SHARE:g} if close): "
                                 f"{fn.name}("), f"{name}: the test cell of {fn.name} says what it checks"
        assert re.search(rf"^verdict_{n} = ex\.check_\w+\({fn.name}\b", source, re.M), f"{name}: {fn.name}"
        assert source.splitlines()[-1] == f"verdict_{n}.points(out_of={points})", f"{name}: {fn.name}"
    final = [c for c in cells if c["cell_type"] == "code"][-1]
    assert _tags(final) == [TEACHER_ONLY_TAG] and ".right for v in" in _source(final), \
        f"{name}: the last cell asserts, in the teacher's copy only, that every solution is graded right"
    assert sum(TEACHER_ONLY_TAG in _tags(c) for c in teacher(name)["cells"]) == 1


@pytest.mark.parametrize("name", NAMES)
def test_solutions_are_right_and_earn_every_point(name):
    cells = section(teacher(name))
    verdicts, out, points = run_section(name, cells)
    assert [v.exercise for v in verdicts] == expected_ids(name, cells), out
    assert all(v.status == RIGHT for v in verdicts), out
    assert points and all(given == of for given, of in points), points


@pytest.mark.parametrize("name", NAMES)
def test_the_student_copy_holds_stubs_that_are_not_attempted_and_earn_nothing(name):
    cells = section(student_copy(name))
    for cell in answer_cells(cells):
        assert [ast.unparse(s) for s in answer_fn(cell).body] == [ast.unparse(ast.parse(CODE_STUB))], \
            f"{name}: the stub of {answer_fn(cell).name} must only raise NotImplementedError"
    verdicts, out, points = run_section(name, cells)
    assert [v.exercise for v in verdicts] == expected_ids(name, cells), out
    assert all(v.status == NOT_ATTEMPTED for v in verdicts), out
    assert points and all(given == 0 for given, _ in points), points


TRIVIAL = ["return None", "return False", "return True", "return 0", "return 1", "return 0.0", "return ''",
           "return []", "return ()", "return args[0]", "return args[-1]", "return 'right close wrong'"]


@pytest.mark.parametrize("name", NAMES)
def test_trivial_answers_are_never_right(name):
    cells = section(student_copy(name))
    for body in TRIVIAL:
        verdicts, out, points = run_section(name, replace_answers(cells, body))
        assert len(verdicts) == len(answer_cells(cells)), out
        assert all(v.status in (WRONG, CLOSE) for v in verdicts), f"{body!r} passed:\n{out}"
        assert all(given < of for given, of in points), f"{body!r} earned every point of a test: {points}"


@pytest.mark.parametrize("name", NAMES)
def test_a_students_exception_is_wrong_with_its_line(name):
    cells = section(student_copy(name))
    buggy = [{**c, "source": [f"def {answer_fn(c).name}(*args, **kwargs):\n    scale = 1\n    return scale / 0\n"]}
             if _nbgrader(c).get("solution") else c for c in cells]
    verdicts, out, points = run_section(name, buggy)  # no exception escapes: the notebook would go on
    assert len(verdicts) == len(answer_cells(cells)), out
    for v in verdicts:
        assert v.status == WRONG
        assert v.why == "ZeroDivisionError: division by zero (line 3 of your code: return scale / 0)"
    assert all(given == 0 for given, _ in points)


def _solution_lines(nb: dict) -> set[str]:
    """The code lines of every solution region that would give something away: not blank, not a
    comment, not a signature (the stub shows it), not a bare keyword like ``return None``."""
    lines = set()
    for cell in nb["cells"]:
        inside = False
        for line in _source(cell).splitlines():
            if "### BEGIN SOLUTION" in line or "### END SOLUTION" in line:
                inside = "BEGIN" in line
                continue
            code = line.split("  #")[0].strip()
            if inside and code and not code.startswith(("#", "def ")) and len(code) > 12:
                lines.add(code)
    return lines


@pytest.mark.parametrize("name", NAMES)
def test_student_copies_hold_no_solution_text(name):
    lines = _solution_lines(teacher(name))
    assert lines, f"{name} has no solution region"
    text = "\n".join(_source(c) for c in student_copy(name)["cells"])
    leaked = sorted(line for line in lines if line in text)
    assert not leaked, f"{name}: solution lines in the student's copy: {leaked}"
    assert TEACHER_ONLY_TAG not in json.dumps(student_copy(name)), f"{name}: a teacher-only cell was released"


# --- the verdict helper --------------------------------------------------------------------------------

@exercise("99.1")
def _check_double(fn):
    return grade([1, 2.5, -3], lambda x: compare(call(fn, x), 2 * x, rtol=1e-9), "doubles 3 numbers")


def test_verdict_lines_parse_back(capsys):
    verdicts = [_check_double(lambda x: 2 * x), _check_double(lambda x: 2 * x * (1 + 1e-8)),
                _check_double(lambda x: x), _check_double(lambda x: 0)]
    assert [v.status for v in verdicts] == [RIGHT, CLOSE, WRONG, WRONG]
    assert parse_verdicts(capsys.readouterr().out) == verdicts
    assert str(verdicts[0]) == "✅ exercise 99.1: right — doubles 3 numbers"
    assert verdicts[2].why == "got 1, expected 2"


def test_points_are_the_exercises_points_if_right_a_share_if_close_and_none_otherwise():
    assert Verdict("99.1", RIGHT).points(out_of=3) == 3.0
    assert Verdict("99.1", CLOSE).points(out_of=3) == 3 * CLOSE_SHARE
    assert Verdict("99.1", WRONG, "no").points(out_of=3) == 0.0
    assert Verdict("99.1", NOT_ATTEMPTED).points(out_of=3) == 0.0
    for bad in (0, -1, True, "2", None):
        with pytest.raises(ValueError, match="out_of"):
            Verdict("99.1", RIGHT).points(out_of=bad)


def test_what_the_students_code_warns_or_writes_to_stderr_is_printed_to_stdout(capsys):
    import sys
    import warnings

    def noisy(x):
        warnings.warn("this API is deprecated", FutureWarning)
        print("debugging", x, file=sys.stderr)
        return 2 * x

    verdict = _check_double(noisy)
    out, err = capsys.readouterr()
    # a graded cell with stderr output gets no points from nbgrader: nothing may reach it
    assert verdict.status == RIGHT and err == ""
    assert "   warning: FutureWarning: this API is deprecated" in out.splitlines()
    assert "   stderr: debugging 1" in out.splitlines()


def test_a_stub_is_not_attempted_and_an_error_is_wrong_with_the_students_line():
    def stub(x):
        raise NotImplementedError

    assert _check_double(stub).status == NOT_ATTEMPTED
    source = "def double(x):\n    import minillama.fim\n    return minillama.fim.fim_applicable(x, 'ten')\n"
    namespace = {}
    linecache.cache["<cell>"] = (len(source), None, source.splitlines(True), "<cell>")
    exec(compile(source, "<cell>", "exec"), namespace)
    verdict = _check_double(namespace["double"])
    # the TypeError is raised inside minillama; the line reported is the student's call
    assert verdict.status == WRONG and verdict.why.startswith("TypeError: ")
    assert verdict.why.endswith("(line 3 of your code: return minillama.fim.fim_applicable(x, 'ten'))")


def test_an_unreadable_answer_is_wrong_and_a_bad_check_is_a_bug():
    @exercise("99.2")
    def pairs(fn):
        a, b = call(fn)  # a pair is expected
        return RIGHT, ""

    assert pairs(lambda: 3).status == WRONG and "could not be checked: TypeError" in pairs(lambda: 3).why

    @exercise("99.3")
    def broken(fn):
        return "fine", ""

    with pytest.raises(ValueError, match="status 'fine'"):
        broken(lambda: 0)
    with pytest.raises(ValueError, match="no cases"):
        grade([], lambda case: (RIGHT, ""), "")


def test_grade_and_compare():
    judge = {1: (RIGHT, ""), 2: (CLOSE, "nearly"), 3: (WRONG, "no"), 4: (CLOSE, "also nearly")}.__getitem__
    assert grade([1, 2, 4], judge, "all") == (CLOSE, "nearly")
    assert grade([1, 2, 3], judge, "all") == (WRONG, "no")
    assert grade([1, 1], judge, "all") == (RIGHT, "all")
    assert compare([1.0, 2.0], [1.0, 2.0])[0] == RIGHT
    assert compare([1.0, 2.0 + 1e-5], [1.0, 2.0], rtol=1e-6) == (CLOSE, "got 2.00001 at index (1,), expected 2: "
                                                                          "nearly, a rounding or float32 step?")
    assert compare([1.0, 3.0], [1.0, 2.0]) == (WRONG, "got 3 at index (1,), expected 2")
    assert compare(torch.zeros(2, 3), torch.zeros(3, 2)) == (WRONG, "shape (2, 3), expected (3, 2)")
    assert compare(None, torch.zeros(3)) == (WRONG, "got None, expected a tensor of shape (3,)")
    assert compare(float("nan"), 1.0)[0] == WRONG
    assert compare(True, 1.0)[0] == WRONG  # a bool is not a number here


def test_describe_error_without_student_frames():
    try:
        math.sqrt(-1)  # raised in C: no Python frame of the student's
    except ValueError as exc:
        text = describe_error(exc)
    assert text.startswith("ValueError: math domain error (line ")  # this test file is the "student" here


# --- known mistakes get the right verdict and say why -------------------------------------------------

def _yarn(d, theta, L, s, rounding=math.ceil):
    boundary = d * math.log(L / (2 * math.pi)) / (2 * math.log(theta))
    return list(range(max(rounding(boundary), 0), d // 2))


def _half(x):
    return torch.cat([-x[..., x.shape[-1] // 2:], x[..., :x.shape[-1] // 2]], -1)


def _spm(t, p, s, encode_suffix):
    return [t.bos_id, t.prefix_id, t.suffix_id] + encode_suffix(t)(s) + [t.middle_id] + t.encode(p)


def _lr(step, peak, warmup, total, floor=1 / 30, warm=lambda s, w: (s + 1) / w):
    if step < warmup:
        return peak * warm(step, warmup)
    progress = min((step - warmup) / max(total - warmup - 1, 1), 1.0)
    return peak * floor + (peak - peak * floor) * 0.5 * (1 + math.cos(math.pi * progress))


def _wilson(s, n, z=1.959963984540054):
    p = s / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _flops(cfg, seq_len, tokens, attention=True, embedding=False):
    d = cfg.dim
    matmul = cfg.n_layers * (d * cfg.head_dim * (2 * cfg.n_heads + 2 * cfg.n_kv_heads) + 3 * d * cfg.ffn_dim)
    matmul += cfg.vocab_size * d * (2 if embedding else 1)
    return (6 * matmul + attention * 6 * cfg.n_layers * seq_len * d) * tokens


def _fits(lengths, seq_len):
    from minillama.fim import fim_applicable
    return sum(fim_applicable(n, seq_len) for n in lengths) / len(lengths)


MISTAKES = [  # (check, extra arguments, answer, status, a phrase of the why)
    (rope.check_apply_rope, (), lambda x, cos, sin: x * cos + _half(x) * sin, RIGHT, ""),
    (rope.check_apply_rope, (), lambda x, cos, sin: x * cos - _half(x) * sin, WRONG, "wrong way"),
    (rope.check_apply_rope, (), lambda x, cos, sin: x, WRONG, "nothing was rotated"),
    (rope.check_longest_wavelength, (), lambda d, t: t ** ((d - 2) / d), WRONG, "2π radians"),
    (rope.check_longest_wavelength, (), lambda d, t: 2 * math.pi * t, WRONG, "(d−2)/d"),
    (rope.check_yarn_interpolated_channels, (), lambda d, t, L, s: _yarn(d, t, L, s, math.floor), CLOSE, "ceil()"),
    (rope.check_yarn_interpolated_channels, (), lambda d, t, L, s: range(3), WRONG, "turns"),
    (fim.check_spm_prompt, ("tok",), lambda t, p, s: _spm(t, p, s, lambda t: t.encode), CLOSE, "encode_infilling"),
    (fim.check_spm_prompt, ("tok",), lambda t, p, s: infilling_prompt(t, p, s), CLOSE, "order"),  # PSM
    (fim.check_spm_prompt, ("tok",), lambda t, p, s: t.encode(p + s), WRONG, "first difference"),
    (fim.check_psm_inverse, ("tok",), fim_to_document, RIGHT, ""),
    (fim.check_psm_inverse, ("tok",), lambda ids, t: t.decode([i for i in ids if not t.is_special(i)]), WRONG, ""),
    (fim.check_chars_per_token, ("tok", "val"), lambda t, x: sum(len(t.encode(s)) for s in x) / sum(map(len, x)),
     WRONG, "inverted"),
    (fim.check_chars_per_token, ("tok", "val"),
     lambda t, x: sum(map(len, x)) / sum(len(t.encode(s, bos=True, eos=True)) for s in x), CLOSE, "BOS and EOS"),
    (pretraining.check_schedule, (), lambda *a: _lr(*a, floor=0.0), WRONG, "not at 0"),
    (pretraining.check_schedule, (), lambda *a: _lr(*a, warm=lambda s, w: s / w), CLOSE, "warm-up"),
    (pretraining.check_tokens_seen, (), lambda s, b, t: s * b * (t + 1), CLOSE, "seq_len + 1"),
    (pretraining.check_training_flops, (), lambda c, s, t: _flops(c, s, t) / 3, WRONG, "forward pass only"),
    (pretraining.check_training_flops, (), lambda c, s, t: _flops(c, s, t, attention=False), WRONG,
     "attention scores are missing"),
    (pretraining.check_training_flops, (), lambda c, s, t: _flops(c, s, t, embedding=True), CLOSE, "embedding"),
    (pretraining.check_fim_share, (), lambda lengths, s, r: _fits(lengths, s), CLOSE, "probability"),
    (pretraining.check_fim_share, (), lambda lengths, s, r: r * sum(n <= s for n in lengths) / len(lengths), CLOSE,
     "fim_applicable"),
    (pretraining.check_fim_share, (), lambda lengths, s, r: r, WRONG, "not every document"),
    (long_context.check_ppl_at_context, (), lambda l, T: math.exp(l[:, :T].mean().item()), WRONG, "predicts only"),
    (long_context.check_ppl_at_context, (), lambda l, T: l[:, :T - 1].mean().item(), WRONG, "exponential"),
    (long_context.check_score_memory, (), lambda h, T, b: h * T * T * b / 2**21, WRONG, "causal mask"),
    (long_context.check_score_memory, (), lambda h, T, b: h * T * T * b / 1e6, WRONG, "MiB"),
    (long_context.check_slowest_turns, (), lambda d, t, n: n * t ** (-(d - 2) / d), WRONG, "radians"),
    (instruct.check_format_instruction, (), lambda u, s=None: f"[INST]{u.strip()}[/INST]" if not s else "", WRONG,
     ""),
    (instruct.check_format_instruction, (), lambda u, s=None: f"[INST]  {u.strip()}  [/INST]" if not s else
     f"[INST] <<SYS>>\n{s.strip()}\n<</SYS>>\n{u.strip()} [/INST]", CLOSE, "whitespace"),
    (instruct.check_answer_labels, (), lambda p, a: (p + a, [-100] * (len(p) - 1) + p[-1:] + a), CLOSE,
     "last prompt token"),
    (instruct.check_answer_labels, (), lambda p, a: (p + a, [-100] * len(p) + a)[::-1], WRONG, "prompt + answer"),
    (instruct.check_first_passing, (), lambda s, v: ([x for x, ok in zip(s, v) if ok] or [None])[-1], CLOSE,
     "not the first"),
    (instruct.check_disjoint_95, (), lambda b, t: b[0] != t[0], WRONG, "overlapping"),
    (evaluation.check_pass_at_k, (), lambda n, c, k: 1 - (1 - c / n) ** k, WRONG, "plug-in"),
    (evaluation.check_pass_at_k, (), lambda n, c, k: 1 - math.comb(n - c, k) / math.comb(n, k), RIGHT, ""),
    (evaluation.check_wilson, (), lambda s, n: _wilson(s, n, 1.96), RIGHT, ""),  # the textbook's z: right
    (evaluation.check_wilson, (), lambda s, n: _wilson(s, n, 1.964), RIGHT, ""),  # still rounds to 1.96
    (evaluation.check_wilson, (), lambda s, n: _wilson(s, n, 1.966), WRONG, "expected"),  # just past the rounding
    (evaluation.check_wilson, (), lambda s, n: _wilson(s, n, 1.645), WRONG, "expected"),  # a 90 % interval
    (evaluation.check_wilson, (), lambda s, n: (max(0, s / n - 1.96 * math.sqrt(s / n * (1 - s / n) / n)),
                                                min(1, s / n + 1.96 * math.sqrt(s / n * (1 - s / n) / n))), WRONG,
     "Wald"),
]


@pytest.mark.parametrize("check,args,answer,status,phrase", MISTAKES,
                         ids=[f"{m[0].exercise}-{i}" for i, m in enumerate(MISTAKES)])
def test_known_mistakes(check, args, answer, status, phrase):
    context = {"tok": tiny_tokenizer(), "val": small_corpus().texts("val")}
    verdict = check(answer, *(context[a] for a in args))
    assert verdict.status == status and phrase in verdict.why, verdict


def test_every_check_is_used_by_a_notebook_once():
    modules = (rope, fim, pretraining, long_context, instruct, evaluation)
    checks = {f"{m.__name__.rsplit('.', 1)[1]}.{name}" for m in modules for name in dir(m) if name.startswith("check_")}
    used = []
    for name in NAMES:
        text = "\n".join(_source(c) for c in section(teacher(name)))
        (module,) = re.findall(r"^from minillama\.exercises import (\w+) as ex$", text, re.M)
        used += [f"{module}.{check}" for check in re.findall(r"\bex\.(check_\w+)\(", text)]
    assert sorted(used) == sorted(checks)
