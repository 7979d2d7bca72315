"""Sampling for pass@k: minillama.sampling against transformers' generate, and batch-1 decoding
against the machine's memory bandwidth, in one run.

    python bench/bench_sampling.py                           # ~1.5 min of CPU time
    python bench/bench_sampling.py --threads 1 --clock cpu   # on a machine busy with other jobs
    python bench/bench_sampling.py --hf-cache both           # also transformers with a StaticCache (+1 min)

(2.5 min wall with ``--threads 1 --clock cpu`` on a 2-core machine at load 5-6.)

(a) The pass@k workload: the first ``--prompts`` HumanEval prompts x ``--n`` samples, T 0.8,
    top-p 0.95, up to ``--new-tokens`` new tokens, HumanEval's stop strings and EOS, ``tiny``
    preset; ``--per-batch`` prompts per call for both (so both hold the same rows at once).
    transformers: ``generate(num_return_sequences=n, do_sample=True, top_k=0)`` on the
    left-padded batch, with a StoppingCriteria that applies the same stop-string checker to
    each row. Both are credited with the same useful tokens: per returned sequence, the tokens
    up to the one that completes a stop string (EOS and padding excluded).
(b) Batch-1 greedy decoding of 256 tokens against the memory-bandwidth bound: the bytes of
    weights one token reads (every matrix but the embedding table, of which one row is read)
    over the bandwidth of a 256 MB tensor copy measured here (read + write bytes / time).

The model: ``--model auto`` takes the cpu profile's pretrained model when it is cached
(``python -m minillama train``, ~11 min), else the shipped reference model (``models/codeworld``);
both are trained, so their samples end at stop strings after varied lengths, as a real pass@k
run's do. ``--model random`` is the ``--preset`` (``tiny``) with random weights, whose samples
almost never meet a stop and all run to ``--new-tokens`` (no work for dropping finished rows:
the ratio then comes from the shared prefill and the cheaper step alone).

    python bench/bench_sampling.py --smoke   # seconds: checks the benchmark runs (tests/test_bench_smoke.py)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_model import machine  # noqa: E402

from minillama import hf  # noqa: E402
from minillama.evaluation.benchmarks import HUMANEVAL_STOP, load_humaneval  # noqa: E402
from minillama.fast_decode import FastDecoder  # noqa: E402
from minillama.generate import generate  # noqa: E402
from minillama.model import ModelConfig, Transformer  # noqa: E402
from minillama.sampling import StopStrings, sample  # noqa: E402

CLOCK = time.perf_counter  # --clock cpu: time.process_time, blind to time spent waiting for a core


def load_model(which: str, preset: str = "tiny"):
    """(model, tokenizer, description)."""
    from minillama.codeworld.reference import reference_dir
    from minillama.hf import from_pretrained, load_tokenizer
    from minillama.training.checkpoint import CheckpointError

    if which not in ("auto", "pretrained", "shipped", "random"):  # a run directory, at whatever step it reached
        from minillama.training.checkpoint import load_checkpoint
        state = load_checkpoint(which)
        model = Transformer(ModelConfig.from_dict(state["identity"]["model"]))
        model.load_state_dict(state["model"])
        return model.eval(), load_tokenizer(which), f"checkpoint {which} at step {state['step']}"
    if which in ("auto", "pretrained"):
        from minillama.training.pretrain import get_pretrained, run_dir
        try:
            model = get_pretrained("cpu", train_if_missing=False, verbose=False)
            return model.eval(), load_tokenizer(run_dir("cpu")), \
                f"cpu profile's pretrained model ({run_dir('cpu')})"
        except (FileNotFoundError, CheckpointError):
            if which == "pretrained":
                raise
    if which in ("auto", "shipped"):  # fp16 on disk, run in fp32 as the other models are
        return (from_pretrained(reference_dir()).eval(), load_tokenizer(reference_dir()),
                f"the shipped reference model ({reference_dir()}, trained: samples stop at varied lengths)")
    tok = load_tokenizer(reference_dir())  # the shipped model's tokenizer: nothing to train
    torch.manual_seed(0)
    model = Transformer(ModelConfig.from_name(preset, vocab_size=tok.vocab_size)).eval()
    return model, tok, f"{preset} with random weights (samples rarely stop early)"


def hf_copy(model):
    from transformers import LlamaForCausalLM
    with tempfile.TemporaryDirectory() as d:
        theirs = LlamaForCausalLM.from_pretrained(hf.save_pretrained(model, d), dtype=torch.float32)
    return theirs.eval()


def useful(tokens, tok, eos: int) -> int:
    """Tokens up to and including the one that completes a stop string; EOS (and what follows) excluded."""
    check = StopStrings(tok, HUMANEVAL_STOP)
    for i, t in enumerate(tokens):
        if t == eos:
            return i
        if check(0, tokens[:i + 1]):
            return i + 1
    return len(tokens)


def run_ours(model, tok, prompts, args, seed):
    check = StopStrings(tok, HUMANEVAL_STOP)
    return sample(model, prompts, args.n, args.new_tokens, 0.8, 0.95, stop_ids=[tok.eos_id], should_stop=check,
                  seed=seed, max_rows=len(prompts) * args.n)


def run_hf(theirs, tok, prompts, args, seed, cache="dynamic"):
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Stops(StoppingCriteria):
        """The same checker, fed one token per row per step (O(1) per row, as ours)."""

        def __init__(self, rows):
            self.check, self.new, self.done = StopStrings(tok, HUMANEVAL_STOP), [[] for _ in range(rows)], set()

        def __call__(self, input_ids, scores, **kw):
            out = []
            for r, t in enumerate(input_ids[:, -1].tolist()):
                if r not in self.done:
                    self.new[r].append(t)
                    if self.check(r, self.new[r]):
                        self.done.add(r)
                out.append(r in self.done)
            return torch.tensor(out)

    W = max(map(len, prompts))
    ids = torch.full((len(prompts), W), tok.eos_id, dtype=torch.long)
    mask = torch.zeros(len(prompts), W, dtype=torch.long)
    for i, p in enumerate(prompts):  # left padding, as generate wants for a decoder-only model
        ids[i, W - len(p):], mask[i, W - len(p):] = torch.tensor(p), 1
    torch.manual_seed(seed)
    with torch.no_grad():
        out = theirs.generate(ids, attention_mask=mask, do_sample=True, temperature=0.8, top_p=0.95, top_k=0,
                              max_new_tokens=args.new_tokens, num_return_sequences=args.n,
                              cache_implementation=None if cache == "dynamic" else cache,
                              eos_token_id=tok.eos_id, pad_token_id=tok.eos_id,
                              stopping_criteria=StoppingCriteriaList([Stops(len(prompts) * args.n)]))
    return out[:, W:].tolist()


def bench_passk(model, theirs, tok, args) -> None:
    problems = list(load_humaneval().values())[:args.prompts]
    prompts = [[tok.bos_id] + tok.encode(p["prompt"]) for p in problems]
    lens = [len(p) for p in prompts]
    print(f"pass@k: {len(prompts)} HumanEval prompts ({min(lens)}-{max(lens)} tokens, mean {sum(lens) / len(lens):.0f})"
          f" x {args.n} samples, T 0.8, top-p 0.95, <= {args.new_tokens} new tokens, HumanEval stop strings + EOS, "
          f"{args.per_batch} prompts ({args.per_batch * args.n} rows) per call")
    small = argparse.Namespace(**{**vars(args), "n": 2, "new_tokens": 4})
    runs = {"ours": lambda c, seed: run_ours(model, tok, c, args, seed)}
    labels = {"ours": "minillama   ", "hf": "transformers", "hf-static": "transformers, StaticCache"}
    if args.hf_cache in ("dynamic", "both"):  # generate's default: a DynamicCache, grown by torch.cat each step
        runs["hf"] = lambda c, seed: run_hf(theirs, tok, c, args, seed)
    if args.hf_cache in ("static", "both"):  # preallocated, attends over its whole length
        runs["hf-static"] = lambda c, seed: run_hf(theirs, tok, c, args, seed, cache="static")
    run_ours(model, tok, prompts[:1], small, 0)  # warm-up
    run_hf(theirs, tok, prompts[:1], small, 0)
    secs, toks = {k: 0.0 for k in runs}, {k: [] for k in runs}
    for i in range(0, len(prompts), args.per_batch):
        chunk = prompts[i:i + args.per_batch]
        for name, fn in runs.items():  # alternate: drifting load hits all alike
            t = CLOCK()
            outs = fn(chunk, seed=i)
            secs[name] += CLOCK() - t
            counts = [useful(o, tok, tok.eos_id) for o in outs]
            if name == "ours":  # the sampler ends each sample where the stop rule says, not later
                assert counts == [len(o) for o in outs]
            toks[name] += counts
    tps = {k: sum(toks[k]) / secs[k] for k in secs}
    for name in runs:
        t = toks[name]
        full = sum(x >= args.new_tokens for x in t) / len(t)
        print(f"pass@k: {labels[name]} {tps[name]:8.1f} tok/s  {secs[name]:6.1f} s  {sum(t):6d} useful tokens in "
              f"{len(t)} samples (mean {sum(t) / len(t):.1f}, {100 * full:.0f}% ran to the limit)")
    if "hf" in runs:
        print(f"ratio minillama / transformers = {tps['ours'] / tps['hf']:.2f}x (target >= 3x)")
    if "hf-static" in runs:
        print(f"ratio minillama / transformers with StaticCache = {tps['ours'] / tps['hf-static']:.2f}x")


def bandwidths(mb: int = 256, reps: int = 5) -> tuple[float, float]:
    """Best-of bytes/s of a large tensor copy (bytes read + bytes written) and of a read (sum)."""
    a = torch.ones(mb * 2 ** 20 // 4)
    b = torch.empty_like(a)
    copy = read = float("inf")
    for _ in range(reps + 1):  # the first pass warms up (page faults)
        t = CLOCK()
        b.copy_(a)
        copy = min(copy, CLOCK() - t)
        t = CLOCK()
        a.sum()
        read = min(read, CLOCK() - t)
    return 2 * a.numel() * 4 / copy, a.numel() * 4 / read


def gemv_pass(model, ws=None):
    """The matrix-vector products of one token alone: every nn.Linear of the model applied to
    one vector (as the model calls it, [1, 1, d]), in the model's order (or the matrices ``ws``)."""
    import torch.nn.functional as F

    ws = ws if ws is not None else [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]
    xs = {w.shape[1]: torch.randn(1, 1, w.shape[1]) for w in ws}

    @torch.no_grad()
    def run():
        for w in ws:
            F.linear(xs[w.shape[1]], w)
    return run


