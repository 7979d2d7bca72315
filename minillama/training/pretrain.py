"""Pretrained models per profile, in one call: :func:`get_pretrained`.

Every notebook that needs a pretrained model calls ``get_pretrained(profile, fim=True)``. The
first call trains it (resuming an interrupted run) under
``data/artifacts/<profile>/pretrain-{fim,l2r}/``; later calls load the final checkpoint. So a
notebook runs on its own, and the expensive part happens once per machine.

A run directory holds ``ckpt.pt`` (plain tensors: ``torch.load(path, weights_only=True)`` reads
it), the run's ``config.json``, ``metrics.jsonl`` and a copy of its ``tokenizer.model``, so
``python -m minillama generate|evaluate|convert --checkpoint <run dir>`` needs nothing else.
"""

from __future__ import annotations

from pathlib import Path

from minillama.paths import artifacts_dir
from minillama.model import ModelConfig, Transformer
from minillama.data.pipeline import get_streams, tokenizer_fingerprint
from minillama.profiles import Profile, get_profile
from minillama.training.checkpoint import CheckpointError, load_checkpoint
from minillama.training.trainer import TrainConfig, TrainResult, read_metrics, train, training_code_key


def _profile(profile) -> Profile:
    return profile if isinstance(profile, Profile) else get_profile(profile)


def run_dir(profile=None, fim: bool = True) -> Path:
    p = _profile(profile)
    return artifacts_dir(p.name) / ("pretrain-fim" if fim else "pretrain-l2r")


def train_config(profile=None, fim: bool = True, **overrides) -> TrainConfig:
    """The profile's pretraining settings (the FIM and the no-FIM run share all of them)."""
    p = _profile(profile)
    cfg = dict(steps=p.train_steps, batch_size=p.batch_size, grad_accum=p.grad_accum, lr=p.lr,
               warmup=p.warmup, eval_interval=p.eval_interval, eval_batches=p.eval_batches,
               checkpoint_interval=p.checkpoint_interval, out_dir=str(run_dir(p, fim)), seed=0,
               device=p.device, dtype=p.dtype, compile=p.compile,
               # the gpu recipe (bf16 autocast + compile + fused AdamW) keeps its fused kernel in the CPU dry run
               fused_adamw=True if p.dtype == "bfloat16" else None)
    cfg.update(overrides)
    return TrainConfig(**cfg)


def model_config(profile=None, vocab_size: int | None = None) -> ModelConfig:
    p = _profile(profile)
    return ModelConfig.from_name(p.model, vocab_size=vocab_size or p.vocab_size)


def save_run_tokenizer(out_dir: str | Path, tok) -> Path:
    """Copy the tokenizer into a run directory (atomically: ranks may write it at once)."""
    import os

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "tokenizer.model"
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(tok.sp.serialized_model_proto())
    os.replace(tmp, path)
    return path


def pretrain(profile=None, fim: bool = True, verbose: bool = True, **overrides) -> TrainResult:
    """Train (or finish training) the profile's model, with or without FIM."""
    from minillama.tokenizer import get_tokenizer

    p = _profile(profile)
    tok = get_tokenizer(p)
    streams = get_streams(p, fim=fim, verbose=verbose)
    cfg = train_config(p, fim, progress=verbose, **overrides)
    if cfg.out_dir:
        save_run_tokenizer(cfg.out_dir, tok)
    val = {"val_l2r": streams["val_l2r"], "val_fim": streams["val_fim"]}
    return train(cfg, model_config(p, tok.vocab_size), streams["train"], val,
                 tokenizer_hash=tokenizer_fingerprint(tok))


def get_pretrained(profile=None, fim: bool = True, train_if_missing: bool = True,
                   verbose: bool = True) -> Transformer:
    """The profile's pretrained model (eval mode): loaded if cached and complete, else trained."""
    from minillama.tokenizer import get_tokenizer

    p = _profile(profile)
    out = run_dir(p, fim)
    want = train_config(p, fim)
    try:
        state = load_checkpoint(out, map_location=p.device)
        done = state["step"] >= want.steps
        saved = state["identity"]
        same = (saved["train"] == want.identity() and saved.get("code") == training_code_key()
                and saved["tokenizer"] == tokenizer_fingerprint(get_tokenizer(p))
                and saved["data"] == get_streams(p, fim=fim)["train"].fingerprint)
    except CheckpointError:
        state, done, same = None, False, False
    if state is not None and done and same:
        model = Transformer(ModelConfig.from_dict(state["identity"]["model"])).to(p.device)
        model.load_state_dict(state["model"])
        if not (out / "tokenizer.model").is_file():  # a run made before runs kept their tokenizer
            save_run_tokenizer(out, get_tokenizer(p))
        if verbose:
            print(f"pretrained ({'FIM' if fim else 'no FIM'}): loaded step {state['step']} from {out}")
        return model.eval()
    if not train_if_missing:
        raise FileNotFoundError(f"no finished {p.name} pretraining run in {out}; call get_pretrained "
                                f"with train_if_missing=True or run `python -m minillama train`")
    if state is not None and not same:
        # a cache made with other settings (changed profile, tokenizer or code): set it aside, retrain
        import shutil

        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        print(f"{out} held a run with other settings; moved it to {old.name} and training anew")
    return pretrain(p, fim, verbose=verbose).model


