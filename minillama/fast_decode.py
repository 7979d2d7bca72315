"""Batch-1 greedy decoding with less work per token than :func:`minillama.generate.generate`.

``generate.py`` stays the readable path; this one does the same arithmetic with fewer operator
calls per token, which is what a small model's decode step is made of on a CPU (the weights of
``tiny`` are read in well under a millisecond; the rest is a few hundred small calls):

* q, k and v come out of one matrix product (``wq``, ``wk``, ``wv`` stacked once), as do the gate
  and up projections of the SwiGLU (``w1``, ``w3``);
* RMSNorm is one ``F.rms_norm`` call; RoPE rotates q and k together;
* the KV cache is one preallocated tensor per layer, written in place at each position;
* everything runs under ``torch.inference_mode`` (no autograd bookkeeping).

:func:`greedy` gives the tokens ``generate(model, [prompt], n)`` gives (tests/test_fast_decode.py
checks it; ``bench/bench_sampling.py`` measures both).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from minillama.model import Transformer


class FastDecoder:
    """The weights of ``model`` rearranged for single-token steps (made once, reused per call)."""

    def __init__(self, model: Transformer):
        cfg = model.cfg
        self.model, self.cfg = model, cfg
        self.nh, self.nkv, self.hd = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        with torch.no_grad():
            self.layers = [(layer.attention_norm.weight, layer.ffn_norm.weight,
                            torch.cat([layer.attention.wq.weight, layer.attention.wk.weight,
                                       layer.attention.wv.weight]).contiguous(),
                            layer.attention.wo.weight,
                            torch.cat([layer.feed_forward.w1.weight, layer.feed_forward.w3.weight]).contiguous(),
                            layer.feed_forward.w2.weight)
                           for layer in model.layers]
        self.eps = cfg.norm_eps

    @torch.inference_mode()
    def greedy(self, prompt: Sequence[int], max_new_tokens: int, stop_ids: Sequence[int] = ()) -> list[int]:
        model, cfg = self.model, self.cfg
        device = model.tok_embeddings.weight.device
        dtype = model.tok_embeddings.weight.dtype
        P, nh, nkv, hd = len(prompt), self.nh, self.nkv, self.hd
        total = P + max_new_tokens
        cache = model.new_cache(1, total)
        # the prompt through the model's own forward (one call): it fills the cache
        logits = model(torch.tensor([list(prompt)], device=device), 0, cache)[0, -1]
        cos, sin = model.rope_tables(0, total, device, dtype)  # (total, hd)
        half = hd // 2
        q_end, k_end = nh * hd, (nh + nkv) * hd
        ffn = cfg.ffn_dim
        emb, norm_w, out_w = model.tok_embeddings.weight, model.norm.weight, model.output.weight
        stops = set(stop_ids)
        out: list[int] = []
        nxt = int(logits.argmax())
        for pos in range(P, total):
            if nxt in stops:
                break
            out.append(nxt)
            if len(out) == max_new_tokens:
                break
            h = emb[nxt].view(1, 1, -1)
            c, s = cos[pos], sin[pos]
            for i, (an, fn, wqkv, wo, w13, w2) in enumerate(self.layers):
                qkv = F.linear(F.rms_norm(h, (h.shape[-1],), an, self.eps), wqkv).view(nh + 2 * nkv, hd)
                qk = qkv[:nh + nkv]
                rot = torch.cat([-qk[:, half:], qk[:, :half]], dim=-1)
                qk = qk * c + rot * s  # RoPE on q and k at once (half-split pairing, as rope.apply_rope)
                cache.k[i][0, :, pos] = qk[nh:]
                cache.v[i][0, :, pos] = qkv[nh + nkv:]
                y = F.scaled_dot_product_attention(qk[:nh].view(1, nh, 1, hd), cache.k[i][:, :, :pos + 1],
                                                   cache.v[i][:, :, :pos + 1], enable_gqa=nkv != nh)
                h = h + F.linear(y.view(1, 1, -1), wo)
                gu = F.linear(F.rms_norm(h, (h.shape[-1],), fn, self.eps), w13)
                h = h + F.linear(F.silu(gu[..., :ffn]) * gu[..., ffn:], w2)
            nxt = int(F.linear(F.rms_norm(h, (h.shape[-1],), norm_w, self.eps), out_w).argmax())
        return out


def greedy(model: Transformer, prompt: Sequence[int], max_new_tokens: int, stop_ids: Sequence[int] = ()) -> list[int]:
    """``generate(model, [prompt], max_new_tokens, stop_ids=stop_ids)[0]``, faster."""
    return FastDecoder(model).greedy(prompt, max_new_tokens, stop_ids)
