"""The long-context methods compared in notebook 04: which RoPE rule, fine-tuned or not.

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
``pi_rescaled``        ``pi``'s weights, PI ×16 (T_max / L)         at 4L (×4)
``yarn_rescaled``      ``yarn``'s weights, YaRN ×16 (T_max / L)     at 4L (×4)
=====================  ===========================================  ============

PI and YaRN are configured for a target length: fine-tuned ×4, they map 4L onto the trained
positions, and at 16L they are asked to extrapolate, which they were never set up to do. The
``*_rescaled`` rows give each its best configuration at the judged length: the same fine-tuned
weights with the scale set to ``max_multiple`` (16L mapped onto L), as a static or dynamic
("scale to the current length") deployment would do.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

from minillama.model import Transformer
from minillama.rope import RopeScaling


@dataclass(frozen=True)
class Method:
    key: str
    label: str
    theta: float
    scaling: str | None  # None, "linear" (PI) or "yarn"
    finetune: bool
    weights_of: str | None = None  # evaluate this method's fine-tuned weights, rescaled to T_max / L


METHODS: dict[str, Method] = {m.key: m for m in [
    Method("base_theta_1e4", "base, θ=1e4", 1e4, None, False),
    Method("no_ft_theta_1e6", "no FT, θ=1e6", 1e6, None, False),
    Method("no_ft_pi", "no FT, PI ×4", 1e4, "linear", False),
    Method("no_ft_yarn", "no FT, YaRN ×4", 1e4, "yarn", False),
    Method("lcft_theta_1e6", "LCFT θ=1e6 (Code Llama)", 1e6, None, True),
    Method("lcft_theta_1e4", "LCFT θ=1e4", 1e4, None, True),
    Method("pi", "LCFT + PI ×4", 1e4, "linear", True),
    Method("yarn", "LCFT + YaRN ×4", 1e4, "yarn", True),
    Method("pi_rescaled", "LCFT + PI, rescaled to T_max", 1e4, "linear", True, weights_of="pi"),
    Method("yarn_rescaled", "LCFT + YaRN, rescaled to T_max", 1e4, "yarn", True, weights_of="yarn"),
]}

FINETUNED = [k for k, m in METHODS.items() if m.finetune and m.weights_of is None]  # each a fine-tuning run


def method_scaling(method: Method, pretrain_len: int, factor: float) -> RopeScaling | None:
    if method.scaling is None:
        return None
    if method.scaling == "yarn":
        return RopeScaling("yarn", factor, original_max_seq_len=pretrain_len)
    return RopeScaling(method.scaling, factor)


def with_rope(model: Transformer, theta: float | None = None, scaling: RopeScaling | None = None,
              max_seq_len: int | None = None, copy_weights: bool = True) -> Transformer:
    """The same weights under another RoPE rule (a copy unless ``copy_weights=False``).

    RoPE has no parameters: changing θ or the scaling changes only the cos/sin tables, which
    the model rebuilds from its config (its table cache is keyed on θ and the scaling rule).
    """
    out = copy.deepcopy(model) if copy_weights else model
    out.cfg = replace(model.cfg, rope_theta=model.cfg.rope_theta if theta is None else theta,
                      rope_scaling=scaling, max_seq_len=max_seq_len or model.cfg.max_seq_len)
    return out


def method_model(base: Transformer, method: Method | str, pretrain_len: int, factor: float = 4) -> Transformer:
    """The base weights under ``method``'s RoPE rule (no fine-tuning)."""
    method = METHODS[method] if isinstance(method, str) else method
    return with_rope(base, method.theta, method_scaling(method, pretrain_len, factor))
