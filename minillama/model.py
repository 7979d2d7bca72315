"""The Llama 2 / Code Llama transformer, in one file.

Read it next to the paper: pre-norm RMSNorm, rotary position embeddings (``rope.py``),
grouped-query attention, a SwiGLU feed-forward block, no biases, an untied output head.
Code Llama keeps this architecture and changes only data, training and RoPE's θ.

Names follow Meta's code (``wq wk wv wo``, ``w1 w2 w3``, ``attention_norm``, ``ffn_norm``)
so a reader can hold both side by side.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from minillama.rope import RopeScaling, apply_rope, inv_frequencies, rope_cos_sin


@dataclass
class ModelConfig:
    dim: int = 256  # model width d
    n_layers: int = 6
    n_heads: int = 8  # query heads
    n_kv_heads: int | None = None  # key/value heads (GQA); None = n_heads (plain multi-head)
    vocab_size: int = 4096
    multiple_of: int = 256  # FFN width rounded up to a multiple of this (hardware friendliness)
    ffn_dim_multiplier: float | None = None  # 34B/70B widen the FFN with this
    norm_eps: float = 1e-5
    rope_theta: float = 10_000.0  # Llama 2: 1e4; Code Llama: 1e6
    rope_scaling: RopeScaling | None = None
    max_seq_len: int = 2048  # longest context the KV cache is sized for by default

    def __post_init__(self):
        if isinstance(self.rope_scaling, dict):
            self.rope_scaling = RopeScaling(**self.rope_scaling)
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        for name in ("dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "multiple_of", "max_seq_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"ModelConfig.{name}={value!r} must be a positive integer")
        if self.dim % self.n_heads:
            raise ValueError(f"ModelConfig.dim={self.dim} is not divisible by n_heads={self.n_heads}; "
                             f"allowed: a dim that is a multiple of n_heads")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"ModelConfig.n_kv_heads={self.n_kv_heads} does not divide n_heads={self.n_heads}; "
                             f"allowed: a divisor of {self.n_heads}")
        if self.head_dim % 2:
            raise ValueError(f"head_dim = dim / n_heads = {self.head_dim} must be even for RoPE")
        if not self.rope_theta > 0:
            raise ValueError(f"ModelConfig.rope_theta={self.rope_theta!r} must be > 0 (Llama 2: 1e4, Code Llama: 1e6)")
        if not self.norm_eps > 0:
            raise ValueError(f"ModelConfig.norm_eps={self.norm_eps!r} must be > 0")
        if self.ffn_dim_multiplier is not None and not self.ffn_dim_multiplier > 0:
            raise ValueError(f"ModelConfig.ffn_dim_multiplier={self.ffn_dim_multiplier!r} must be > 0 or None")
        if self.rope_scaling is not None and not isinstance(self.rope_scaling, RopeScaling):
            raise ValueError("ModelConfig.rope_scaling must be a RopeScaling, a dict of its fields, or None")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def ffn_dim(self) -> int:
        hidden = int(2 * 4 * self.dim / 3)  # SwiGLU has 3 matrices: 2/3 of 4d keeps the FLOPs of a 4d MLP
        if self.ffn_dim_multiplier is not None:
            hidden = int(self.ffn_dim_multiplier * hidden)
        return self.multiple_of * math.ceil(hidden / self.multiple_of)

    @classmethod
    def from_name(cls, name: str, **overrides) -> "ModelConfig":
        if name not in PRESETS:
            raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
        return replace(PRESETS[name], **overrides)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rope_scaling"] = self.rope_scaling.to_dict() if self.rope_scaling else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown ModelConfig fields {sorted(unknown)}; known fields: {sorted(known)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


PRESETS: dict[str, ModelConfig] = {
    # tests: a few hundred thousand parameters, GQA on so every path is exercised
    "debug": ModelConfig(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=512, multiple_of=32,
                         max_seq_len=512),
    # cpu profile: ~7M parameters, trains on a 2-core laptop in minutes
    "tiny": ModelConfig(dim=256, n_layers=6, n_heads=8, vocab_size=4096, multiple_of=256, max_seq_len=4096),
    # gpu profile: ~64M parameters, with GQA (as Code Llama 34B)
    "small": ModelConfig(dim=640, n_layers=12, n_heads=10, n_kv_heads=2, vocab_size=8192, multiple_of=256,
                         max_seq_len=8192),
    # the published shapes (Code Llama paper; Meta's params.json). Build them on the meta device.
    "codellama-7b": ModelConfig(dim=4096, n_layers=32, n_heads=32, vocab_size=32016, multiple_of=256,
                                rope_theta=1e6, max_seq_len=16384),
    "codellama-13b": ModelConfig(dim=5120, n_layers=40, n_heads=40, vocab_size=32016, multiple_of=256,
                                 rope_theta=1e6, max_seq_len=16384),
    "codellama-34b": ModelConfig(dim=8192, n_layers=48, n_heads=64, n_kv_heads=8, vocab_size=32000,
                                 multiple_of=256, ffn_dim_multiplier=1.0, rope_theta=1e6, max_seq_len=16384),
}


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # float32 for the statistics: in bf16 the mean of squares loses most of its digits
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return xf.type_as(x) * self.weight


class KVCache:
    """Keys and values of every layer, preallocated for ``max_len`` positions.

    ``k[layer]`` is ``[batch, n_kv_heads, max_len, head_dim]``; the model writes positions
    ``start_pos .. start_pos+T`` on each call. Only the n_kv_heads are stored: with GQA
    that is the whole memory saving. ``start_pos`` may also be a LongTensor ``[batch]``:
    rows at different lengths (batched sampling), each written at its own position.
    """

    def __init__(self, cfg: ModelConfig, batch_size: int, max_len: int | None = None,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        self.max_len = max_len or cfg.max_seq_len
        shape = (batch_size, cfg.n_kv_heads, self.max_len, cfg.head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layers)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layers)]

    def update(self, layer: int, start_pos: int | torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        B, T = k.shape[0], k.shape[2]
        per_row = torch.is_tensor(start_pos)
        end = (int(start_pos.max()) if per_row else start_pos) + T
        if end > self.max_len:
            raise ValueError(f"KV cache holds {self.max_len} positions, asked to write up to {end}; "
                             "create the cache with a larger max_len")
        if per_row:
            pos = start_pos[:, None] + torch.arange(T, device=k.device)  # (B, T)
            rows = torch.arange(B, device=k.device)[:, None]
            self.k[layer][rows, :, pos] = k.transpose(1, 2)  # indexed as (B, T, nkv, hd)
            self.v[layer][rows, :, pos] = v.transpose(1, 2)
        else:
            self.k[layer][:B, :, start_pos:end] = k
            self.v[layer][:B, :, start_pos:end] = v
        return self.k[layer][:B, :, :end], self.v[layer][:B, :, :end]


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig, layer_id: int):
        super().__init__()
        self.layer_id = layer_id
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * cfg.head_dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.n_kv_heads * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.dim, bias=False)

    def forward(self, x, cos, sin, start_pos: int = 0, cache: KVCache | None = None):
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, nh, T, hd)
        k = self.wk(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)  # (B, nkv, T, hd)
        v = self.wv(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if hasattr(cache, "attend"):  # a cache with its own layout attends itself (sampling.PromptCache)
            return self.wo(cache.attend(self.layer_id, q, k, v).transpose(1, 2).reshape(B, T, -1))
        if cache is not None:
            k, v = cache.update(self.layer_id, start_pos, k, v)  # now (B, nkv, start_pos+T, hd)
        S = k.shape[2]

        if torch.is_tensor(start_pos):
            # rows at different positions: row b's query i sees its own keys 0 .. start_pos[b]+i
            # (later slots of the cache belong to no one yet, or hold a longer row's keys)
            last = start_pos[:, None] + torch.arange(T, device=x.device)  # (B, T)
            mask = torch.arange(S, device=x.device) <= last[:, None, :, None]  # (B, 1, T, S)
            causal = False
        elif start_pos == 0 and S == T:
            mask, causal = None, True  # plain causal forward: SDPA picks its fastest kernel
        elif T == 1:
            mask, causal = None, False  # one new token sees every cached position
        else:
            # a chunk of T queries after start_pos cached keys: query i sees keys 0 .. start_pos+i.
            # (Code Llama's reference code builds a T×T mask here and gets this case wrong.)
            mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=S - T)
            causal = False
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           enable_gqa=self.n_kv_heads != self.n_heads)
        return self.wo(y.transpose(1, 2).reshape(B, T, -1))


class FeedForward(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.w1 = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)  # gate
        self.w2 = nn.Linear(cfg.ffn_dim, cfg.dim, bias=False)  # down
        self.w3 = nn.Linear(cfg.dim, cfg.ffn_dim, bias=False)  # up

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))  # SwiGLU


class TransformerBlock(nn.Module):
    def __init__(self, cfg: ModelConfig, layer_id: int):
        super().__init__()
        self.attention = Attention(cfg, layer_id)
        self.feed_forward = FeedForward(cfg)
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)

    def forward(self, x, cos, sin, start_pos=0, cache=None):
        x = x + self.attention(self.attention_norm(x), cos, sin, start_pos, cache)
        return x + self.feed_forward(self.ffn_norm(x))


class Transformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(TransformerBlock(cfg, i) for i in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)  # untied, as Llama 2
        self._rope_cache: tuple | None = None
        if self.tok_embeddings.weight.device.type != "meta":
            self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self, std: float = 0.02):
        """GPT-2-style init: N(0, 0.02), residual projections shrunk by 1/sqrt(2·n_layers)
        so the residual stream's variance does not grow with depth."""
        for name, p in self.named_parameters():
            if name.endswith("norm.weight"):
                nn.init.ones_(p)
            elif name.endswith(("wo.weight", "w2.weight")):
                nn.init.normal_(p, 0.0, std / math.sqrt(2 * self.cfg.n_layers))
            else:
                nn.init.normal_(p, 0.0, std)

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n - self.tok_embeddings.weight.numel() if exclude_embeddings else n

    def rope_tables(self, start_pos: int, T: int, device, dtype):
        """cos/sin for positions start_pos .. start_pos+T, cached across calls."""
        cfg, end = self.cfg, start_pos + T
        dynamic = cfg.rope_scaling is not None and cfg.rope_scaling.type == "dynamic"
        # keyed on everything the tables depend on, so a changed θ or scaling rule rebuilds them;
        # dynamic NTK recomputes θ from the current length, as transformers does
        key = (device, dtype, cfg.head_dim, cfg.rope_theta, cfg.rope_scaling, end if dynamic else None)
        if self._rope_cache is None or self._rope_cache[0] != key or self._rope_cache[1].shape[0] < end:
            inv_freq, scale = inv_frequencies(cfg.head_dim, cfg.rope_theta, cfg.rope_scaling, seq_len=end)
            n = end if dynamic else max(end, cfg.max_seq_len)
            cos, sin = rope_cos_sin(torch.arange(n, device=device), inv_freq.to(device), scale, dtype)
            self._rope_cache = (key, cos, sin)
        _, cos, sin = self._rope_cache
        return cos[start_pos:end], sin[start_pos:end]

    def forward(self, tokens: torch.Tensor, start_pos: int | torch.Tensor = 0,
                cache: KVCache | None = None) -> torch.Tensor:
        """Logits ``[B, T, vocab]`` for tokens ``[B, T]`` at positions ``start_pos .. start_pos+T``.

        With a ``cache``, keys and values of earlier positions come from it, and the new
        ones are written into it. ``start_pos`` may be a LongTensor ``[B]`` of per-row
        positions (with a cache): rows of different lengths then decode side by side, each
        seeing only its own positions (``minillama.sampling``).
        """
        if tokens.dtype != torch.long or tokens.dim() != 2:
            raise TypeError(f"tokens must be a LongTensor [batch, seq], got {tokens.dtype} {tuple(tokens.shape)}")
        per_row = torch.is_tensor(start_pos)
        if (per_row or start_pos > 0) and cache is None:
            raise ValueError("start_pos > 0 needs the KV cache that holds the earlier positions")
        B, T = tokens.shape
        h = self.tok_embeddings(tokens)
        if per_row:  # each row's own angles: (B, 1, T, hd) broadcasts over the heads
            pos = start_pos[:, None] + torch.arange(T, device=h.device)
            cos, sin = self.rope_tables(0, int(pos.max()) + 1, h.device, h.dtype)
            cos, sin = cos[pos][:, None], sin[pos][:, None]
        else:
            cos, sin = self.rope_tables(start_pos, T, h.device, h.dtype)
        for layer in self.layers:
            h = layer(h, cos, sin, start_pos, cache)
        return self.output(self.norm(h))

    def new_cache(self, batch_size: int, max_len: int | None = None) -> KVCache:
        w = self.tok_embeddings.weight
        return KVCache(self.cfg, batch_size, max_len, device=w.device, dtype=w.dtype)


def count_parameters(cfg: ModelConfig) -> int:
    """Parameter count without building the model."""
    d, hd = cfg.dim, cfg.head_dim
    attn = d * hd * (2 * cfg.n_heads + 2 * cfg.n_kv_heads)
    ffn = 3 * d * cfg.ffn_dim
    per_layer = attn + ffn + 2 * d
    return cfg.n_layers * per_layer + 2 * cfg.vocab_size * d + d


def flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
    """Training FLOPs per token: 6·N for the matrices plus the attention scores
    (6·n_layers·seq_len·dim, PaLM appendix B). Embedding lookups are not matmuls."""
    n_matmul = count_parameters(cfg) - cfg.vocab_size * cfg.dim - (2 * cfg.n_layers + 1) * cfg.dim
    return 6 * n_matmul + 6 * cfg.n_layers * seq_len * cfg.dim
