"""Where the code world's runs live, and the tokenizer they use: the floor below the recipe
(:mod:`minillama.codeworld.recipe`), its probes and its report, which all need these and
must not import one another in a circle."""

from __future__ import annotations

from pathlib import Path

from minillama.paths import data_dir, require_repo_root

TOKENIZER_DOCS = 3000  # world modules the tokenizer sees, next to the stdlib (seed 99: not trained on)


def cache_dir() -> Path:
    """Scratch output of the code world (tokenizer, cached modules, runs): ``data_dir()/cache/codeworld``."""
    return data_dir() / "cache" / "codeworld"


def log_path() -> Path:
    """The attempt log, ``docs/codeworld_attempts.md`` of the checkout."""
    return require_repo_root("the code-world attempt log") / "docs" / "codeworld_attempts.md"


def get_tokenizer(vocab_size: int = 4096):
    from minillama.data.corpus import get_corpus
    from minillama.profiles import get_profile
    from minillama.tokenizer import build_tokenizer

    from .documents import documents
    corpus = get_corpus(get_profile("cpu"))
    world = documents(TOKENIZER_DOCS, seed=99)
    return build_tokenizer(corpus.texts("train") + world, vocab_size, cache_dir() / "tokenizer")


def run_tokenizer(run_dir: Path, vocab_size: int = 4096):
    """The tokenizer a recipe run was trained with: the copy in its folder, or for runs made
    before runs kept one, this machine's cached tokenizer."""
    from minillama.tokenizer import Tokenizer
    path = Path(run_dir) / "tokenizer.model"
    return Tokenizer(path, require_fim=True) if path.is_file() else get_tokenizer(vocab_size)
