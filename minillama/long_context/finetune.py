"""Long-context fine-tuning (LCFT): continue training at ``factor ×`` the pretraining length.

Code Llama fine-tunes a 4,096-token model on 16,384-token sequences with RoPE's base θ raised
from 10,000 to 1,000,000 (PAPER §2.4). Every method's fine-tuning sees the same batches (same
seed) and uses the course's one schedule and optimizer (:mod:`minillama.training.schedule`),
so methods differ only in their RoPE rule. Fine-tuned models are cached on disk by a hash of
the base weights and the settings.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from minillama.long_context.methods import METHODS, method_model, method_scaling, with_rope
from minillama.model import Transformer
from minillama.paths import code_fingerprint
from minillama.profiles import LongContextSizes
from minillama.progress import progress
from minillama.training.schedule import lr_at, make_optimizer, set_lr


LONG_CONTEXT_VERSION = 1


def random_windows(stream: torch.Tensor, seq_len: int, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """``[batch, seq_len + 1]`` windows at random offsets of a 1-D token stream."""
    if len(stream) < seq_len + 1:
        raise ValueError(f"token stream has {len(stream)} tokens, a window needs {seq_len + 1}")
    starts = torch.randint(0, len(stream) - seq_len, (batch_size,), generator=generator)
    return torch.stack([stream[s: s + seq_len + 1] for s in starts.tolist()])


def finetune(model: Transformer, stream: torch.Tensor, seq_len: int, steps: int, batch_size: int = 2,
             lr: float = 1e-4, warmup: int = 4, weight_decay: float = 0.1, grad_clip: float = 1.0,
             seed: int = 0, desc: str = "LCFT", show_progress: bool = True) -> list[float]:
    """Continue training ``model`` in place on random ``seq_len`` windows of ``stream``.

    AdamW (β 0.9/0.95, Llama 2's weight decay and clipping), warm-up + cosine. The same seed
    gives every method the same batches, so they differ only in RoPE. Returns the losses.
    """
    gen = torch.Generator().manual_seed(seed)
    opt = make_optimizer(model, lr, weight_decay)
    device = next(model.parameters()).device
    model.train()
    losses = []
    bar = progress(total=steps, desc=desc, enabled=show_progress, unit="step")
    for step in range(steps):
        set_lr(opt, lr_at(step, steps, lr, warmup))
        batch = random_windows(stream, seq_len, batch_size, gen).to(device)
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1).float(), batch[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        losses.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    bar.close()
    model.eval()
    return losses


def artifacts_dir(profile_name: str) -> Path:
    from minillama.paths import artifacts_dir

    return artifacts_dir(profile_name) / "long_context"


def state_fingerprint(model: Transformer) -> str:
    h = hashlib.sha256(model.cfg.to_json().encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def train_stream(corpus, tokenizer, max_tokens: int = 2_000_000) -> torch.Tensor:
    """Train-split files, whole and BOS-separated, as one stream: long-range structure stays
    intact inside each file (the pretraining pipeline cuts files into context-sized pieces)."""
    ids = tokenizer.encode_batch(corpus.texts("train"), bos=True)
    flat = [t for doc in ids for t in doc][:max_tokens]
    return torch.tensor(flat, dtype=torch.long)


def get_finetuned(base: Transformer, key: str, stream_fn: Callable[[], torch.Tensor], pretrain_len: int,
                  settings: LongContextSizes, profile_name: str, seed: int = 0,
                  show_progress: bool = True, data: str = "") -> tuple[Transformer, dict]:
    """Fine-tune the base at ``factor × pretrain_len`` under method ``key``; cached on disk.
    ``data`` names what the stream holds (e.g. the corpus's ``source``): another corpus is another run."""
    method = METHODS[key]
    ft_len = settings.factor * pretrain_len
    meta = {"version": LONG_CONTEXT_VERSION, "code": code_fingerprint(finetune, random_windows),
            "method": {k: v for k, v in asdict(method).items() if k != "weights_of"},  # the key of older caches
            "base": state_fingerprint(base),
            "seq_len": ft_len, "steps": settings.ft_steps, "batch": settings.ft_batch_size,
            "lr": settings.ft_lr, "warmup": settings.ft_warmup, "seed": seed, "data": data}
    path = artifacts_dir(profile_name) / f"{key}-{cache_tag(meta)}.pt"
    model = method_model(base, method, pretrain_len, settings.factor)
    model.cfg = replace(model.cfg, max_seq_len=max(model.cfg.max_seq_len, ft_len))
    if (cached := load_cached(path, model)) is not None:
        return model, cached
    t0 = time.perf_counter()
    losses = finetune(model, stream_fn(), ft_len, settings.ft_steps, settings.ft_batch_size, settings.ft_lr,
                      settings.ft_warmup, seed=seed, desc=f"LCFT {key}", show_progress=show_progress)
    meta.update(losses=losses, seconds=time.perf_counter() - t0)
    return model, save_cached(path, model, meta)


def cache_tag(meta: dict) -> str:
    """The file tag of a continued-training run: a hash of its settings (base weights, code, sizes)."""
    return hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:12]


def load_cached(path: Path, model: Transformer) -> dict | None:
    """Load the state cached at ``path`` into ``model`` (eval mode) and return its meta, or None
    when nothing is cached there."""
    if not path.is_file():
        return None
    saved = torch.load(path, map_location=next(model.parameters()).device, weights_only=True)
    model.load_state_dict(saved["state_dict"])
    model.eval()
    return {**json.loads(saved["meta"]), "cached": True}


def save_cached(path: Path, model: Transformer, meta: dict) -> dict:
    """Write ``model``'s state and ``meta`` to ``path`` atomically; returns the meta as reported."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"state_dict": model.state_dict(), "meta": json.dumps(meta)}, tmp)
    tmp.replace(path)
    model.eval()
    return {**meta, "cached": False}


def all_models(base: Transformer, stream_fn: Callable[[], torch.Tensor], pretrain_len: int,
               settings: LongContextSizes, profile_name: str,
               log: Callable[[str], None] | None = print,
               data: str = "") -> tuple[dict[str, Transformer], dict[str, dict]]:
    """Every method's model: the no-fine-tuning variants are the base under a new RoPE rule.
    ``data``: what ``stream_fn`` reads (the corpus's ``source``), part of the fine-tuning cache key."""
    models, info = {}, {}
    stream = None

    def cached_stream():
        nonlocal stream
        if stream is None:
            stream = stream_fn()
        return stream

    for key, method in METHODS.items():
        if method.weights_of is not None:  # another method's fine-tuned weights, scaled to the longest length
            scaling = method_scaling(method, pretrain_len, settings.max_multiple)
            models[key] = with_rope(models[method.weights_of], method.theta, scaling,
                                    max_seq_len=max(models[method.weights_of].cfg.max_seq_len,
                                                    settings.max_multiple * pretrain_len))
            info[key] = {**info[method.weights_of], "rescaled_to": settings.max_multiple}
        elif method.finetune:
            models[key], info[key] = get_finetuned(base, key, cached_stream, pretrain_len, settings, profile_name,
                                                   data=data)
            if log:
                how = "cached" if info[key]["cached"] else f"{info[key]['seconds']:.0f}s"
                losses = info[key]["losses"]
                k = max(1, len(losses) // 4)  # single batches are noisy: report quarter means
                log(f"{key:<16} fine-tuned ({how}): {len(losses)} steps, mean batch loss "
                    f"{sum(losses[:k]) / k:.3f} (first {k}) -> {sum(losses[-k:]) / k:.3f} (last {k})")
        else:
            models[key] = method_model(base, method, pretrain_len, settings.factor)
    return models, info
