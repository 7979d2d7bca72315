"""Long documents of the code world, as a :class:`minillama.data.corpus.Corpus` for the long-context study.

A world module is ~550 tokens; notebook 04 needs documents of 16x the training length. As the stdlib's
test files are grouped by top-level package, world modules are grouped into *packages*
(``pkg007/modules.py``, one document of a package's modules, so that fine-tuning windows span modules
as :func:`minillama.long_context.finetune.train_stream` reads whole files). Every module comes from
streams no recipe trains on (seeds 31_000+ for fine-tuning, 32_000+ for evaluation), so held-out windows
and retrieval filler are new to the model.

The constant functions that teach retrieval in pretraining (``def base_limit() -> int: return 42``,
checked by ``assert base_limit() == 42``) stay in the *train* packages, which long-context fine-tuning
reads: it continues the pretraining mix at a longer length, and without them 100 fine-tuning steps took
the base's key retrieval at its own length from 94 % to 71 % (with them: 92 %; notebook 04's cpu run).
The *test* packages, the retrieval filler and the perplexity windows, leave them out: in a key-retrieval
prompt they would be competing keys, which the paper's filler (real code) does not have.
``constants_in`` chooses the splits that keep them.
"""

from __future__ import annotations

from minillama.data.corpus import Corpus, Document

from .documents import modules

SEEDS = {"train": 31_000, "test": 32_000}


def world_corpus(train_packages: int = 40, test_packages: int = 12, modules_per_package: int = 12,
                 constants_in: tuple[str, ...] = ("train",)) -> Corpus:
    """``train_packages`` and ``test_packages`` packages (one document each: its modules joined by blank
    lines, ~6,500 tokens at the default) of ``modules_per_package`` modules; the splits named in
    ``constants_in`` keep the modules' constant functions and their asserts."""
    if not set(constants_in) <= set(SEEDS):
        raise ValueError(f"constants_in names splits, {sorted(SEEDS)}; got {constants_in!r}")
    if min(train_packages, test_packages, modules_per_package) < 1:
        raise ValueError("world_corpus needs at least one package of one module per split")
    docs = []
    for split, seed in SEEDS.items():
        n = train_packages if split == "train" else test_packages
        mods = modules(n * modules_per_package, seed)
        if split not in constants_in:
            mods = [m.without_constants() for m in mods]
        for p in range(n):
            text = "\n\n".join(m.text for m in mods[p * modules_per_package:(p + 1) * modules_per_package])
            docs.append(Document(f"pkg{p:03d}/modules.py", text, split))
    kept = " and ".join(sorted(constants_in)) or "no split"
    return Corpus(docs, source=f"code world: {train_packages} + {test_packages} packages of {modules_per_package} "
                               f"held-out modules (constant functions kept in {kept})")
