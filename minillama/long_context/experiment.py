"""The whole long-context study for a profile, as ``python -m minillama long-context`` runs it;
notebook 04 runs the same steps one section at a time."""

from __future__ import annotations

from typing import Callable

import torch

from minillama.data.corpus import get_corpus
from minillama.long_context.cost import forward_cost
from minillama.long_context.finetune import all_models, train_stream
from minillama.long_context.perplexity import (context_sweep, eval_windows, format_ppl_table, long_documents,
                                               sweep_ppl, token_losses)
from minillama.long_context.retrieval import RetrievalFiller, key_retrieval
from minillama.profiles import get_profile
from minillama.tokenizer import get_tokenizer
from minillama.training.pretrain import get_pretrained


def run_experiment(profile=None, log: Callable[[str], None] | None = print, retrieval: bool = True,
                   cost: bool = True) -> dict:
    """The whole study for a profile: fine-tune (cached), perplexity vs context, key retrieval,
    cost. Used by the CLI; the notebook runs the same steps one section at a time."""
    profile = get_profile(profile) if profile is None or isinstance(profile, str) else profile
    settings = profile.long_context
    torch.manual_seed(0)
    corpus, tok = get_corpus(profile), get_tokenizer(profile)
    base = get_pretrained(profile, fim=True).float().eval()
    L = profile.seq_len
    models, info = all_models(base, lambda: train_stream(corpus, tok), L, settings, profile.name, log)
    T_max = settings.max_multiple * L
    windows = eval_windows(long_documents(corpus, tok, "test", T_max + 1), T_max + 1, settings.eval_windows)
    lengths = [L * m for m in (1, 2, 4, 8, 16) if m <= settings.max_multiple]
    ppl = {}
    for k, m in models.items():
        ppl[k] = sweep_ppl(context_sweep(m, windows, lengths, L, full_losses=token_losses(m, windows)))
    out = {"ppl": ppl, "lengths": lengths, "info": info, "n_windows": len(windows)}
    if log:
        log(f"perplexity of the last {L} tokens of {len(windows)} held-out windows, given T tokens of context:")
        log(format_ppl_table(ppl, L))
    if retrieval:
        filler = RetrievalFiller.from_docs(corpus.docs("test"), tok)
        r_lengths = [int(m * L) for m in settings.retrieval_multiples]
        out["retrieval"] = {k: key_retrieval(m, tok, filler, r_lengths, settings.retrieval_positions,
                                             settings.retrieval_prompts) for k, m in models.items()}
    if cost:
        out["cost"] = forward_cost(base, settings.cost_lengths)
    return out
