"""Run profiles: one switch, ``MINILLAMA_PROFILE=quick|cpu|gpu``.

``quick`` is for tests and CI (seconds per notebook), ``cpu`` is the default for a 2-core
laptop, ``gpu`` for one GPU. Every notebook and CLI command reads its sizes from here, so a
profile is the single place where "how big" is decided.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import torch

PROFILE_ENV = "MINILLAMA_PROFILE"


@dataclass(frozen=True)
class Profile:
    name: str
    model: str  # ModelConfig preset name
    device: str
    dtype: str  # compute dtype for training ("float32" or "bfloat16" autocast)
    vocab_size: int  # tokenizer vocabulary (including special pieces)
    max_corpus_files: int | None  # None: every stdlib file
    seq_len: int  # pretraining context
    batch_size: int
    train_steps: int
    compile: bool = False
    # pretraining (minillama.trainer.TrainConfig); sized from measurements, see notebook 03
    lr: float = 1e-3  # peak learning rate (cosine down to lr/30)
    warmup: int = 100
    grad_accum: int = 1
    eval_interval: int = 100
    eval_batches: int = 4
    checkpoint_interval: int = 100

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)


PROFILES = {
    "quick": Profile("quick", model="debug", device="cpu", dtype="float32", vocab_size=512,
                     max_corpus_files=60, seq_len=128, batch_size=8, train_steps=30,
                     lr=3e-3, warmup=5, eval_interval=15, eval_batches=2, checkpoint_interval=0),
    "cpu": Profile("cpu", model="tiny", device="cpu", dtype="float32", vocab_size=4096,
                   max_corpus_files=None, seq_len=256, batch_size=16, train_steps=600,
                   # ~3,700 tokens/s measured on an idle 2-core machine: 600 × 16 × 256 = 2.5M tokens
                   # ≈ 11 min per model (250 steps left the model unable to end an infill with EOT)
                   lr=2e-3, warmup=50, eval_interval=100, eval_batches=4, checkpoint_interval=100),
    "gpu": Profile("gpu", model="small", device="cuda", dtype="bfloat16", vocab_size=8192,
                   max_corpus_files=None, seq_len=1024, batch_size=32, train_steps=500, compile=True,
                   # 500 × 32 × 1024 = 16M tokens ≈ 4-5 epochs of the stdlib: more repeats overfit
                   lr=1e-3, warmup=50, eval_interval=50, eval_batches=8, checkpoint_interval=100),
}


def get_profile(name: str | None = None, **overrides) -> Profile:
    """The profile named by ``name`` or by ``$MINILLAMA_PROFILE`` (default ``cpu``)."""
    name = name or os.environ.get(PROFILE_ENV, "cpu")
    if name not in PROFILES:
        raise ValueError(f"{PROFILE_ENV}={name!r} is not a profile; choose one of {sorted(PROFILES)}")
    profile = PROFILES[name]
    if profile.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"profile {name!r} needs a CUDA GPU but torch sees none; "
                           f"use {PROFILE_ENV}=cpu (or quick) on this machine")
    return replace(profile, **overrides) if overrides else profile
