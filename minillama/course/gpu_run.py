"""The gpu profile's one command: ``bash gpu/run.sh`` (``python -m minillama gpu-run``).

A GPU machine is lent briefly (minutes, no network), so everything a run on it needs is checked
before and bounded while it runs:

* the device: a CUDA GPU that computes in bf16, named with its memory, torch's and CUDA's versions,
  and the bf16 matrix-product rate measured on it (the peak that a training MFU is judged against);
* the six notebooks of ``MINILLAMA_PROFILE=gpu``, headless, through :func:`reproduce` into
  ``results/gpu/``, under a wall-clock budget: no cell runs past it, and a notebook whose turn
  comes after it is recorded as not run (the run then lands in ``results/gpu.incomplete/``);
* the run's record (``summary.json``'s ``run`` and REPORT.md's header): device, torch, CUDA, minutes.

``--dry-run`` (``MINILLAMA_GPU_DRY_RUN=1``) rehearses the same path on a CPU at the quick profile's
sizes: the profile is still called ``gpu`` (so the notebooks take its branches, not quick's), it
trains with bf16 autocast, ``torch.compile`` and fused AdamW, and it writes to
``results/gpu-dry-run/`` with its own data folder, never to ``results/gpu/``. Its compile backend is
``aot_eager`` (``MINILLAMA_COMPILE_BACKEND``): Dynamo's tracing and AOTAutograd's joint graph, which
are the same on every device, without generating CPU code that a GPU never runs.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

from minillama.profiles import DRY_RUN_ENV, dry_run_profile, is_dry_run  # noqa: F401 (re-exported)

COMPILE_BACKEND_ENV = "MINILLAMA_COMPILE_BACKEND"
DEFAULT_BUDGET_MINUTES = 8.0  # the target for all six notebooks; a GPU machine allows 10 minutes a command


def device_report(measure_peak: bool = True) -> dict:
    """What the run ran on; raises RuntimeError, saying what to do, without a usable CUDA GPU."""
    import torch

    if not torch.cuda.is_available():
        why = "this torch is a CPU-only build" if torch.version.cuda is None else "torch sees no GPU"
        raise RuntimeError(f"gpu-run needs a CUDA GPU, but {why} (torch {torch.__version__}). On a machine "
                           f"without one, rehearse the same path at tiny sizes: bash gpu/run.sh --dry-run")
    if not torch.cuda.is_bf16_supported():
        raise RuntimeError(f"{torch.cuda.get_device_name(0)} does not compute in bf16, which the gpu profile "
                           f"trains in; use an Ampere GPU or newer (A100, H100, ...)")
    props = torch.cuda.get_device_properties(0)
    info = {"gpu": props.name, "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "gpu_count": torch.cuda.device_count(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "capability": f"{props.major}.{props.minor}"}
    if measure_peak:
        info["bf16_matmul_tflops"] = round(bf16_matmul_tflops(), 1)
    return info


def bf16_matmul_tflops(n: int = 8192, repeats: int = 10, device: str = "cuda") -> float:
    """The bf16 rate of an ``n``×``n``×``n`` matrix product on ``device`` (TFLOP/s, mean of
    ``repeats`` after three warm-ups): the measured peak a training MFU is quoted against."""
    import torch

    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    for _ in range(3):
        a @ b
    sync()
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync()
    return 2 * n ** 3 * repeats / (time.perf_counter() - t) / 1e12


def gpu_run(dry_run: bool = False, budget_minutes: float = DEFAULT_BUDGET_MINUTES, out: str | Path | None = None,
            only: list[str] | None = None, notebooks_dir: str | Path | None = None) -> int:
    """Check the device, then run the gpu profile's notebooks under ``budget_minutes`` into ``out``
    (default ``results/gpu/``, or ``results/gpu-dry-run/`` for a dry run). Returns an exit status."""
    from minillama.paths import DATA_ENV, repo_root
    from minillama.profiles import PROFILE_ENV

    if budget_minutes <= 0:
        raise ValueError(f"budget_minutes={budget_minutes} must be > 0")
    os.environ[PROFILE_ENV] = "gpu"
    root = repo_root()
    if dry_run:
        os.environ[DRY_RUN_ENV] = "1"
        os.environ.setdefault(COMPILE_BACKEND_ENV, "aot_eager")
        if root is not None:  # its tiny models never mix with a real gpu run's
            os.environ.setdefault(DATA_ENV, str(root / "data" / "gpu-dry-run"))
            out = out or root / "results" / "gpu-dry-run"
        device = {"dry_run": True, "device": "cpu"}
        print(f"gpu-run --dry-run: the gpu profile's path on the CPU at the quick profile's sizes "
              f"(bf16 autocast, torch.compile backend {os.environ[COMPILE_BACKEND_ENV]}, fused AdamW)", flush=True)
    else:
        os.environ.pop(DRY_RUN_ENV, None)
        device = device_report()
        print("gpu-run: " + ", ".join(f"{k} {v}" for k, v in device.items()), flush=True)
    from minillama.course.reproduce import reproduce
    from minillama.profiles import get_profile

    profile = get_profile("gpu")  # refuses here, before any notebook, if the device does not fit it
    print(f"profile {profile.name}: model {profile.model}, device {profile.device}, dtype {profile.dtype}, "
          f"compile {profile.compile}; budget {budget_minutes:g} min", flush=True)
    start = time.time()
    status = reproduce(out, only, notebooks_dir=notebooks_dir, budget_s=budget_minutes * 60,
                       extra_run={"device": device, "budget_minutes": budget_minutes, "dry_run": dry_run})
    print(f"gpu-run: {(time.time() - start) / 60:.1f} minutes in all (budget {budget_minutes:g})", flush=True)
    folder = Path(out) if out else root / "results" / "gpu"
    if status != 0:
        folder = folder.with_name(f"{folder.name}.incomplete")
    compiled = compile_outcomes()
    if compiled and (folder / "summary.json").is_file():
        from minillama.course.results import record

        os.environ["MINILLAMA_RESULTS_DIR"] = str(folder)
        record("run", torch_compile=compiled)
        print(f"gpu-run: torch.compile {compiled}", flush=True)
    mfu = add_training_mfu(folder, profile)
    if mfu is not None:
        print(f"gpu-run: pretraining at {mfu['training_tflops']:.1f} TFLOP/s, MFU {mfu['training_mfu']:.1%} of the "
              f"measured bf16 peak", flush=True)
    return status


def compile_outcomes() -> dict:
    """``{run: "compiled (backend)" | "fell back to eager: why"}`` for the gpu profile's training runs
    that compiled (their ``compile.json``, written by the trainer)."""
    import json

    from minillama.paths import artifacts_dir

    out = {}
    for path in sorted(artifacts_dir("gpu").glob("*/compile.json")):
        c = json.loads(path.read_text())
        out[path.parent.name] = f"compiled ({c['backend']})" if c["compiled"] else f"fell back to eager: {c['error']}"
    return out


def add_training_mfu(folder: Path, profile) -> dict | None:
    """Notebook 03's training rate as a share of the bf16 peak measured before the run (MFU), added to
    ``summary.json``'s ``run`` and REPORT.md; None where either is missing (a dry run, a failed 03)."""
    import json

    from minillama.course.report import write_report
    from minillama.model import ModelConfig, flops_per_token

    path = Path(folder) / "summary.json"
    if not path.is_file():
        return None
    summary = json.loads(path.read_text())
    run, pre = summary.get("run", {}), summary.get("pretraining", {})
    peak = (run.get("device") or {}).get("bf16_matmul_tflops")
    if not peak or not pre.get("tokens_per_s"):
        return None
    vocab = (summary.get("fim") or {}).get("vocab_size") or profile.vocab_size
    fpt = flops_per_token(ModelConfig.from_name(pre.get("model", profile.model), vocab_size=vocab), profile.seq_len)
    tflops = pre["tokens_per_s"] * fpt / 1e12
    mfu = {"training_tflops": round(tflops, 2), "training_mfu": round(tflops / peak, 4),
           "training_flops_per_token": fpt}
    run.update(mfu)
    summary["run"] = run
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    write_report(Path(folder))
    return mfu
