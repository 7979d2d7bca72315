"""Prompt and answer formats of instruction tuning (PAPER §2.5, App. H): Llama 2's chat format
``[INST] … [/INST]``, unit tests between ``[TESTS]`` tags, code between ``[PYTHON]`` tags."""

from __future__ import annotations

import ast
import re


B_INST, E_INST = "[INST]", "[/INST]"

B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"

B_TESTS, E_TESTS = "[TESTS]", "[/TESTS]"

B_CODE, E_CODE = "[PYTHON]", "[/PYTHON]"

TESTS_INSTRUCTION = ("Write {n} unit tests, as assert statements between [TESTS] and [/TESTS] tags, "
                     "that check a function solving this problem.\nProblem: {question}")

SOLUTION_INSTRUCTION = ("Write a Python function that solves the problem, between [PYTHON] and [/PYTHON] "
                        "tags. It must pass this test.\nProblem: {question}\nTest: {test}")


def format_instruction(user: str, system: str | None = None) -> str:
    """The Llama 2 chat prompt of one user turn: ``[INST] {user} [/INST]``, with the system
    prompt, if any, inside the first user turn between ``<<SYS>>`` and ``<</SYS>>``."""
    content = user.strip()
    if system:
        content = f"{B_SYS}{system.strip()}{E_SYS}{content}"
    return f"{B_INST} {content} {E_INST}"


def tests_prompt(question: str, n_tests: int = 5, system: str | None = None) -> str:
    return format_instruction(TESTS_INSTRUCTION.format(n=n_tests, question=question), system)


def solution_prompt(question: str, test: str, system: str | None = None) -> str:
    return format_instruction(SOLUTION_INSTRUCTION.format(question=question, test=test), system)


def solution_head(signature: str | None) -> str:
    """What the answer starts with. Forcing the signature is the course-scale crutch that
    gives a 7M model a chance; a real Code Llama gets ``[PYTHON]\\n`` only."""
    return f"{B_CODE}\n" + (f"{signature}\n" if signature else "")


def format_solution(code: str) -> str:
    return f"{B_CODE}\n{code.rstrip()}\n{E_CODE}"


def parse_tests(text: str, max_tests: int = 5) -> list[str]:
    """The ``assert`` lines of a ``[TESTS]`` answer that parse as Python, deduplicated."""
    text = text.split(E_TESTS)[0]
    out: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("assert ") or line in out:
            continue
        try:
            ast.parse(line)
        except SyntaxError:
            continue
        out.append(line)
        if len(out) == max_tests:
            break
    return out


def assemble_program(head: str, completion: str) -> str:
    """Python source from the forced answer head and the model's continuation: the code tags
    are dropped and the continuation is cut at ``[/PYTHON]``."""
    code = head[len(B_CODE):].lstrip("\n") + completion.split(E_CODE)[0]
    return code.rstrip() + "\n"


def entry_point_of(test: str) -> str | None:
    m = re.match(r"\s*assert\s+(?:not\s+)?([A-Za-z_]\w*)\s*\(", test)
    return m.group(1) if m else None
