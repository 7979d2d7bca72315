"""Self-instruct and instruction tuning (PAPER §2.5), step by step.

The paper's recipe for Code Llama - Instruct's synthetic data:

1. a large model (Llama 2 70B) writes interview-style questions;
2. exact duplicates are removed;
3. the model being tuned (Code Llama 7B) writes unit tests (``[TESTS]`` tags) and ten
   solutions (``[PYTHON]`` tags) per question, seeing only one of the tests;
4. the tests are run and the first passing solution is kept.

Each role is a pluggable callable, so any causal LM minillama loads can play it (a real Code
Llama on a GPU, or the course's 7M model) and a procedural generator (``tasks.py``) can
stand in where a small model cannot (writing questions; at course scale, writing tests).
:func:`run_pipeline` records a funnel, the count that survives each stage.

Then :func:`finetune` does supervised fine-tuning in the chat format
``[INST] {prompt} [/INST] {answer}`` with the loss on answer tokens only, mixed with
rehearsal rows of pretraining text, and :func:`evaluate_pass1` scores greedy pass@1 on
held-out tasks in the sandbox.
"""

from __future__ import annotations

import ast
import copy
import math
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Callable, Protocol, Sequence

import torch
import torch.nn.functional as F

from .evaluation import wilson_interval  # noqa: F401  (re-exported for the notebook)
from .sampling import sample
from .tasks import Task, generate_tasks

IGNORE_INDEX = -100  # F.cross_entropy's default ignore_index: prompt tokens carry no loss

# --- prompt formats ------------------------------------------------------------------------
B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"
B_TESTS, E_TESTS = "[TESTS]", "[/TESTS]"
B_CODE, E_CODE = "[PYTHON]", "[/PYTHON]"

TESTS_INSTRUCTION = ("Write {n} unit tests, as assert statements between [TESTS] and [/TESTS] tags, "
                     "that check a function solving this problem.\nProblem: {question}")
SOLUTION_INSTRUCTION = ("Write a Python function that solves the problem, between [PYTHON] and [/PYTHON] "
                        "tags. It must pass this test.\nProblem: {question}\nTest: {test}")
QUESTION_INSTRUCTION = ("Write one short programming question that asks for a single standalone Python "
                        "function using only the standard library. Reply with the question only.")


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


# --- questions -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Question:
    text: str
    entry_point: str | None = None
    signature: str | None = None
    task: Task | None = None  # set when the procedural generator wrote it

    @classmethod
    def from_task(cls, task: Task) -> "Question":
        return cls(task.question, task.entry_point, task.signature, task)


def normalise(text: str) -> str:
    return " ".join(text.split())


def exact_dedup(questions: Sequence[Question]) -> list[Question]:
    """Keep the first of each question text (whitespace-normalised), in order."""
    seen, out = set(), []
    for q in questions:
        key = normalise(q.text)
        if key not in seen:
            seen.add(key)
            out.append(q)
    return out


def _shingles(text: str, n: int = 3) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + n]) for i in range(max(1, len(words) - n + 1))}


def near_dedup(questions: Sequence[Question], threshold: float = 0.7, n: int = 3) -> list[Question]:
    """Extension: drop a question whose word ``n``-gram Jaccard similarity with a kept one is
    ``>= threshold``. Quadratic; fine for thousands (MinHash would scale it)."""
    kept, kept_sh = [], []
    for q in questions:
        sh = _shingles(q.text, n)
        if all(len(sh & k) / max(1, len(sh | k)) < threshold for k in kept_sh):
            kept.append(q)
            kept_sh.append(sh)
    return kept


# --- a causal LM in a role --------------------------------------------------------------------
def _encode_plain(tok, text: str) -> list[int]:
    """Encode a continuation without SentencePiece's dummy leading space."""
    return tok.encode_infilling(text) if hasattr(tok, "encode_infilling") else tok.encode(text)


