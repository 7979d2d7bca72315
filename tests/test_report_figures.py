"""REPORT.md shows each plot next to the claim it supports (or in its notebook's section), once."""

import json
import re
import shutil
from pathlib import Path

from minillama.course.claims import CLAIMS, CODEWORLD_CLAIMS, LONG_CONTEXT_CLAIMS
from minillama.course.report import CLAIM_FIGURES, figure_section, write_report

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "cpu"


def test_every_mapped_claim_and_plot_exists():
    names = {"real": {c.claim for c in CLAIMS} | {c.claim for c in LONG_CONTEXT_CLAIMS},
             "world": {c.claim for c in CODEWORLD_CLAIMS} | {c.claim for c in LONG_CONTEXT_CLAIMS}}
    plots = {p.stem for p in (REFERENCE / "figures").glob("*.png")}
    for table, mapping in CLAIM_FIGURES.items():
        assert set(mapping) <= names[table], set(mapping) - names[table]  # a renamed claim loses its plots
        for stems in mapping.values():
            assert set(stems) <= plots, set(stems) - plots


def test_plots_stand_next_to_their_claims(tmp_path):
    (tmp_path / "figures").mkdir()
    shutil.copy(REFERENCE / "summary.json", tmp_path / "summary.json")
    stems = sorted(p.stem for p in (REFERENCE / "figures").glob("*.png"))
    for stem in stems:
        (tmp_path / "figures" / f"{stem}.png").write_bytes(b"")  # the report only links them
    text = write_report(tmp_path).read_text()
    assert "## Figures" not in text  # no list of plots at the end any more
    lines = text.split("\n")
    shown = [i for i, line in enumerate(lines) if line.startswith("![")]
    assert sorted(re.match(r"!\[(.+?)\]", lines[i]).group(1) for i in shown) == stems  # each once

    def heading_above(i):
        return next(lines[j] for j in range(i, -1, -1) if lines[j].startswith("## "))

    def claim_above(i):
        return next((lines[j] for j in range(i, -1, -1) if lines[j].startswith("**")), "")

    summary = json.loads((REFERENCE / "summary.json").read_text())
    for i in shown:
        stem = re.match(r"!\[(.+?)\]", lines[i]).group(1)
        claimed = [c for t in CLAIM_FIGURES.values() for c, s in t.items() if stem in s]
        if claimed:  # right under the claim's name, below its table
            assert heading_above(i).startswith(("## The paper's claims", "## The same mechanisms"))
            assert any(claim_above(i).startswith(f"**{c}**") for c in claimed), (stem, claim_above(i))
        elif figure_section(stem) in summary:
            assert heading_above(i) == f"## {figure_section(stem)}", stem
    # a claim's plot comes before the next section starts
    first = text.index("![03_loss_fim]")
    assert text.index("**FIM costs little left-to-right**") < first < text.index("\n## ", text.index(
        "**FIM costs little left-to-right**"))
