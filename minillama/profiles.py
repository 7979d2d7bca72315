"""Run profiles: one switch, ``MINILLAMA_PROFILE=quick|cpu|gpu``.

``quick`` is for tests and CI (seconds per notebook), ``cpu`` is the default for a 2-core
laptop, ``gpu`` for one GPU. Every run size of the course lives here (pretraining, long
context, self-instruct, evaluation), so a profile is the one place where "how big" is decided.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

import torch

PROFILE_ENV = "MINILLAMA_PROFILE"


@dataclass(frozen=True)
class LongContextSizes:
    """Notebook 04 / ``python -m minillama long-context``."""
    factor: int = 4  # fine-tuning length = factor × pretraining length (paper: 4096 → 16384)
    max_multiple: int = 16  # evaluate up to this many times the pretraining length
    # cpu: 100 steps × 2 × 1,024 tokens, ~40 s per method; at 20 steps the fine-tuned models had lost
    # most of the base's key retrieval (28 % at the base's own length; 50 steps: 67 %, 100: 92 %)
    ft_steps: int = 100
    ft_batch_size: int = 2
    # Paper: 2e-5 after a 3e-4 pretraining peak, 1/15 of it; the same ratio to the profile's
    # pretraining peak (cpu: 2e-3 -> 1.3e-4)
    ft_lr: float = 2e-3 / 15
    ft_warmup: int = 5
    # 16L-token windows per method, the pairs of every perplexity comparison: with 6 the t interval is
    # wide and the normal one (±2 s.e.) too narrow; 24 needs ~24 held-out packages that long
    eval_windows: int = 24
    retrieval_multiples: tuple[float, ...] = (1, 4, 16)  # prompt lengths, × pretraining length
    # relative positions of the key: three on cpu (start, middle, end) so that the 1x and 4x cells get
    # the paper's 64 prompts in the time budget; the gpu profile uses five
    retrieval_positions: tuple[float, ...] = (0.0, 0.5, 1.0)
    retrieval_prompts: int = 64  # prompts per (length, position), as in the paper
    # prompts per position at the longest length, whose forward costs ~T² (cpu: 0.49 s at 4,096 tokens
    # against 0.02 s at 256 for the 3.3M coding model; 8 models x 3 positions x 64 would take 19 min,
    # x 8 takes 1.6); None: retrieval_prompts
    retrieval_prompts_longest: int | None = 8
    cost_lengths: tuple[int, ...] = (256, 512, 1024, 2048, 4096, 8192, 16384)


@dataclass(frozen=True)
class InstructSizes:
    """Notebook 05 / ``python -m minillama self-instruct``."""
    n_questions: int = 200  # questions written (before dedup)
    n_samples: int = 10  # solutions per question (the paper: 10)
    sft_steps: int = 100
    batch_size: int = 12
    lr: float = 1e-4
    n_heldout: int = 120  # evaluation problems (notebook 05: the eval split, asked in both formats)
    n_seen: int = 100  # unseen instances of training families (0: skip)
    max_new_tokens: int = 48
    gen_batch: int = 64
    rehearsal_frac: float = 0.1
    weight_decay: float = 0.0
    n_fixed: int = 100  # examples of the unfiltered and the oracle arm (fixed, not sized to the kept set)
    seeds: tuple[int, ...] = (0, 1, 2)  # fine-tuning seeds per arm


@dataclass(frozen=True)
class CodeWorldSizes:
    """Notebook 06's evaluation of the coding model (the code world's reference model)."""
    problems: int = 150  # MiniEval problems per tier, greedy pass@1
    sampled_problems: int = 50  # the first problems of each tier, sampled for pass@k curves
    n_samples: int = 20  # samples per problem and temperature
    temperatures: tuple[float, ...] = (0.2, 0.8)
    single_line: int = 200  # infilling tasks per set (a fixed random subset)
    multi_line: int = 150
    random_span: int = 150  # one random span per problem, for token healing
    humaneval: int = 164  # the out-of-distribution anchor
    robust: int = 150  # source problems per tier (instances, compositions) of the robustness tiers
    robust_before: int = 50  # the same, for the two earlier shipped models (the before/after comparison)


@dataclass(frozen=True)
class NotebookSizes:
    """Sizes of the smaller measurements inside notebooks."""
    rope_max_distance: int = 32_768  # reach of notebook 01's decay plot
    infill_tasks: int = 100  # held-out single-line infilling tasks of notebook 03's ablation
    specialize_steps: int = 100  # notebook 03's specialization (continued pretraining on the code world)


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
    # pretraining (minillama.training.trainer.TrainConfig); sized from measurements, see notebook 03
    lr: float = 1e-3  # peak learning rate (cosine down to lr/30)
    warmup: int = 100
    grad_accum: int = 1
    eval_interval: int = 100
    eval_batches: int = 4
    checkpoint_interval: int = 100  # steps between checkpoints: an interrupted run resumes from the last
    long_context: LongContextSizes = field(default_factory=LongContextSizes)
    instruct: InstructSizes = field(default_factory=InstructSizes)
    notebook: NotebookSizes = field(default_factory=NotebookSizes)
    codeworld: CodeWorldSizes = field(default_factory=CodeWorldSizes)

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)


INSTRUCT_RECIPE = InstructSizes(sft_steps=60, batch_size=16, lr=3e-4, rehearsal_frac=0.5, weight_decay=0.0,
                                n_heldout=150)

PROFILES = {
    "quick": Profile("quick", model="debug", device="cpu", dtype="float32", vocab_size=512,
                     max_corpus_files=60, seq_len=128, batch_size=8, train_steps=30,
                     lr=3e-3, warmup=5, eval_interval=15, eval_batches=2, checkpoint_interval=10,
                     long_context=LongContextSizes(ft_steps=3, ft_batch_size=1, ft_lr=3e-3 / 15, ft_warmup=1,
                                                   eval_windows=2, retrieval_multiples=(1, 2),
                                                   retrieval_positions=(0.0, 0.5, 1.0), retrieval_prompts=1,
                                                   retrieval_prompts_longest=None,
                                                   cost_lengths=(128, 512, 2048)),
                     instruct=InstructSizes(n_questions=16, n_samples=4, sft_steps=6, batch_size=4,
                                            n_heldout=20, n_seen=0, max_new_tokens=16, n_fixed=8, seeds=(0,)),
                     notebook=NotebookSizes(rope_max_distance=8_192, infill_tasks=8, specialize_steps=6),
                     codeworld=CodeWorldSizes(problems=12, sampled_problems=4, n_samples=4, single_line=8,
                                              multi_line=6, random_span=8, humaneval=4,
                                              robust=4, robust_before=2)),
    "cpu": Profile("cpu", model="tiny", device="cpu", dtype="float32", vocab_size=4096,
                   max_corpus_files=None, seq_len=256, batch_size=16, train_steps=240,
                   # ~3,300 tokens/s measured on 2 cores: 240 × 16 × 256 = 1.0M tokens ≈ 5 min per model,
                   # so that `make reproduce` fits 45 min (600 steps, 11 min per model, before the coding
                   # model was shipped; the README compares the two runs)
                   lr=2e-3, warmup=50, eval_interval=60, eval_batches=4, checkpoint_interval=60,
                   # 3 seeds × (oracle, filtered, unfiltered) fine-tunings of the coding model in the Instruct
                   # format; the recipe is the dev-split trials' choice (docs/instruct_trials.md, checked by
                   # tests/test_quoted_numbers.py)
                   instruct=INSTRUCT_RECIPE),
    # Sized for `bash gpu/run.sh` on one H100/H200: all six notebooks in <= 8 minutes, compilation included.
    # MEASURED so far on an H200 (bf16 autocast, this trainer): the code world's long model, 3.3M parameters,
    # 8,000 steps x 64 x 256 tokens in 151 s = 0.87M tokens/s, launch-bound. Everything else here is an
    # ESTIMATE until the first gpu run, whose REPORT.md times each notebook:
    # - pretraining (notebook 03, on the GPU): `small` (64M; 0.40 GFLOP per training token at 1,024,
    #   model.flops_per_token) at 15-30 % of the ~790 TFLOP/s bf16 peak is ~0.3-0.6M tokens/s, so
    #   300 x 32 x 1,024 = 9.8M tokens is ~16-33 s per model, plus ~30-60 s of torch.compile for the
    #   first (the no-FIM run reuses the compiled kernels' cache), ~2.5-3.5 min for the notebook with
    #   specialization and evaluation (the stdlib is a few million tokens: 9.8M is ~2-3 epochs);
    # - notebooks 04-06 evaluate the shipped code-world models, which they load on the CPU (notebook 04's
    #   DEVICE = "cpu", codeworld.reference.load_reference): on the GPU machine they run on its 16 cores,
    #   so they keep the cpu profile's sizes (2 loaded cores: 04 281 s, 05 486 s, 06 320 s; estimated
    #   ~1.5-2.5 min each there) until they move to the GPU; only the course models' part of notebook 06
    #   runs on the GPU, at notebook 06's own sizes;
    # - notebooks 01-02 (~1 min: the 8,192-piece tokenizer is trained on the whole stdlib on a fresh machine).
    "gpu": Profile("gpu", model="small", device="cuda", dtype="bfloat16", vocab_size=8192,
                   max_corpus_files=None, seq_len=1024, batch_size=32, train_steps=300, compile=True,
                   lr=1e-3, warmup=30, eval_interval=50, eval_batches=8, checkpoint_interval=150,
                   instruct=INSTRUCT_RECIPE,  # the cpu profile's (notebook 05 runs the coding model on the CPU)
                   notebook=NotebookSizes(rope_max_distance=65_536, infill_tasks=200)),
}


def check_device(name: str) -> str:
    """``name`` if torch can use that device here; else a ValueError that says what to use."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"{name!r} is not a device torch knows; use cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch is a CPU-only build" if torch.version.cuda is None else "torch sees no GPU"
            raise ValueError(f"device {name!r} needs CUDA, but {why}; use --device cpu, or install a CUDA "
                             f"build of torch on a machine with an NVIDIA GPU")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: torch sees {torch.cuda.device_count()} GPU(s), "
                             f"numbered from 0")
    elif device.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise ValueError(f"device {name!r} needs Apple's Metal (MPS), which this machine lacks; use cpu")
    elif device.type != "cpu":
        raise ValueError(f"device {name!r}: minillama runs on cpu, cuda or mps")
    return name


