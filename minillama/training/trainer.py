"""Pretraining: one importable :func:`train`, used by the notebooks and ``python -m minillama train``.

The recipe (:mod:`minillama.training.schedule`): AdamW with β = (0.9, 0.95) and a cosine
schedule with linear warm-up that ends at peak/30, as Code Llama (PAPER §2.6); weight decay
0.1 on 2-D weights and gradient clipping at 1.0, Llama 2's values (the paper states neither).

Resuming is exact: batches are a pure function of ``(seed, step)`` (an epoch-wise permutation
of the rows), so a checkpoint only needs the step, model, optimizer and RNG state to continue
the very same run. With ``torchrun`` (``WORLD_SIZE > 1``) each rank takes a disjoint slice of
every global batch, so ``world_size × per-rank batch`` is the same batch as on one process.
``TrainConfig.parallel`` picks how ranks share the model: ``"ddp"`` keeps a full copy on each
(DistributedDataParallel); ``"fsdp"`` shards parameters, gradients and optimizer state over
them (FSDP2, ``fully_shard``), for a model whose training state does not fit one GPU. Either
way ``ckpt.pt`` holds the full, unsharded state, so any run (one process, DDP or FSDP, any
number of ranks) resumes from it and ``torch.load(..., weights_only=True)`` reads it.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from minillama.model import ModelConfig, Transformer
from minillama.data.pipeline import PackedData
from minillama.paths import code_fingerprint
from minillama.training import schedule
from minillama.training.checkpoint import (CheckpointError, load_checkpoint, resume_state,  # noqa: F401
                                           save_checkpoint)


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
    dtype: str = "float32"  # "bfloat16": autocast on the device (the gpu profile); parameters stay float32
    compile: bool = False
    # torch.compile's backend; None: $MINILLAMA_COMPILE_BACKEND, else "inductor" (the gpu profile's CPU dry
    # run uses "aot_eager": Dynamo and AOTAutograd as on a GPU, no CPU code generated)
    compile_backend: str | Callable | None = None
    fused_adamw: bool | None = None  # AdamW's fused kernel; None: on CUDA only (make_optimizer)
    progress: bool = True  # tqdm bar
    parallel: str = "ddp"  # with several ranks: "ddp" (a full copy each) or "fsdp" (sharded, FSDP2)

    def __post_init__(self):
        self.betas = tuple(self.betas)
        for name in ("steps", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name}={getattr(self, name)} must be >= 1")
        if self.batch_size % self.grad_accum:
            raise ValueError(f"batch_size={self.batch_size} must be a multiple of grad_accum={self.grad_accum}")
        if self.parallel not in ("ddp", "fsdp"):
            raise ValueError(f"TrainConfig.parallel={self.parallel!r}; use 'ddp' or 'fsdp'")

    # fields that may differ between a run and its resumption (they don't change the maths;
    # ``steps`` does: the cosine schedule is laid out over it)
    RESUMABLE_CHANGES = ("eval_interval", "eval_batches", "checkpoint_interval", "out_dir",
                         "device", "compile", "compile_backend", "fused_adamw", "progress", "parallel")

    def identity(self) -> dict:
        """The fields a resumed run must share with its checkpoint."""
        d = asdict(self)
        d["betas"] = list(d["betas"])
        return {k: v for k, v in d.items() if k not in self.RESUMABLE_CHANGES}


def lr_at(step: int, cfg: TrainConfig) -> float:
    """The learning rate of ``step`` under ``cfg`` (:func:`minillama.training.schedule.lr_at`)."""
    return schedule.lr_at(step, cfg.steps, cfg.lr, cfg.warmup, cfg.min_lr_ratio)


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
    """bf16 autocast on the device when asked for. Profiles ask for it on CUDA only (bf16 matmuls
    are far slower on most CPUs), but it runs on the CPU too: the tests run the gpu path there."""
    if cfg.dtype not in ("float32", "bfloat16"):
        raise ValueError(f"TrainConfig.dtype={cfg.dtype!r}; use float32 or bfloat16")
    if cfg.dtype == "bfloat16":
        return torch.autocast(torch.device(cfg.device).type, dtype=torch.bfloat16)
    return nullcontext()


def compile_backend(cfg: TrainConfig) -> str | Callable:
    return cfg.compile_backend or os.environ.get("MINILLAMA_COMPILE_BACKEND") or "inductor"


def loss_fn(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    logits = model(x)
    return F.cross_entropy(logits.float().flatten(0, 1), y.flatten())


@torch.no_grad()
def validation_loss(model, data: PackedData, batch_size: int, batches: int | None = None,
                    device: str | None = None, dtype: str = "float32", mask: Callable | None = None) -> float:
    """Mean next-token loss over the first ``batches`` batches of ``data`` (all rows if None),
    computed on ``device`` (default: the model's).

    ``mask(x, y) -> bool [B, T]`` restricts the mean to some targets (e.g. FIM middles).
    """
    device = str(device or next(model.parameters()).device)
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


def training_code_key() -> str:
    """The code that decides a run's numbers (model, loss, schedule, optimizer, batch order):
    a checkpoint made by other code is not resumed, nor reused as a finished model."""
    from minillama import model as m

    return code_fingerprint(m.RMSNorm.forward, m.Attention.forward, m.FeedForward.forward,
                            m.TransformerBlock.forward, m.Transformer.forward, m.Transformer.reset_parameters,
                            loss_fn, schedule.lr_at, schedule.param_groups, schedule.make_optimizer,
                            sample_indices, micro_batch_rows, train)


@dataclass
class TrainResult:
    model: Transformer
    history: list[dict]  # one dict per logged step (train) and per evaluation
    out_dir: Path | None
    compile_error: str | None = None  # why torch.compile was given up (the run went on uncompiled)


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def setup_distributed(device: str) -> tuple[int, int]:
    """Join the process group that ``torchrun`` describes (no-op when WORLD_SIZE is 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        if device.startswith("cuda"):  # before the process group, so NCCL binds this rank's GPU
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return _dist_info()


# --- FSDP2: the model sharded over the ranks; checkpoints stay whole ---------------------------

def shard_model(model: Transformer, device: str, world: int) -> Transformer:
    """Shard ``model`` (built on the CPU, the same on every rank) over the ranks with FSDP2:
    block by block, so a GPU holds one whole block at most while the shards are made."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(torch.device(device).type, (world,))
    for block in model.layers:
        fully_shard(block, mesh=mesh)
    return fully_shard(model, mesh=mesh)  # the rest: embeddings, final norm, output head


def _is_dtensor(x) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(x, DTensor)


def gather_full(obj, keep: bool = True):
    """``obj`` (a state dict, nested) with each sharded tensor replaced by the whole tensor on the
    CPU, one tensor at a time (``None`` where not ``keep``). A collective: all ranks call it."""
    if _is_dtensor(obj):
        full = obj.full_tensor()
        return full.cpu() if keep else None
    if isinstance(obj, dict):
        return {k: gather_full(v, keep) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(gather_full(v, keep) for v in obj)
    return obj


def _shard_like(full: torch.Tensor, like) -> torch.Tensor:
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(full.to(like.device), like.device_mesh, like.placements)


def load_sharded(model, opt: torch.optim.Optimizer, model_state: dict, opt_state: dict) -> None:
    """Load a whole (checkpointed) state into a sharded model and its optimizer."""
    current = model.state_dict()
    model.load_state_dict({k: _shard_like(v, current[k]) if _is_dtensor(current[k]) else v
                           for k, v in model_state.items()})
    params = [p for group in opt.param_groups for p in group["params"]]  # the ids of opt.state_dict()
    state = {i: {k: _shard_like(v, params[i]) if torch.is_tensor(v) and v.shape == params[i].shape
                 and _is_dtensor(params[i]) else v for k, v in s.items()}
             for i, s in opt_state["state"].items()}
    opt.load_state_dict({**opt_state, "state": state})


def _state_digest(state: dict) -> str:
    import hashlib
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode() + state[k].float().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def train(cfg: TrainConfig, model_cfg: ModelConfig, train_data: PackedData,
          val_data: dict[str, PackedData] | None = None, *, tokenizer_hash: str | None = None,
          resume: bool = True, callback: Callable[[int, dict], None] | None = None,
          init_state: dict | None = None) -> TrainResult:
    """Train a fresh :class:`Transformer` (or resume ``cfg.out_dir``'s checkpoint) for ``cfg.steps``.

    ``init_state``: a state dict to start from instead of random weights (continued pretraining,
    as Code Llama starts from Llama 2); a resumed checkpoint takes precedence over it.

    ``val_data`` maps names to validation streams (e.g. ``val_l2r``, ``val_fim``); each is
    evaluated every ``eval_interval`` steps and at the end. ``callback(step, record)`` runs
    after each optimizer step (tests use it to crash a run on purpose). With ``parallel="fsdp"``
    the returned model is the gathered one, on the CPU.
    """
    rank, world = setup_distributed(cfg.device)
    if train_data.seq_len > model_cfg.max_seq_len:
        raise ValueError(f"rows have seq_len {train_data.seq_len} > model max_seq_len {model_cfg.max_seq_len}")
    torch.manual_seed(cfg.seed)
    fsdp = world > 1 and cfg.parallel == "fsdp"
    model = Transformer(model_cfg)  # initialised on the CPU: the same numbers on every device
    if init_state is not None:
        model.load_state_dict({k: v.float() for k, v in init_state.items()})
    model = shard_model(model, cfg.device, world) if fsdp else model.to(cfg.device)
    opt = schedule.make_optimizer(model, cfg.lr, cfg.weight_decay, cfg.betas,  # after sharding: over the shards
                                  fused=cfg.fused_adamw)
    out_dir = Path(cfg.out_dir) if cfg.out_dir else None
    identity = {"train": cfg.identity(), "model": model_cfg.to_dict(), "tokenizer": tokenizer_hash,
                "data": train_data.fingerprint, "code": training_code_key()}
    if init_state is not None:  # a checkpoint of a run from other starting weights is not this run's
        identity["init"] = _state_digest(init_state)
    history: list[dict] = []
    start = 0
    if out_dir is not None and resume:
        state = resume_state(out_dir, identity, map_location="cpu" if fsdp else cfg.device)
        if state is not None:
            if fsdp:
                load_sharded(model, opt, state["model"], state["optimizer"])
            else:
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
    if world > 1 and not fsdp:
        ids = [torch.cuda.current_device()] if cfg.device.startswith("cuda") else None
        train_model = ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    eager_model, compile_error = train_model, None
    if cfg.compile:
        train_model = torch.compile(train_model, backend=compile_backend(cfg))
    compile_pending = cfg.compile  # until the first forward and backward have run compiled
    model.train()

    def forward_backward(x, y):
        """One micro-batch's loss and gradients. torch.compile compiles at the first call: if that
        fails (no compiler, an unsupported op), the run goes on uncompiled rather than dying."""
        nonlocal train_model, compile_pending, compile_error
        try:
            with _autocast(cfg):  # the forward only: backward runs outside autocast
                loss = loss_fn(train_model, x, y) / cfg.grad_accum
            loss.backward()
        except Exception as e:  # noqa: BLE001 - the eager retry below raises a real error again
            if not compile_pending:
                raise
            said = " ".join(line.strip() for line in str(e).splitlines() if line.strip())  # Dynamo: the cause is line 2
            compile_error = f"{type(e).__name__}: {said[:300]}"
            warnings.warn(f"torch.compile (backend {compile_backend(cfg)}) failed at the first step, {compile_error}; "
                          f"training goes on uncompiled", RuntimeWarning, stacklevel=2)
            torch._dynamo.reset()
            opt.zero_grad(set_to_none=True)  # the first micro-batch of the run: no gradient is lost
            train_model, compile_pending = eager_model, False
            with _autocast(cfg):
                loss = loss_fn(train_model, x, y) / cfg.grad_accum
            loss.backward()
        compile_pending = False
        return loss

    def log(record: dict):
        history.append(record)
        if out_dir is not None and rank == 0:
            with open(out_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def run_eval(step: int):
        if not val_data:
            return {}
        micro = cfg.batch_size // cfg.grad_accum
        rec = {"step": step, **{f"{name}_loss": validation_loss(model, data, micro, cfg.eval_batches, cfg.device, cfg.dtype)
                                for name, data in val_data.items()}}
        log(rec)
        return rec

    def checkpoint(step: int):
        if out_dir is None:
            return
        model_state, opt_state = model.state_dict(), opt.state_dict()
        if fsdp:  # every rank sends its shards; rank 0 writes the whole state, as one process would
            model_state, opt_state = gather_full(model_state, rank == 0), gather_full(opt_state, rank == 0)
        if rank == 0:
            rng = {"torch": torch.get_rng_state(),
                   "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}
            # the data position is step × batch_size rows into the seeded order: the step says it all
            save_checkpoint(out_dir, {"model": model_state, "optimizer": opt_state, "step": step,
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
        schedule.set_lr(opt, lr)
        loss_sum = torch.zeros((), device=cfg.device)
        for micro in range(cfg.grad_accum):
            x, y = train_data.batch(micro_batch_rows(len(train_data), cfg, step, micro, rank, world))
            x, y = x.to(cfg.device, non_blocking=True), y.to(cfg.device, non_blocking=True)
            # DDP all-reduces (FSDP reduce-scatters) gradients on the last micro-batch only
            skip_sync = ddp is not None and micro < cfg.grad_accum - 1
            if fsdp:
                model.set_requires_gradient_sync(micro == cfg.grad_accum - 1)
            with ddp.no_sync() if skip_sync else nullcontext():
                loss = forward_backward(x, y)
            loss_sum += loss.detach()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        if fsdp:  # a norm over shards (a DTensor), reduced over the ranks here
            grad_norm = grad_norm.full_tensor()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if world > 1:
            dist.all_reduce(loss_sum)
            loss_sum /= world
        loss_value = loss_sum.item()  # waits for the GPU, so the time below is the step's real time
        now = time.perf_counter()
        rec = {"step": step + 1, "loss": loss_value, "lr": lr, "grad_norm": float(grad_norm),
               "tokens_per_s": tokens_per_step / (now - t_last)}
        t_last = now
        log(rec)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{rec['loss']:.3f}", lr=f"{lr:.1e}", refresh=False)  # drawn at tqdm's interval
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
    if cfg.compile and out_dir is not None and rank == 0:  # what torch.compile did, beside the run's metrics
        (out_dir / "compile.json").write_text(json.dumps({"backend": str(compile_backend(cfg)),
                                                          "compiled": compile_error is None,
                                                          "error": compile_error}) + "\n")
    if fsdp:
        full = Transformer(model_cfg)
        full.load_state_dict(gather_full(model.state_dict()))
        model = full
    model.eval()
    return TrainResult(model, history, out_dir, compile_error)


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


