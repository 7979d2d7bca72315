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
from minillama.long_context.retrieval import RetrievalFiller, key_retrieval, prompt_counts
from minillama.profiles import get_profile
from minillama.tokenizer import get_tokenizer
from minillama.training.pretrain import get_pretrained


def study_inputs(profile, choice: str = "reference"):
    """``(base, tokenizer, corpus, L)`` of the study: the shipped long-trained coding model on
    packages of held-out code-world modules (``"reference"``, notebook 04's default), or notebook
    03's FIM model on the standard library (``"own"``). ``L`` is the base's pretraining length."""
    if choice == "reference":
        import json

        from minillama.codeworld.corpus import world_corpus
        from minillama.codeworld.reference import load_reference, long_dir
        base, tok = load_reference(directory=long_dir())
        L = json.loads((long_dir() / "result.json").read_text())["recipe"]["seq_len"]
        # 32 held-out packages: ~29 reach 16L = 4,097 tokens, enough for the profile's 24 windows
        # (the first 12 are the packages of the default, whose modules come first in the seed's stream)
        return base.float().eval(), tok, world_corpus(test_packages=32), L
    if choice == "own":
        return get_pretrained(profile, fim=True).float().eval(), get_tokenizer(profile), get_corpus(profile), \
            profile.seq_len
    raise ValueError(f"model {choice!r}: use 'reference' (the shipped long-trained model) or 'own'")


def run_experiment(profile=None, log: Callable[[str], None] | None = print, retrieval: bool = True,
                   cost: bool = True, model: str = "reference") -> dict:
    """The whole study for a profile: fine-tune (cached), perplexity vs context, key retrieval,
    cost. Used by the CLI; the notebook runs the same steps one section at a time."""
    profile = get_profile(profile) if profile is None or isinstance(profile, str) else profile
    settings = profile.long_context
    torch.manual_seed(0)
    base, tok, corpus, L = study_inputs(profile, model)
    models, info = all_models(base, lambda: train_stream(corpus, tok), L, settings, profile.name, log,
                              data=corpus.source)
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
                                             prompt_counts(settings, r_lengths)) for k, m in models.items()}
    if cost:
        out["cost"] = forward_cost(base, settings.cost_lengths)
    return out