class LM:
    """Text-in, text-out wrapper over a minillama ``Transformer`` and its tokenizer.

    A prompt is ``(instruction, answer_head)``: tokens are ``encode(instruction, bos) +
    encode(answer_head)``, exactly the split used in fine-tuning, so that generation sees
    the token boundaries it was trained on."""

    def __init__(self, model, tokenizer, batch_size: int = 32):
        self.model, self.tok, self.batch_size = model, tokenizer, batch_size

    def prompt_ids(self, instruction: str, head: str) -> list[int]:
        return self.tok.encode(instruction, bos=True) + (self.tok.encode(head) if head else [])

    def _decode(self, ids: Sequence[int]) -> str:
        # A continuation may start with "▁▁▁▁" (indentation): plain decode would drop its
        # first "▁" as if it were SentencePiece's dummy prefix, leaving 3 spaces.
        return self.tok.decode_infilling(ids) if hasattr(self.tok, "decode_infilling") else self.tok.decode(ids)

    def complete(self, prompts: Sequence[tuple[str, str]], *, temperature: float = 0.0, top_p: float = 1.0,
                 max_new_tokens: int = 64, stop: Sequence[str] = (), stop_at_dedent: bool = False,
                 seed: int = 0) -> list[str]:
        ids = [self.prompt_ids(i, h) for i, h in prompts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths batch well
        out: list[str] = [""] * len(ids)
        was_training = self.model.training
        self.model.eval()
        dedent = re.compile(r"\n[^\s]")

        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]

            def should_stop(_, new):
                text = self._decode(new)
                return any(s in text for s in stop) or (stop_at_dedent and dedent.search(text) is not None)

            outs = sample(self.model, [ids[r] for r in rows], 1, max_new_tokens, temperature, top_p,
                          stop_ids=[self.tok.eos_id], should_stop=should_stop, seed=seed + start)
            for r, o in zip(rows, outs):
                text = self._decode(o)
                cuts = [text.find(s) for s in stop if s in text]
                if stop_at_dedent and (m := dedent.search(text)):
                    cuts.append(m.start())
                out[r] = text[: min(cuts)] if cuts else text
        self.model.train(was_training)
        return out


# --- the three roles ----------------------------------------------------------------------------
class QuestionWriter(Protocol):
    def __call__(self, n: int, seed: int) -> list[Question]: ...


class TestWriter(Protocol):
    def __call__(self, questions: Sequence[Question]) -> list[list[str]]: ...


class SolutionWriter(Protocol):
    def __call__(self, questions: Sequence[Question], shown_tests: Sequence[str]) -> list[list[str]]: ...


@dataclass
class TaskQuestions:
    """Procedural questions from ``tasks.py`` (the stand-in for Llama 2 70B)."""
    split: str = "train"

    def __call__(self, n: int, seed: int) -> list[Question]:
        return [Question.from_task(t) for t in generate_tasks(n, self.split, seed=seed)]


@dataclass
class ModelQuestions:
    """An LM writes questions from :data:`QUESTION_INSTRUCTION` (for a real, large model)."""
    lm: LM
    temperature: float = 1.0
    max_new_tokens: int = 96

    def __call__(self, n: int, seed: int) -> list[Question]:
        outs = self.lm.complete([(format_instruction(QUESTION_INSTRUCTION), "")] * n, temperature=self.temperature,
                                top_p=0.95, max_new_tokens=self.max_new_tokens, stop=["\n\n", B_INST], seed=seed)
        return [Question(o.strip()) for o in outs if o.strip()]


@dataclass
class ReferenceTests:
    """Tests from the task generator. At course scale the model cannot write correct tests
    (the notebook measures how rarely it does), so the generator, like the 70B question
    writer, stands in for a capable model here; held-out reference tests never enter."""
    n_tests: int = 5

    def __call__(self, questions: Sequence[Question]) -> list[list[str]]:
        if any(q.task is None for q in questions):
            raise ValueError("ReferenceTests needs questions from the task generator (Question.task)")
        return [list(q.task.tests[: self.n_tests]) for q in questions]


