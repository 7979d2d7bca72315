"""The course's reference coding model: trained by one command, shipped in the repository.

The cpu profile trains each course model in about 15 minutes; the code world needs more
tokens than that to code (``docs/codeworld_attempts.md``). So one longer run of the project's
own recipe is shipped as fp16 safetensors under ``models/codeworld/`` (an HF Llama folder with
its tokenizer), next to its training log, its numbers and the sha256 of every file:

    python -m minillama.codeworld.reference train     # the recipe below, then export
    python -m minillama.codeworld.reference export RUN_NAME   # a finished recipe run -> models/codeworld/
    python -m minillama.codeworld.reference verify    # the shipped files against SHA256SUMS

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

from minillama.paths import require_repo_root

# The settings of the shipped run (flags of `python -m minillama.codeworld.recipe`).
RECIPE_ARGS = ("--name", "reference", "--fim", "function", "--fim-rate", "0.3", "--copy-share", "0.05",
               "--steps", "4000", "--warmup", "200", "--dim", "192", "--n-layers", "4", "--n-heads", "6",
               "--probe-every", "500", "--threads", "2",
               "--notes", "the shipped reference model (python -m minillama.codeworld.reference train)")
MAX_BYTES = 20 * 2 ** 20


def reference_dir() -> Path:
    """``models/codeworld/`` of the checkout."""
    return require_repo_root("the shipped reference model") / "models" / "codeworld"


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("train", help="run the reference recipe, then export it")
    ex = sub.add_parser("export", help="export a finished recipe run")
    ex.add_argument("run", help="run name under data/cache/codeworld/runs/, or a path")
    sub.add_parser("verify", help="check the shipped files against SHA256SUMS")
    args = parser.parse_args(argv)
    from .recipe import cache_dir
    if args.cmd == "verify":
        print(f"{len(verify())} files match SHA256SUMS in {reference_dir()}")
        return 0
    if args.cmd == "train":
        from .recipe import main as recipe_main
        if recipe_main(list(RECIPE_ARGS)) != 0:
            return 1
        run = cache_dir() / "runs" / "reference"
    else:
        run = Path(args.run) if Path(args.run).is_dir() else cache_dir() / "runs" / args.run
    out = export(run)
    print(f"exported {run} -> {out} ({(out / 'model.safetensors').stat().st_size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