def metrics(profile=None, fim: bool = True) -> tuple[list[dict], list[dict]]:
    """``(train records, eval records)`` of the profile's pretraining run."""
    return read_metrics(run_dir(profile, fim))


# --- measuring the ablation ---------------------------------------------------------------
def middle_mask(tok):
    """A target mask for :func:`minillama.trainer.evaluate`: only tokens a model writes when it
    infills, i.e. those after ``MID`` up to and including ``EOT`` (PSM and SPM alike)."""
    import torch

    def mask(x, y):
        # position t predicts y[t]; it is inside a middle when the last MID/EOT seen in x[..t] is MID
        is_mid = (x == tok.middle_id).long()
        is_end = (x == tok.eot_id).long() | (x == tok.bos_id).long()
        marker = torch.where(is_mid.bool(), 1, torch.where(is_end.bool(), -1, 0))
        idx = torch.arange(x.shape[1], device=x.device).expand_as(x)
        last = torch.where(marker != 0, idx, -1).cummax(dim=1).values
        state = torch.where(last >= 0, marker.gather(1, last.clamp(min=0)), torch.zeros_like(marker))
        return state == 1
    return mask


def single_line_tasks(texts, n: int, seed: int = 0, prefix_chars: int = 384, suffix_chars: int = 256,
                      min_len: int = 8, max_len: int = 60) -> list[tuple[str, str, str]]:
    """``(prefix, line, suffix)`` tasks: one whole non-blank line of held-out code to infill
    (as HumanEval-infilling's single-line set), with limited context on both sides."""
    import random

    rng = random.Random(seed)
    candidates = []
    for ti, text in enumerate(texts):
        pos = 0
        for line in text.splitlines(keepends=True):
            body = line.strip()
            if min_len <= len(body) <= max_len and not body.startswith("#") and pos > 40:
                candidates.append((ti, pos, len(line)))
            pos += len(line)
    picks = rng.sample(candidates, min(n, len(candidates)))
    tasks = []
    for ti, pos, length in sorted(picks):
        text = texts[ti]
        # the line's indentation stays in the prefix: the model writes the code itself
        indent = len(text[pos:pos + length]) - len(text[pos:pos + length].lstrip(" \t"))
        start = pos + indent
        tasks.append((text[max(0, start - prefix_chars):start], text[start:pos + length - 1],
                      text[pos + length - 1:pos + length - 1 + suffix_chars]))
    return tasks


