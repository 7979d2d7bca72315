"""Scoring the course's models: HumanEval and infilling wiring, with stub generators and a
tiny random model (no trained artifacts needed)."""

import pytest
import torch

from _tok_fixtures import tiny_tokenizer
from minillama.evaluation.benchmarks import load_humaneval
from minillama.evaluation.course_models import (agreement, ends_inside_token, evaluate_humaneval, evaluate_infilling,
                                                fit_context, infill_middles, infilling_tasks, random_span_tasks,
                                                score_middles)
from minillama.fim import infilling_prompt
from minillama.healing import heal_prompt as heal
from minillama.model import ModelConfig, Transformer

PROBLEMS = dict(list(load_humaneval().items())[:4])


pytestmark = pytest.mark.usefixtures("one_thread")


def _model(tok):
    torch.manual_seed(0)
    return Transformer(ModelConfig.from_name("debug", vocab_size=tok.vocab_size)).eval()


def test_humaneval_canonical_passes_and_empty_fails():
    def canonical(prompts, **kw):
        by_prompt = {p["prompt"]: p["canonical_solution"] for p in PROBLEMS.values()}
        return [by_prompt[p] for p in prompts]

    def empty(prompts, **kw):
        return ["" for _ in prompts]

    right = evaluate_humaneval(None, None, PROBLEMS, generate_fn=canonical)
    assert right["pass@1"] == 1.0 and right["total"] == 4 and right["ci95"][1] == 1.0
    wrong = evaluate_humaneval(None, None, PROBLEMS, generate_fn=empty)
    assert wrong["pass@1"] == 0.0 and wrong["ci95"][0] == 0.0
    sampled = evaluate_humaneval(None, None, PROBLEMS, limit=2, mode="sampled", n=2, ks=(1, 2),
                                 generate_fn=canonical)
    assert sampled["pass@1"] == sampled["pass@2"] == 1.0 and sampled["total"] == 4


def _stub_ids(tok, tasks, spm, middles):
    """A decoder that answers each task's infilling prompt with the given middle + EOT."""
    answers = {tuple(infilling_prompt(tok, t["prompt"], t["suffix"], spm)): middles[t["task_id"]] for t in tasks}

    def gen(prompts, max_new_tokens, stop_ids):
        assert stop_ids == [tok.eot_id, tok.eos_id]
        return [tok.encode_infilling(answers[tuple(p)]) + [tok.eot_id, 99] for p in prompts]
    return gen


def test_infilling_canonical_middles_pass_in_both_layouts():
    tok = tiny_tokenizer()
    for kind in ("single-line", "multi-line", "random-span"):
        tasks = infilling_tasks(kind, PROBLEMS, limit=3, seed=1)
        for spm in (False, True):
            right = {t["task_id"]: t["canonical_solution"] for t in tasks}
            r = evaluate_infilling(None, tok, spm=spm, tasks=tasks, generate_fn=_stub_ids(tok, tasks, spm, right))
            assert r["pass@1"] == 1.0 and r["exact_match"] == 1.0 and r["stopped"] == 1.0, (kind, spm, r["middles"])
            empty = {t["task_id"]: "" for t in tasks}
            r = evaluate_infilling(None, tok, spm=spm, tasks=tasks, generate_fn=_stub_ids(tok, tasks, spm, empty))
            assert r["pass@1"] == 0.0, (kind, spm)
        direct = score_middles(tasks, [t["canonical_solution"] for t in tasks])
        assert direct["pass@1"] == 1.0 and direct["stopped"] is None


def test_random_span_tasks_are_fixed_and_cut_inside_tokens():
    tasks = random_span_tasks(PROBLEMS, seed=3)
    assert tasks == random_span_tasks(PROBLEMS, seed=3) != random_span_tasks(PROBLEMS, seed=4)
    for t in tasks.values():
        p = PROBLEMS[t["task_id"].split("/", 1)[1].rsplit("/", 1)[0]]
        assert t["prompt"] + t["canonical_solution"] + t["suffix"] == p["prompt"] + p["canonical_solution"]
        assert t["canonical_solution"]
    tok = tiny_tokenizer()
    many = random_span_tasks(load_humaneval(), seed=0)
    inside = sum(ends_inside_token(tok, t) for t in list(many.values())[:60])
    assert 0 < inside < 60


def test_fit_context_keeps_text_near_the_hole():
    tok = tiny_tokenizer()
    t = infilling_tasks("single-line", PROBLEMS, limit=1)[0]
    prefix, suffix = fit_context(tok, t["prompt"], t["suffix"] * 5, 60)
    assert t["prompt"].endswith(prefix) and (t["suffix"] * 5).startswith(suffix)
    assert len(prefix) < len(t["prompt"])


def test_healing_regenerates_the_removed_text_with_a_real_model():
    tok = tiny_tokenizer()
    model = _model(tok)
    kept, removed = heal(tok, tok.encode("def f(x):\n    return x"))
    assert removed and tok.decode(kept) + removed == "def f(x):\n    return x"
    one = tok.encode("def")[:1]  # a prefix's only token holds the dummy space: never removed
    assert heal(tok, one) == (one, "")
    tasks = infilling_tasks("random-span", PROBLEMS, limit=2)
    for spm in (False, True):
        plain = infill_middles(model, tok, tasks, spm=spm, max_new_tokens=6, context=256)
        healed = infill_middles(model, tok, tasks, spm=spm, heal_tokens=True, max_new_tokens=6, context=256)
        assert all(h["healed"] for h in healed) and not any(p["healed"] for p in plain)
    r = evaluate_infilling(model, tok, "random-span", spm=True, heal=True, problems=PROBLEMS, limit=2,
                           max_new_tokens=6, context=256)
    assert r["total"] == 2 and r["pass@1"] == 0.0 and r["layout"] == "SPM" and r["heal"]


def test_agreement():
    a = agreement(["abc", "x", ""], ["abd", "x", "y"])
    assert a["exact_match"] == 1 / 3 and a["first_char"] == 2 / 3 and a["prefix_chars"] == 1.0
