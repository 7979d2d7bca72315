"""Pretraining: one importable :func:`train`, used by the notebooks and ``python -m minillama train``.

The recipe is Code Llama's (PAPER §2.6, Llama 2's values where the paper is silent): AdamW with
β = (0.9, 0.95), a cosine schedule with linear warm-up that ends at peak/30, weight decay 0.1,
gradient clipping at 1.0.

Weight decay goes to 2-D weights only (attention/FFN matrices, embeddings, output head), not
to the RMSNorm gains: decaying a gain pulls it towards 0, i.e. towards switching the layer's
input off, which is not the "small weights" prior decay is for. (Meta's released code does
not show its optimizer; this is the common Llama/nanoGPT grouping.)

Resuming is exact: batches are a pure function of ``(seed, step)`` (an epoch-wise permutation
of the rows), so a checkpoint only needs the step, model, optimizer and RNG state to continue
the very same run. With ``torchrun`` (``WORLD_SIZE > 1``) each rank takes a disjoint slice of
every global batch, so ``world_size × per-rank batch`` is the same batch as on one process.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import warnings
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from .model import ModelConfig, Transformer
from .pipeline import PackedData


# --- checkpoints --------------------------------------------------------------------------
# A checkpoint file is a header line, the payload's length and sha256, then the torch.save
# payload. The hash turns silent corruption into a clear error; the length tells a truncated
# file from a corrupted one.
CKPT_MAGIC = b"minillama-checkpoint 1\n"
LATEST, PREVIOUS = "ckpt.pt", "ckpt.prev.pt"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: truncated, corrupted, or from another run."""


def save_checkpoint(out_dir: str | Path, state: dict) -> Path:
    """Write ``state`` atomically as ``ckpt.pt``; the former ``ckpt.pt`` becomes ``ckpt.prev.pt``.

    A crash at any moment leaves a complete checkpoint behind: the new one is written to a
    temporary file and fsync'ed before the renames, and ``os.replace`` is atomic.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    header = CKPT_MAGIC + f"{len(payload)} {hashlib.sha256(payload).hexdigest()}\n".encode()
    tmp = out_dir / f"{LATEST}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(header + payload)
        f.flush()
        os.fsync(f.fileno())
    latest = out_dir / LATEST
    if latest.exists():
        os.replace(latest, out_dir / PREVIOUS)
    os.replace(tmp, latest)
    return latest


def read_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load one checkpoint file, or raise :class:`CheckpointError` saying what is wrong with it."""
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from None
    if not blob.startswith(CKPT_MAGIC):
        raise CheckpointError(f"{path} is not a minillama checkpoint (bad header); it may be corrupted "
                              f"or from another program")
    try:
        line_end = blob.index(b"\n", len(CKPT_MAGIC))
        length, digest = blob[len(CKPT_MAGIC):line_end].decode().split()
        length = int(length)
    except ValueError:
        raise CheckpointError(f"{path} has a damaged header; the file is corrupted") from None
    payload = blob[line_end + 1:]
    if len(payload) != length:
        raise CheckpointError(f"{path} is truncated: {len(payload):,} of {length:,} payload bytes "
                              f"(a crash or a full disk during the write?)")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise CheckpointError(f"{path} is corrupted: its sha256 does not match the one written with it")
    return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=False)


def load_checkpoint(out_dir: str | Path, map_location="cpu", fallback: bool = True) -> dict:
    """The latest good checkpoint of a run directory.

    A bad ``ckpt.pt`` is reported (warning) and moved aside to ``ckpt.bad.pt``, so that the
    next save cannot rotate it over the good ``ckpt.prev.pt``; then ``ckpt.prev.pt`` is used.
    """
    out_dir = Path(out_dir)
    latest, prev = out_dir / LATEST, out_dir / PREVIOUS
    if not latest.exists() and not prev.exists():
        raise CheckpointError(f"no checkpoint in {out_dir} (expected {LATEST} or {PREVIOUS})")
    errors = []
    if latest.exists():
        try:
            return read_checkpoint(latest, map_location)
        except CheckpointError as e:
            if not fallback:
                raise
            errors.append(str(e))
            os.replace(latest, out_dir / "ckpt.bad.pt")
            then = f"using the previous checkpoint {prev.name}" if prev.exists() else "no previous checkpoint"
            warnings.warn(f"{e}; moved it to ckpt.bad.pt; {then}", stacklevel=2)
    if prev.exists():
        try:
            return read_checkpoint(prev, map_location)
        except CheckpointError as e:
            errors.append(str(e))
    raise CheckpointError("no usable checkpoint in " + str(out_dir) + ": " + "; ".join(errors))


