"""Self-instruct pipeline: prompt formats, dedup, loss mask, and the funnel on a stub generator."""

import torch

from minillama import instruct as si
from minillama.model import ModelConfig, Transformer
from minillama.instruct.tasks import generate_tasks
from minillama.tokenizer import get_tokenizer
from _sandbox_stub import fake_runner


def test_instruction_format_exact():
    assert si.format_instruction("  hi  ") == "[INST] hi [/INST]"
    assert (si.format_instruction("hi", system="be brief")
            == "[INST] <<SYS>>\nbe brief\n<</SYS>>\n\nhi [/INST]")
    p = si.solution_prompt("Q?", "assert f(1) == 2")
    assert p.startswith("[INST] ") and p.endswith(" [/INST]")
    assert "[PYTHON]" in p and "[/PYTHON]" in p and "Test: assert f(1) == 2" in p
    assert "[TESTS]" in si.tests_prompt("Q?") and "[/TESTS]" in si.tests_prompt("Q?")
    assert si.solution_head("def f(x):") == "[PYTHON]\ndef f(x):\n"
    assert si.format_solution("def f(x):\n    return x\n") == "[PYTHON]\ndef f(x):\n    return x\n[/PYTHON]"


def test_parse_tests_and_assemble_program():
    text = "assert f(1) == 2\n# Test case 2:\nassert f(2) == 3\nassert f(2) == 3\nassert f(( == 1\n[/TESTS]\nassert f(9) == 0"
    assert si.parse_tests(text) == ["assert f(1) == 2", "assert f(2) == 3"]
    prog = si.assemble_program("[PYTHON]\ndef f(x):\n", "    return x + 1\n[/PYTHON]\nrubbish")
    assert prog == "def f(x):\n    return x + 1\n"
    assert si.entry_point_of("assert add_one([1]) == [2]") == "add_one"


def test_exact_and_near_dedup():
    qs = [si.Question("Sum a  list."), si.Question("Sum a list."), si.Question("Reverse a string."),
          si.Question("Sum a list please.")]
    assert [q.text for q in si.exact_dedup(qs)] == ["Sum a  list.", "Reverse a string.", "Sum a list please."]
    near = si.near_dedup([si.Question("Return the sum of the list xs of numbers"),
                          si.Question("Return the sum of the list xs of integers"),
                          si.Question("Reverse the string s")], threshold=0.5)
    assert len(near) == 2


def test_wilson_interval():
    lo, hi = si.wilson_interval(0, 100)
    assert lo == 0.0 and 0.02 < hi < 0.05
    lo, hi = si.wilson_interval(50, 100)
    assert lo < 0.5 < hi and abs((lo + hi) / 2 - 0.5) < 1e-9


def test_loss_mask_covers_answer_only():
    tok = get_tokenizer("quick")
    ex = si.Example("Write a function f(x). Return x plus 1.", "assert f(1) == 2", "def f(x):",
                    "def f(x):\n    return x + 1\n")
    ids, labels = si.encode_example(tok, ex)
    prompt = tok.encode(si.solution_prompt(ex.question, ex.shown_test), bos=True)
    assert ids[:len(prompt)] == prompt
    assert all(l == si.IGNORE_INDEX for l in labels[:len(prompt)])
    assert labels[len(prompt):] == ids[len(prompt):] and ids[-1] == tok.eos_id
    answer = tok.decode(ids[len(prompt):-1])
    assert answer.strip() == "[PYTHON]\ndef f(x):\n    return x + 1\n[/PYTHON]"


def test_finetune_lowers_answer_loss():
    tok = get_tokenizer("quick")
    torch.manual_seed(0)
    model = Transformer(ModelConfig.from_name("debug", vocab_size=tok.vocab_size))
    tasks = generate_tasks(4, "train", seed=0)
    exs = [si.Example(t.question, t.tests[0], t.signature, t.solution) for t in tasks]
    losses = si.finetune(model, tok, exs, steps=25, batch_size=4, lr=3e-3, warmup=2,
                         rehearsal=[list(range(5, 40))], rehearsal_frac=0.25)
    assert losses[-1] < losses[0] - 1.0


class StubSolutions:
    """Known solutions: per question, bad, good (kept), good-but-different (must not be kept)."""

    def __call__(self, questions, shown_tests):
        out = []
        for q in questions:
            good = q.task.solution
            other = good.replace("    return", "    result = None\n    return")
            bad = f"{q.signature}\n    return 12345\n"
            broken = f"{q.signature}\n    return (\n"
            out.append([broken, bad, good, other] if len(out) % 2 == 0 else [bad, broken])
        return out