@dataclass
class ModelTests:
    """The model being tuned writes ``n_tests`` asserts between ``[TESTS]`` tags (the paper)."""
    lm: LM
    n_tests: int = 5
    temperature: float = 0.0
    max_new_tokens: int = 160

    def __call__(self, questions: Sequence[Question]) -> list[list[str]]:
        prompts = []
        for q in questions:
            # the call's opening is forced when the name is known, as for solutions
            head = f"{B_TESTS}\n" + (f"assert {q.entry_point}(" if q.entry_point else "")
            prompts.append((tests_prompt(q.text, self.n_tests), head))
        outs = self.lm.complete(prompts, temperature=self.temperature, max_new_tokens=self.max_new_tokens,
                                stop=[E_TESTS, B_INST])
        return [parse_tests(h[len(B_TESTS):] + o, self.n_tests) for (_, h), o in zip(prompts, outs)]


@dataclass
class ModelSolutions:
    """The model being tuned samples ``n`` solutions per question, seeing one test (the paper
    samples 10). ``stop_at_dedent`` ends a sample when the function body ends, which a small
    model that never learned ``[/PYTHON]`` needs."""
    lm: LM
    n: int = 10
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 64
    stop_at_dedent: bool = True
    seed: int = 0

    def __call__(self, questions: Sequence[Question], shown_tests: Sequence[str]) -> list[list[str]]:
        prompts = [(solution_prompt(q.text, t), solution_head(q.signature))
                   for q, t in zip(questions, shown_tests) for _ in range(self.n)]
        outs = self.lm.complete(prompts, temperature=self.temperature, top_p=self.top_p,
                                max_new_tokens=self.max_new_tokens, stop=[E_CODE, B_INST],
                                stop_at_dedent=self.stop_at_dedent, seed=self.seed)
        programs = [assemble_program(h, o) for (_, h), o in zip(prompts, outs)]
        return [programs[i * self.n:(i + 1) * self.n] for i in range(len(questions))]


# --- running tests ------------------------------------------------------------------------------
def compiles(program: str) -> bool:
    try:
        ast.parse(program)
        return True
    except (SyntaxError, ValueError):
        return False


def run_tests(jobs: Sequence[tuple[str, str]], *, timeout: float = 3.0, n_workers: int = 2,
              runner: Callable[..., dict] | None = None) -> list[bool]:
    """Pass/fail of each ``(program, tests)`` job in the sandbox. Programs that do not parse
    fail without a process; identical jobs run once."""
    if runner is None:
        from .execution import run_program as runner
    unique = {job for job in jobs if compiles(job[0])}

    def one(job):
        return runner(job[0], job[1], timeout=timeout)["passed"]

    with ThreadPoolExecutor(max(1, n_workers)) as pool:
        verdict = dict(zip(unique, pool.map(one, unique)))
    return [verdict.get(job, False) for job in jobs]


# --- the pipeline ---------------------------------------------------------------------------------
@dataclass
class Example:
    """One instruction-tuning example: the solution prompt (question + the one shown test)
    and the solution code."""
    question: str
    shown_test: str
    signature: str | None
    code: str
    passed: bool | None = None


@dataclass
class PipelineResult:
    questions: list[Question]
    deduplicated: list[Question]
    tests: list[list[str]]
    solutions: list[list[str]]
    verdicts: list[list[bool]]
    kept: list[Example]
    funnel: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)

    def unfiltered(self, n: int | None = None, seed: int = 0) -> list[Example]:
        """The ablation: the *first* sampled solution of each question, passing or not,
        subsampled to ``n`` (default: as many as were kept), so only filtering differs."""
        pool = [Example(q.text, t[0], q.signature, s[0], v[0])
                for q, t, s, v in zip(self.deduplicated, self.tests, self.solutions, self.verdicts) if t and s]
        n = len(self.kept) if n is None else n
        return random.Random(seed).sample(pool, min(n, len(pool)))


