"""``results/<profile>/REPORT.md``: the measured figures of a reproduction, section by section."""

from __future__ import annotations

import json
from pathlib import Path

from minillama.course.claims import claims_table


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value[:12]) + (" …" if len(value) > 12 else "")
    return str(value)


def write_report(out: Path) -> Path:
    out = Path(out)
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    run = summary.get("run", {})
    lines = ["# minillama reproduction report", ""]
    if run:
        lines += [f"Profile `{run.get('profile')}`, {run.get('wall_seconds_total', 0) / 60:.1f} minutes in all, "
                  f"commit `{run.get('commit')}`.", "",
                  f"Machine: {_fmt(run.get('machine', {}))}.", "",
                  "| notebook | seconds |", "|---|---|"]
        lines += [f"| {name} | {secs} |" for name, secs in run.get("wall_seconds", {}).items()]
        if run.get("failures"):
            lines += ["", "**Failed notebooks:** " + _fmt(run["failures"])]
        lines.append("")
    lines += ["## The paper's claims, at course scale", ""] + claims_table(summary) + [""]
    for section, values in summary.items():
        if section == "run" or not isinstance(values, dict):
            continue
        lines += [f"## {section}", "", "| figure | value |", "|---|---|"]
        lines += [f"| `{k}` | {_fmt(v)} |" for k, v in sorted(values.items())]
        lines.append("")
    figures = sorted((out / "figures").glob("*.png")) if (out / "figures").exists() else []
    if figures:
        lines += ["## Figures", ""] + [f"![{f.stem}](figures/{f.name})" for f in figures] + [""]
    path = out / "REPORT.md"
    path.write_text("\n".join(lines))
    return path
