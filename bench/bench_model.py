"""minillama against transformers' LlamaForCausalLM: training and decoding speed, same
weights, same process, float32.

    python bench/bench_model.py [--batch-size 16] [--steps 8] [--new-tokens 256]
    python bench/bench_model.py --threads 1 --clock cpu   # on a machine busy with other jobs
    python bench/bench_model.py --smoke                   # seconds: checks that it runs

(a) training tokens/s: forward + backward + AdamW step at the ``tiny`` preset (vocab 4096,
    seq 256), as a ratio, and the MFU of each against a float32 matmul peak measured here.
(b) decoding tokens/s: ``minillama.generate.generate`` (KV cache) against
    ``transformers``' ``generate`` (greedy, batch 1, ~32-token prompt), with a check that
    both produce the same tokens.

The two models alternate step by step, so a neighbour that steals a core slows both, and
each reports its best step / best run.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time

import torch
import torch.nn.functional as F

from minillama import hf
from minillama.generate import generate
from minillama.model import ModelConfig, Transformer, flops_per_token


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import transformers
    import os
    load = ", load average %.1f (other processes share these cores: compare ratios, not absolutes)" % os.getloadavg()[0]
    return (f"machine: {cpu}, {torch.get_num_threads()} torch threads / {torch.multiprocessing.cpu_count()} cores, "
            f"torch {torch.__version__}, transformers {transformers.__version__}, python {platform.python_version()}"
            f"{load}")


CLOCK = time.perf_counter  # --clock cpu: time.process_time, blind to time spent waiting for a core


def matmul_peak(n: int = 2048, reps: int = 5) -> float:
    """Best-of float32 matmul FLOP/s: the 'peak' MFU is measured against."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up: thread pool, allocator
    best = float("inf")
    for _ in range(reps):
        t = CLOCK()
        a @ b
        best = min(best, CLOCK() - t)
    return 2 * n ** 3 / best


def build(cfg: ModelConfig, std: float, seed: int = 0):
    """minillama model and a transformers copy with identical weights."""
    torch.manual_seed(seed)
    ours = Transformer(cfg)
    ours.reset_parameters(std=std)
    from transformers import LlamaForCausalLM
    with tempfile.TemporaryDirectory() as d:
        theirs = LlamaForCausalLM.from_pretrained(hf.save_pretrained(ours, d), dtype=torch.float32)
    return ours, theirs


