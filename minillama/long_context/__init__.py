"""Long-context extension: Code Llama's LCFT (θ 10⁴ → 10⁶) against its alternatives.

Code Llama fine-tunes a 4,096-token model on 16,384-token sequences with RoPE's base θ
raised from 10,000 to 1,000,000 (paper §2.4). minillama does the same at laptop scale: a
base trained at ``L`` tokens is fine-tuned at ``4L`` and evaluated up to ``16L``.

Methods (the keys every table and ``summary.json`` use):

=====================  ===========================================  ============
key                    RoPE at evaluation                           fine-tuned?
=====================  ===========================================  ============
``base_theta_1e4``     θ = 1e4 (the base, unchanged)                no
``no_ft_theta_1e6``    θ = 1e6                                      no
``no_ft_pi``           θ = 1e4, position interpolation ×4           no
``no_ft_yarn``         θ = 1e4, YaRN ×4                             no
``lcft_theta_1e6``     θ = 1e6 (Code Llama)                         at 4L
``lcft_theta_1e4``     θ = 1e4 (the paper's ablation)               at 4L
``pi``                 θ = 1e4, position interpolation ×4           at 4L
``yarn``               θ = 1e4, YaRN ×4                             at 4L
=====================  ===========================================  ============

The package: :mod:`~minillama.long_context.methods` (the RoPE rules compared),
:mod:`~minillama.long_context.finetune` (LCFT), :mod:`~minillama.long_context.perplexity`,
:mod:`~minillama.long_context.retrieval` (App. G's key retrieval), :mod:`~minillama.long_context.cost`
and :mod:`~minillama.long_context.experiment` (the whole study). Their public names are
re-exported here, so ``from minillama import long_context as lc`` gives all of them.
"""

from minillama.long_context.cost import *  # noqa: F401,F403
from minillama.long_context.finetune import *  # noqa: F401,F403
from minillama.long_context.methods import *  # noqa: F401,F403
from minillama.long_context.perplexity import *  # noqa: F401,F403
from minillama.long_context.retrieval import *  # noqa: F401,F403
from minillama.long_context.experiment import run_experiment, study_inputs  # noqa: F401
