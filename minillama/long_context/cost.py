"""What attention costs: forward time and peak memory against context length."""

from __future__ import annotations

import contextlib
import ctypes
import math
import time
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

from minillama.model import Transformer


def _proc_status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) * 1024
    return out


@contextlib.contextmanager
def _small_mmap_threshold(nbytes: int = 64 * 1024) -> Iterator[None]:
    """glibc serves allocations below its mmap threshold from the heap, and raises that threshold
    (up to 32 MiB) each time a large block is freed: memory reused from the heap never shows in
    the resident high-water mark, so a measured peak can read 0. A fixed, small threshold makes
    every tensor above ``nbytes`` its own mapping, returned on free. Restored to glibc's upper
    value afterwards. No-op where glibc is not the allocator."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        yield
        return
    M_MMAP_THRESHOLD = -3
    mallopt(M_MMAP_THRESHOLD, nbytes)
    try:
        yield
    finally:
        mallopt(M_MMAP_THRESHOLD, 32 * 2**20)


def peak_cpu_memory(fn: Callable[[], object]) -> int | None:
    """Extra peak resident memory (bytes) while ``fn`` runs; None where it cannot be measured.

    Linux lets a process reset its high-water mark (write 5 to /proc/self/clear_refs); with a
    small fixed mmap threshold every tensor is mapped and returned on free, so the peak follows
    what torch really holds (to within 64 KiB per tensor).
    """
    try:
        with _small_mmap_threshold():
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            before = _proc_status()["VmRSS"]
            fn()
            return max(_proc_status()["VmHWM"] - before, 0)
    except (OSError, KeyError):
        return None


def attention_memory(lengths: Sequence[int], n_heads: int = 8, head_dim: int = 32,
                     naive_max: int = 4096) -> list[dict]:
    """Peak extra memory of one causal attention call: SDPA with ``is_causal`` against the
    textbook ``softmax(q kᵀ) v``, which builds the heads × T × T score matrix."""
    rows = []
    for T in lengths:
        q = torch.randn(1, n_heads, T, head_dim)
        row = {"seq_len": T, "sdpa_mib": None, "naive_mib": None,
               "scores_mib": n_heads * T * T * 4 / 2**20}
        F.scaled_dot_product_attention(q, q, q, is_causal=True)  # warm-up: lazy kernel set-up is not the cost
        sdpa = peak_cpu_memory(lambda: F.scaled_dot_product_attention(q, q, q, is_causal=True))
        row["sdpa_mib"] = None if sdpa is None else sdpa / 2**20
        if T <= naive_max:  # beyond this the naive version needs gigabytes

            def naive():
                mask = torch.ones(T, T, dtype=torch.bool).triu(1)
                scores = (q @ q.transpose(-1, -2) / math.sqrt(head_dim)).masked_fill(mask, float("-inf"))
                return scores.softmax(-1) @ q

            mem = peak_cpu_memory(naive)
            row["naive_mib"] = None if mem is None else mem / 2**20
        rows.append(row)
    return rows


def peak_cuda_memory(fn: Callable[[], object], device: torch.device) -> int:
    """Extra peak bytes torch allocates on a CUDA device while ``fn`` runs."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    fn()
    return torch.cuda.max_memory_allocated(device) - before


@torch.no_grad()
def forward_cost(model: Transformer, lengths: Sequence[int], with_memory: bool = True) -> list[dict]:
    """Batch-1 forward time and extra peak memory per context length (one timed call, the
    memory of the logits, T × vocab floats, included). On a GPU the memory is what torch
    allocates there, and the time waits for the GPU to finish."""
    model.eval()
    device = model.tok_embeddings.weight.device
    cuda = device.type == "cuda"
    rows = []
    for T in lengths:
        x = torch.randint(0, model.cfg.vocab_size, (1, T)).to(device)
        model(x[:, :8])  # warm-up (kernels); the rope tables grow to T on the measured call
        timed = {}

        def run():
            if cuda:  # kernels run asynchronously: time from an idle GPU to a finished forward
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            model(x)
            if cuda:
                torch.cuda.synchronize(device)
            timed["s"] = time.perf_counter() - t0

        if not with_memory:
            mem = None
        else:
            mem = peak_cuda_memory(run, device) if cuda else peak_cpu_memory(run)
        if "s" not in timed:  # no memory measurement on this platform: just time it
            run()
        row = {"seq_len": T, "seconds": timed["s"], "tokens_per_s": T / timed["s"],
               "peak_mib": None if mem is None else mem / 2**20}
        rows.append(row)
    return rows


def naive_attention_scores_mib(cfg, T: int, dtype_bytes: int = 4) -> float:
    """Memory of one layer's explicit score matrix (heads × T × T), what SDPA never builds."""
    return cfg.n_heads * T * T * dtype_bytes / 2**20


def fresh_process_cost(cfg, lengths: Sequence[int], naive_max: int = 4096,
                       threads: int | None = None) -> tuple[list[dict], list[dict]]:
    """:func:`forward_cost` of a model of shape ``cfg`` (random weights: cost does not depend on
    them) and :func:`attention_memory`, measured in a new Python process on the CPU.

    A process that has already done heavy work serves new tensors from memory it freed earlier,
    so its resident high-water mark does not move and a measured peak reads 0; a fresh process
    shows what one forward really adds. Returns ``(forward rows, attention rows)``."""
    import dataclasses
    import json
    import subprocess
    import sys

    job = {"cfg": dataclasses.asdict(cfg), "lengths": list(lengths), "naive_max": naive_max,
           "threads": threads or torch.get_num_threads()}
    out = subprocess.run([sys.executable, "-m", "minillama.long_context.cost"], input=json.dumps(job),
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the cost measurement process failed:\n{out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["forward"], result["attention"]


def _main() -> None:
    import json
    import sys

    from minillama.model import ModelConfig

    job = json.loads(sys.stdin.read())
    torch.set_num_threads(job["threads"])
    cfg = ModelConfig(**{k: v for k, v in job["cfg"].items() if k != "rope_scaling"},
                      rope_scaling=job["cfg"].get("rope_scaling"))
    model = Transformer(cfg)
    forward = forward_cost(model, job["lengths"])
    attention = attention_memory(job["lengths"], cfg.n_heads, cfg.head_dim,
                                 naive_max=min(job["naive_max"], max(job["lengths"])))
    print(json.dumps({"forward": forward, "attention": attention}))


if __name__ == "__main__":
    _main()