def _diff(saved, current, prefix=""):
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for k in sorted(set(saved) | set(current)):
            out += _diff(saved.get(k), current.get(k), f"{prefix}{k}.")
        return out
    return [] if saved == current else [f"{prefix[:-1]}: checkpoint {saved!r}, this run {current!r}"]


def check_identity(saved: dict, current: dict, where: str = "checkpoint"):
    """Refuse a checkpoint whose model, training, tokenizer or data settings differ, naming them."""
    diffs = _diff(saved, current)
    if diffs:
        raise CheckpointError(f"{where} belongs to another run; it differs in " + "; ".join(diffs)
                              + ". Use a fresh out_dir, or the settings it was made with.")


def resume_state(out_dir: str | Path, identity: dict, map_location="cpu") -> dict | None:
    """The checkpoint to resume from (None when the run directory has none)."""
    out_dir = Path(out_dir)
    if not (out_dir / LATEST).exists() and not (out_dir / PREVIOUS).exists():
        return None
    state = load_checkpoint(out_dir, map_location)
    check_identity(state["identity"], identity, f"the checkpoint in {out_dir}")
    return state


@dataclass
class TrainConfig:
    steps: int = 100
    batch_size: int = 16  # sequences per optimizer step, summed over accumulation and ranks
    grad_accum: int = 1  # micro-batches per step (same result as one big batch, less memory)
    lr: float = 1e-3  # peak learning rate
    warmup: int = 10  # linear warm-up steps
    min_lr_ratio: float = 1 / 30  # the cosine ends at lr * min_lr_ratio (PAPER: peak/30)
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    eval_interval: int = 50  # steps between validations (0: only at the end)
    eval_batches: int = 4  # validation micro-batches per evaluation
    checkpoint_interval: int = 0  # steps between checkpoints (0: only at the end)
    out_dir: str | None = None  # checkpoints + metrics.jsonl; None: keep nothing on disk
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"  # "bfloat16": autocast on CUDA; parameters stay float32
    compile: bool = False
    progress: bool = True  # tqdm bar

    def __post_init__(self):
        self.betas = tuple(self.betas)
        for name in ("steps", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name}={getattr(self, name)} must be >= 1")
        if self.batch_size % self.grad_accum:
            raise ValueError(f"batch_size={self.batch_size} must be a multiple of grad_accum={self.grad_accum}")

    # fields that may differ between a run and its resumption (they don't change the maths;
    # ``steps`` does: the cosine schedule is laid out over it)
    RESUMABLE_CHANGES = ("eval_interval", "eval_batches", "checkpoint_interval", "out_dir",
                         "device", "compile", "progress")

    def identity(self) -> dict:
        """The fields a resumed run must share with its checkpoint."""
        d = asdict(self)
        d["betas"] = list(d["betas"])
        return {k: v for k, v in d.items() if k not in self.RESUMABLE_CHANGES}


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step ``step`` (0-based): linear warm-up, then cosine to peak/30."""
    min_lr = cfg.lr * cfg.min_lr_ratio
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    decay_steps = max(cfg.steps - cfg.warmup - 1, 1)  # the last step (steps-1) lands on min_lr
    progress = min((step - cfg.warmup) / decay_steps, 1.0)
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.lr - min_lr)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Decay the 2-D weights (matrices, embeddings, head); not the 1-D norm gains."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@lru_cache(maxsize=4)
def _permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(n)


def sample_indices(n_rows: int, seed: int, start: int, count: int) -> list[int]:
    """Rows for global sample positions ``start .. start+count``: a fresh permutation each epoch."""
    out = []
    for i in range(start, start + count):
        epoch, j = divmod(i, n_rows)
        out.append(int(_permutation(n_rows, seed, epoch)[j]))
    return out


def micro_batch_rows(n_rows: int, cfg: TrainConfig, step: int, micro: int, rank: int = 0, world: int = 1) -> list[int]:
    """The rows rank ``rank`` trains on in micro-batch ``micro`` of ``step``."""
    per_micro = cfg.batch_size // cfg.grad_accum
    if per_micro % world:
        raise ValueError(f"batch_size / grad_accum = {per_micro} sequences is not divisible by "
                         f"world_size={world}; choose a batch_size that is")
    per_rank = per_micro // world
    start = step * cfg.batch_size + micro * per_micro + rank * per_rank
    return sample_indices(n_rows, cfg.seed, start, per_rank)


def _autocast(cfg: TrainConfig):
    if cfg.dtype == "bfloat16" and cfg.device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    if cfg.dtype not in ("float32", "bfloat16"):
        raise ValueError(f"TrainConfig.dtype={cfg.dtype!r}; use float32 or bfloat16")
    return nullcontext()  # CPU: float32 (bf16 matmuls are far slower on most CPUs)


def loss_fn(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits = model(x)
    return F.cross_entropy(logits.float().flatten(0, 1), y.flatten())


@torch.no_grad()
def evaluate(model, data: PackedData, batch_size: int, batches: int | None = None, device: str = "cpu",
             dtype: str = "float32", mask: Callable | None = None) -> float:
    """Mean next-token loss over the first ``batches`` batches of ``data`` (all rows if None).

    ``mask(x, y) -> bool [B, T]`` restricts the mean to some targets (e.g. FIM middles).
    """
    was_training = model.training
    model.eval()
    n = len(data) if batches is None else min(len(data), batches * batch_size)
    total, count = 0.0, 0
    ctx = _autocast(TrainConfig(device=device, dtype=dtype))
    for start in range(0, n, batch_size):
        x, y = data.batch(range(start, min(start + batch_size, n)))
        with ctx:
            logits = model(x.to(device)).float()
        nll = F.cross_entropy(logits.flatten(0, 1), y.to(device).flatten(), reduction="none")
        keep = mask(x, y).flatten().to(device) if mask is not None else torch.ones_like(nll, dtype=torch.bool)
        total += nll[keep].sum().item()
        count += int(keep.sum())
    model.train(was_training)
    return total / max(count, 1)


@dataclass
class TrainResult:
    model: Transformer
    history: list[dict]  # one dict per logged step (train) and per evaluation
    out_dir: Path | None


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def setup_distributed(device: str) -> tuple[int, int]:
    """Join the process group that ``torchrun`` describes (no-op when WORLD_SIZE is 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend)
        if device.startswith("cuda"):
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return _dist_info()


