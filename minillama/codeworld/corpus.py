"""Long documents of the code world, as a :class:`minillama.data.corpus.Corpus` for the long-context study.

A world module is ~550 tokens; notebook 04 needs documents of 16x the training length. As the stdlib's
test files are grouped by top-level package, world modules are grouped into *packages*
(``pkg007/modules.py``, one document of a package's modules, so that fine-tuning windows span modules
as :func:`minillama.long_context.finetune.train_stream` reads whole files). Every module comes from
streams no recipe trains on (seeds 31_000+ for fine-tuning, 32_000+ for evaluation), so held-out windows
and retrieval filler are new to the model.
"""

from __future__ import annotations

from minillama.data.corpus import Corpus, Document

from .documents import modules

SEEDS = {"train": 31_000, "test": 32_000}


def world_corpus(train_packages: int = 40, test_packages: int = 12, modules_per_package: int = 12) -> Corpus:
    """``train_packages`` and ``test_packages`` packages (one document each: its modules joined by blank
    lines, ~6,500 tokens at the default) of ``modules_per_package`` modules."""
    if min(train_packages, test_packages, modules_per_package) < 1:
        raise ValueError("world_corpus needs at least one package of one module per split")
    docs = []
    for split, seed in SEEDS.items():
        n = train_packages if split == "train" else test_packages
        mods = modules(n * modules_per_package, seed)
        for p in range(n):
            text = "\n\n".join(m.text for m in mods[p * modules_per_package:(p + 1) * modules_per_package])
            docs.append(Document(f"pkg{p:03d}/modules.py", text, split))
    return Corpus(docs, source=f"code world: {train_packages} + {test_packages} packages of {modules_per_package} "
                               f"held-out modules")
