"""``make reproduce``: run every notebook headless, in order, and write ``results/<profile>/``.

Each notebook runs in a fresh kernel with ``$MINILLAMA_RESULTS_DIR`` pointing at a *staging*
folder beside the results, so the figures and numbers it records land there. Only when every
notebook ran does the staging folder replace ``results/<profile>/`` (a rename, after which the
old run is deleted). An interrupted or failed run never touches the previous results: its
staging folder is kept as ``results/<profile>.incomplete/`` (executed notebooks with their
tracebacks included), so a crash loses nothing already computed.

Every profile has its own folder, so ``MINILLAMA_PROFILE=quick make reproduce`` (what CI's
fresh-machine check runs) never overwrites the committed ``cpu`` reference run.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from minillama.paths import RESULTS_ENV, require_repo_root


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
        info["cuda"] = torch.version.cuda
    return info


def git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        # the run's own output (results/) does not make the code dirty
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)results"], cwd=root, capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def notebook_paths(notebooks_dir: Path) -> list[Path]:
    return sorted(p for p in notebooks_dir.glob("[0-9][0-9]_*.ipynb"))


def run_notebook(path: Path, out_dir: Path, timeout: int | None = None) -> tuple[bool, float, str]:
    """Execute ``path`` in a fresh kernel and save it under ``out_dir/notebooks``; ``timeout``:
    seconds any one cell may run (None: no limit). ``(ok, seconds, error)``."""
    import nbformat
    from nbconvert.preprocessors import CellExecutionError, ExecutePreprocessor

    nb = nbformat.read(path, as_version=4)
    ep = ExecutePreprocessor(timeout=timeout, kernel_name="python3")
    start, ok, error = time.time(), True, ""
    try:
        ep.preprocess(nb, {"metadata": {"path": str(path.parent)}})
    except CellExecutionError as e:
        ok, error = False, str(e).splitlines()[-1] if str(e) else "cell failed"
    except TimeoutError:  # nbclient's CellTimeoutError: a cell ran past the budget
        ok, error = False, f"a cell ran past its {timeout} s (the run's wall-clock budget)"
    finally:
        (out_dir / "notebooks").mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out_dir / "notebooks" / path.name)
    return ok, time.time() - start, error


def replace_dir(new: Path, final: Path) -> None:
    """Put ``new`` in place of ``final``: two renames, then the old copy is deleted."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(new, final)
    shutil.rmtree(old, ignore_errors=True)


def reproduce(out: str | Path | None = None, only: list[str] | None = None,
              notebooks_dir: str | Path | None = None, budget_s: float | None = None,
              extra_run: dict | None = None) -> int:
    """Run the notebooks (all, or those whose names start with one of ``only``) for the profile
    of ``$MINILLAMA_PROFILE`` and write ``out`` (default ``results/<profile>``) on success.

    ``budget_s``: a wall-clock budget for all notebooks; no cell runs past it, and a notebook
    whose turn comes after it is not started (both count as failures). ``extra_run``: more
    fields for ``summary.json``'s ``run`` section (``gpu-run`` adds the device it measured)."""
    from minillama.course.report import write_report
    from minillama.course.results import record
    from minillama.profiles import get_profile

    root = require_repo_root("make reproduce") if out is None or notebooks_dir is None else None
    profile = get_profile()
    final = Path(out).resolve() if out else root / "results" / profile.name
    notebooks_dir = Path(notebooks_dir) if notebooks_dir else root / "notebooks"
    paths = notebook_paths(notebooks_dir)
    if only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in only)]
    if not paths:
        print(f"no notebooks match {only or '*'} in {notebooks_dir}", file=sys.stderr)
        return 1
    staging = final.with_name(f".{final.name}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    if only and final.exists():
        shutil.copytree(final, staging)  # a partial rerun updates the other notebooks' results in place
    else:
        staging.mkdir(parents=True)
    os.environ[RESULTS_ENV] = str(staging)
    # progress bars in a saved notebook: a few updates a minute, never one per step
    os.environ.setdefault("TQDM_MININTERVAL", "30")
    seconds, failures = {}, {}
    deadline = None if budget_s is None else time.time() + budget_s
    try:
        for i, path in enumerate(paths, 1):
            left = None if deadline is None else deadline - time.time()
            if left is not None and left < 1:
                failures[path.stem] = f"not run: the wall-clock budget of {budget_s / 60:.1f} min was spent"
                print(f"[{i}/{len(paths)}] {path.name}: {failures[path.stem]}", flush=True)
                continue
            print(f"[{i}/{len(paths)}] {path.name} (profile {profile.name}) ...", flush=True)
            ok, secs, error = run_notebook(path, staging, timeout=None if left is None else int(left))
            seconds[path.stem] = round(secs, 1)
            print(f"    {'ok' if ok else 'FAILED: ' + error} in {secs:.0f} s", flush=True)
            if not ok:
                failures[path.stem] = error
        earlier, earlier_rerun, full_run = {}, [], None
        if only and (staging / "summary.json").exists():  # a partial rerun: keep the other notebooks' times
            before = json.loads((staging / "summary.json").read_text()).get("run", {})
            earlier, earlier_rerun = before.get("wall_seconds", {}), before.get("rerun", [])
            # the last full run's own times, which the rerun's replace in wall_seconds
            full_run = before.get("full_run") or (None if earlier_rerun or not earlier else {
                "wall_seconds": earlier, "wall_seconds_total": before.get("wall_seconds_total"),
                "commit": before.get("commit")})
        all_seconds = {**earlier, **seconds}
        commit = git_commit(root or notebooks_dir)
        if not only:
            full_run = {"wall_seconds": seconds, "wall_seconds_total": round(sum(seconds.values()), 1), "commit": commit}
        record("run", profile=profile.name, wall_seconds_total=round(sum(all_seconds.values()), 1),
               wall_seconds=all_seconds, machine=machine_description(), commit=commit, failures=failures,
               notebooks=sorted(all_seconds), rerun=sorted(set(earlier_rerun) | {p.stem for p in paths}) if only else [],
               full_run=full_run, **(extra_run or {}))
        write_report(staging)
    except BaseException:
        _keep_incomplete(staging, final)
        raise
    if failures:
        kept = _keep_incomplete(staging, final)
        print(f"{len(failures)} notebook(s) failed: {', '.join(failures)}; {final} is unchanged, this run's "
              f"output is in {kept}", file=sys.stderr)
        return 1
    replace_dir(staging, final)
    print(f"wrote {final / 'summary.json'} and {final / 'REPORT.md'}")
    return 0


def _keep_incomplete(staging: Path, final: Path) -> Path:
    kept = final.with_name(f"{final.name}.incomplete")
    if staging.exists():
        shutil.rmtree(kept, ignore_errors=True)
        os.replace(staging, kept)
    return kept