def infill_exact_match(model, tok, tasks, fim: bool = True, max_new_tokens: int = 32,
                       batch_size: int = 16) -> dict:
    """Exact match of the generated line. ``fim=True``: a PSM infilling prompt (prefix and
    suffix), stop at EOT. ``fim=False``: the left-to-right baseline, prefix only, stop at the
    end of the line: all a model trained without FIM can do."""
    from minillama.fim import infilling_prompt
    from minillama.generate import generate

    room = model.cfg.max_seq_len - max_new_tokens
    prompts = []
    for prefix, _, suffix in tasks:
        if fim:  # too long: drop the far ends of prefix and suffix, never the sentinels
            ids = infilling_prompt(tok, prefix, suffix)
            while len(ids) > room and (prefix or suffix):
                if prefix:
                    prefix = prefix[max(1, len(prefix) // 8):]
                else:
                    suffix = suffix[:-max(1, len(suffix) // 8)]
                ids = infilling_prompt(tok, prefix, suffix)
            prompts.append(ids)
        else:
            prompts.append(tok.encode(prefix, bos=True)[-room:])
    stops = [tok.eot_id, tok.eos_id]
    hits, stopped, outputs = 0, 0, []
    for i in range(0, len(prompts), batch_size):
        outs = generate(model, prompts[i:i + batch_size], max_new_tokens, stop_ids=stops)
        for (prefix, line, _), out in zip(tasks[i:i + batch_size], outs):
            text = tok.decode_infilling(out) if fim else tok.decode(tok.encode(prefix) + out)[len(prefix):]
            guess = text.split("\n")[0] if not fim else text
            outputs.append(guess)
            hits += guess.strip() == line.strip()
            stopped += len(out) < max_new_tokens  # a stop token ended it (stop tokens are not returned)
    n = max(len(tasks), 1)
    return {"tasks": len(tasks), "exact_match": hits / n, "stopped": stopped / n, "outputs": outputs}


def psm_middles(data, tok, limit: int | None = None) -> list[tuple[list[int], list[int], list[int]]]:
    """``(prefix, middle, suffix)`` token ids of the PSM examples packed in ``data`` (a FIM
    validation stream), in row order. In PSM the three parts are encoded separately, so the same
    middle tokens can be scored in FIM order and in natural order; SPM encodes prefix and middle
    together and is left out."""
    out = []
    for row in data.rows:
        row = [int(t) for t in row]
        for start, t in enumerate(row[:-1]):
            if t != tok.prefix_id or row[start + 1] == tok.suffix_id:
                continue  # not the start of a PSM example
            try:
                suf = row.index(tok.suffix_id, start)
                mid = row.index(tok.middle_id, suf)
                end = row.index(tok.eot_id, mid)
            except ValueError:
                continue  # cut by the row's end
            out.append((row[start + 1:suf], row[mid + 1:end], row[suf + 1:mid]))
            if limit is not None and len(out) >= limit:
                return out
    return out


def middle_loss(model, tok, examples, order: str, batch_size: int = 16) -> float:
    """Mean loss of ``model`` on the middle tokens of ``examples`` (from :func:`psm_middles`),
    EOT excluded, written either as Code Llama's PSM prompt (``order="fim"``:
    ``BOS PRE prefix SUF suffix MID middle``) or as plain code (``order="natural"``:
    ``BOS prefix middle suffix``, the only way a model trained without FIM has seen code).
    The same middle tokens are scored in both orders, so the two numbers compare fairly."""
    per = middle_losses(model, tok, examples, order, batch_size)
    return sum(m * n for m, n in zip(per["loss"], per["tokens"])) / max(sum(per["tokens"]), 1)


def middle_losses(model, tok, examples, order: str, batch_size: int = 16) -> dict[str, list]:
    """Per middle: ``{"loss": [mean loss of each middle], "tokens": [its tokens]}``, in the order of
    ``examples``; :func:`middle_loss` is their token-weighted mean. Kept per middle so that two
    models scored on the same middles can be compared with a paired bootstrap."""
    import torch
    import torch.nn.functional as F

    if order not in ("fim", "natural"):
        raise ValueError(f"order must be 'fim' or 'natural', got {order!r}")
    seqs = []
    for prefix, middle, suffix in examples:
        if order == "fim":
            head = [tok.bos_id, tok.prefix_id, *prefix, tok.suffix_id, *suffix, tok.middle_id]
            seqs.append((head + middle, len(head)))
        else:
            head = [tok.bos_id, *prefix]
            seqs.append((head + middle + suffix, len(head)))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    losses, tokens = [], []
    with torch.no_grad():
        for i in range(0, len(seqs), batch_size):
            chunk = seqs[i:i + batch_size]
            width = max(len(s) for s, _ in chunk) - 1
            x = torch.full((len(chunk), width), tok.eos_id, dtype=torch.long)
            y = torch.full((len(chunk), width), -100, dtype=torch.long)
            for j, (s, head_len) in enumerate(chunk):
                n_mid = len(examples[i + j][1])
                x[j, :len(s) - 1] = torch.tensor(s[:-1])
                # position t predicts s[t+1]; the middle is s[head_len : head_len + n_mid]
                y[j, head_len - 1:head_len - 1 + n_mid] = torch.tensor(s[head_len:head_len + n_mid])
            logits = model(x.to(device)).float()
            nll = F.cross_entropy(logits.transpose(1, 2), y.to(device), ignore_index=-100, reduction="none")
            counts = (y != -100).sum(dim=1)
            sums = nll.sum(dim=1).cpu()
            losses += [float(sm / max(int(c), 1)) for sm, c in zip(sums, counts)]
            tokens += [int(c) for c in counts]
    model.train(was_training)
    return {"loss": losses, "tokens": tokens}


def row_losses(model, data, batch_size: int) -> list[float]:
    """Mean next-token loss of each row of ``data`` (a packed validation stream; every row has the
    same number of targets, so their plain mean is :func:`~minillama.training.trainer.validation_loss`).
    Kept per row so that two models scored on the same rows can be compared with a paired bootstrap."""
    import torch
    import torch.nn.functional as F

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[float] = []
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            x, y = data.batch(range(start, min(start + batch_size, len(data))))
            logits = model(x.to(device)).float()
            out += F.cross_entropy(logits.transpose(1, 2), y.to(device), reduction="none").mean(dim=1).tolist()
    model.train(was_training)
    return out
