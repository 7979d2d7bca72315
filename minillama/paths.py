"""Where minillama reads and writes: one place for every path.

* ``data_dir()`` holds what the project builds (tokenizers, packed data, trained models).
  ``$MINILLAMA_DATA`` chooses it; by default it is ``data/`` of the checkout, or, for an
  installed (non-editable) package, ``~/.cache/minillama`` — never the package's own folder.
* ``artifacts_dir(profile)`` is ``data_dir()/artifacts/<profile>``: everything one profile builds.
* ``results_dir(profile)`` is where a reproduction's numbers and figures go
  (``results/<profile>/`` of the checkout; ``$MINILLAMA_RESULTS_DIR`` overrides it).
* ``models_dir()`` holds the shipped models (``models/`` of the checkout; for a non-editable
  install, the copy ``pip install .`` puts in ``<prefix>/share/minillama/models``;
  ``$MINILLAMA_MODELS`` overrides both, e.g. after ``python -m minillama models --copy-to DIR``).
* ``repo_root()`` is the checkout (notebooks, student copies, ``results/``); it is None for an
  installed package, and the course commands that need a checkout say so.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import sys
from pathlib import Path

DATA_ENV = "MINILLAMA_DATA"
MODELS_ENV = "MINILLAMA_MODELS"
RESULTS_ENV = "MINILLAMA_RESULTS_DIR"
PACKAGE_DIR = Path(__file__).resolve().parent


def repo_root() -> Path | None:
    """The source checkout this package runs from, or None when it is installed elsewhere."""
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() and (root / "notebooks").is_dir() else None


def require_repo_root(what: str) -> Path:
    root = repo_root()
    if root is None:
        raise FileNotFoundError(f"{what} needs a source checkout of minillama (its notebooks/ folder); "
                                f"this package is installed at {PACKAGE_DIR}. Clone the repository and "
                                f"run `pip install -e .` there.")
    return root


def installed_models_dir() -> Path:
    """Where ``pip install .`` puts the shipped models (pyproject's ``data-files``)."""
    return Path(sys.prefix) / "share" / "minillama" / "models"


def models_dir() -> Path:
    """The folder of the shipped models (``codeworld/``, ``codeworld-long/``): ``$MINILLAMA_MODELS``,
    else ``models/`` of the checkout, else the copy a non-editable install made."""
    env = os.environ.get(MODELS_ENV)
    if env:
        return Path(env).expanduser().resolve()
    root = repo_root()
    if root is not None and (root / "models").is_dir():
        return root / "models"
    installed = installed_models_dir()
    if installed.is_dir():
        return installed
    raise FileNotFoundError(f"the shipped models are neither in a source checkout nor at {installed}; "
                            f"reinstall with `pip install .` from a clone (it copies them there), or point "
                            f"${MODELS_ENV} at a copy of the clone's models/ folder "
                            f"(`python -m minillama models --copy-to DIR` in the clone makes one)")


def data_dir() -> Path:
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser().resolve()
    root = repo_root()
    if root is not None:
        return root / "data"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "minillama"


def artifacts_dir(profile_name: str) -> Path:
    """Everything one profile builds: ``tokenizer/``, ``pipeline/``, ``pretrain-*/``, …"""
    return data_dir() / "artifacts" / profile_name


def results_dir(profile_name: str) -> Path:
    """Where numbers and figures are recorded for ``profile_name``.

    ``make reproduce`` sets ``$MINILLAMA_RESULTS_DIR`` to a staging folder that replaces
    ``results/<profile>/`` only when the run completes. Outside a reproduction (a student
    running a notebook) they go to ``artifacts_dir(profile)/results``, so the committed
    reference run is never overwritten by accident.
    """
    env = os.environ.get(RESULTS_ENV)
    return Path(env) if env else artifacts_dir(profile_name) / "results"


def reference_results_dir(profile_name: str) -> Path:
    """The committed reference run of a profile: ``results/<profile>/`` of the checkout."""
    return require_repo_root("the reference results") / "results" / profile_name


def code_fingerprint(*functions) -> str:
    """A hash of the source code of ``functions``: part of every cache key, so that a cache
    built by other code (an edited packer, a changed FIM transform) is never reused.
    (Keys made of settings alone once let a reference run reuse packed data of older code.)"""
    h = hashlib.sha256()
    for fn in functions:
        h.update(inspect.getsource(fn).encode())
    return h.hexdigest()[:16]