def run_pipeline(write_questions: QuestionWriter, write_tests: TestWriter, write_solutions: SolutionWriter,
                 n_questions: int, *, seed: int = 0, near_duplicates: bool = False, timeout: float = 3.0,
                 n_workers: int = 2, runner: Callable[..., dict] | None = None) -> PipelineResult:
    """Questions → deduplicated → tests → solutions seeing one test → run → keep the first
    passing solution per question."""
    secs = {}
    t = time.perf_counter()
    questions = write_questions(n_questions, seed)
    deduped = exact_dedup(questions)
    funnel = {"questions": len(questions), "deduplicated": len(deduped)}
    if near_duplicates:
        deduped = near_dedup(deduped)
        funnel["near_deduplicated"] = len(deduped)
    secs["questions"] = time.perf_counter() - t

    t = time.perf_counter()
    tests = write_tests(deduped)
    with_tests = [i for i, ts in enumerate(tests) if ts]
    funnel["with_tests"] = len(with_tests)
    secs["tests"] = time.perf_counter() - t

    t = time.perf_counter()
    solutions: list[list[str]] = [[] for _ in deduped]
    if with_tests:
        sampled = write_solutions([deduped[i] for i in with_tests], [tests[i][0] for i in with_tests])
        for i, s in zip(with_tests, sampled):
            solutions[i] = s
    secs["solutions"] = time.perf_counter() - t

    t = time.perf_counter()
    jobs = [(s, "\n".join(ts) + "\n") for ts, sols in zip(tests, solutions) for s in sols]
    flat = run_tests(jobs, timeout=timeout, n_workers=n_workers, runner=runner)
    verdicts, k = [], 0
    for sols in solutions:
        verdicts.append(flat[k:k + len(sols)])
        k += len(sols)
    secs["execution"] = time.perf_counter() - t

    kept = []
    for q, ts, sols, vs in zip(deduped, tests, solutions, verdicts):
        if True in vs:
            kept.append(Example(q.text, ts[0], q.signature, sols[vs.index(True)], True))
    funnel.update(solutions_sampled=len(jobs), solutions_compiling=sum(map(compiles, (j[0] for j in jobs))),
                  solutions_passing=sum(flat), with_passing_solution=len(kept))
    return PipelineResult(questions, deduped, tests, solutions, verdicts, kept, funnel, secs)


# --- supervised fine-tuning -------------------------------------------------------------------------
def encode_example(tok, ex: Example, system: str | None = None) -> tuple[list[int], list[int]]:
    """Token ids and labels of one example; labels are ``IGNORE_INDEX`` on the prompt so the
    loss is on the answer only (``[PYTHON]``, the code, ``[/PYTHON]`` and EOS)."""
    prompt = tok.encode(solution_prompt(ex.question, ex.shown_test, system), bos=True)
    code = ex.code.rstrip()
    if ex.signature and code.startswith(ex.signature + "\n"):
        head, rest = solution_head(ex.signature), code[len(ex.signature) + 1:]
    else:
        head, rest = solution_head(None), code
    answer = tok.encode(head) + _encode_plain(tok, f"{rest}\n{E_CODE}") + [tok.eos_id]
    return prompt + answer, [IGNORE_INDEX] * len(prompt) + answer


def rehearsal_chunks(tok, texts: Sequence[str], n: int, length: int, seed: int = 0) -> list[list[int]]:
    """``n`` random windows of ``length`` tokens from pretraining texts (rehearsal rows keep
    the model's code modelling from drifting while it learns the chat format)."""
    rng = random.Random(seed)
    texts = [t for t in texts if len(t) > 8 * length] or list(texts)
    out = []
    while len(out) < n:
        t = rng.choice(texts)
        start = rng.randrange(max(1, len(t) - 6 * length))
        ids = _encode_plain(tok, t[start:start + 6 * length])[:length]
        if len(ids) >= length // 2:
            out.append(ids)
    return out


