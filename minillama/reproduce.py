"""``make reproduce``: run every notebook headless, in order, and write ``results/``.

Each notebook runs in a fresh kernel with ``MINILLAMA_RESULTS_DIR`` pointing at the output
folder, so the figures and numbers it records land in ``results/figures`` and
``results/summary.json``. The executed notebooks are kept in ``results/notebooks``, also
the one that failed (with its traceback), so a crash loses nothing already computed.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from .results import REPO_ROOT, RESULTS_ENV


def machine_description() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def notebook_paths(notebooks_dir: Path) -> list[Path]:
    return sorted(p for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb"))


def run_notebook(path: Path, out_dir: Path, timeout: int | None = None) -> tuple[bool, float, str]:
    import nbformat
    from nbconvert.preprocessors import CellExecutionError, ExecutePreprocessor

    nb = nbformat.read(path, as_version=4)
    ep = ExecutePreprocessor(timeout=timeout, kernel_name="python3")
    start, ok, error = time.time(), True, ""
    try:
        ep.preprocess(nb, {"metadata": {"path": str(path.parent)}})
    except CellExecutionError as e:
        ok, error = False, str(e).splitlines()[-1] if str(e) else "cell failed"
    finally:
        (out_dir / "notebooks").mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out_dir / "notebooks" / path.name)
    return ok, time.time() - start, error


def reproduce(out: str | Path = "results", only: list[str] | None = None) -> int:
    from .profiles import get_profile
    from .report import write_report
    from .results import record

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    profile = get_profile()
    os.environ[RESULTS_ENV] = str(out)
    # progress bars in a saved notebook are thousands of lines; one update a minute is enough there
    os.environ.setdefault("TQDM_MININTERVAL", "60")
    paths = notebook_paths(REPO_ROOT / "notebooks")
    if only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in only)]
    if not paths:
        print("no notebooks found in notebooks/", file=sys.stderr)
        return 1
    summary = out / "summary.json"
    if summary.exists() and not only:
        summary.unlink()  # a full run starts a fresh summary
    total_start, seconds, failures = time.time(), {}, {}
    for i, path in enumerate(paths, 1):
        print(f"[{i}/{len(paths)}] {path.name} (profile {profile.name}) ...", flush=True)
        ok, secs, error = run_notebook(path, out)
        seconds[path.stem] = round(secs, 1)
        status = "ok" if ok else f"FAILED: {error}"
        print(f"    {status} in {secs:.0f} s", flush=True)
        if not ok:
            failures[path.stem] = error
    record("run", profile=profile.name, wall_seconds_total=round(time.time() - total_start, 1),
           wall_seconds=seconds, machine=machine_description(), commit=git_commit(), failures=failures)
    report = write_report(out)
    print(f"wrote {summary} and {report}")
    return 1 if failures else 0
