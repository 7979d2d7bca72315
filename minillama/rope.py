"""Rotary position embeddings (RoPE), as pure functions.

Code Llama's one architectural change to Llama 2 lives here: the base period θ of the
rotary frequencies, raised from 10,000 to 1,000,000 for long-context fine-tuning.

    inv_freq_i = θ^(-2i/d),  i = 0 .. d/2-1,   d = head_dim

Position ``m`` rotates the pair of channels ``i`` by the angle ``m * inv_freq_i``.

Pairing convention: minillama pairs channel ``i`` with channel ``i + d/2`` ("half split",
``rotate_half``), as transformers does, so exporting to transformers is a plain rename of
the weights. Meta's checkpoints pair ``(2i, 2i+1)`` (complex numbers); ``minillama.hf``
permutes the rows of ``wq``/``wk`` when loading them. Both conventions compute the same
attention scores once the weights are permuted consistently.

Scaling rules for running past the training length (``RopeScaling.type``):

- ``linear``  position interpolation (PI): positions squeezed by 1/factor.
- ``ntk``     NTK-aware: keep positions, raise the base to θ·s^(d/(d-2)).
- ``dynamic`` dynamic NTK: the NTK rule with s recomputed from the current length.
- ``yarn``    YaRN: interpolate only the low-frequency channels (a linear ramp between
              ``beta_slow`` and ``beta_fast`` rotations over the original length) and
              scale attention logits by (0.1·ln s + 1)².
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

SCALING_TYPES = ("linear", "ntk", "dynamic", "yarn")


@dataclass(frozen=True)
class RopeScaling:
    type: str  # one of SCALING_TYPES
    factor: float  # context extension factor s = L'/L
    original_max_seq_len: int | None = None  # L, the pretraining length (dynamic, yarn)
    beta_fast: float = 32.0  # YaRN: channels rotating more than this many times keep their frequency
    beta_slow: float = 1.0  # YaRN: channels rotating fewer times are fully interpolated

    def __post_init__(self):
        if self.type not in SCALING_TYPES:
            raise ValueError(f"RopeScaling.type={self.type!r} is not a scaling rule; "
                             f"allowed values: {', '.join(SCALING_TYPES)}")
        if not self.factor > 0:
            raise ValueError(f"RopeScaling.factor={self.factor!r} must be > 0 (the context extension ratio)")
        if self.type in ("dynamic", "yarn") and not self.original_max_seq_len:
            raise ValueError(f"RopeScaling(type={self.type!r}) needs original_max_seq_len, "
                             "the context length the model was trained with")

    def to_dict(self) -> dict:
        return asdict(self)


def _check_theta_and_dim(head_dim: int, theta: float) -> None:
    if head_dim <= 0 or head_dim % 2:
        raise ValueError(f"head_dim={head_dim} must be a positive even number (channels rotate in pairs)")
    if not theta > 0:
        raise ValueError(f"rope_theta={theta!r} must be > 0")


def inv_frequencies(head_dim: int, theta: float = 10_000.0, scaling: RopeScaling | None = None,
                    seq_len: int | None = None) -> tuple[torch.Tensor, float]:
    """Inverse frequencies ``[head_dim // 2]`` (float32) and the attention scale.

    ``seq_len`` is the current context length; only the ``dynamic`` rule uses it. The
    attention scale multiplies cos and sin (so the logits by its square); it is 1 except
    for YaRN.
    """
    _check_theta_and_dim(head_dim, theta)
    exponents = torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim
    if scaling is None:
        return 1.0 / theta ** exponents, 1.0

    s, d = scaling.factor, head_dim
    if scaling.type == "linear":
        return 1.0 / (s * theta ** exponents), 1.0
    if scaling.type == "ntk":
        return 1.0 / (theta * s ** (d / (d - 2))) ** exponents, 1.0
    if scaling.type == "dynamic":
        L = scaling.original_max_seq_len
        seq_len = max(seq_len or L, L)
        # At seq_len == L this is the plain base; it grows smoothly past the training length.
        base = theta * (s * seq_len / L - (s - 1)) ** (d / (d - 2))
        return 1.0 / base ** exponents, 1.0
    # YaRN ("NTK-by-parts" + temperature)
    L = scaling.original_max_seq_len

    def channel_for_rotations(n_rot: float) -> float:
        # channel index whose wavelength fits n_rot times into L
        return d * math.log(L / (n_rot * 2 * math.pi)) / (2 * math.log(theta))

    low = max(math.floor(channel_for_rotations(scaling.beta_fast)), 0)
    high = min(math.ceil(channel_for_rotations(scaling.beta_slow)), d - 1)
    if low == high:
        high += 0.001  # avoid dividing by zero in the ramp
    ramp = ((torch.arange(d // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
    extrapolated = 1.0 / theta ** exponents  # fast channels: keep
    interpolated = extrapolated / s  # slow channels: PI
    inv_freq = interpolated * ramp + extrapolated * (1 - ramp)
    attention_scale = 0.1 * math.log(s) + 1.0 if s > 1 else 1.0
    return inv_freq, attention_scale


def rope_cos_sin(positions: torch.Tensor, inv_freq: torch.Tensor, attention_scale: float = 1.0,
                 dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables ``[..., T, head_dim]`` for integer ``positions`` ``[..., T]``.

    Angles are computed in float32 whatever ``dtype`` is: at position 10⁵ a bfloat16 angle
    would be off by hundreds of radians.
    """
    angles = positions.to(torch.float32)[..., None] * inv_freq.to(positions.device, torch.float32)
    angles = torch.cat([angles, angles], dim=-1)  # half-split pairing: channel i and i + d/2 share an angle
    return (angles.cos() * attention_scale).to(dtype), (angles.sin() * attention_scale).to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` ``[B, H, T, head_dim]`` by the angles in ``cos``/``sin`` ``[T, head_dim]``
    (or anything that broadcasts, e.g. ``[B, 1, T, head_dim]``)."""
    return x * cos + rotate_half(x) * sin


def apply_rope_interleaved(x: torch.Tensor, positions: torch.Tensor, inv_freq: torch.Tensor) -> torch.Tensor:
    """Meta's convention, for teaching and tests: pairs (2i, 2i+1) as complex numbers."""
    angles = positions.to(torch.float32)[:, None] * inv_freq[None, :]
    rot = torch.polar(torch.ones_like(angles), angles)  # e^{i m ω_i}, ω_i = θ^(-2i/d)
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(xc * rot).flatten(-2).type_as(x)


def wavelengths(head_dim: int, theta: float, scaling: RopeScaling | None = None) -> torch.Tensor:
    """Wavelength in tokens of each channel pair: 2π / inv_freq."""
    inv_freq, _ = inv_frequencies(head_dim, theta, scaling)
    return 2 * math.pi / inv_freq


def relative_decay_bound(head_dim: int, theta: float, max_distance: int) -> torch.Tensor:
    """The long-term decay bound of RoPE (RoFormer §3.4.3, Code Llama App. G).

    For unit-bounded query/key parts, |q·k| at relative distance r is at most
    ``max_j |h_j| * sum_{j} |S_j(r)|`` with ``S_j(r) = sum_{i<j} e^{i r ω_i}`` (ω_i = θ^(-2i/d)). We return
    ``(1/(d/2)) * sum_j |S_j(r)|`` for r = 0 .. max_distance-1, the curve the paper plots:
    it decays with distance, and more slowly for a larger θ.
    """
    inv_freq, _ = inv_frequencies(head_dim, theta)
    r = torch.arange(max_distance, dtype=torch.float64)[:, None]
    phases = torch.polar(torch.ones(max_distance, head_dim // 2, dtype=torch.float64), r * inv_freq.double())
    partial_sums = phases.cumsum(dim=-1).abs()  # |S_j(r)| for j = 1..d/2
    return (partial_sums.sum(dim=-1) / (head_dim // 2)).float()