def finetune(model, tok, examples: Sequence[Example], *, steps: int, batch_size: int = 16, lr: float = 1e-4,
             rehearsal: Sequence[Sequence[int]] = (), rehearsal_frac: float = 0.1, max_len: int = 256,
             weight_decay: float = 0.0, warmup: int = 10, seed: int = 0, system: str | None = None,
             log_every: int = 0) -> list[float]:
    """AdamW on answer-only loss, with a ``rehearsal_frac`` share of rows drawn from
    ``rehearsal`` (loss on all their tokens). Modifies ``model`` in place; returns the
    per-step losses. Linear warm-up then cosine decay to 10%."""
    if not examples:
        raise ValueError("no examples to fine-tune on")
    device = next(model.parameters()).device
    encoded = [encode_example(tok, ex, system) for ex in examples]
    encoded = [(i[:max_len], l[:max_len]) for i, l in encoded]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=weight_decay)
    rng = random.Random(seed)
    losses = []
    model.train()
    for step in range(steps):
        frac = min(1.0, (step + 1) / max(1, warmup))
        decay = 0.1 + 0.45 * (1 + math.cos(math.pi * step / max(1, steps)))
        for g in opt.param_groups:
            g["lr"] = lr * frac * decay
        rows = []
        for _ in range(batch_size):
            if rehearsal and rng.random() < rehearsal_frac:
                ids = list(rng.choice(rehearsal))[:max_len]
                rows.append((ids, ids))
            else:
                rows.append(rng.choice(encoded))
        T = max(len(i) for i, _ in rows)
        ids = torch.zeros(batch_size, T, dtype=torch.long)
        labels = torch.full((batch_size, T), IGNORE_INDEX, dtype=torch.long)
        for b, (i, l) in enumerate(rows):  # right padding: causal attention never looks ahead
            ids[b, :len(i)] = torch.tensor(i)
            labels[b, :len(l)] = torch.tensor(l)
        ids, labels = ids.to(device), labels.to(device)
        logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), labels[:, 1:].reshape(-1),
                               ignore_index=IGNORE_INDEX)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if log_every and (step % log_every == 0 or step == steps - 1):
            print(f"step {step:4d}  loss {loss.item():.3f}")
    model.eval()
    return losses


# --- evaluation -------------------------------------------------------------------------------------
@dataclass
class EvalResult:
    tasks: list[Task]
    programs: list[str]
    passed: list[bool]

    @property
    def pass1(self) -> float:
        return sum(self.passed) / max(1, len(self.passed))

    @property
    def ci(self) -> tuple[float, float]:
        return wilson_interval(sum(self.passed), len(self.passed))

    def summary(self) -> dict:
        return {"pass1": self.pass1, "ci95": list(self.ci), "n": len(self.passed), "solved": sum(self.passed)}


def evaluate_pass1(lm: LM, tasks: Sequence[Task], *, max_new_tokens: int = 64, timeout: float = 3.0,
                   n_workers: int = 2, runner: Callable[..., dict] | None = None) -> EvalResult:
    """Greedy pass@1: the prompt shows the question and the first reference test (as the
    pipeline's solution prompt does); all reference tests score the answer."""
    prompts = [(solution_prompt(t.question, t.tests[0]), solution_head(t.signature)) for t in tasks]
    outs = lm.complete(prompts, temperature=0.0, max_new_tokens=max_new_tokens, stop=[E_CODE, B_INST],
                       stop_at_dedent=True)
    programs = [assemble_program(h, o) for (_, h), o in zip(prompts, outs)]
    passed = run_tests([(p, t.test_code) for p, t in zip(programs, tasks)], timeout=timeout,
                       n_workers=n_workers, runner=runner)
    return EvalResult(list(tasks), programs, passed)


# --- sizes per profile and the whole experiment -------------------------------------------------------
@dataclass(frozen=True)
class InstructSizes:
    n_questions: int  # questions written (before dedup)
    n_samples: int  # solutions per question (the paper: 10)
    sft_steps: int
    batch_size: int
    lr: float
    n_heldout: int  # tasks from held-out families
    n_seen: int  # unseen instances of training families (0: skip)
    max_new_tokens: int = 48
    gen_batch: int = 64
    rehearsal_frac: float = 0.1


SIZES = {
    "quick": InstructSizes(n_questions=16, n_samples=4, sft_steps=6, batch_size=4, lr=1e-4,
                           n_heldout=20, n_seen=0, max_new_tokens=16, gen_batch=64),
    # cpu: sized for ~10 min on 2 idle cores (generation ~40%, SFT ~40%, sandbox and scoring the rest)
    "cpu": InstructSizes(n_questions=200, n_samples=10, sft_steps=100, batch_size=12, lr=1e-4,
                         n_heldout=120, n_seen=100),
    "gpu": InstructSizes(n_questions=2000, n_samples=10, sft_steps=600, batch_size=32, lr=1e-4,
                         n_heldout=400, n_seen=400, gen_batch=256),
}


