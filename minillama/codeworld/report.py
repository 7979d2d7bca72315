"""The attempt log (``docs/codeworld_attempts.md``) and the numbers each row holds.

:func:`evaluate_model` gathers them with :mod:`.evaluation`: MiniEval (greedy pass@1 per tier
with its Wilson interval, per depth, failure kinds), the hand-written problems, single- and
multi-line infilling (PSM and SPM, pass@1 and the share of middles ended by EOT) and the
copying probe; :func:`log_row` appends a row.
"""

from __future__ import annotations

from pathlib import Path

from . import evaluation
from .probe import copying_probe, list_copy_probe, name_probe
from .robustness import robustness_problems

LEVELS = {"quick": dict(tiers=("instances", "compositions"), hand=False, single=150, multi=0, robust=()),
          "standard": dict(tiers=("instances", "compositions", "primitives"), hand=True, single=200, multi=0,
                           robust=("renamed", "paraphrased")),
          "full": dict(tiers=("instances", "compositions", "primitives"), hand=True, single=300, multi=150,
                       robust=("renamed", "paraphrased", "no-doctest", "combined"))}


def evaluate_model(model, tok, level: str = "standard", out_dir: Path | None = None) -> dict:
    """The attempt log's numbers (:mod:`.evaluation`): greedy pass@1 per tier, the hand-written
    problems, infilling (PSM and SPM), the copying probe; samples written to ``out_dir``."""
    cfg = LEVELS[level]
    res: dict = {}
    tiers = cfg["tiers"] + (("handwritten",) if cfg["hand"] else ())
    for tier in tiers:
        out = out_dir / f"samples-{tier}.jsonl" if out_dir is not None else None
        res[tier] = evaluation.greedy(model, tok, evaluation.tier_problems(tier), out)
        print(f"eval {tier}: {res[tier]['passed']}/{res[tier]['n']}", flush=True)
    for kind in cfg["robust"]:  # robustness tiers: pass@1 on the same problems perturbed (paired with the sources)
        out = out_dir / f"samples-{kind}.jsonl" if out_dir is not None else None
        res[kind] = evaluation.greedy(model, tok, robustness_problems(kind), out)
        print(f"eval {kind}: {res[kind]['passed']}/{res[kind]['n']}", flush=True)
    for kind, limit in (("single-line", cfg["single"]), ("multi-line", cfg["multi"])):
        if limit:
            for spm in (False, True):
                key = f"{kind} {'SPM' if spm else 'PSM'}"
                res[key] = evaluation.infill(model, tok, kind, limit, spm)
                print(f"eval {key}: {res[key]['passed']}/{res[key]['n']} eot {res[key]['eot_stop']:.2f}", flush=True)
    res["probe"] = copying_probe(model, tok)
    res["list_probe"] = list_copy_probe(model, tok)
    res["name_probe"] = name_probe(model, tok, list(robustness_problems("renamed").values()))
    return res


def _fmt(r: dict | None, eot: bool = False) -> str:
    if not r:
        return "–"
    s = f"{100 * r['pass@1']:.1f}"
    if eot:
        s += f" ({100 * r['eot_stop']:.0f})"
    return s


def log_row(result: dict, path: Path) -> None:
    """Append one line to the attempt log (the table header is written once)."""
    r, res = result["recipe"], result["results"]
    settings = (f"world {r['world_share']:.2f}" + (f" (copy {r['copy_share']:.2f})" if r.get("copy_share") else "")
                + f", FIM {r['fim']}"
                + (f" {r['fim_rate']} (lines {r['line_share']})" if r["fim"] == "function" else
                   f" {r['fim_rate']}" if r["fim"] == "paper" else "")
                + f", {r['steps']}×{r['batch_size']}×{r['seq_len']}, lr {r['lr']}"
                + (f", {r['model']}" if not r.get("init") else "")
                + "".join(f" {k}={r[k]}" for k in ("dim", "n_layers", "n_heads") if r.get(k))
                + (f", world v{r['world']}" if r.get("world", 3) != 3 else "")
                + (f", continued from {r['init']}" if r.get("init") else "")
                + (f"; {r['notes']}" if r.get("notes") else ""))
    probe = result["probes"][-1]
    freq = f" (frequent ids: ratio {probe['frequent']['ratio']:.2f})" if "frequent" in probe else ""
    if "list_probe" in res:
        freq += f" (world lists: ratio {res['list_probe']['ratio']:.2f})"
    if "name_probe" in res:
        freq += f" (names: ratio {res['name_probe']['ratio']:.2f})"
    robust = [f"{k} {100 * res[k]['pass@1']:.1f}" for k in ("renamed", "paraphrased", "no-doctest", "combined")
              if k in res]
    if robust:
        settings += "; robustness: " + ", ".join(robust)
    sec = result["seconds"]
    load = result["load"]
    row = (f"| {r['name']} | {settings} | {result['params'] / 1e6:.1f}M | {_fmt(res.get('instances'))} | "
           f"{_fmt(res.get('compositions'))} | {_fmt(res.get('primitives'))} | "
           f"{res['handwritten']['passed'] if 'handwritten' in res else '–'}/30 | "
           f"{_fmt(res.get('single-line PSM'), True)} | {_fmt(res.get('single-line SPM'), True)} | "
           f"{probe['first']:.2f}/{probe['second']:.2f}{freq} | {sec['train'] / 60:.1f} / {sec['eval'] / 60:.1f} | "
           f"{load['start'][0]:.1f}/{load['after_train'][0]:.1f} | `{result['command']}` |\n")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# Code world attempts\n\n")
    text = path.read_text()
    marker = "<!-- rows end -->"
    path.write_text(text.replace(marker, row.rstrip("\n") + "\n" + marker) if marker in text else text + row)


def _infill_cell(cell: str) -> tuple[float, float] | None:
    """``"50.5 (100)"`` -> ``(50.5, 100.0)``: single-line pass@1 % and EOT stop % of a log row."""
    import re
    m = re.match(r"([\d.]+) \(([\d.]+)\)", cell)
    return (float(m[1]), float(m[2])) if m else None


def read_log(path: Path | None = None) -> list[dict]:
    """The attempt log's rows as dicts: ``name``, ``settings``, ``params`` (millions), ``tokens``
    (steps × batch × (seq_len + 1)), pass@1 in % per evaluation (``instances``, ``compositions``,
    ``primitives``; None where not measured), ``hand`` (solved of 30), single-line infilling
    ``psm`` and ``spm`` as ``(pass@1 %, EOT stop %)`` (None where not measured) and ``command``."""
    import re
    if path is None:
        from .runs import log_path
        path = log_path()
    rows = []
    for line in Path(path).read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 13 or not line.startswith("| ") or cells[0] in ("name", "---"):
            continue
        steps = re.search(r"(\d+)×(\d+)×(\d+)", cells[1])
        num = lambda c: None if c in ("–", "-", "") else float(c.split()[0])
        rows.append({"name": cells[0], "settings": cells[1], "params": float(cells[2].rstrip("M")),
                     "tokens": int(steps[1]) * int(steps[2]) * (int(steps[3]) + 1) if steps else None,
                     "instances": num(cells[3]), "compositions": num(cells[4]), "primitives": num(cells[5]),
                     "hand": int(cells[6].split("/")[0]) if cells[6][0].isdigit() else None,
                     "psm": _infill_cell(cells[7]), "spm": _infill_cell(cells[8]),
                     "command": cells[-1].strip("`")})
    return rows
