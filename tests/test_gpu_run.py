"""The gpu profile's one command (``bash gpu/run.sh`` / ``python -m minillama gpu-run``), checked
without a GPU: the refusal of a real run, and the dry run that takes the same path on the CPU at
tiny sizes (bf16 autocast, ``torch.compile`` through a backend that generates no code, fused AdamW,
the notebooks under a wall-clock budget, the run's record)."""

from __future__ import annotations

import json
import warnings

import nbformat
import numpy as np
import pytest
import torch

from minillama.course.gpu_run import COMPILE_BACKEND_ENV, DRY_RUN_ENV, gpu_run
from minillama.data.pipeline import PackedData
from minillama.model import ModelConfig
from minillama.profiles import PROFILES, get_profile
from minillama.training import schedule

pytestmark = pytest.mark.usefixtures("one_thread")
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks what a machine without a GPU is told")

MODEL = dict(dim=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=64, multiple_of=16, max_seq_len=64)


@pytest.fixture
def dry_run(monkeypatch):
    monkeypatch.setenv(DRY_RUN_ENV, "1")
    monkeypatch.setenv(COMPILE_BACKEND_ENV, "aot_eager")


def _counting(n_rows=32, seq_len=16):
    rng = np.random.default_rng(0)
    start, stride = rng.integers(0, 64, (n_rows, 1)), rng.integers(1, 4, (n_rows, 1))
    return PackedData.from_array((start + stride * np.arange(seq_len + 1)) % 64)


@no_gpu
def test_a_real_gpu_run_is_refused_without_a_gpu_and_names_the_dry_run(monkeypatch):
    monkeypatch.delenv(DRY_RUN_ENV, raising=False)
    with pytest.raises(RuntimeError, match="MINILLAMA_GPU_DRY_RUN=1"):
        get_profile("gpu")
    from minillama.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["gpu-run"])
    assert exit_.value.code == 2


def test_the_dry_run_profile_is_the_gpu_recipe_at_the_quick_sizes(dry_run):
    gpu, quick = PROFILES["gpu"], PROFILES["quick"]
    p = get_profile("gpu")
    assert (p.name, p.device, p.dtype, p.compile) == ("gpu", "cpu", gpu.dtype, True)
    assert (p.model, p.train_steps, p.seq_len, p.long_context, p.instruct) == \
        (quick.model, quick.train_steps, quick.seq_len, quick.long_context, quick.instruct)
    from minillama.training.pretrain import train_config

    cfg = train_config(p)
    assert (cfg.device, cfg.dtype, cfg.compile, cfg.fused_adamw) == ("cpu", "bfloat16", True, True)


def test_the_dry_run_trains_through_compile_bf16_and_fused_adamw(dry_run, monkeypatch):
    """The gpu profile's TrainConfig, as the dry run builds it, at the debug size: the compiled
    module runs (Dynamo traces the model, AOTAutograd its backward), the optimizer is the fused one,
    and the losses are float32's up to bf16 rounding."""
    import torch._dynamo.utils as dynamo_utils

    from minillama.training.pretrain import train_config
    from minillama.training.trainer import train

    seen = {}
    make_optimizer = schedule.make_optimizer

    def spy(*args, **kwargs):
        seen["opt"] = make_optimizer(*args, **kwargs)
        return seen["opt"]

    monkeypatch.setattr(schedule, "make_optimizer", spy)
    small = dict(steps=4, batch_size=8, lr=1e-2, warmup=1, eval_interval=0, checkpoint_interval=0, out_dir=None,
                 progress=False)
    cfg = train_config(get_profile("gpu"), **small)
    val = {"val": _counting(8)}
    torch._dynamo.reset()
    dynamo_utils.counters.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a compile that fell back would warn
        gpu_path = train(cfg, ModelConfig(**MODEL), _counting(), val)
    assert gpu_path.compile_error is None and dynamo_utils.counters["stats"]["unique_graphs"] >= 1
    assert seen["opt"].defaults["fused"] is True
    from dataclasses import replace

    fp32 = train(replace(cfg, dtype="float32", compile=False, fused_adamw=None), ModelConfig(**MODEL), _counting(), val)
    losses = [[h["loss"] for h in r.history if "loss" in h] for r in (gpu_path, fp32)]
    assert all(np.isfinite(losses[0])) and losses[0][-1] < losses[0][0]
    np.testing.assert_allclose(losses[0], losses[1], rtol=0.05)


