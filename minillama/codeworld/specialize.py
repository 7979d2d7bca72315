"""Specialization (PAPER §2.2): continue a pretrained base on a narrower, domain-heavy mix.

Code Llama - Python is Code Llama trained on 100 B more tokens of Python-heavy data. The course does
the same at its scale: notebook 03's FIM base (standard library) continues on a mix that is mostly
code-world modules, and notebook 03 measures what it gains (MiniEval, the world's validation loss) and
what it forgets (the stdlib validation loss). The continued training is the one loop the course has
for it (:func:`minillama.long_context.finetune.finetune`: AdamW, warm-up and cosine, random windows of
a token stream), at the pretraining length and a third of its peak learning rate; the result is cached by a hash of
the base's weights and the settings.
"""

from __future__ import annotations

import copy
import random
import time

import numpy as np
import torch

from minillama.paths import artifacts_dir, code_fingerprint

WORLD_SHARE = 0.8  # of the tokens: code-world modules; the rest stdlib training files (the base's data)
TRAIN_SEED, VAL_SEED = 0, 777  # code-world streams: training modules, validation modules


def mixed_stream(tok, world_texts: list[str], stdlib_texts: list[str], n_tokens: int, world_share: float,
                 seed: int = 0) -> torch.Tensor:
    """About ``n_tokens`` tokens: whole documents (``BOS … EOS``), ``world_share`` of the tokens from
    ``world_texts`` and the rest from ``stdlib_texts``, in a shuffled document order."""
    if not 0.0 <= world_share <= 1.0:
        raise ValueError(f"world_share={world_share} must lie in [0, 1]")
    docs = []
    for texts, share in ((world_texts, world_share), (stdlib_texts, 1.0 - world_share)):
        budget, ids = share * n_tokens, tok.encode_batch(list(texts), bos=True, eos=True)
        order = random.Random(seed).sample(range(len(ids)), len(ids))
        have = 0
        for i in order * (1 + int(budget // max(1, sum(map(len, ids))))):  # repeat when short
            if have >= budget:
                break
            docs.append(ids[i])
            have += len(ids[i])
    random.Random(seed + 1).shuffle(docs)
    return torch.tensor([t for d in docs for t in d], dtype=torch.long)


def world_validation(tok, seq_len: int, n_rows: int):
    """``n_rows`` packed left-to-right rows of held-out world modules (stream :data:`VAL_SEED`)."""
    from minillama.data.pipeline import PackedData, pack

    from .documents import documents
    texts = documents(max(16, n_rows * seq_len // 400), seed=VAL_SEED)
    ids = tok.encode_batch(texts, bos=True, eos=True)
    rows, _ = pack(ids, [False] * len(ids), None, seq_len + 1)
    return PackedData(rows[:n_rows].astype(np.int64))


def get_specialized(base, tok, stdlib_texts: list[str], profile, steps: int | None = None,
                    world_share: float = WORLD_SHARE, show_progress: bool = True):
    """``(model, info)``: a copy of ``base`` continued for ``steps`` (default
    ``profile.notebook.specialize_steps``) × ``profile.batch_size`` windows of ``profile.seq_len``
    tokens of :func:`mixed_stream`, at a third of the pretraining peak learning rate (the paper's Python
    stage: 1e-4 after a 3e-4 peak at 7B). Cached on disk."""
    from minillama.long_context.finetune import (cache_tag, finetune, load_cached, random_windows, save_cached,
                                                 state_fingerprint)

    from .documents import documents
    steps = steps or profile.notebook.specialize_steps
    n_tokens = 2 * steps * profile.batch_size * (profile.seq_len + 1)  # windows are drawn at random: 2x cover
    meta = {"base": state_fingerprint(base), "steps": steps, "batch": profile.batch_size, "seq_len": profile.seq_len,
            "lr": profile.lr / 3, "warmup": max(1, steps // 10), "world_share": world_share, "n_tokens": n_tokens,
            "code": code_fingerprint(finetune, random_windows, mixed_stream, documents)}
    path = artifacts_dir(profile.name) / "specialize" / f"world-{cache_tag(meta)}.pt"
    model = copy.deepcopy(base)
    if (cached := load_cached(path, model)) is not None:
        return model, cached
    world = documents(max(64, int(world_share * n_tokens / 450)), seed=TRAIN_SEED)
    stream = mixed_stream(tok, world, stdlib_texts, n_tokens, world_share)
    t0 = time.perf_counter()
    losses = finetune(model, stream, profile.seq_len, steps, profile.batch_size, meta["lr"], meta["warmup"],
                      desc="specialize", show_progress=show_progress)
    meta.update(losses=losses, seconds=time.perf_counter() - t0, stream_tokens=len(stream))
    return model, save_cached(path, model, meta)