def train_step(model, opt, x, y, is_hf: bool) -> float:
    logits = model(x).logits if is_hf else model(x)
    loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())  # same loss code for both
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def bench_train(args, peak: float) -> None:
    cfg = ModelConfig.from_name(args.train_preset, vocab_size=4096)
    ours, theirs = build(cfg, std=0.02)
    ours.train(), theirs.train()
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, cfg.vocab_size, (args.batch_size, args.seq_len + 1), generator=g)
    x, y = data[:, :-1], data[:, 1:]
    opts = {name: torch.optim.AdamW(m.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
            for name, m in (("ours", ours), ("hf", theirs))}
    models = {"ours": ours, "hf": theirs}
    first = {name: train_step(models[name], opts[name], x, y, name == "hf") for name in models}
    print(f"train: step-0 loss minillama {first['ours']:.6f}  transformers {first['hf']:.6f} (same weights)")
    for _ in range(args.warmup - 1):
        for name in models:
            train_step(models[name], opts[name], x, y, name == "hf")
    times = {name: [] for name in models}
    for _ in range(args.steps):
        for name in models:  # alternate, so drifting machine load hits both alike
            t = CLOCK()
            train_step(models[name], opts[name], x, y, name == "hf")
            times[name].append(CLOCK() - t)
    tokens = args.batch_size * args.seq_len
    fpt = flops_per_token(cfg, args.seq_len)
    # best step of each: on a shared machine the minimum is the least disturbed measurement
    tps = {name: tokens / min(ts) for name, ts in times.items()}
    print(f"train: {args.train_preset} preset ({ours.num_parameters():,} params), "
          f"batch {args.batch_size} x seq {args.seq_len}, fp32, fwd+bwd+AdamW, "
          f"{args.warmup} warm-up + {args.steps} timed steps (best)")
    for name, label in (("ours", "minillama   "), ("hf", "transformers")):
        mfu = tps[name] * fpt / peak
        print(f"train: {label} {tps[name]:8.0f} tok/s  {min(times[name]) * 1e3:7.1f} ms/step  "
              f"MFU {100 * mfu:5.1f}%")
    ratio = tps["ours"] / tps["hf"]
    print(f"train: speed ratio minillama / transformers = {ratio:.2f}x (target >= 1.2x)")


def bench_decode(args, preset: str) -> None:
    cfg = ModelConfig.from_name(preset)
    # wider init than training's 0.02 so the logits are far from ties: greedy decoding of two
    # implementations that differ by float rounding then picks the same tokens
    ours, theirs = build(cfg, std=0.1, seed=1)
    ours.eval(), theirs.eval()
    theirs.generation_config.eos_token_id = None  # decode all the new tokens, as ours does without stop_ids
    theirs.generation_config.pad_token_id = 0
    g = torch.Generator().manual_seed(1)
    prompt = torch.randint(3, cfg.vocab_size, (args.prompt_len,), generator=g).tolist()
    n = args.new_tokens

    def run_ours(k):
        return generate(ours, [prompt], max_new_tokens=k)[0]

    def run_hf(k):
        with torch.no_grad():
            out = theirs.generate(torch.tensor([prompt]), max_new_tokens=k, min_new_tokens=k, do_sample=False)
        return out[0, len(prompt):].tolist()

    run_ours(8), run_hf(8)  # warm-up
    times = {"ours": [], "hf": []}
    outs = {}
    for _ in range(args.decode_reps):
        for name, fn in (("ours", run_ours), ("hf", run_hf)):
            t = CLOCK()
            outs[name] = fn(n)
            times[name].append(CLOCK() - t)
    tps = {name: n / min(ts) for name, ts in times.items()}
    weights_mb = ours.num_parameters() * 4 / 1e6
    print(f"decode: {preset} preset ({ours.num_parameters():,} params = {weights_mb:.1f} MB fp32 read per token), "
          f"batch 1, prompt {len(prompt)} tokens, {n} new tokens, greedy, best of {args.decode_reps}")
    print(f"decode: minillama    {tps['ours']:8.1f} tok/s (KV cache, minillama.generate)")
    print(f"decode: transformers {tps['hf']:8.1f} tok/s (LlamaForCausalLM.generate, DynamicCache)")
    same = outs["ours"] == outs["hf"]
    agree = next((i for i, (a, b) in enumerate(zip(outs["ours"], outs["hf"])) if a != b), min(len(outs["ours"]),
                                                                                                len(outs["hf"])))
    print(f"decode: greedy outputs identical: {same} ({agree}/{n} tokens agree before the first difference)")
    print(f"decode: speed ratio minillama / transformers = {tps['ours'] / tps['hf']:.2f}x (target >= 3x)")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--prompt-len", type=int, default=32)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--decode-reps", type=int, default=3)
    p.add_argument("--decode-presets", default="tiny,debug",
                   help="tiny reads 29 MB of weights per token (memory-bound on a laptop); debug fits in cache, "
                        "so it measures per-token overhead")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="cpu: process CPU time (use with --threads 1) for a machine shared with other jobs")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-decode", action="store_true")
    p.add_argument("--train-preset", default="tiny")
    p.add_argument("--peak-size", type=int, default=2048, help="n of the n x n matmul that measures the peak")
    p.add_argument("--smoke", action="store_true",
                   help="a few seconds: debug preset, 1 step, 8 tokens (checks the benchmark runs)")
    args = p.parse_args(argv)
    if args.smoke:
        args.__dict__.update(train_preset="debug", batch_size=2, seq_len=32, warmup=1, steps=1, prompt_len=8,
                             new_tokens=8, decode_reps=1, decode_presets="debug", peak_size=256)
    if args.threads:
        torch.set_num_threads(args.threads)
    global CLOCK
    if args.clock == "cpu":
        CLOCK = time.process_time
    print(machine() + f", clock: {args.clock}")
    peak = matmul_peak(args.peak_size)
    print(f"peak: fp32 matmul {args.peak_size}^3 = {peak / 1e9:.1f} GFLOP/s (best of 5)")
    if not args.skip_train:
        bench_train(args, peak)
    if not args.skip_decode:
        for preset in args.decode_presets.split(","):
            bench_decode(args, preset)


if __name__ == "__main__":
    main()
