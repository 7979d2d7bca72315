"""``results/<profile>/REPORT.md``: the measured figures of a reproduction, section by section.

Every number is rendered as a table cell: a section's plain values form one table; a value
that is itself a table (a dict of dicts, e.g. pass@1 per tier, or perplexity per method and
length) gets a table of its own, one row per key. Nothing is printed as run-on text.

Each plot stands next to what it supports: under a claims table, the plots of each claim
(:data:`CLAIM_FIGURES`); every other plot at the end of its notebook's section.
"""

from __future__ import annotations

import json
from pathlib import Path

from minillama.course.claims import CODEWORLD_CLAIMS, claim_tables, claims_table, multiple_comparisons

MAX_LIST = 12  # list items shown in a cell

# claim (as claims.py names it) -> the plots (figures/<stem>.png) that show its evidence; the same
# claim judged on real code and on the code world has a table each, so each table has its own map
_LONG_CONTEXT_FIGURES = {
    "θ = 10⁶ LCFT extrapolates better than PI": ["04_ppl_vs_context"],
    "θ = 10⁶ LCFT beats LCFT with θ = 10⁴": ["04_ppl_vs_context"],
    "raising θ alone, without fine-tuning, does not extend context": ["04_ppl_vs_context"],
    "perplexity keeps falling past the fine-tuning length": ["04_ppl_vs_context"],
    "LCFT models retrieve a key from a long prompt": ["04_key_retrieval"],
}
CLAIM_FIGURES = {
    "real": {**_LONG_CONTEXT_FIGURES,
             "FIM costs little left-to-right": ["03_loss_fim", "03_fim_ablation", "03_fim_cost_by_tokens"],
             "FIM training teaches infilling": ["03_fim_ablation"],
             "HumanEval pass@1": ["06_course_models"],
             "SPM infills single lines at least as well as PSM": ["06_course_models"],
             "SPM infills multi-line spans at least as well as PSM": ["06_course_models"],
             "token healing would fix SPM on random spans": ["06_course_models"]},
    "world": {**_LONG_CONTEXT_FIGURES,
              "the model writes working programs for problems it never saw": ["06_codeworld_passk"],
              "infills end where the hole ends (EOT)": ["06_codeworld_infilling"],
              "SPM infills single lines at least as well as PSM": ["06_codeworld_infilling"],
              "token healing would fix SPM on random spans": ["06_codeworld_infilling"],
              "the model reads its prompt, not the world's templates": ["06_codeworld_robustness",
                                                                         "06_codeworld_copying"],
              "SPM infills multi-line spans at least as well as PSM": ["06_codeworld_infilling"],
              "a low temperature is best for pass@1": ["06_codeworld_passk"],
              "a high temperature is best for pass@n": ["06_codeworld_passk"],
              "instruction tuning teaches the request format": ["05_pass_at_1_arms", "05_sft_loss"],
              "execution-filtered self-instruct data helps": ["05_pass_at_1_arms", "05_self_instruct_funnel"]},
}
# the summary section each notebook's other plots belong to (by the plot's prefix)
FIGURE_SECTIONS = {"01": "rope", "02": "fim", "03": "pretraining", "04": "long_context", "05": "self_instruct",
                   "06_codeworld": "codeworld", "06": "evaluation"}


def figure_section(stem: str) -> str:
    return next((sec for prefix, sec in FIGURE_SECTIONS.items() if stem.startswith(prefix + "_")), "other figures")


