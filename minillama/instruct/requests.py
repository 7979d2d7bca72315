"""Requests in plain English inside the paper's Instruct prompt, and the splits they come from.

What Code Llama - Instruct adds to the base model is *following a request* (PAPER §2.5): asked
``[INST] Write a function … [/INST]``, it answers with code between ``[PYTHON]`` tags. A model
pretrained on modules of functions has never seen that shape, so asked that way it mostly fails;
the same problem written as a signature and docstring (the base model's own format) it solves.
This module writes both forms of each problem:

* **request** (the instruction format): ``[INST] {request} [/INST]``, where the request names the
  function and its arguments and says in words what it returns, and gives no signature or docstring
  to continue; the answer is ``[PYTHON]\\n{def …}\\n[/PYTHON]``;
* **docstring** (the base format): the MiniEval prompt, signature and docstring, to continue.

Problems are the code world's held-out compositions (MiniEval's ``compositions`` tier), split **by
composition** (the chain of stages) into three disjoint parts so no evaluation problem shares its
behaviour with a fine-tuning question: ``train`` (the questions fine-tuning may use), ``dev`` (where
every hyperparameter is chosen) and ``eval`` (reported once). The phrasings of the request around the
behaviour's sentence are the course's own; ``train`` uses one set, ``dev`` and ``eval`` another, so
the tuned model must follow requests worded in ways it was never tuned on.
"""

from __future__ import annotations

import hashlib
import random
from functools import lru_cache

from minillama.instruct.formats import B_CODE, E_CODE, format_instruction

SPLITS = ("train", "dev", "eval")
SPLIT_SHARES = {"train": 0.5, "dev": 0.15, "eval": 0.35}  # of the 310 held-out compositions
SPLIT_SEEDS = {"train": 7000, "dev": 7100, "eval": 7200}  # MiniEval uses 0, notebook 06 0, self-instruct 5000+

REQUEST_TEMPLATES = {  # the course's own phrasings; "{desc}" is the docstring's sentence
    "train": ("Write a Python function {call}. {desc}",
              "Write a function named {name} that takes {args}. {desc}",
              "Implement {call} in Python. {desc}",
              "I need a Python function {call}. {desc}"),
    "heldout": ("Please write {call}. {desc}",
                "Create a function called {name} taking {args}. {desc}",
                "Can you code {call} for me? {desc}",
                "Define the function {call}: {desc}"),
}
EXAMPLE_TEMPLATES = {"train": ("For example, {call} should return {result}.", "Example: {call} gives {result}."),
                     "heldout": ("So {call} returns {result}.", "As an example, {call} is {result}.")}


def split_of(chain: str) -> str:
    """The split of a composition (``"stage>stage>…"``), fixed by a hash of its name."""
    u = int(hashlib.sha256(chain.encode()).hexdigest()[:8], 16) / 16 ** 8
    edge = 0.0
    for split in SPLITS:
        edge += SPLIT_SHARES[split]
        if u < edge:
            return split
    return SPLITS[-1]


def _args_words(names: list[str]) -> str:
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]


def request_text(fn, rng: random.Random, phrasing: str = "train", example: bool | None = None) -> str:
    """The plain-English request for a code-world :class:`~minillama.codeworld.functions.Function`:
    a phrasing of ``phrasing`` (``"train"`` or ``"heldout"``) around the docstring's sentence,
    with the docstring's example as a sentence when ``example`` (default: half the time)."""
    from minillama.codeworld.phrasing import fill_names
    names = [fn.arg, *fn.param_names]
    call = f"{fn.name}({', '.join(names)})"
    desc = " ".join(fill_names(fn.description, fn.arg, fn.param_names).split())
    text = rng.choice(REQUEST_TEMPLATES[phrasing]).format(call=call, name=fn.name, args=_args_words(names), desc=desc)
    if example is None:
        example = rng.random() < 0.5
    if example and fn.example is not None:
        ex_call = f"{fn.name}({', '.join(repr(a) for a in fn.example)})"
        text += " " + rng.choice(EXAMPLE_TEMPLATES[phrasing]).format(call=ex_call, result=repr(fn.run(fn.example)))
    return text


def answer_code(fn) -> str:
    """The answer's code: the signature and the body, without the docstring (the request said it)."""
    return fn.signature + "\n" + "\n".join(fn.body).strip("\n") + "\n"


def format_answer(code: str) -> str:
    """What the tuned model writes after ``[/INST]``: the code between the course's code tags."""
    return f" {B_CODE}\n{code.rstrip()}\n{E_CODE}"


def extract_code(answer: str) -> str:
    """The program in a model's answer: the text after ``[PYTHON]`` (or all of it when the tag is
    missing) up to ``[/PYTHON]``. Lenient on purpose, so that a base model is scored on its code,
    not on its tags; :func:`followed_format` says whether the tags were there."""
    text = answer.split(B_CODE, 1)[1] if B_CODE in answer else answer
    return text.split(E_CODE, 1)[0].strip("\n") + "\n"


def followed_format(answer: str) -> bool:
    """Whether an answer put its code between ``[PYTHON]`` and ``[/PYTHON]`` (the request's form)."""
    return B_CODE in answer and E_CODE in answer.split(B_CODE, 1)[1]


@lru_cache(maxsize=16)
def _split_problems(split: str, n: int, seed: int) -> tuple[tuple[str, dict], ...]:
    from minillama.codeworld.minieval import tier_functions
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    phrasing = "train" if split == "train" else "heldout"
    pool_size = int(n / SPLIT_SHARES[split] * 1.3) + 20
    out = []
    for prob, fn in tier_functions("compositions", pool_size, SPLIT_SEEDS[split] + seed):
        if split_of(prob["chain"]) != split:
            continue
        rng = random.Random(f"request-{split}-{seed}-{len(out)}")
        task_id = f"Request/{split}/{len(out)}"
        code, request = answer_code(fn), request_text(fn, rng, phrasing)
        out.append((task_id, {
            "task_id": task_id, "prompt": prob["prompt"], "canonical_solution": prob["canonical_solution"],
            "test": prob["test"], "entry_point": prob["entry_point"], "chain": prob["chain"],
            "depth": prob["depth"], "request": request, "instruction": format_instruction(request),
            "answer": format_answer(code), "answer_code": code, "split": split}))
        if len(out) == n:
            break
    if len(out) < n:
        raise RuntimeError(f"only {len(out)} {split} problems; ask for fewer")
    return tuple(out)


def split_problems(split: str, n: int, seed: int = 0) -> dict[str, dict]:
    """``n`` problems of ``split`` (``train``, ``dev``, ``eval``), each in both forms: ``prompt``
    (docstring format, MiniEval's), ``instruction`` (``[INST] request [/INST]``), ``answer`` (the
    reference answer in the request's form), plus MiniEval's ``test`` / ``entry_point`` / ``chain``."""
    return {k: dict(v) for k, v in _split_problems(split, n, seed)}
