"""Token healing: let the model rewrite the prompt's last token.

A prompt that ends inside a word ends with a token the model rarely saw there (``▁re`` where
training always had ``▁return``). This happens to SPM infilling prompts on random spans: in
training, SPM encodes prefix and middle *together*, so its prefix never ends in a fragment;
the paper finds SPM bad on random-span infilling and suggests token healing without trying it.

Healing (as in Guidance): back off the last prompt token, then let the model regenerate it,
allowing at first only tokens consistent with the removed text, i.e. a token whose text starts
with what is left to cover, or is a prefix of it. Once the removed text is covered, decoding
continues unconstrained. This module is the course's one implementation; notebook 02 shows it on
a toy, :mod:`minillama.evaluation.course_models` uses it on the course's models.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from minillama.tokenizer import Tokenizer

NextLogitsFn = Callable[[list[int]], torch.Tensor]  # ids -> logits [vocab] of the next token


def piece_texts(tok: Tokenizer) -> list[str | None]:
    """The text each id stands for mid-sequence (``▁`` -> space); None for special pieces
    and for byte pieces that are not a whole character on their own. Cached on ``tok``."""
    cached = getattr(tok, "_piece_texts", None)
    if cached is not None:
        return cached
    out: list[str | None] = []
    for i in range(tok.vocab_size):
        piece = tok.id_to_piece(i)
        if tok.sp.is_control(i) or tok.sp.is_unknown(i):
            out.append(None)
        elif tok.sp.is_byte(i):
            b = int(piece[3:5], 16)
            out.append(chr(b) if b < 0x80 else None)
        else:
            out.append(piece.replace("▁", " "))
    tok._piece_texts = out
    return out


def token_boundaries(tok: Tokenizer, text: str) -> set[int]:
    """Character offsets in ``text`` where a token of ``tok.encode(text)`` ends (0 included).

    A FIM cut at any other offset splits a token. Bytes of a multi-byte character count as
    one position, reached when the character is complete.
    """
    texts = piece_texts(tok)
    ends, pos, pending = {0}, 0, b""
    for k, i in enumerate(tok.encode(text)):
        if tok.sp.is_byte(i):
            pending += bytes([int(tok.id_to_piece(i)[3:5], 16)])
            try:
                pos += len(pending.decode("utf-8"))
            except UnicodeDecodeError:
                continue  # inside a character: not a boundary
            pending = b""
        else:
            piece = texts[i] or ""
            pos += len(piece) - (k == 0 and piece.startswith(" "))  # the dummy-prefix space
        ends.add(pos)
    return ends


def heal_prompt(tok: Tokenizer, prompt_ids: Sequence[int], back_off: int = 1,
                texts: list[str | None] | None = None) -> tuple[list[int], str]:
    """Remove the last ``back_off`` prompt tokens; return the kept ids and the removed text.

    Special tokens are never removed (healing stops at e.g. ``[MID]``), nor is the first id: in a
    bare ``enc(prefix)`` it carries SentencePiece's dummy space, whose text is not in the document.
    """
    texts = texts or piece_texts(tok)
    ids = list(prompt_ids)
    removed = ""
    for _ in range(back_off):
        if len(ids) < 2 or texts[ids[-1]] is None:
            break
        removed = texts[ids.pop()] + removed
    return ids, removed


def allowed_ids(texts: list[str | None], remaining: str) -> list[int]:
    """Tokens consistent with covering ``remaining``: their text starts with it, or is a prefix of it."""
    return [i for i, t in enumerate(texts) if t and (t.startswith(remaining) or remaining.startswith(t))]


def healed_start(next_logits: NextLogitsFn, tok: Tokenizer, prompt_ids: Sequence[int], removed: str,
                 max_steps: int = 8, texts: list[str | None] | None = None) -> list[int]:
    """The constrained first tokens of healing: greedy among the tokens consistent with what is
    left of ``removed``, until it is covered (or ``max_steps``). Returns those tokens."""
    texts = texts or piece_texts(tok)
    ids, new, remaining = list(prompt_ids), [], removed
    while remaining and len(new) < max_steps:
        allowed = allowed_ids(texts, remaining)
        if not allowed:  # only byte pieces could continue: stop constraining, decode freely
            break
        logits = next_logits(ids).float()
        t = allowed[int(logits[torch.tensor(allowed, device=logits.device)].argmax())]
        new.append(t)
        ids.append(t)
        remaining = remaining[min(len(remaining), len(texts[t])):]
    return new


def healed_generate(next_logits: NextLogitsFn, tok: Tokenizer, prompt_ids: Sequence[int],
                    max_new_tokens: int, stop_ids: Sequence[int] = (), back_off: int = 1,
                    texts: list[str | None] | None = None) -> tuple[list[int], str]:
    """Greedy generation with token healing. Returns ``(new ids after the kept prompt,
    completion text after the original prompt)``."""
    texts = texts or piece_texts(tok)
    kept, removed = heal_prompt(tok, prompt_ids, back_off, texts)
    new = healed_start(next_logits, tok, kept, removed, max_steps=max_new_tokens, texts=texts)
    ids = kept + new
    while len(new) < max_new_tokens and not (new and new[-1] in stop_ids):
        t = int(torch.argmax(next_logits(ids)))
        new.append(t)
        ids.append(t)
    body = [t for t in new if t not in stop_ids]
    text = "".join(texts[t] if texts[t] is not None else tok.decode([t]) for t in body)
    return new, text[len(removed):]


def model_next_logits(model) -> NextLogitsFn:
    """``next_logits`` of a minillama model: one plain forward over the ids (short prompts)."""
    def next_logits(ids: list[int]) -> torch.Tensor:
        device = model.tok_embeddings.weight.device
        with torch.no_grad():
            return model(torch.tensor([ids], device=device))[0, -1]
    return next_logits
