"""Recording measured figures for ``results/summary.json``.

Notebooks call :func:`record` with what they measured and :func:`save_figure` for their
plots. ``make reproduce`` points ``MINILLAMA_RESULTS_DIR`` at ``results/``; outside a
reproduction the figures go to ``data/artifacts/<profile>/results`` so a student's own run
never overwrites the committed reference run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

RESULTS_ENV = "MINILLAMA_RESULTS_DIR"
REPO_ROOT = Path(__file__).resolve().parent.parent


def results_dir() -> Path:
    env = os.environ.get(RESULTS_ENV)
    if env:
        path = Path(env)
    else:
        profile = os.environ.get("MINILLAMA_PROFILE", "cpu")
        path = REPO_ROOT / "data" / "artifacts" / profile / "results"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def record(section: str, **values: Any) -> dict:
    """Merge ``values`` into ``summary.json`` under ``section``; returns the section."""
    path = results_dir() / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else {}
    summary.setdefault(section, {}).update(_jsonable(values))
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)  # atomic: a crash never leaves half a summary
    return summary[section]


def save_figure(fig, name: str) -> Path:
    """Save a matplotlib figure as ``<results>/figures/<name>.png``."""
    out = results_dir() / "figures"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path
