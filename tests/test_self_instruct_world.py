"""Self-instruct on the code world: questions, the model's doctest tests, the filter's grading, the
native SFT format, and the notebook's steps end to end on the shipped coding model (small sizes)."""

from dataclasses import replace

import pytest
import torch

from minillama.instruct import world as W
from minillama.instruct.pipeline import run_pipeline
from _sandbox_stub import fake_runner


def test_questions_are_held_out_compositions_with_hidden_tests():
    from minillama.instruct.requests import split_problems
    qs = W.WorldQuestions()(40, seed=0)
    evaluation = split_problems("eval", 150).values()
    assert len(qs) == 40 and not {q.problem["chain"] for q in qs} & {p["chain"] for p in evaluation}
    for q in qs:
        signature, text, shown = W.split_problem(q.problem)
        assert q.signature == signature and q.text == text and signature.startswith(f"def {q.entry_point}(")
        assert ">>>" not in q.text and "check(" not in W.world_prompt(q.signature, q.text)
        # the shown test is the docstring's example, and the reference solution passes it
        program = W.world_prompt(signature, text, shown) + q.problem["canonical_solution"]
        assert fake_runner(program, shown + "\n", 3)["passed"]
        assert fake_runner(*W.reference_job(q.problem, program), 3)["passed"]
    assert qs[0].problem["instruction"].startswith("[INST] ") and qs[0].signature not in qs[0].problem["instruction"]


def test_world_prompt_round_trip_and_doctest_prompt_ends_at_the_name():
    q = W.WorldQuestions()(1, seed=3)[0]
    signature, text, shown = W.split_problem(q.problem)
    prompt = W.world_prompt(signature, text, shown)
    assert W.split_problem({"prompt": prompt}) == (signature, text, shown)
    assert W.doctest_prompt(q).endswith(f"\n\n    >>> {q.entry_point}")
    assert W.assert_parts("assert f([1, 2], 'a') == [3]") == ("f([1, 2], 'a')", "[3]")
    with pytest.raises(ValueError):
        W.assert_parts("assert f(1) != 2")


def test_parse_doctest_keeps_literal_calls_only():
    assert W.parse_doctest("f", "([1, 2])\n    3\n    ") == "assert f([1, 2]) == 3"
    assert W.parse_doctest("f", "('ab', 2)\n    'abab'\n") == "assert f('ab', 2) == 'abab'"
    assert W.parse_doctest("f", "(x)\n    3\n") is None  # a name, not a literal
    assert W.parse_doctest("f", "([1, 2])\n    len(x)\n") is None  # the value must be a literal
    assert W.parse_doctest("f", "([1, 2]\n    3\n") is None  # unbalanced
    assert W.parse_doctest("f", "([1, 2])\n") is None  # no value line
    assert W.parse_doctest("f", "(__import__('os'))\n    1\n") is None


class StubSolutions:
    """Right, wrong-on-the-edge-case (passes the example only) and broken solutions, in a fixed order."""
    def __call__(self, questions, shown_tests):
        out = []
        for q, t in zip(questions, shown_tests):
            prompt = W.world_prompt(q.signature, q.text, t)
            good = prompt + q.problem["canonical_solution"]
            call, expected = W.assert_parts(t)
            lucky = prompt + f"    return {expected}\n"  # passes the shown example, fails the hidden tests
            broken = prompt + "    return (\n"
            out.append([broken, lucky, good] if len(out) % 2 == 0 else [broken, good])
        return out


