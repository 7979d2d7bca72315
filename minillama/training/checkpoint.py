"""Training checkpoints: safe to read, atomic to write, checked for damage.

A checkpoint is a plain ``torch.save`` file (``ckpt.pt``) of tensors and plain data only, so
``torch.load(path, weights_only=True)`` reads it and reading it can never run code: a file
that holds anything else (a crafted pickle) is refused with :class:`CheckpointError`.
The state carries a sha256 over all its contents (``"sha256"``), which turns silent
corruption into a clear error; a truncated file fails to open at all.

Writes are atomic: the new file is written to a temporary name and fsync'ed, the former
``ckpt.pt`` becomes ``ckpt.prev.pt``, then the new one takes its name, so a crash at any
moment leaves a complete checkpoint behind.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import struct
import warnings
from pathlib import Path

import torch

LATEST, PREVIOUS, BAD = "ckpt.pt", "ckpt.prev.pt", "ckpt.bad.pt"
FORMAT = "minillama-checkpoint 2"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: unsafe, truncated, corrupted, or from another run."""


def _digest(obj, h) -> None:
    """Feed a canonical serialization of ``obj`` (dicts in key order) into the hash ``h``."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, dict):
        h.update(b"D%d" % len(obj))
        for k in sorted(obj, key=lambda k: (type(k).__name__, str(k))):
            _digest(k, h)
            _digest(obj[k], h)
    elif isinstance(obj, (list, tuple)):
        h.update(b"L%d" % len(obj) if isinstance(obj, list) else b"U%d" % len(obj))
        for v in obj:
            _digest(v, h)
    elif isinstance(obj, float):
        h.update(b"F" + struct.pack("<d", obj))
    elif obj is None or isinstance(obj, (bool, int, str, bytes)):
        h.update(f"{type(obj).__name__}:{obj!r}".encode())
    else:
        raise CheckpointError(f"a checkpoint may hold tensors and plain data only, not {type(obj).__name__}")


def state_digest(state: dict) -> str:
    h = hashlib.sha256()
    _digest({k: v for k, v in state.items() if k != "sha256"}, h)
    return h.hexdigest()


def save_checkpoint(out_dir: str | Path, state: dict) -> Path:
    """Write ``state`` atomically as ``ckpt.pt``; the former ``ckpt.pt`` becomes ``ckpt.prev.pt``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {**state, "format": FORMAT}
    state["sha256"] = state_digest(state)
    tmp = out_dir / f"{LATEST}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(state, f)
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
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file {path}")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":  # torch.save writes a zip archive
            raise CheckpointError(f"{path} cannot be read: it is not a torch.save file (damaged, or written "
                                  f"by another program)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{path} holds objects other than tensors and plain data; minillama refuses to "
                              f"load it, since loading it could run code. Only load checkpoints you trust, "
                              f"and then with your own torch.load. ({str(e).splitlines()[0][:200]})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} cannot be read: it is truncated or damaged (a crash or a full disk during "
                              f"the write?): {str(e).splitlines()[0][:200]}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a minillama checkpoint ({FORMAT}); it may be from another program "
                              f"or an older minillama")
    if state.get("sha256") != state_digest(state):
        raise CheckpointError(f"{path} is corrupted: its contents do not match the sha256 written with them")
    return state


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
            os.replace(latest, out_dir / BAD)
            then = f"using the previous checkpoint {prev.name}" if prev.exists() else "no previous checkpoint"
            warnings.warn(f"{e}; moved it to {BAD}; {then}", stacklevel=2)
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
    # RNG states are CPU byte tensors whatever the device (torch.set_rng_state refuses a CUDA one);
    # map_location moved them to the device with the weights
    rng = state.get("rng") or {}
    if rng.get("torch") is not None:
        rng["torch"] = rng["torch"].cpu()
    if rng.get("cuda") is not None:
        rng["cuda"] = [s.cpu() for s in rng["cuda"]]
    return state