DRY_RUN_ENV = "MINILLAMA_GPU_DRY_RUN"


def is_dry_run() -> bool:
    return os.environ.get(DRY_RUN_ENV, "") not in ("", "0")


def dry_run_profile(gpu: Profile) -> Profile:
    """The gpu profile's recipe (name, bf16 autocast, ``torch.compile``) on the CPU at the quick
    profile's sizes: what ``get_profile("gpu")`` returns under ``MINILLAMA_GPU_DRY_RUN=1``."""
    return replace(PROFILES["quick"], name=gpu.name, device="cpu", dtype=gpu.dtype, compile=gpu.compile)


def get_profile(name: str | None = None, **overrides) -> Profile:
    """The profile named by ``name`` or by ``$MINILLAMA_PROFILE`` (default ``cpu``)."""
    name = name or os.environ.get(PROFILE_ENV, "cpu")
    if name not in PROFILES:
        raise ValueError(f"{PROFILE_ENV}={name!r} is not a profile; choose one of {sorted(PROFILES)}")
    profile = PROFILES[name]
    if profile.device == "cuda":
        if is_dry_run():  # MINILLAMA_GPU_DRY_RUN=1: its recipe on the CPU at tiny sizes (a rehearsal)
            profile = dry_run_profile(profile)
        elif not torch.cuda.is_available():
            raise RuntimeError(f"profile {name!r} needs a CUDA GPU but torch sees none; use {PROFILE_ENV}=cpu "
                               f"(or quick) on this machine, or rehearse the gpu profile's path at tiny sizes "
                               f"on the CPU with MINILLAMA_GPU_DRY_RUN=1 (bash gpu/run.sh --dry-run)")
    return replace(profile, **overrides) if overrides else profile