def test_filter_quality_counts_what_one_example_lets_through():
    res = run_pipeline(W.WorldQuestions(), W.QuestionExampleTests(), StubSolutions(), 10, seed=0, runner=fake_runner)
    assert res.funnel["with_passing_solution"] == 10 == len(res.kept)
    q = W.filter_quality(res)
    # even questions keep the lucky constant (wrong), odd ones the right solution
    assert q["kept"] == 10 and q["kept_right"] == 5 and q["kept_precision"] == 0.5
    assert q["pass_wrong"] == 5 and q["pass_right"] == 10 and q["fail_wrong"] == 10 and q["fail_right"] == 0
    assert q["precision"] == 10 / 15 and q["npv"] == 1.0
    assert q["tests_written"] == q["tests_true"] == 10
    assert q["right_per_question"] == [1, 1] * 5
    curve = W.pass_at_k_curve(q["right_per_question"], 2)
    assert curve[1] == 0.5 and curve[2] == 1.0  # one right of n = 2: pass@1 = 1/2, pass@2 = 1

    # the three arms: the same questions, the same size, only the answers differ
    from minillama.instruct.ablation import arm_examples
    arms = {arm: arm_examples(res, arm, seed=1) for arm in ("oracle", "filtered", "unfiltered")}
    assert {len(a) for a in arms.values()} == {10}
    assert len({tuple(e.question for e in a) for a in arms.values()}) == 1
    for q, e in zip(res.deduplicated, arms["oracle"]):  # the reference answer passes the hidden tests
        assert e.question == q.problem["request"] and fake_runner(*W.reference_job(q.problem, e.code), 3)["passed"]
    # filtered: the kept solution (lucky on even questions, right on odd ones), without its docstring
    assert all('"""' not in e.code and e.code.startswith("def ") for e in arms["filtered"])
    right = [fake_runner(*W.reference_job(q.problem, e.code), 3)["passed"] for q, e in zip(res.deduplicated, arms["filtered"])]
    assert right == [False, True] * 5
    # unfiltered, seed 1: the second sample, passing or not (lucky on even questions, right on odd ones)
    assert all("return (" not in e.code for e in arms["unfiltered"])
    with pytest.raises(ValueError, match="unknown arm"):
        arm_examples(res, "best")


def test_instruct_sft_format_masks_the_prompt_and_ends_with_eos():
    from minillama.codeworld.reference import load_reference
    from minillama.instruct.following import encode_request_example, reference_examples
    from minillama.instruct.requests import format_answer, split_problems
    _, tok = load_reference()
    problem = next(iter(split_problems("train", 5).values()))
    ex = reference_examples({"p": problem})[0]
    ids, labels = encode_request_example(tok, ex)
    n_prompt = sum(lab == -100 for lab in labels)
    assert labels[:n_prompt] == [-100] * n_prompt and labels[n_prompt:] == ids[n_prompt:]
    assert ids[-1] == tok.eos_id and ids[0] == tok.bos_id
    assert tok.decode(ids[1:n_prompt]) == problem["instruction"]
    assert tok.decode_infilling(ids[n_prompt:-1]) == format_answer(problem["answer_code"]) == problem["answer"]


def test_the_model_writes_doctests_and_the_funnels_run_on_the_coding_model():
    from minillama.codeworld.reference import coding_model
    from minillama.profiles import get_profile
    torch.set_num_threads(1)
    model, tok, about = coding_model("reference")
    assert about["model"] == "reference" and about["parameters"] > 1e6
    sizes = replace(get_profile("quick").instruct, n_questions=6, n_samples=3)
    f = W.world_funnels(model, tok, sizes, seed=0, say=lambda *a: None)
    assert f.paper.funnel["questions"] == f.ablation.funnel["questions"] == 6
    written = [t for ts in f.paper.tests for t in ts]
    assert written and all(t.startswith("assert ") for t in written)  # the model wrote parseable doctests
    assert f.quality["tests_true"] == 6  # the question's own example is true of its reference
    assert all(len(s) == 3 for s in f.ablation.solutions)
    with pytest.raises(ValueError, match="use 'reference'"):
        coding_model("nonsense")


def test_the_funnels_also_run_on_notebook_03s_model():
    """MINILLAMA_CODING_MODEL=own: the same steps on the stdlib model of the profile (quick: a
    debug model), which writes no passing solution; nothing crashes and nothing is kept by luck."""
    from minillama.codeworld.reference import coding_model
    from minillama.profiles import get_profile
    torch.set_num_threads(1)
    profile = get_profile("quick")
    model, tok, about = coding_model("own", profile)
    assert about["model"] == "own" and about["training_tokens"] is None
    sizes = replace(profile.instruct, n_questions=4, n_samples=2)
    f = W.world_funnels(model, tok, sizes, seed=0, say=lambda *a: None)
    assert f.ablation.funnel["solutions_sampled"] == 8
    assert f.quality["kept_right"] <= f.quality["kept"] == len(f.ablation.kept)