def test_pipeline_keeps_exactly_the_first_passing_solution():
    res = si.run_pipeline(si.TaskQuestions("train"), si.ReferenceTests(), StubSolutions(), 40, seed=0,
                          runner=fake_runner)
    f = res.funnel
    assert f["questions"] == 40 and f["deduplicated"] == len(res.deduplicated) <= 40
    assert f["with_tests"] == f["deduplicated"]
    n_good = (f["deduplicated"] + 1) // 2  # every other question has good solutions
    assert f["with_passing_solution"] == len(res.kept) == n_good
    assert f["solutions_passing"] == 2 * n_good
    for ex, q in zip(res.kept, res.deduplicated[::2]):
        assert ex.code == q.task.solution and ex.question == q.text and ex.shown_test == q.task.tests[0]
    unf = res.unfiltered(seed=0)
    assert len(unf) == len(res.kept) and not any(e.passed for e in unf)  # first samples all fail here


def test_pipeline_in_the_sandbox_with_a_real_model_runs():
    tok = get_tokenizer("quick")
    torch.manual_seed(0)
    model = Transformer(ModelConfig.from_name("debug", vocab_size=tok.vocab_size)).eval()
    lm = si.LM(model, tok, batch_size=16)
    res = si.run_pipeline(si.TaskQuestions("train"), si.ReferenceTests(),
                          si.ModelSolutions(lm, n=2, max_new_tokens=6), 4, seed=0)
    assert res.funnel["solutions_sampled"] == 8
    assert all(s.startswith(q.signature + "\n") for q, sols in zip(res.deduplicated, res.solutions) for s in sols)
    ev = si.evaluate_pass1(lm, generate_tasks(3, "heldout", seed=0), max_new_tokens=4)
    assert len(ev.passed) == 3 and 0.0 <= ev.pass1 <= 1.0
    good = si.run_tests([("def f(x):\n    return x\n", "assert f(1) == 1\n"),
                         ("def f(x):\n    return 0\n", "assert f(1) == 1\n")])
    assert good == [True, False]


def test_continuation_decoding_keeps_indentation():
    tok = get_tokenizer("quick")
    lm = si.LM(None, tok)
    body = "    return [x + 1 for x in xs]\n"
    assert lm._decode(si.pipeline._encode_plain(tok, body)) == body  # plain decode would leave 3 spaces


def test_oracle_arm_and_paired_comparison_of_arms():
    from dataclasses import replace

    from minillama.instruct.experiment import (EvalResult, arms_record, compare_arms, standard_arms, train_arms)
    from minillama.profiles import get_profile

    res = si.run_pipeline(si.TaskQuestions("train"), si.ReferenceTests(), StubSolutions(), 20, seed=0,
                          runner=fake_runner)
    oracle = res.oracle(n=6, seed=1)
    assert len(oracle) == 6 and all(e.passed for e in oracle)
    by_text = {q.text: q.task for q in res.deduplicated}
    assert all(e.code == by_text[e.question].solution for e in oracle)
    assert len(res.unfiltered(n=7, seed=0)) == 7  # a fixed size, not the kept count

    # arms: an arm without examples is not run (never stood in for by the base)
    sizes = replace(get_profile("quick").instruct, seeds=(0, 1), sft_steps=1, batch_size=2)
    calls = []

    def score(model):
        calls.append(model)
        return {"heldout": EvalResult([], [], [True, False, False, True])}
    tok = get_tokenizer("quick")
    torch.manual_seed(0)
    base = Transformer(ModelConfig.from_name("debug", vocab_size=tok.vocab_size))
    arms = standard_arms(res, replace(sizes, n_fixed=4))
    arms["filtered"] = lambda seed: []
    scores, losses = train_arms(base, tok, arms, sizes, score, say=lambda *a: None)
    assert set(scores) == {"unfiltered", "oracle"} and set(scores["oracle"]) == {0, 1}
    assert all(m is not base for m in calls)

    # pairing: base solves tasks 0 and 3; the arm solves 0, 1, 2 in both seeds
    base_scores = {"heldout": EvalResult([], [], [True, False, False, True])}
    arm = {s: {"heldout": EvalResult([], [], [True, True, True, False])} for s in (0, 1)}
    cmp = compare_arms(arm, base_scores)
    assert cmp["per_seed"][0]["a_only"] == 2 and cmp["per_seed"][0]["b_only"] == 1
    assert cmp["pooled"]["n"] == 8 and cmp["pooled"]["a_only"] == 4 and cmp["pooled"]["b_only"] == 2
    rec = arms_record(res, base_scores, {"oracle": arm})
    assert rec["pass1_filtered"] is None and rec["pass1_oracle"] == 0.75 and rec["p_filtered_vs_unfiltered"] is None
    assert rec["p_oracle_vs_base"] == cmp["pooled"]["p"] and rec["kept"] == len(res.kept)
