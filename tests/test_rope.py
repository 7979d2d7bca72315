"""RoPE: every frequency rule against transformers' implementation of the same rule, and the
properties the course relies on (relative positions, Meta/HF pairing, wavelengths)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from minillama.hf import half_to_interleaved, interleaved_to_half
from minillama.rope import (SCALING_TYPES, RopeScaling, apply_rope, apply_rope_interleaved, inv_frequencies,
                            relative_decay_bound, rope_cos_sin, wavelengths)

transformers = pytest.importorskip("transformers")
from transformers import LlamaConfig  # noqa: E402
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS  # noqa: E402
from transformers.models.llama.modeling_llama import (LlamaRotaryEmbedding,  # noqa: E402
                                                      apply_rotary_pos_emb)


pytestmark = pytest.mark.usefixtures("one_thread")


HEAD_DIMS = (16, 64, 128)
THETAS = (1e4, 1e6)


def hf_config(head_dim: int, rope_parameters: dict, max_pos: int = 2048) -> LlamaConfig:
    return LlamaConfig(hidden_size=2 * head_dim, num_attention_heads=2, num_key_value_heads=2, head_dim=head_dim,
                       max_position_embeddings=max_pos, rope_parameters=rope_parameters)


def hf_inv_freq(cfg: LlamaConfig, **kwargs) -> tuple[torch.Tensor, float]:
    kind = cfg.rope_parameters["rope_type"]
    if kind == "default":  # transformers 5 keeps the unscaled rule on the rotary module
        return LlamaRotaryEmbedding.compute_default_rope_parameters(cfg)
    return ROPE_INIT_FUNCTIONS[kind](cfg, **kwargs)


# --- frequencies, rule by rule ----------------------------------------------------------

@pytest.mark.parametrize("head_dim", HEAD_DIMS)
@pytest.mark.parametrize("theta", THETAS)
def test_unscaled_matches_hf(head_dim, theta):
    ours, scale = inv_frequencies(head_dim, theta)
    ref, ref_scale = hf_inv_freq(hf_config(head_dim, {"rope_type": "default", "rope_theta": theta}))
    assert ours.dtype == torch.float32 and ours.shape == (head_dim // 2,)
    assert_close(ours, ref.float(), rtol=1e-6, atol=0)
    assert scale == ref_scale == 1.0
    # the definition itself: θ^(-2i/d)
    i = torch.arange(head_dim // 2, dtype=torch.float64)
    assert_close(ours.double(), theta ** (-2 * i / head_dim), rtol=1e-6, atol=0)


@pytest.mark.parametrize("head_dim", HEAD_DIMS)
@pytest.mark.parametrize("theta", THETAS)
@pytest.mark.parametrize("factor", (2.0, 4.0))
def test_linear_matches_hf(head_dim, theta, factor):
    ours, scale = inv_frequencies(head_dim, theta, RopeScaling("linear", factor))
    ref, ref_scale = hf_inv_freq(hf_config(head_dim, {"rope_type": "linear", "factor": factor, "rope_theta": theta}))
    assert_close(ours, ref.float(), rtol=1e-6, atol=0)
    assert scale == ref_scale == 1.0
    assert_close(ours * factor, inv_frequencies(head_dim, theta)[0], rtol=1e-6, atol=0)


@pytest.mark.parametrize("head_dim", HEAD_DIMS)
@pytest.mark.parametrize("theta", THETAS)
@pytest.mark.parametrize("factor", (2.0, 4.0, 8.0))
def test_static_ntk_is_a_larger_base(head_dim, theta, factor):
    # transformers has no static NTK rule: it is the default rule at θ·s^(d/(d-2)) ...
    ours, scale = inv_frequencies(head_dim, theta, RopeScaling("ntk", factor))
    new_theta = theta * factor ** (head_dim / (head_dim - 2))
    ref, _ = hf_inv_freq(hf_config(head_dim, {"rope_type": "default", "rope_theta": new_theta}))
    assert_close(ours, ref.float(), rtol=1e-5, atol=0)
    assert scale == 1.0
    # ... and the dynamic rule at the length where its effective factor s·n/L − (s−1) equals s
    L = 64
    n = L * (2 * factor - 1) / factor
    assert n == int(n)
    dyn_cfg = hf_config(head_dim, {"rope_type": "dynamic", "factor": factor, "rope_theta": theta}, max_pos=L)
    ref_dyn, _ = hf_inv_freq(dyn_cfg, seq_len=int(n))
    assert_close(ours, ref_dyn.float(), rtol=1e-5, atol=0)
    # NTK keeps the fastest channel (i = 0) and slows the slowest one by exactly s
    base, _ = inv_frequencies(head_dim, theta)
    assert ours[0] == base[0]
    assert_close(base[-1] / ours[-1], torch.tensor(factor), rtol=1e-5, atol=0)


@pytest.mark.parametrize("head_dim", HEAD_DIMS)
@pytest.mark.parametrize("theta", THETAS)
@pytest.mark.parametrize("seq_len", (None, 100, 512, 2048, 5000))
def test_dynamic_matches_hf(head_dim, theta, seq_len):
    L, factor = 512, 4.0
    ours, scale = inv_frequencies(head_dim, theta, RopeScaling("dynamic", factor, original_max_seq_len=L),
                                  seq_len=seq_len)
    cfg = hf_config(head_dim, {"rope_type": "dynamic", "factor": factor, "rope_theta": theta}, max_pos=L)
    ref, ref_scale = hf_inv_freq(cfg, seq_len=seq_len)
    assert_close(ours, ref.float(), rtol=1e-5, atol=0)
    assert scale == ref_scale == 1.0
    unscaled, _ = inv_frequencies(head_dim, theta)
    if seq_len is None or seq_len <= L:  # inside the training length dynamic NTK changes nothing
        assert_close(ours, unscaled, rtol=1e-6, atol=0)
    else:
        assert ours[-1] < unscaled[-1]


@pytest.mark.parametrize("head_dim", HEAD_DIMS)
@pytest.mark.parametrize("theta", THETAS)
@pytest.mark.parametrize("factor,L,betas", [(4.0, 4096, (32.0, 1.0)), (2.0, 256, (32.0, 1.0)),
                                            (8.0, 2048, (16.0, 2.0)), (16.0, 64, (32.0, 1.0))])
def test_yarn_matches_hf(head_dim, theta, factor, L, betas):
    beta_fast, beta_slow = betas
    ours, scale = inv_frequencies(head_dim, theta, RopeScaling("yarn", factor, L, beta_fast, beta_slow))
    params = {"rope_type": "yarn", "factor": factor, "rope_theta": theta, "original_max_position_embeddings": L,
              "beta_fast": beta_fast, "beta_slow": beta_slow}
    ref, ref_scale = hf_inv_freq(hf_config(head_dim, params, max_pos=int(L * factor)))
    assert_close(ours, ref.float(), rtol=1e-5, atol=0)
    # the attention temperature: cos and sin are multiplied by 0.1·ln(s) + 1
    assert scale == pytest.approx(ref_scale, rel=1e-12)
    assert scale == pytest.approx(0.1 * math.log(factor) + 1)
    # every channel lies between "keep" (extrapolate) and "PI" (interpolate)
    base, _ = inv_frequencies(head_dim, theta)
    assert torch.all(ours <= base * (1 + 1e-6)) and torch.all(ours >= base / factor * (1 - 1e-6))


def test_yarn_keeps_fast_channels_and_interpolates_slow_ones():
    d, theta, L, s = 128, 1e4, 4096, 8.0
    ours, _ = inv_frequencies(d, theta, RopeScaling("yarn", s, L))
    base, _ = inv_frequencies(d, theta)
    rotations = L * base / (2 * math.pi)  # full turns of each channel over the training length
    fast, slow = rotations > 32, rotations < 1
    assert fast.any() and slow.any()
    assert_close(ours[fast], base[fast], rtol=1e-6, atol=0)
    assert_close(ours[slow], base[slow] / s, rtol=1e-6, atol=0)


# --- cos/sin tables and the rotation itself ---------------------------------------------

@pytest.mark.parametrize("params", [{"rope_type": "default", "rope_theta": 1e6},
                                    {"rope_type": "linear", "factor": 4.0, "rope_theta": 1e4},
                                    {"rope_type": "yarn", "factor": 4.0, "rope_theta": 1e4,
                                     "original_max_position_embeddings": 256}])
def test_cos_sin_and_apply_rope_match_hf(params):
    torch.manual_seed(0)
    head_dim, B, H, T = 32, 2, 3, 40
    cfg = hf_config(head_dim, params, max_pos=1024)
    rotary = LlamaRotaryEmbedding(cfg)
    scaling = None
    if params["rope_type"] == "linear":
        scaling = RopeScaling("linear", params["factor"])
    elif params["rope_type"] == "yarn":
        scaling = RopeScaling("yarn", params["factor"], params["original_max_position_embeddings"])
    positions = torch.arange(T) + 7
    inv_freq, scale = inv_frequencies(head_dim, params["rope_theta"], scaling)
    cos, sin = rope_cos_sin(positions, inv_freq, scale)

    q, k = torch.randn(B, H, T, head_dim), torch.randn(B, H, T, head_dim)
    ref_cos, ref_sin = rotary(q, positions[None].expand(B, T))
    assert_close(cos, ref_cos[0], rtol=1e-5, atol=1e-6)
    assert_close(sin, ref_sin[0], rtol=1e-5, atol=1e-6)
    ref_q, ref_k = apply_rotary_pos_emb(q, k, ref_cos, ref_sin)
    assert_close(apply_rope(q, cos, sin), ref_q, rtol=1e-5, atol=1e-5)
    assert_close(apply_rope(k, cos, sin), ref_k, rtol=1e-5, atol=1e-5)


def test_rotation_preserves_norm_and_position_zero_is_identity():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 50, 64)
    inv_freq, _ = inv_frequencies(64, 1e4)
    cos, sin = rope_cos_sin(torch.arange(50), inv_freq)
    y = apply_rope(x, cos, sin)
    assert_close(y.norm(dim=-1), x.norm(dim=-1), rtol=1e-5, atol=1e-5)
    assert_close(y[:, :, 0], x[:, :, 0])
    assert not torch.allclose(y[:, :, 1:], x[:, :, 1:], atol=1e-3)


@pytest.mark.parametrize("theta", THETAS)
def test_scores_depend_only_on_relative_position(theta):
    torch.manual_seed(0)
    d = 64
    q, k = torch.randn(d, dtype=torch.float64), torch.randn(d, dtype=torch.float64)
    inv_freq, _ = inv_frequencies(d, theta)

    def score(m: int, n: int) -> float:
        cos, sin = rope_cos_sin(torch.tensor([m, n]), inv_freq, dtype=torch.float64)
        qm = apply_rope(q, cos[0], sin[0])
        kn = apply_rope(k, cos[1], sin[1])
        return float(qm @ kn)

    for r in (0, 1, 5, 37, 200):
        scores = [score(m + r, m) for m in (0, 3, 50, 400, 1000)]
        assert max(scores) - min(scores) < 1e-3 * (q.norm() * k.norm()), (r, scores)
    # ... and they do depend on it (a test that could fail)
    assert abs(score(10, 0) - score(0, 0)) > 1e-2


def test_interleaved_and_half_split_agree_after_permutation():
    """Meta's (2i, 2i+1) pairing on Meta weights == our (i, i+d/2) pairing on permuted weights."""
    torch.manual_seed(0)
    dim, n_heads, n_kv, T = 64, 4, 2, 12
    hd = dim // n_heads
    wq_meta, wk_meta = torch.randn(n_heads * hd, dim), torch.randn(n_kv * hd, dim)
    x = torch.randn(T, dim)
    positions = torch.arange(T) * 3
    inv_freq, _ = inv_frequencies(hd, 1e4)

    def heads(t, n):  # (T, n*hd) -> (n, T, hd)
        return t.view(T, n, hd).transpose(0, 1)

    q_meta = apply_rope_interleaved(heads(x @ wq_meta.T, n_heads), positions, inv_freq)
    k_meta = apply_rope_interleaved(heads(x @ wk_meta.T, n_kv), positions, inv_freq)
    wq, wk = interleaved_to_half(wq_meta, n_heads), interleaved_to_half(wk_meta, n_kv)
    cos, sin = rope_cos_sin(positions, inv_freq)
    q = apply_rope(heads(x @ wq.T, n_heads), cos, sin)
    k = apply_rope(heads(x @ wk.T, n_kv), cos, sin)

    rep = n_heads // n_kv
    scores_meta = q_meta @ k_meta.repeat_interleave(rep, 0).transpose(-1, -2)
    scores = q @ k.repeat_interleave(rep, 0).transpose(-1, -2)
    assert_close(scores, scores_meta, rtol=1e-4, atol=1e-4)
    # the rotated vectors themselves are the same channels, reordered: (0, 2, 4, …, 1, 3, 5, …)
    perm = torch.cat([torch.arange(0, hd, 2), torch.arange(1, hd, 2)])
    assert_close(q, q_meta[..., perm], rtol=1e-4, atol=1e-4)
    # the two permutations are inverses of each other
    assert torch.equal(half_to_interleaved(wq, n_heads), wq_meta)
    # without the permutation the scores differ (what a forgotten permutation does)
    q_wrong = apply_rope(heads(x @ wq_meta.T, n_heads), cos, sin)
    k_wrong = apply_rope(heads(x @ wk_meta.T, n_kv), cos, sin)
    wrong = q_wrong @ k_wrong.repeat_interleave(rep, 0).transpose(-1, -2)
    assert not torch.allclose(wrong, scores_meta, rtol=1e-2, atol=1e-2)