def get_sizes(profile) -> InstructSizes:
    return SIZES.get(profile.name, SIZES["cpu"])


def load_base(profile, verbose: bool = False):
    """The pretrained base model and tokenizer of ``profile``; ``pretrained`` is False when
    no pretrained model could be loaded and a random initialisation stands in."""
    from .tokenizer import get_tokenizer

    try:
        from .artifacts import get_pretrained
    except ImportError:  # pretraining not available: a random model keeps the code runnable
        get_pretrained = None
    if get_pretrained is not None:
        model = get_pretrained(profile, fim=True, verbose=verbose)
        return model.eval(), get_tokenizer(profile), True
    from .model import ModelConfig, Transformer

    tok = get_tokenizer(profile)
    torch.manual_seed(0)
    model = Transformer(ModelConfig.from_name(profile.model, vocab_size=tok.vocab_size))
    return model.eval(), tok, False


def run_experiment(profile, sizes: InstructSizes | None = None, *, seed: int = 0, record: bool = True,
                   verbose: bool = True) -> dict:
    """The whole measurement: pipeline on train families, SFT on filtered and on unfiltered
    data (same count, same steps), greedy pass@1 of base / filtered / unfiltered."""
    from . import results
    from .data import get_corpus

    sizes = sizes or get_sizes(profile)
    say = print if verbose else (lambda *a, **k: None)
    t0 = time.perf_counter()
    base, tok, pretrained = load_base(profile, verbose)
    lm = LM(base, tok, sizes.gen_batch)
    res = run_pipeline(TaskQuestions("train"), ReferenceTests(),
                       ModelSolutions(lm, n=sizes.n_samples, max_new_tokens=sizes.max_new_tokens, seed=seed),
                       sizes.n_questions, seed=seed)
    say("funnel:", res.funnel)
    heldout = generate_tasks(sizes.n_heldout, "heldout", seed=seed + 1000, unique=True)
    train_questions = {q.text for q in res.questions}
    seen = (generate_tasks(sizes.n_seen, "train", seed=seed + 2000, unique=True, exclude=train_questions)
            if sizes.n_seen else [])
    texts = get_corpus(profile).texts("train")
    rehearsal = rehearsal_chunks(tok, texts, 256, 128, seed=seed)

    def score(model) -> dict:
        m = LM(model, tok, sizes.gen_batch)
        out = {"heldout": evaluate_pass1(m, heldout, max_new_tokens=sizes.max_new_tokens)}
        if seen:
            out["seen"] = evaluate_pass1(m, seen, max_new_tokens=sizes.max_new_tokens)
        return out

    scores = {"base": score(base)}
    losses = {}
    for name, data in (("filtered", res.kept), ("unfiltered", res.unfiltered(seed=seed))):
        if not data:
            say(f"{name}: no examples, the fine-tuned model is the base model")
            scores[name], losses[name] = scores["base"], []
            continue
        model = copy.deepcopy(base)
        losses[name] = finetune(model, tok, data, steps=sizes.sft_steps, batch_size=sizes.batch_size, lr=sizes.lr,
                                rehearsal=rehearsal, rehearsal_frac=sizes.rehearsal_frac, seed=seed)
        scores[name] = score(model)
    summary = {k: {s: r.summary() for s, r in v.items()} for k, v in scores.items()}
    say("pass@1:", summary)
    out = dict(pass1_base=scores["base"]["heldout"].pass1, pass1_filtered=scores["filtered"]["heldout"].pass1,
               pass1_unfiltered=scores["unfiltered"]["heldout"].pass1, n_heldout=len(heldout),
               funnel=res.funnel, scores=summary, n_train_examples=len(res.kept), pretrained=pretrained,
               sizes=asdict(sizes), profile=profile.name, seconds=round(time.perf_counter() - t0, 1))
    if record:
        results.record("self_instruct", **out)
    return {"record": out, "pipeline": res, "scores": scores, "losses": losses}
