"""Self-instruct and instruction tuning (PAPER §2.5), step by step.

The paper's recipe for Code Llama - Instruct's synthetic data:

1. a large model (Llama 2 70B) writes interview-style questions;
2. exact duplicates are removed;
3. the model being tuned (Code Llama 7B) writes unit tests (``[TESTS]`` tags) and ten
   solutions (``[PYTHON]`` tags) per question, seeing only one of the tests;
4. the tests are run and the first passing solution is kept.

Each role is a pluggable callable, so any causal LM minillama loads can play it (a real Code
Llama on a GPU, or the course's 7M model) and a procedural generator (``tasks.py``) can
stand in where a small model cannot (writing questions; at course scale, writing tests).
:func:`run_pipeline` records a funnel, the count that survives each stage.

Then :func:`finetune` does supervised fine-tuning in the chat format
``[INST] {prompt} [/INST] {answer}`` with the loss on answer tokens only, mixed with
rehearsal rows of pretraining text, and :func:`evaluate_pass1` scores greedy pass@1 on
held-out tasks in the sandbox.

The package: :mod:`~minillama.instruct.formats` (prompt formats), :mod:`~minillama.instruct.pipeline`
(the funnel), :mod:`~minillama.instruct.sft` (fine-tuning), :mod:`~minillama.instruct.tasks`
(procedural tasks) and :mod:`~minillama.instruct.experiment` (the stdlib model's measurement); their
public names are re-exported here: ``from minillama import instruct as si``. Notebook 05's study on the
coding model: :mod:`~minillama.instruct.requests` (problems as requests in ``[INST]`` format and as
docstrings, split by composition), :mod:`~minillama.instruct.following` (scoring both formats),
:mod:`~minillama.instruct.world` (the funnel's roles on the code world), :mod:`~minillama.instruct.ablation`
(the positive control and the arms) and :mod:`~minillama.instruct.trials` (the recipe, chosen on dev).
"""

from minillama.instruct.formats import *  # noqa: F401,F403
from minillama.instruct.pipeline import *  # noqa: F401,F403
from minillama.instruct.sft import *  # noqa: F401,F403
from minillama.instruct.experiment import *  # noqa: F401,F403
from minillama.evaluation.metrics import wilson_interval  # noqa: F401  (used by notebook 05)
