"""The experiment driver: tokenizer + packed data + training + evaluation, from one Recipe.

Everything goes through the project's own pieces: :meth:`minillama.tokenizer.build_tokenizer`,
:func:`minillama.data.pipeline.pack`, :func:`minillama.training.trainer.train`,
:func:`minillama.evaluation.course_models.evaluate_humaneval` /
:func:`~minillama.evaluation.course_models.evaluate_infilling` (batched generation with
:func:`minillama.generate.generate`, scoring with :func:`minillama.execution.evaluate_many`).
Scratch output goes to ``cache/codeworld/`` under :func:`minillama.paths.data_dir`.

    python -m minillama.codeworld.recipe --name fn50 --fim function --fim-rate 0.5 --steps 600

Each run appends a row (settings, numbers, command, machine load, wall time) to
``docs/codeworld_attempts.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from minillama.data.pipeline import PackedData, PipelineConfig, pack, split_pieces, tokenize_documents
from minillama.fim import FIMConfig
from minillama.model import ModelConfig
from minillama.training.trainer import TrainConfig, load_model, train

from .documents import copy_documents, modules
from .fimdesign import FimDesign, encode_modules
from .probe import copying_probe, frequent_ids, induction_scores, list_copy_probe, name_probe
from .robustness import robustness_problems
from .runs import TOKENIZER_DOCS, cache_dir, get_tokenizer, log_path, run_tokenizer  # noqa: F401 (re-exported)


@dataclass
class Recipe:
    name: str = "run"
    world_share: float = 1.0  # share of training tokens from the code world (rest: stdlib)
    copy_share: float = 0.0  # share of training tokens from copy documents (taken from the world's share)
    fim: str = "none"  # none | paper | function
    fim_rate: float = 0.5
    spm_rate: float = 0.5
    line_share: float = 0.7
    single_line: float = 0.6
    stdlib_fim_rate: float | None = None  # None: 0.9 (the paper's) when fim != none, else 0
    steps: int = 600
    batch_size: int = 16
    seq_len: int = 256
    lr: float = 2e-3
    warmup: int = 50
    model: str = "tiny"
    dim: int | None = None
    n_layers: int | None = None
    n_heads: int | None = None
    vocab_size: int = 4096
    seed: int = 0
    data_seed: int = 0
    probe_every: int = 100
    # the world's generator version (functions.WORLDS): 3 = MiniEval's dialect, 4 = open names, 5 and 6 = v4 + blends
    world: int = 3
    init: str = ""  # a model folder to continue from (continued pretraining); "" trains from random weights
    notes: str = ""

    def model_config(self) -> ModelConfig:
        if self.init:  # continued pretraining keeps the starting model's shape
            from minillama.hf import from_pretrained
            return from_pretrained(self.init).cfg
        over = {k: v for k, v in (("dim", self.dim), ("n_layers", self.n_layers), ("n_heads", self.n_heads)) if v}
        if "n_heads" in over or "dim" in over:
            over.setdefault("n_kv_heads", None)
        return ModelConfig.from_name(self.model, vocab_size=self.vocab_size, **over)

    def design(self) -> FimDesign:
        return FimDesign(self.fim, self.fim_rate if self.fim != "none" else 0.0, self.spm_rate, self.line_share,
                         self.single_line)

    @property
    def stdlib_fim(self) -> float:
        if self.stdlib_fim_rate is not None:
            return self.stdlib_fim_rate
        return 0.9 if self.fim != "none" else 0.0

    @property
    def tokens(self) -> int:
        return self.steps * self.batch_size * (self.seq_len + 1)


# --- data ---------------------------------------------------------------------------------
def world_fingerprint() -> str:
    """A hash of the world's source files: cached modules from another version are not used."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        if path.name not in ("recipe.py", "report.py", "fimdesign.py", "probe.py", "handwritten.py", "compare.py",
                             "decontam.py", "reference.py", "__init__.py"):
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()[:10]


