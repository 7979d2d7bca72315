"""Choosing the instruction-tuning recipe on the ``dev`` split, never on the evaluation problems.

Each trial fine-tunes a copy of the coding model on ``n`` reference answers of the ``train`` split's
requests (the oracle: only the recipe varies, not the data's quality) and scores it greedily on the
``dev`` problems in both formats. The recipe notebook 05 uses is the trial with the highest Instruct
pass@1 among those that lose at most :data:`~minillama.instruct.ablation.FORGETTING_LIMIT` in the
docstring format and train on at most :data:`MAX_ROWS` rows (the notebook's time budget). ``python -m minillama instruct-trials`` runs a grid and appends to a JSON-lines log;
``docs/instruct_trials.md`` keeps the course's log.
"""

from __future__ import annotations

import copy
import json
import random
import time
from pathlib import Path

from minillama.instruct.ablation import FORGETTING_LIMIT, world_rehearsal
from minillama.instruct.following import encode_request_example, reference_examples, score_both
from minillama.instruct.requests import split_problems
from minillama.instruct.sft import finetune

RECIPE_KEYS = ("steps", "batch_size", "lr", "rehearsal_frac", "weight_decay")


def run_trials(model, tok, grid: list[dict], *, n_train: int = 200, n_dev: int = 100, seed: int = 0,
               log: str | Path | None = None, say=print) -> list[dict]:
    """One record per recipe of ``grid`` (dicts of :data:`RECIPE_KEYS`, plus ``n``: examples), and one
    for the base model first; each appended to ``log`` (JSON lines) as soon as it is measured."""
    check_grid(grid)
    dev = split_problems("dev", n_dev)
    pool = reference_examples(split_problems("train", 2 * n_train))
    rehearsal = world_rehearsal(tok, seed)

    def write(rec):
        say(json.dumps(rec))
        if log is not None:
            with open(log, "a") as f:
                f.write(json.dumps(rec) + "\n")
        return rec

    base = score_both(model, tok, dev)
    out = [write({"arm": "base", "n_dev": n_dev, **{k: v.summary() for k, v in base.items()}})]
    for cfg in grid:
        cfg = dict(cfg)
        n = cfg.pop("n", n_train)
        data = random.Random(seed).sample(pool, min(n, len(pool)))
        tuned = copy.deepcopy(model)
        t = time.perf_counter()
        losses = finetune(tuned, tok, data, encode=encode_request_example, rehearsal=rehearsal, seed=seed, **cfg)
        secs = time.perf_counter() - t
        s = score_both(tuned, tok, dev)
        out.append(write({"arm": "oracle", "n": len(data), **cfg, "train_s": round(secs, 1),
                          "loss_end": sum(losses[-10:]) / len(losses[-10:]), "n_dev": n_dev,
                          **{k: v.summary() for k, v in s.items()}}))
    return out


MAX_ROWS = 1000  # training rows (steps x batch) per fine-tuning: nine of them must fit notebook 05's budget


def check_grid(grid: list[dict]) -> None:
    """A ValueError that says what to write when a recipe has unknown keys or no ``steps``."""
    for cfg in grid:
        unknown = set(cfg) - set(RECIPE_KEYS) - {"n"}
        if unknown:
            raise ValueError(f"unknown recipe keys {sorted(unknown)} in {cfg}; use {RECIPE_KEYS} (and n, examples)")
        if "steps" not in cfg:
            raise ValueError(f"a recipe needs its number of steps: {cfg}")


def best_recipe(records: list[dict], max_rows: int | None = MAX_ROWS) -> dict | None:
    """The trial with the highest dev Instruct pass@1 among those whose docstring pass@1 is at most
    :data:`FORGETTING_LIMIT` below the base's and that train on at most ``max_rows`` rows (ties: the
    fewest training rows, then the first)."""
    base = next(r for r in records if r["arm"] == "base")
    ok = [r for r in records if r["arm"] != "base"
          and r["docstring"]["pass@1"] >= base["docstring"]["pass@1"] - FORGETTING_LIMIT
          and (max_rows is None or r["steps"] * r["batch_size"] <= max_rows)]
    if not ok:
        return None
    return max(ok, key=lambda r: (r["instruct"]["pass@1"], -r["steps"] * r["batch_size"]))


def trials_table(records: list[dict]) -> str:
    """The trials as a markdown table (dev pass@1 in both formats, the answers' form, training time)."""
    lines = ["| recipe | examples | Instruct pass@1 (dev) | in [PYTHON] tags | docstring pass@1 (dev) | train s |",
             "|---|---|---|---|---|---|"]
    for r in records:
        name = "base (no tuning)" if r["arm"] == "base" else ", ".join(
            f"{k.replace('_', ' ')} {r[k]:g}" for k in RECIPE_KEYS if k in r)
        lines.append(f"| {name} | {r.get('n', '—')} | {100 * r['instruct']['pass@1']:.0f} % "
                     f"({r['instruct']['passed']}/{r['instruct']['n']}) | {100 * r['instruct']['format']:.0f} % | "
                     f"{100 * r['docstring']['pass@1']:.0f} % ({r['docstring']['passed']}/{r['docstring']['n']}) | "
                     f"{r.get('train_s', '—')} |")
    return "\n".join(lines) + "\n"