def train(cfg: TrainConfig, model_cfg: ModelConfig, train_data: PackedData,
          val_data: dict[str, PackedData] | None = None, *, tokenizer_hash: str | None = None,
          resume: bool = True, callback: Callable[[int, dict], None] | None = None) -> TrainResult:
    """Train a fresh :class:`Transformer` (or resume ``cfg.out_dir``'s checkpoint) for ``cfg.steps``.

    ``val_data`` maps names to validation streams (e.g. ``val_l2r``, ``val_fim``); each is
    evaluated every ``eval_interval`` steps and at the end. ``callback(step, record)`` runs
    after each optimizer step (tests use it to crash a run on purpose).
    """
    rank, world = setup_distributed(cfg.device)
    if train_data.seq_len > model_cfg.max_seq_len:
        raise ValueError(f"rows have seq_len {train_data.seq_len} > model max_seq_len {model_cfg.max_seq_len}")
    torch.manual_seed(cfg.seed)
    model = Transformer(model_cfg).to(cfg.device)
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=cfg.betas,
                            fused=cfg.device.startswith("cuda") or None)
    out_dir = Path(cfg.out_dir) if cfg.out_dir else None
    identity = {"train": cfg.identity(), "model": model_cfg.to_dict(), "tokenizer": tokenizer_hash,
                "data": train_data.fingerprint}
    history: list[dict] = []
    start = 0
    if out_dir is not None and resume:
        state = resume_state(out_dir, identity, map_location=cfg.device)
        if state is not None:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            torch.set_rng_state(state["rng"]["torch"])
            if state["rng"].get("cuda") is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["rng"]["cuda"])
            start = state["step"]
            history = [h for h in _read_metrics(out_dir) if h["step"] <= start]
    if out_dir is not None and rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text(json.dumps(identity, indent=2) + "\n")
        _write_metrics(out_dir, history)  # drop lines logged after the checkpoint we resume from

    train_model, ddp = model, None
    if world > 1:
        ids = [torch.cuda.current_device()] if cfg.device.startswith("cuda") else None
        train_model = ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if cfg.compile:
        train_model = torch.compile(train_model)
    model.train()

    def log(record: dict):
        history.append(record)
        if out_dir is not None and rank == 0:
            with open(out_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def run_eval(step: int):
        if not val_data:
            return {}
        micro = cfg.batch_size // cfg.grad_accum
        rec = {"step": step, **{f"{name}_loss": evaluate(model, data, micro, cfg.eval_batches, cfg.device, cfg.dtype)
                                for name, data in val_data.items()}}
        log(rec)
        return rec

    def checkpoint(step: int):
        if out_dir is not None and rank == 0:
            rng = {"torch": torch.get_rng_state(),
                   "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
            # the data position is step × batch_size rows into the seeded order: the step says it all
            save_checkpoint(out_dir, {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                                      "samples_seen": step * cfg.batch_size, "rng": rng, "identity": identity})
        if world > 1:
            dist.barrier()

    bar = None
    if cfg.progress and rank == 0:
        from tqdm.auto import tqdm
        bar = tqdm(total=cfg.steps, initial=start, desc="train", dynamic_ncols=True)
    tokens_per_step = cfg.batch_size * train_data.seq_len
    t_last = time.perf_counter()
    for step in range(start, cfg.steps):
        lr = lr_at(step, cfg)
        for g in opt.param_groups:
            g["lr"] = lr
        loss_sum = torch.zeros((), device=cfg.device)
        for micro in range(cfg.grad_accum):
            x, y = train_data.batch(micro_batch_rows(len(train_data), cfg, step, micro, rank, world))
            x, y = x.to(cfg.device, non_blocking=True), y.to(cfg.device, non_blocking=True)
            # DDP all-reduces gradients on the last micro-batch only
            skip_sync = ddp is not None and micro < cfg.grad_accum - 1
            with (ddp.no_sync() if skip_sync else nullcontext()), _autocast(cfg):
                loss = loss_fn(train_model, x, y) / cfg.grad_accum
                loss.backward()
            loss_sum += loss.detach()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if world > 1:
            dist.all_reduce(loss_sum)
            loss_sum /= world
        now = time.perf_counter()
        rec = {"step": step + 1, "loss": loss_sum.item(), "lr": lr, "grad_norm": float(grad_norm),
               "tokens_per_s": tokens_per_step / (now - t_last)}
        t_last = now
        log(rec)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{rec['loss']:.3f}", lr=f"{lr:.1e}")
        done = step + 1 == cfg.steps
        if (cfg.eval_interval and (step + 1) % cfg.eval_interval == 0) or done:
            ev = run_eval(step + 1)
            if bar is not None and ev:
                bar.write(f"step {step + 1}: " + ", ".join(f"{k} {v:.3f}" for k, v in ev.items() if k != "step"))
            t_last = time.perf_counter()  # don't count evaluation in the throughput
        if (cfg.checkpoint_interval and (step + 1) % cfg.checkpoint_interval == 0) or done:
            checkpoint(step + 1)
            t_last = time.perf_counter()
        if callback is not None:
            callback(step + 1, rec)
    if bar is not None:
        bar.close()
    model.eval()
    return TrainResult(model, history, out_dir)


def _read_metrics(out_dir: Path) -> list[dict]:
    path = Path(out_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut by a crash: everything after it is gone anyway
    return out


def read_metrics(out_dir: str | Path) -> tuple[list[dict], list[dict]]:
    """``(train records, eval records)`` from a run's ``metrics.jsonl``."""
    rows = _read_metrics(Path(out_dir))
    return [r for r in rows if "loss" in r], [r for r in rows if "loss" not in r]


def _write_metrics(out_dir: Path, history: list[dict]):
    tmp = out_dir / "metrics.jsonl.tmp"
    tmp.write_text("".join(json.dumps(h) + "\n" for h in history))
    os.replace(tmp, out_dir / "metrics.jsonl")


def load_model(out_dir: str | Path, device: str = "cpu") -> Transformer:
    """The model of a run's latest good checkpoint, in eval mode."""
    state = load_checkpoint(Path(out_dir), map_location=device, fallback=True)
    model = Transformer(ModelConfig.from_dict(state["identity"]["model"])).to(device)
    model.load_state_dict(state["model"])
    return model.eval()