# --- wavelengths and the decay bound (Code Llama §2.4, App. G) --------------------------

def test_longest_wavelengths_match_the_paper():
    short = wavelengths(128, 1e4)
    long = wavelengths(128, 1e6)
    assert short.max() == pytest.approx(54_000, rel=0.01)  # ≈ 54k tokens
    assert long.max() == pytest.approx(5.1e6, rel=0.01)  # ≈ 5.1M tokens
    assert short.min() == pytest.approx(2 * math.pi, rel=1e-6)  # channel 0 turns once per 2π tokens
    assert torch.all(long[1:] > short[1:])
    # wavelengths grow geometrically with the channel index
    ratios = short[1:] / short[:-1]
    assert_close(ratios, torch.full_like(ratios, 1e4 ** (2 / 128)), rtol=1e-4, atol=0)


def test_pi_wavelengths_are_stretched_by_the_factor():
    assert_close(wavelengths(128, 1e4, RopeScaling("linear", 4.0)), 4 * wavelengths(128, 1e4), rtol=1e-6, atol=0)


def test_decay_bound_decays_slower_for_larger_theta():
    n = 4096
    b4, b6 = relative_decay_bound(128, 1e4, n), relative_decay_bound(128, 1e6, n)
    assert b4[0] == pytest.approx(b6[0]) and b4[0] > b4[-256:].mean() * 2
    # past a few hundred tokens the θ=1e6 bound stays higher: less bias towards short distances
    assert b6[1000:].mean() > b4[1000:].mean()


# --- validation --------------------------------------------------------------------------

def test_rope_scaling_validation_names_field_and_allowed_values():
    with pytest.raises(ValueError, match="RopeScaling.type='cubic'") as e:
        RopeScaling("cubic", 2.0)
    for kind in SCALING_TYPES:
        assert kind in str(e.value)
    with pytest.raises(ValueError, match=r"RopeScaling\.factor=0.*> 0"):
        RopeScaling("linear", 0)
    with pytest.raises(ValueError, match=r"RopeScaling\.factor=-2.0"):
        RopeScaling("ntk", -2.0)
    for kind in ("dynamic", "yarn"):
        with pytest.raises(ValueError, match="original_max_seq_len"):
            RopeScaling(kind, 2.0)


@pytest.mark.parametrize("head_dim,theta,field", [(15, 1e4, "head_dim=15"), (0, 1e4, "head_dim=0"),
                                                  (64, 0.0, "rope_theta=0.0"), (64, -1.0, "rope_theta=-1.0")])
def test_inv_frequencies_validation(head_dim, theta, field):
    with pytest.raises(ValueError, match=field):
        inv_frequencies(head_dim, theta)
