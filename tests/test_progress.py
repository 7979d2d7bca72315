"""Long loops show progress on stderr: the sampler, evaluate (sampling and execution) and the
self-instruct pipeline; and nothing when progress is off, so stdout stays the results."""

import pytest
import torch

from minillama.evaluation.benchmarks import load_humaneval
from minillama.evaluation.harness import run_benchmark
from minillama.instruct.pipeline import run_tests
from minillama.model import ModelConfig, Transformer
from minillama.sampling import sample

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Transformer(ModelConfig.from_name("debug", vocab_size=64)).eval()


def test_the_sampler_counts_finished_samples_on_stderr(model, capsys):
    prompts = [[1, 5, 7], [1, 9]]
    quiet = sample(model, prompts, n=3, max_new_tokens=5, seed=0)
    assert capsys.readouterr().err == ""
    shown = sample(model, prompts, n=3, max_new_tokens=5, seed=0, progress="writing tests")
    captured = capsys.readouterr()
    assert shown == quiet  # the bar changes nothing in what is drawn
    assert "writing tests" in captured.err and "6/6" in captured.err and captured.out == ""


def test_evaluate_shows_sampling_and_execution_bars(tmp_path, capsys):
    problems = dict(list(load_humaneval().items())[:3])

    def canonical(prompts, **kw):  # a generator that answers each prompt with its canonical solution
        by_prompt = {p["prompt"]: p["canonical_solution"] for p in problems.values()}
        return [by_prompt[p] for p in prompts]

    res = run_benchmark(problems, canonical, tmp_path / "s.jsonl", n=2, batch_size=2, progress=True, n_workers=1)
    err = capsys.readouterr().err
    assert res["pass@1"] == 1.0
    assert "sampling" in err and "6/6" in err and "executing" in err


def test_the_pipeline_counts_programs_run(capsys):
    jobs = [(f"def f():\n    return {i}\n", f"assert f() == {i % 2}\n") for i in range(4)]
    fake = lambda program, tests, timeout: {"passed": program.endswith(tests.split("== ")[1].strip() + "\n")}  # noqa: E731
    verdicts = run_tests(jobs, runner=fake, n_workers=1, progress="self-instruct: running solutions")
    assert verdicts == [True, True, False, False]  # f() == i % 2 holds for i = 0 and 1
    err = capsys.readouterr().err
    assert "self-instruct: running solutions" in err and "4/4" in err


def test_the_instruct_arms_count_their_runs(monkeypatch, capsys):
    # notebook 05's longest part: one bar over arm x seed (fine-tune + scoring), here with both faked
    from types import SimpleNamespace

    from minillama.instruct import ablation as A

    monkeypatch.setattr(A, "arm_examples", lambda res, arm, seed=0: ["example"])
    monkeypatch.setattr(A, "world_rehearsal", lambda tok, seed: [])
    monkeypatch.setattr(A, "tune", lambda model, tok, ex, sizes, seed, reh: (model, [1.0]))
    monkeypatch.setattr(A, "score", lambda model, tok, problems, fmt: SimpleNamespace(pass1=0.5))
    sizes = SimpleNamespace(seeds=(0, 1))
    arms = A.world_arms("model", "tok", None, sizes, {}, say=lambda s: None)
    assert set(arms.scores) == set(A.ARMS) and set(arms.scores["oracle"]) == {0, 1}
    err = capsys.readouterr().err
    assert "instruct arms" in err and "6/6" in err
    A.world_arms("model", "tok", None, sizes, {}, say=lambda s: None, progress=False)
    assert capsys.readouterr().err == ""