def best_time(fn, reps: int = 20) -> float:
    best = float("inf")
    for _ in range(reps):
        t = CLOCK()
        fn()
        best = min(best, CLOCK() - t)
    return best


def count_ops(fn) -> int:
    """aten operator calls made by ``fn()``."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.calls += 1
            return func(*args, **(kwargs or {}))

    with Count():
        fn()
    return Count.calls


def bench_decode(model, args) -> None:
    copy_bw, read_bw = bandwidths(args.bandwidth_mb)
    emb = model.tok_embeddings.weight
    weight_bytes = (model.num_parameters() - emb.numel() + emb.shape[1]) * emb.element_size()
    bound = weight_bytes / copy_bw  # seconds per token if only the weights had to be read, at copy speed
    g = torch.Generator().manual_seed(1)
    prompt = torch.randint(3, model.cfg.vocab_size, (args.prompt_len,), generator=g).tolist()
    n = args.decode_tokens
    cfg = model.cfg
    kv_bytes = 2 * cfg.n_layers * cfg.n_kv_heads * cfg.head_dim * (args.prompt_len + n / 2) * emb.element_size()
    print(f"decode: memory bandwidth: copy {copy_bw / 1e9:.1f} GB/s ({args.bandwidth_mb} MB, bytes read + written, best of 5), "
          f"read {read_bw / 1e9:.1f} GB/s (sum)")
    print(f"decode: {weight_bytes / 1e6:.1f} MB of weights read per token (the KV cache adds "
          f"{kv_bytes / 1e6:.1f} MB on average here) -> bound {1e3 * bound:.2f} ms/token = {1 / bound:.0f} tok/s "
          f"at copy bandwidth")
    fast = FastDecoder(model)
    fns = {"sampling": lambda k: sample(model, [prompt], 1, k)[0],
           "generate": lambda k: generate(model, [prompt], k)[0],
           "fast": lambda k: fast.greedy(prompt, k)}
    for fn in fns.values():
        fn(8)  # warm-up
    times, outs = {k: [] for k in fns}, {}
    floor = []
    for _ in range(args.decode_reps):
        for name, fn in fns.items():
            t = CLOCK()
            outs[name] = fn(n)
            times[name].append(CLOCK() - t)
        floor.append(best_time(gemv_pass(model)))
    assert outs["sampling"] == outs["generate"] == outs["fast"], "greedy outputs of the paths differ"
    gemv = min(floor)
    n_linear = sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    print(f"decode: the {n_linear} matrix-vector products of a token alone: {1e3 * gemv:.2f} ms = "
          f"{100 * bound / gemv:.0f}% of the bound (MKL's one-thread GEMV reads the weights at "
          f"{weight_bytes / gemv / 1e9:.1f} GB/s)")
    for name, label in (("sampling", "minillama.sampling"), ("generate", "minillama.generate"),
                        ("fast", "minillama.fast_decode")):
        per_token = min(times[name]) / n
        print(f"decode: {label} batch 1, greedy, prompt {len(prompt)}, {n} new tokens: {1 / per_token:6.1f} tok/s "
              f"{1e3 * per_token:.2f} ms/token = {100 * bound / per_token:.0f}% of the bandwidth bound (target >= 60%)")
    print(f"decode: greedy tokens identical on all three paths; fast_decode / sampling = "
          f"{min(times['sampling']) / min(times['fast']):.2f}x, fast_decode / generate = "
          f"{min(times['generate']) / min(times['fast']):.2f}x")
    fused = [w for layer in fast.layers for w in layer[2:] if w.dim() == 2] + [model.output.weight]
    products = {"sampling": gemv_pass(model), "fast": gemv_pass(model, fused)}  # the matrices each path multiplies
    for name in ("sampling", "fast"):
        per_token = min(times[name]) / n
        ops = (count_ops(lambda: fns[name](36)) - count_ops(lambda: fns[name](4))) / 32
        others = ops - count_ops(products[name])
        print(f"decode: {name}: a token makes {ops:.0f} aten operator calls; beyond the products' time, "
              f"{1e3 * (per_token - gemv):.2f} ms/token go to the other {others:.0f} (norms, RoPE, cache writes, "
              f"attention, sampling, views): {1e6 * (per_token - gemv) / max(others, 1):.1f} us each")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompts", type=int, default=16)
    p.add_argument("--n", type=int, default=20, help="samples per prompt")
    p.add_argument("--per-batch", type=int, default=4, help="prompts per call (x n rows), the same for both")
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--prompt-len", type=int, default=32, help="batch-1 decode prompt")
    p.add_argument("--decode-reps", type=int, default=3)
    p.add_argument("--decode-tokens", type=int, default=256, help="batch-1 decode: new tokens per run")
    p.add_argument("--bandwidth-mb", type=int, default=256, help="size of the tensor copied to measure bandwidth")
    p.add_argument("--model", default="auto",
                   help="auto (the cpu profile's pretrained model if cached, else the shipped one) | pretrained | "
                        "shipped | random | a training run directory (its latest checkpoint)")
    p.add_argument("--preset", default="tiny", help="the preset of --model random")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="cpu: process CPU time (use with --threads 1) for a machine shared with other jobs")
    p.add_argument("--hf-cache", choices=("dynamic", "static", "both"), default="dynamic",
                   help="transformers' KV cache: dynamic (generate's default), static (cache_implementation="
                        "'static'), or both (adds ~1 min)")
    p.add_argument("--skip-passk", action="store_true")
    p.add_argument("--skip-decode", action="store_true")
    p.add_argument("--smoke", action="store_true",
                   help="a few seconds: random debug-preset model, 2 prompts x 2 samples, 8 tokens (checks it runs)")
    args = p.parse_args(argv)
    if args.smoke:
        args.__dict__.update(model="random", preset="debug", prompts=2, n=2, per_batch=1, new_tokens=8,
                             prompt_len=8, decode_tokens=40, decode_reps=1, bandwidth_mb=8)
    if args.threads:
        torch.set_num_threads(args.threads)
    global CLOCK
    if args.clock == "cpu":
        CLOCK = time.process_time
    print(machine() + f", clock: {args.clock}")
    model, tok, what = load_model(args.model, args.preset)
    print(f"model: {what}, {model.num_parameters():,} params")
    if not args.skip_passk:
        bench_passk(model, hf_copy(model), tok, args)
    if not args.skip_decode:
        bench_decode(model, args)


if __name__ == "__main__":
    main()
