"""The code world: a procedural world of small typed Python functions a 7M model can learn
(TinyStories' idea applied to code), with held-out evaluation.

    from minillama.codeworld import documents, problems, infilling
    docs = documents(1000, seed=0)              # training text: modules of 2-5 functions
    mini = problems("compositions", n=150)      # HumanEval-format problems of one tier
    sl = infilling("single-line", "instances")  # HumanEval-Infilling built from a tier

Modules, each with one job:

* :mod:`.stage`, :mod:`.stages_list`, :mod:`.stages_int`, :mod:`.stages_text`: the primitives
  (filters, maps, folds, searches, string building, arithmetic, tests, two-argument steps);
* :mod:`.chains`: chains of 1-3 stages, their signatures, the tiers, the training sampler;
* :mod:`.render`, :mod:`.phrasing`, :mod:`.functions`: writing a behaviour as a typed function
  with a docstring and doctest, in one of three styles;
* :mod:`.documents`: training modules (assert blocks, constant functions, copy documents);
* :mod:`.minieval`, :mod:`.handwritten`: the evaluation sets;
* :mod:`.decontam`: the checks that no held-out program is trained;
* :mod:`.fimdesign`, :mod:`.probe`, :mod:`.recipe`, :mod:`.report`, :mod:`.compare`:
  FIM designs, the copying probe, and the experiment driver behind
  ``docs/codeworld_attempts.md``.
"""

from .documents import copy_documents, documents, modules
from .minieval import TIERS, infilling, problems

__all__ = ["TIERS", "copy_documents", "documents", "infilling", "modules", "problems"]
