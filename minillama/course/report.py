"""``results/<profile>/REPORT.md``: the measured figures of a reproduction, section by section.

Every number is rendered as a table cell: a section's plain values form one table; a value
that is itself a table (a dict of dicts, e.g. pass@1 per tier, or perplexity per method and
length) gets a table of its own, one row per key. Nothing is printed as run-on text.
"""

from __future__ import annotations

import json
from pathlib import Path

from minillama.course.claims import CODEWORLD_CLAIMS, claim_tables, claims_table, multiple_comparisons

MAX_LIST = 12  # list items shown in a cell


def fmt(value) -> str:
    """One table cell."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        shown = ", ".join(fmt(v) for v in value[:MAX_LIST])
        return f"[{shown}{', …' if len(value) > MAX_LIST else ''}]"
    if isinstance(value, dict):  # a small dict inside a cell: key: value pairs
        return "; ".join(f"{k}: {fmt(v)}" for k, v in value.items())
    return str(value).replace("|", "\\|").replace("\n", " ")


def _scalar(value) -> bool:
    return not isinstance(value, (dict, list, tuple)) or (
        isinstance(value, (list, tuple)) and all(not isinstance(v, (dict, list, tuple)) for v in value))


def _sort_key(key: str):
    try:
        return (0, float(key), "")
    except ValueError:
        return (1, 0.0, key)


def _flatten(row: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in row.items():
        if isinstance(v, dict) and v and all(_scalar(x) for x in v.values()) and len(v) <= 6:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def table(rows: dict, first: str = "") -> list[str]:
    """A markdown table of ``{row name: {column: value}}`` (numeric columns in numeric order)."""
    flat = {name: _flatten(r) for name, r in rows.items()}
    columns: list[str] = []
    for r in flat.values():
        columns += [c for c in r if c not in columns]
    if all(_sort_key(c)[0] == 0 for c in columns):
        columns.sort(key=_sort_key)
    lines = ["| " + " | ".join([first] + [f"`{c}`" for c in columns]) + " |",
             "|" + "---|" * (len(columns) + 1)]
    for name, r in flat.items():
        lines.append("| " + " | ".join([f"`{name}`"] + [fmt(r[c]) if c in r else "" for c in columns]) + " |")
    return lines


def pairs(values: dict, head: tuple[str, str] = ("figure", "value")) -> list[str]:
    lines = [f"| {head[0]} | {head[1]} |", "|---|---|"]
    return lines + [f"| `{k}` | {fmt(v)} |" for k, v in sorted(values.items(), key=lambda kv: _sort_key(kv[0]))]


def render(key: str, value) -> list[str]:
    """Lines for one non-scalar figure: its own table(s), titled ``key``."""
    if isinstance(value, (list, tuple)):  # a list of records: one row each
        return [f"**{key}**", ""] + table({str(i): v for i, v in enumerate(value)}) + [""]
    rows = {k: v for k, v in value.items() if isinstance(v, dict)}
    rest = {k: v for k, v in value.items() if not isinstance(v, dict)}
    lines = [f"**{key}**", ""]
    if rows and all(all(isinstance(x, dict) for x in r.values()) and r for r in rows.values()):
        for mid, inner in rows.items():  # three levels: one table per middle key
            lines += [f"*{mid}*", ""] + table(inner) + [""]
    elif rows:
        lines += table(rows) + [""]
    if rest:
        lines += pairs(rest, ("key", "value")) + [""]
    return lines


def _inline(value) -> bool:
    """Shown in the section's figure/value table; anything bigger gets a table of its own."""
    if isinstance(value, dict):
        return len(value) <= 3 and all(_scalar(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return _scalar(value)
    return True


def section_lines(name: str, values: dict) -> list[str]:
    lines = [f"## {name}", ""]
    plain = {k: v for k, v in values.items() if _inline(v)}
    if plain:
        lines += pairs(plain) + [""]
    for key in sorted(k for k, v in values.items() if not _inline(v)):
        lines += render(key, values[key])
    return lines


def write_report(out: Path) -> Path:
    out = Path(out)
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    run = summary.get("run", {})
    lines = ["# minillama reproduction report", ""]
    if run:
        machine = run.get("machine", {})
        rerun = run.get("rerun") or []
        lines += [f"Profile `{run.get('profile')}`, {run.get('wall_seconds_total', 0) / 60:.1f} minutes in all, "
                  f"commit `{run.get('commit')}`."
                  + (f" Rerun on their own after the full run (their times are the rerun's, with what earlier "
                     f"notebooks had trained cached): {', '.join(rerun)}." if rerun else ""), "",
                  "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()) + ".", "",
                  "| notebook | seconds |", "|---|---|"]
        lines += [f"| {name} | {secs} |" for name, secs in run.get("wall_seconds", {}).items()]
        full = run.get("full_run")
        if rerun and full and full.get("wall_seconds"):
            lines += ["", f"The last full run (commit `{full.get('commit')}`) took "
                          f"{(full.get('wall_seconds_total') or sum(full['wall_seconds'].values())) / 60:.1f} minutes: "
                          + ", ".join(f"{k} {v:.0f} s" for k, v in full["wall_seconds"].items()) + "."]
        if run.get("failures"):
            lines += ["", "**Failed notebooks:** " + fmt(run["failures"])]
        lines.append("")
    real, world = claim_tables(summary)
    lines += ["## The paper's claims, at course scale", ""] + claims_table(summary, real) + [""]
    if any(k in summary for k in ("codeworld", "self_instruct")) or len(world) > len(CODEWORLD_CLAIMS):
        # kept apart: a generated world of small functions is not real code
        lines += ["## The same mechanisms on the code world (generated functions, not real code)", "",
                  "The code world's models: the reference model (notebook 06 §8, `summary.json` section "
                  "`codeworld`; the self-instruct ablation of notebook 05 starts from it) and, when notebook 04 "
                  "ran on it, the long-trained model of the long-context study. The rows above judge the "
                  "course's stdlib models on real code.", ""]
        lines += claims_table(summary, world) + [""]
    note = multiple_comparisons(summary, real + world)
    if note:
        lines += [note, ""]
    for section, values in summary.items():
        if section != "run" and isinstance(values, dict):
            lines += section_lines(section, values)
    figures = sorted((out / "figures").glob("*.png")) if (out / "figures").exists() else []
    if figures:
        lines += ["## Figures", ""] + [f"![{f.stem}](figures/{f.name})" for f in figures] + [""]
    path = out / "REPORT.md"
    path.write_text("\n".join(lines))
    return path