def claim_figure_lines(claims, table: str, available: set[str], placed: dict[str, str]) -> list[str]:
    """Under a claims table: each claim with its plots. A plot already shown (``placed``: stem ->
    the claim it is under) is linked to, not repeated."""
    lines = []
    for c in claims:
        stems = [s for s in CLAIM_FIGURES[table].get(c.claim, []) if s in available]
        if not stems:
            continue
        lines += [f"**{c.claim}** ({c.source}):", ""]
        for stem in stems:
            if stem in placed:
                lines.append(f"- `{stem}`: shown above, under *{placed[stem]}*")
            else:
                placed[stem] = c.claim
                lines.append(f"![{stem}](figures/{stem}.png)")
        lines.append("")
    return lines


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
                  "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()) + ".", ""]
        if run.get("dry_run"):  # gpu-run --dry-run: the gpu profile's code on a CPU, at tiny sizes
            lines += ["**Dry run:** the gpu profile's code path (bf16 autocast, torch.compile, fused AdamW) on the "
                      "CPU at the quick profile's sizes. It checks that the path runs; its numbers measure nothing.", ""]
        elif run.get("device"):  # gpu-run: the device it checked and measured before the notebooks
            lines += ["Device: " + ", ".join(f"{k} {v}" for k, v in run["device"].items())
                      + (f"; wall-clock budget {run['budget_minutes']:g} min" if run.get("budget_minutes") else "")
                      + ".", ""]
            if run.get("torch_compile"):
                lines += ["torch.compile: " + ", ".join(f"{k} {v}" for k, v in run["torch_compile"].items()) + ".", ""]
            if run.get("training_mfu") is not None:
                lines += [f"Pretraining (notebook 03's median step): {run['training_tflops']:.1f} TFLOP/s, MFU "
                          f"{run['training_mfu']:.1%} of the bf16 matrix-product rate measured above.", ""]
        lines += ["| notebook | seconds |", "|---|---|"]
        lines += [f"| {name} | {secs} |" for name, secs in run.get("wall_seconds", {}).items()]
        full = run.get("full_run")
        if rerun and full and full.get("wall_seconds"):
            lines += ["", f"The last full run (commit `{full.get('commit')}`) took "
                          f"{(full.get('wall_seconds_total') or sum(full['wall_seconds'].values())) / 60:.1f} minutes: "
                          + ", ".join(f"{k} {v:.0f} s" for k, v in full["wall_seconds"].items()) + "."]
        if run.get("failures"):
            lines += ["", "**Failed notebooks:** " + fmt(run["failures"])]
        lines.append("")
    figures = {f.stem for f in (out / "figures").glob("*.png")} if (out / "figures").exists() else set()
    placed: dict[str, str] = {}
    real, world = claim_tables(summary)
    lines += ["## The paper's claims, at course scale", ""] + claims_table(summary, real) + [""]
    lines += claim_figure_lines(real, "real", figures, placed)
    if any(k in summary for k in ("codeworld", "self_instruct")) or len(world) > len(CODEWORLD_CLAIMS):
        # kept apart: a generated world of small functions is not real code
        lines += ["## The same mechanisms on the code world (generated functions, not real code)", "",
                  "The code world's models: the reference model (notebook 06 §8, `summary.json` section "
                  "`codeworld`; the self-instruct ablation of notebook 05 starts from it) and, when notebook 04 "
                  "ran on it, the long-trained model of the long-context study. The rows above judge the "
                  "course's stdlib models on real code.", ""]
        lines += claims_table(summary, world) + [""]
        lines += claim_figure_lines(world, "world", figures, placed)
    note = multiple_comparisons(summary, real + world)
    if note:
        lines += [note, ""]
    rest = {}  # section -> the plots no claim shows
    for stem in sorted(figures - set(placed)):
        rest.setdefault(figure_section(stem), []).append(stem)
    for section, values in summary.items():
        if section != "run" and isinstance(values, dict):
            lines += section_lines(section, values)
            if rest.get(section):
                lines += [f"![{stem}](figures/{stem}.png)" for stem in rest.pop(section)] + [""]
    for section, stems in rest.items():  # plots of a notebook that recorded no numbers
        lines += [f"## {section}", ""] + [f"![{stem}](figures/{stem}.png)" for stem in stems] + [""]
    path = out / "REPORT.md"
    path.write_text("\n".join(lines))
    return path