def test_a_failing_compile_falls_back_to_eager_without_losing_a_step(tmp_path):
    """torch.compile fails at the first call (here a backend that raises, on a GPU machine a missing
    compiler): the run goes on uncompiled, says why, and computes exactly the uncompiled run."""
    from minillama.training.trainer import TrainConfig, train

    def broken_backend(gm, example_inputs):
        raise RuntimeError("no compiler here")

    base = dict(steps=3, batch_size=8, lr=1e-2, warmup=1, eval_interval=0, progress=False)
    torch._dynamo.reset()
    with pytest.warns(RuntimeWarning, match="training goes on uncompiled"):
        fell_back = train(TrainConfig(**base, compile=True, compile_backend=broken_backend, out_dir=str(tmp_path)),
                          ModelConfig(**MODEL), _counting())
    eager = train(TrainConfig(**base), ModelConfig(**MODEL), _counting())
    assert "no compiler here" in fell_back.compile_error
    said = json.loads((tmp_path / "compile.json").read_text())  # beside the run's metrics, for gpu-run's record
    assert said["compiled"] is False and "no compiler here" in said["error"]
    assert [h["loss"] for h in fell_back.history] == [h["loss"] for h in eager.history]


def _notebook(path, code):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in ([code] if isinstance(code, str) else code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.mark.slow  # a kernel per notebook: a few seconds each
def test_gpu_run_dry_run_records_what_it_ran_on(tmp_path, monkeypatch):
    """``gpu-run --dry-run`` over stand-in notebooks: each sees the dry-run gpu profile in its kernel,
    the run is recorded as a dry run (never as a GPU's), and REPORT.md says so."""
    for var in (DRY_RUN_ENV, COMPILE_BACKEND_ENV, "MINILLAMA_RESULTS_DIR", "MINILLAMA_PROFILE"):
        monkeypatch.setenv(var, "")  # restored after the test, which gpu_run sets
        monkeypatch.delenv(var)
    monkeypatch.setenv("MINILLAMA_DATA", str(tmp_path / "data"))
    nbs, out = tmp_path / "notebooks", tmp_path / "results" / "gpu-dry-run"
    nbs.mkdir()
    _notebook(nbs / "01_probe.ipynb", "import os\nfrom minillama.profiles import get_profile\n"
              "from minillama.course.results import record\np = get_profile()\n"
              "record('probe', name=p.name, device=p.device, dtype=p.dtype, compile=p.compile,\n"
              "       backend=os.environ['MINILLAMA_COMPILE_BACKEND'])\n")
    assert gpu_run(dry_run=True, budget_minutes=5, out=out, notebooks_dir=nbs) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["probe"] == {"name": "gpu", "device": "cpu", "dtype": "bfloat16", "compile": True,
                                "backend": "aot_eager"}
    run = summary["run"]
    assert run["dry_run"] is True and run["profile"] == "gpu" and run["budget_minutes"] == 5
    assert run["device"] == {"dry_run": True, "device": "cpu"} and "gpu" not in run["machine"]
    assert "**Dry run:**" in (out / "REPORT.md").read_text()


@pytest.mark.slow  # a kernel per notebook: a few seconds each
def test_the_budget_stops_a_long_cell_and_skips_the_notebooks_after_it(tmp_path, monkeypatch):
    from minillama.course.reproduce import reproduce

    monkeypatch.setenv("MINILLAMA_PROFILE", "quick")
    monkeypatch.setenv("MINILLAMA_RESULTS_DIR", "")  # restored after the test, which reproduce sets
    monkeypatch.delenv("MINILLAMA_RESULTS_DIR")
    nbs, out = tmp_path / "notebooks", tmp_path / "results" / "quick"
    nbs.mkdir()
    _notebook(nbs / "01_slow.ipynb", ["x = 1", "import time\ntime.sleep(120)"])
    _notebook(nbs / "02_next.ipynb", "y = 2")
    assert reproduce(out, notebooks_dir=nbs, budget_s=8, extra_run={"budget_minutes": 8 / 60}) == 1
    run = json.loads((out.with_name("quick.incomplete") / "summary.json").read_text())["run"]
    assert "past its" in run["failures"]["01_slow"] and run["wall_seconds"]["01_slow"] < 60
    assert run["failures"]["02_next"].startswith("not run: the wall-clock budget")
    assert run["budget_minutes"] == pytest.approx(8 / 60) and not out.exists()


def test_training_mfu_is_notebook_03s_rate_over_the_measured_peak(tmp_path):
    from minillama.course.gpu_run import add_training_mfu
    from minillama.model import flops_per_token

    gpu = PROFILES["gpu"]
    summary = {"run": {"profile": "gpu", "device": {"gpu": "a GPU", "bf16_matmul_tflops": 400.0}},
               "pretraining": {"model": gpu.model, "tokens_per_s": 300_000.0}, "fim": {"vocab_size": gpu.vocab_size}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    mfu = add_training_mfu(tmp_path, gpu)
    fpt = flops_per_token(ModelConfig.from_name(gpu.model, vocab_size=gpu.vocab_size), gpu.seq_len)
    assert mfu["training_mfu"] == pytest.approx(300_000 * fpt / 400e12, abs=1e-4)
    run = json.loads((tmp_path / "summary.json").read_text())["run"]
    assert run["training_mfu"] == mfu["training_mfu"] and run["device"]["gpu"] == "a GPU"
    assert f"MFU {mfu['training_mfu']:.1%}" in (tmp_path / "REPORT.md").read_text()
    del summary["run"]["device"]["bf16_matmul_tflops"]  # a dry run measures no peak: no MFU
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    assert add_training_mfu(tmp_path, gpu) is None


def test_the_device_check_names_the_gpu_and_refuses_one_without_bf16(monkeypatch):
    """gpu-run's CUDA checks, run against a stand-in for torch.cuda (this machine has no GPU)."""
    from types import SimpleNamespace

    from minillama.course.gpu_run import bf16_matmul_tflops, device_report

    props = SimpleNamespace(name="Stand-in H200", total_memory=141 * 2**30, major=9, minor=0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    info = device_report(measure_peak=False)
    assert info == {"gpu": "Stand-in H200", "gpu_memory_gib": 141.0, "gpu_count": 1, "torch": torch.__version__,
                    "cuda": "13.0", "capability": "9.0"}
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    with pytest.raises(RuntimeError, match="does not compute in bf16"):
        device_report(measure_peak=False)
    assert bf16_matmul_tflops(n=64, repeats=2, device="cpu") > 0  # the peak's measurement, at a CPU's size


def _run_sh(*args, env_extra=None, cwd=None):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHON": sys.executable, **(env_extra or {})}
    env.pop(DRY_RUN_ENV, None)
    return subprocess.run(["bash", str(root / "gpu" / "run.sh"), *args], capture_output=True, text=True, env=env,
                          timeout=300, cwd=cwd)


@no_gpu
@pytest.mark.slow  # imports torch and the notebook packages twice in fresh processes
def test_run_sh_refuses_a_machine_without_a_gpu_and_names_the_dry_run():
    out = _run_sh()
    assert out.returncode == 2 and "--dry-run" in out.stderr


def test_run_sh_says_where_the_wheels_come_from_when_packages_are_missing(tmp_path):
    out = _run_sh(env_extra={"PYTHON": "false", "GPU_WHEELS_DIR": str(tmp_path / "none")})
    assert out.returncode == 3 and "make gpu-wheels" in out.stderr
