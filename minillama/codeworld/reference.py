"""The course's coding models: trained by the project's own commands, shipped in the repository.

The cpu profile trains each course model in about 15 minutes; the code world needs more
tokens than that to code (``docs/codeworld_attempts.md``). So longer runs of the project's
own recipe are shipped as fp16 safetensors (HF Llama folders with their tokenizer), next to their
training logs, their numbers and the sha256 of every file. Three models, one lineage:

* ``models/codeworld-v3/`` — the first reference: 3.3 M parameters trained from scratch on 16.4 M
  tokens of world v3 on 2 CPU cores (45 min). It codes in the world's dialect only: renamed to
  names it never saw, it solves nothing (MiniEval's ``renamed`` tier).
* ``models/codeworld-long/`` — the same recipe on 8x the tokens (131 M), trained on an H200 in bf16:
  it copies and retrieves (the long-context study's base, notebook 04). That run went through a driver
  that builds the world's data in 14 processes (the same token documents as ``build_data``, checked on
  a smaller run) and calls the recipe's own pieces; ``train --long`` is the one-process equivalent and
  has not been run end to end.
* ``models/codeworld/`` — **the reference** (notebooks 05 and 06): the long-trained model continued on
  world v5 (world v4's open names, many frames and optional examples, plus blended names that start
  like a known word and end otherwise) on 2 CPU cores, as Code Llama continues Llama 2. It reads its
  prompt: the robustness tiers keep most of its pass@1.

::

    python -m minillama.codeworld.reference train          # the reference's recipe, then export
    python -m minillama.codeworld.reference train --v3     # the first reference (2 CPU cores, ~45 min)
    python -m minillama.codeworld.reference train --long   # the long-trained model (a CUDA GPU)
    python -m minillama.codeworld.reference export RUN_NAME [--v3 | --long]   # a finished run -> models/
    python -m minillama.codeworld.reference verify [--v3 | --long]            # the files against SHA256SUMS

:func:`load_reference` is what notebooks and the CLI call; it checks the hashes first, so a
damaged or hand-edited file is an error, not a silently different model.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

import torch

from minillama.paths import models_dir

# The settings of the shipped runs (flags of `python -m minillama.codeworld.recipe`).
# The reference: the long-trained model continued on world v5 (it must be in models/codeworld-long/).
RECIPE_ARGS = ("--name", "C5-v5-long-4k", "--init", "models/codeworld-long", "--world", "5", "--fim", "function",
               "--fim-rate", "0.3", "--copy-share", "0.05", "--steps", "4000", "--warmup", "200", "--lr", "1e-3",
               "--probe-every", "500", "--threads", "2", "--eval", "full",
               "--tokenizer", "models/codeworld/tokenizer.model",
               "--notes", "world v5 (v4 with half of the open pools' English names replaced by blends: a known "
                          "word's start, another ending, e.g. comp+ass), continued from the long-trained model for "
                          "4,000 steps as C2: do near-miss copies of new names (compass -> compute) become exact?")
# The first reference (world v3, from scratch on 2 CPU cores).
V3_RECIPE_ARGS = ("--name", "reference", "--fim", "function", "--fim-rate", "0.3", "--copy-share", "0.05",
                  "--steps", "4000", "--warmup", "200", "--dim", "192", "--n-layers", "4", "--n-heads", "6",
                  "--probe-every", "500", "--threads", "2",
                  "--notes", "the shipped reference model (python -m minillama.codeworld.reference train)")
# The long-trained model of the long-context study (notebook 04): the same recipe on 8x the tokens,
# trained on one GPU (~5 min on an H200 with the data; days on 2 CPU cores). It uses the shipped
# tokenizer, so that another Python's stdlib does not change it.
LONG_RECIPE_ARGS = ("--name", "L1-long", "--fim", "function", "--fim-rate", "0.3", "--steps", "8000",
                    "--batch-size", "64", "--warmup", "400", "--probe-every", "1000", "--copy-share", "0.05",
                    "--dim", "192", "--n-layers", "4", "--n-heads", "6", "--device", "cuda", "--dtype", "bfloat16",
                    "--tokenizer", "models/codeworld/tokenizer.model",
                    "--notes", "the reference recipe on 8x its tokens (batch 64); GPU, bf16")
MAX_BYTES = 20 * 2 ** 20


def reference_dir() -> Path:
    """``models/codeworld/`` of the checkout (or of a non-editable install: :func:`minillama.paths.models_dir`)."""
    return models_dir() / "codeworld"


def v3_dir() -> Path:
    """``models/codeworld-v3/`` of the checkout: the first reference (world v3 only, from scratch)."""
    return models_dir() / "codeworld-v3"


def long_dir() -> Path:
    """``models/codeworld-long/`` of the checkout: the long-trained model (it copies and retrieves)."""
    return models_dir() / "codeworld-long"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(directory: Path | None = None) -> dict[str, str]:
    """Check every file listed in ``SHA256SUMS``; raises ``ValueError`` naming the first mismatch."""
    directory = Path(directory or reference_dir())
    sums = directory / "SHA256SUMS"
    if not sums.is_file():
        raise FileNotFoundError(f"{directory} has no SHA256SUMS: the reference model is not there. Build it with "
                                f"`python -m minillama.codeworld.reference train` (about an hour on 2 cores)")
    listed = {}
    for line in sums.read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        listed[name.strip()] = digest
        path = directory / name.strip()
        if not path.is_file():
            raise FileNotFoundError(f"{path} is listed in SHA256SUMS but missing; restore it from the repository")
        if sha256(path) != digest:
            raise ValueError(f"{path} does not match its sha256 in SHA256SUMS: the file was changed or damaged; "
                             f"restore it (git checkout -- {path.name}) or re-export the run")
    return listed


def export(run_dir: Path, directory: Path | None = None) -> Path:
    """Write a finished recipe run as the shipped model: fp16 HF folder + tokenizer + logs + sums."""
    from minillama.hf import from_pretrained, save_pretrained

    from .recipe import run_tokenizer

    directory = Path(directory or reference_dir())
    run_dir = Path(run_dir)
    if not (run_dir / "result.json").is_file():
        raise FileNotFoundError(f"{run_dir} has no result.json: the run has not finished")
    model = from_pretrained(run_dir, dtype=torch.float16)
    size = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    if size > MAX_BYTES:  # checked before the shipped folder is replaced
        raise ValueError(f"the fp16 weights are {size / 2**20:.1f} MiB, over the 20 MiB the repository ships")
    tok = run_tokenizer(run_dir, model.cfg.vocab_size)
    if directory.exists():
        shutil.rmtree(directory)
    save_pretrained(model, directory, tokenizer=tok)
    shutil.copy(run_dir / "metrics.jsonl", directory / "train_log.jsonl")
    shutil.copy(run_dir / "result.json", directory / "result.json")
    names = sorted(p.name for p in directory.iterdir() if p.is_file())
    (directory / "SHA256SUMS").write_text("".join(f"{sha256(directory / n)}  {n}\n" for n in names))
    return directory


def load_reference(device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                   directory: Path | None = None):
    """``(model, tokenizer)`` of the shipped reference model, after checking its hashes."""
    from minillama.hf import from_pretrained, load_tokenizer

    directory = Path(directory or reference_dir())
    verify(directory)
    return from_pretrained(directory, device=device, dtype=dtype).eval(), load_tokenizer(directory, require_fim=True)


CODING_MODEL_ENV = "MINILLAMA_CODING_MODEL"


def coding_model(choice: str | None = None, profile=None):
    """``(model, tokenizer, about)`` of the coding model notebooks 05–06 study: the shipped reference
    model (the default), or notebook 03's FIM model with ``choice="own"`` (or the environment
    variable ``MINILLAMA_CODING_MODEL=own``). ``about`` says which, with its size and training tokens."""
    import json
    import os

    choice = choice or os.environ.get(CODING_MODEL_ENV, "reference")
    if choice == "reference":
        model, tok = load_reference()
        from .recipe import Recipe
        trained = json.loads((reference_dir() / "result.json").read_text())
        recipe = Recipe(**trained["recipe"])
        about = {"model": "reference", "command": trained["command"], "training_tokens": recipe.tokens,
                 "train_minutes": trained["seconds"]["train"] / 60, "continued_from": None}
        if recipe.init:  # continued pretraining: the model it started from saw its own tokens first
            start = json.loads((models_dir().parent / recipe.init / "result.json").read_text())
            about["continued_from"] = {"folder": recipe.init, "command": start["command"],
                                       "training_tokens": Recipe(**start["recipe"]).tokens}
            about["training_tokens"] += about["continued_from"]["training_tokens"]
    elif choice == "own":
        from minillama.tokenizer import get_tokenizer
        from minillama.training.pretrain import get_pretrained
        model, tok = get_pretrained(profile, fim=True), get_tokenizer(profile)
        about = {"model": "own", "command": None, "training_tokens": None, "train_minutes": None}
    else:
        raise ValueError(f"{CODING_MODEL_ENV}={choice!r}: use 'reference' (the shipped model) or 'own' "
                         "(notebook 03's FIM model)")
    about["parameters"] = sum(p.numel() for p in model.parameters())
    return model.eval(), tok, about


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    for name, text in (("train", "run the reference recipe, then export it"),
                       ("export", "export a finished recipe run"),
                       ("verify", "check the shipped files against SHA256SUMS")):
        p = sub.add_parser(name, help=text)
        if name == "export":
            p.add_argument("run", help="run name under data/cache/codeworld/runs/, or a path")
        which = p.add_mutually_exclusive_group()
        which.add_argument("--long", action="store_true",
                           help="the long-trained model (models/codeworld-long/; training needs a CUDA GPU)")
        which.add_argument("--v3", action="store_true",
                           help="the first reference, world v3 from scratch (models/codeworld-v3/; ~45 min on 2 cores)")
    args = parser.parse_args(argv)
    from .recipe import cache_dir
    directory = long_dir() if args.long else v3_dir() if args.v3 else reference_dir()
    if args.cmd == "verify":
        print(f"{len(verify(directory))} files match SHA256SUMS in {directory}")
        return 0
    if args.cmd == "train":
        from .recipe import main as recipe_main
        recipe_args = LONG_RECIPE_ARGS if args.long else V3_RECIPE_ARGS if args.v3 else RECIPE_ARGS
        if recipe_args is RECIPE_ARGS:
            verify(long_dir())  # the reference continues the long-trained model: it must be intact
        if recipe_main(list(recipe_args)) != 0:
            return 1
        run = cache_dir() / "runs" / recipe_args[1]
    else:
        run = Path(args.run) if Path(args.run).is_dir() else cache_dir() / "runs" / args.run
    out = export(run, directory)
    print(f"exported {run} -> {out} ({(out / 'model.safetensors').stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