def world_modules(n: int, seed: int, world: int = 3):
    """The first ``n`` modules of stream ``seed`` of world version ``world``, cached on disk
    (generation costs ~2 ms each)."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    tag = f"modules-{world_fingerprint()}-{seed}" + (f"-v{world}" if world != 3 else "")
    have = sorted(cache.glob(f"{tag}-*.pkl"), key=lambda p: int(p.stem.split("-")[-1]))
    mods = []
    if have:
        mods = pickle.loads(have[-1].read_bytes())
    if len(mods) < n:
        mods += modules(n - len(mods), seed, start=len(mods), world=world)
        path = cache / f"{tag}-{len(mods)}.pkl"
        path.write_bytes(pickle.dumps(mods))
        for old in have:
            old.unlink()
    return mods[:n]


def stdlib_docs(tok, seq_len: int, fim_rate: float, tokens: int, seed: int):
    from minillama.data.corpus import get_corpus
    from minillama.profiles import get_profile
    pieces = [p for t in get_corpus(get_profile("cpu")).texts("train") for p in split_pieces(t, 2 * seq_len) if p.strip()]
    docs, fims, plains, total, epoch = [], [], [], 0, 0
    while total < tokens:  # whole epochs of shuffled pieces until the budget is met
        chosen = [pieces[i] for i in np.random.default_rng([seed, epoch]).permutation(len(pieces))]
        cfg = PipelineConfig(seq_len, FIMConfig(rate=fim_rate), seed=seed + epoch)
        d, f = tokenize_documents(chosen, tok, cfg)
        p = tok.encode_batch(chosen, bos=True, eos=True)
        for ids, is_f, pl in zip(d, f, p):
            docs.append(ids), fims.append(is_f), plains.append(pl)
            total += len(ids)
            if total >= tokens:
                break
        epoch += 1
    return docs, fims, plains


def build_data(r: Recipe, tok, verbose: bool = True) -> tuple[PackedData, dict]:
    world_tokens = int(r.tokens * (r.world_share - r.copy_share) * 1.05)
    docs, is_fim, plain = [], [], []
    n = max(200, int(world_tokens / 520))  # ~545 tokens per module; grown below if short
    while world_tokens > 0:
        mods = world_modules(n, r.data_seed, r.world)
        docs, is_fim, plain = encode_modules(mods, tok, r.design(), r.seq_len, seed=r.data_seed)
        have = sum(map(len, docs))
        if have >= world_tokens:
            break
        n = int(n * world_tokens / max(have, 1) * 1.05) + 50
    stats = {"world_modules": n if world_tokens > 0 else 0, "world_tokens": sum(map(len, docs))}
    if r.copy_share > 0:
        texts, have, k = [], 0, 0
        while have < r.tokens * r.copy_share * 1.05:
            batch = copy_documents(500, seed=r.data_seed + 1000 * k)
            texts += batch
            have += sum(map(len, tok.encode_batch(batch)))
            k += 1
        ids = tok.encode_batch(texts, bos=True, eos=True)
        stats["copy_tokens"] = sum(map(len, ids))
        docs, is_fim, plain = docs + ids, is_fim + [False] * len(ids), plain + ids
    if r.world_share < 1:
        d, f, p = stdlib_docs(tok, r.seq_len, r.stdlib_fim, int(r.tokens * (1 - r.world_share) * 1.05), r.data_seed)
        stats["stdlib_tokens"] = sum(map(len, d))
        docs, is_fim, plain = docs + d, is_fim + f, plain + p
    order = np.random.default_rng([r.data_seed, 7]).permutation(len(docs))
    docs = [docs[i] for i in order]
    is_fim = [is_fim[i] for i in order]
    plain = [plain[i] for i in order]
    rows, pstats = pack(docs, is_fim, plain, r.seq_len + 1)
    stats.update(pstats)
    if verbose:
        print(f"data: {stats}", flush=True)
    return PackedData(rows.astype(np.int64), {"key": f"codeworld-{r.name}-{len(rows)}"}), stats


def val_streams(tok, seq_len: int, world_version: int = 3) -> dict[str, PackedData]:
    from minillama.data.corpus import get_corpus
    from minillama.profiles import get_profile
    world = [m.text for m in world_modules(200, seed=777, world=world_version)]
    std = [p for t in get_corpus(get_profile("cpu")).texts("val") for p in split_pieces(t, 2 * seq_len) if p.strip()]
    out = {}
    for name, texts in (("world", world), ("stdlib", std)):
        ids = tok.encode_batch(texts, bos=True, eos=True)
        rows, _ = pack(ids, [False] * len(ids), None, seq_len + 1)
        out[name] = PackedData(rows[:64].astype(np.int64))
    return out


# --- training -----------------------------------------------------------------------------
def init_state(r: Recipe) -> dict | None:
    """The starting weights of a continued run (``r.init``, a model folder), or None."""
    if not r.init:
        return None
    from minillama.hf import from_pretrained
    return from_pretrained(r.init, dtype=torch.float32).state_dict()


class _Pause(Exception):
    pass


def run_training(r: Recipe, data: PackedData, val: dict, tok, out_dir: Path, device: str = "cpu",
                 dtype: str = "float32") -> tuple[torch.nn.Module, list[dict]]:
    """Train with :func:`minillama.training.trainer.train`, stopping every ``probe_every`` steps (at a
    checkpoint) to run the copying probe, then resuming exactly. ``device``/``dtype`` are the trainer's
    (``cuda``/``bfloat16``: autocast on a GPU); they are not Recipe fields, so the log's rows stay as they were."""
    cfg = TrainConfig(steps=r.steps, batch_size=r.batch_size, lr=r.lr, warmup=r.warmup, eval_interval=r.probe_every,
                      eval_batches=4, checkpoint_interval=r.probe_every, out_dir=str(out_dir), seed=r.seed,
                      progress=False, device=device, dtype=dtype)
    probes = []
    t0 = time.perf_counter()
    pool = frequent_ids(data.rows[:2000])
    renamed = list(robustness_problems("renamed", n=40).values())

    def probe(m, step):  # random ids of the whole vocabulary, and frequent ids (copying alone)
        frequent = copying_probe(m, tok, pool=pool)
        names = name_probe(m, tok, renamed)
        heads = induction_scores(m, tok, pool=pool)
        return copying_probe(m, tok) | {"step": step, "frequent": {k: frequent[k] for k in ("first", "second", "ratio")},
                                        "names": names, "lists": list_copy_probe(m, tok, n=100),
                                        "induction_max": max(max(row) for row in heads), "induction": heads}

    def callback(step, rec):
        if step % 25 == 0:
            print(f"step {step} loss {rec['loss']:.3f} tok/s {rec['tokens_per_s']:.0f} "
                  f"elapsed {time.perf_counter() - t0:.0f}s", flush=True)
        if step % r.probe_every == 0 and step < r.steps:
            raise _Pause(step)

    while True:
        try:
            res = train(cfg, r.model_config(), data, val, tokenizer_hash=str(tok.path.name), callback=callback,
                        init_state=init_state(r))
            model = res.model
            break
        except _Pause as p:
            model = load_model(out_dir, device)  # the probes run where the model trains
            probes.append(probe(model, p.args[0]))
            print(f"probe {probes[-1]}", flush=True)
    probes.append(probe(model, r.steps))
    print(f"probe {probes[-1]}", flush=True)
    return model, probes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(Recipe):  # one flag per field: --fim-rate 0.5 ...
        kind = int if "int" in str(f.type) else float if "float" in str(f.type) else str
        parser.add_argument("--" + f.name.replace("_", "-"), type=kind, default=f.default)
    parser.add_argument("--eval", default="standard", help="quick | standard | full")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu | cuda (training; the evaluation runs there too)")
    parser.add_argument("--dtype", default="float32", help="float32 | bfloat16 (autocast in training)")
    parser.add_argument("--tokenizer", default=None,
                        help="a tokenizer.model to use (default: trained from this interpreter's stdlib and "
                             "3,000 world modules; another Python's stdlib gives another tokenizer)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    r = Recipe(**{f.name: getattr(args, f.name) for f in fields(Recipe)})
    command = "python -m minillama.codeworld.recipe " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    out_dir = cache_dir() / "runs" / r.name
    if (out_dir / "result.json").exists():
        print(f"{out_dir}/result.json exists; pick another --name", file=sys.stderr)
        return 1
    from .report import evaluate_model, log_row
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    if args.tokenizer:
        from minillama.tokenizer import Tokenizer
        tok = Tokenizer(args.tokenizer, require_fim=True)
    else:
        tok = get_tokenizer(r.vocab_size)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(tok.path, out_dir / "tokenizer.model")  # the run carries its tokenizer (the stdlib differs by machine)
    data, stats = build_data(r, tok)
    val = val_streams(tok, r.seq_len, r.world)
    t_data = time.perf_counter() - t0
    model, probes = run_training(r, data, val, tok, out_dir, args.device, args.dtype)
    t_train = time.perf_counter() - t0 - t_data
    load1 = os.getloadavg()
    results = evaluate_model(model, tok, args.eval, out_dir)
    t_eval = time.perf_counter() - t0 - t_data - t_train
    result = {"recipe": asdict(r), "command": command, "data": stats, "probes": probes, "results": results,
              "params": sum(p.numel() for p in model.parameters()),
              "seconds": {"data": round(t_data), "train": round(t_train), "eval": round(t_eval)},
              "load": {"start": load0, "after_train": load1, "end": os.getloadavg()}}
    (out_dir / "result.json").write_text(json.dumps(result, indent=1, default=str) + "\n")
    log_row(result, log_path())
    print(json.dumps({k: v for k, v in results.items() if not isinstance(v, (list, dict)) or k == "summary"},
                     indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
