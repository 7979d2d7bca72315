"""Recording measured figures: ``summary.json`` and the figures of a run.

Notebooks call :func:`record` with what they measured and :func:`save_figure` for their
plots. ``make reproduce`` points ``$MINILLAMA_RESULTS_DIR`` at a staging folder that becomes
``results/<profile>/`` when the run completes; outside a reproduction the numbers go to
``data/artifacts/<profile>/results`` (:func:`minillama.paths.results_dir`), so a student's
own run never overwrites the committed reference run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from minillama import paths
from minillama.profiles import PROFILE_ENV


def results_dir() -> Path:
    path = paths.results_dir(os.environ.get(PROFILE_ENV, "cpu"))
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


def figure_is_empty(fig) -> bool:
    """True when no axes of ``fig`` draws anything (no lines, bars, images or collections)."""
    for ax in fig.get_axes():
        if ax.lines or ax.patches or ax.images or ax.collections or ax.tables:
            return False
    return True


def save_figure(fig, name: str) -> Path | None:
    """Save a matplotlib figure as ``<results>/figures/<name>.png``.

    An empty figure (nothing measured to show) is refused: it is not saved, a stale copy of
    it is removed, and None is returned, so a report never embeds an empty plot.
    """
    out = results_dir() / "figures"
    path = out / f"{name}.png"
    if figure_is_empty(fig):
        path.unlink(missing_ok=True)
        print(f"figure {name!r} not saved: it shows nothing")
        return None
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path
