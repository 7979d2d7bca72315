"""Self-checks for the notebooks' exercises.

Each check runs the student's answer against the package's own implementation and says
``right``, ``close`` (with the likely mistake) or ``wrong``; an unattempted exercise (one that
still raises ``NotImplementedError``) reports ``not attempted`` and never fails a notebook run.
Each notebook's checks live in their own delimited block below.
"""

from __future__ import annotations

from typing import Callable

RIGHT, CLOSE, WRONG, NOT_ATTEMPTED = "right", "close", "wrong", "not attempted"
_MARK = {RIGHT: "✅", CLOSE: "🟡", WRONG: "❌", NOT_ATTEMPTED: "…"}


def verdict(name: str, status: str, detail: str = "") -> str:
    """Print a one-line verdict and return ``status`` (so notebooks can assert on it)."""
    print(f"{_MARK[status]} {name}: {status}" + (f": {detail}" if detail else ""))
    return status


def _attempt(fn: Callable, *args):
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, NOT_ATTEMPTED


# ======================= notebook 02: tokenizer and fill-in-the-middle =======================
_NB02_CASES = [
    ('def remove_non_ascii(s: str) -> str:\n    """ ', '\n    return result\n'),
    ("def f(x):\n    return", " x + 1\n"),
    ("", "\nprint('done')\n"),
    ("import os\n", "    path = os.getcwd()\n"),
]


def check_spm_prompt(fn: Callable, tok) -> str:
    """Exercise 02.1: ``fn(tok, prefix, suffix)`` must return Code Llama's SPM prompt."""
    from minillama.fim import infilling_prompt

    name = "02.1 SPM prompt"
    for prefix, suffix in _NB02_CASES:
        got, status = _attempt(fn, tok, prefix, suffix)
        if status:
            return verdict(name, status)
        want = infilling_prompt(tok, prefix, suffix, spm=True)
        if list(got) == want:
            continue
        naive = ([tok.bos_id, tok.prefix_id, tok.suffix_id] + tok.encode(suffix) + [tok.middle_id]
                 + tok.encode(prefix))
        if list(got) == naive:
            return verdict(name, CLOSE, "the suffix carries a stray leading space: encode it with "
                                        "tok.encode_infilling, not tok.encode")
        if sorted(got) == sorted(want):
            return verdict(name, CLOSE, "right tokens, wrong order: SPM is [BOS, PRE, SUF] suffix [MID] prefix")
        return verdict(name, WRONG, f"for prefix={prefix!r}, suffix={suffix!r} expected {want}, got {list(got)}")
    return verdict(name, RIGHT)


def check_psm_inverse(fn: Callable, tok) -> str:
    """Exercise 02.2: ``fn(ids, tok)`` turns a PSM training example back into its document."""
    from minillama.fim import psm_tokens

    name = "02.2 PSM inverse"
    cases = [("def f(x):\n    ret", "urn x", " + 1\n"), ("x = 1\n", " y = 2", "\n  z = 3\n"),
             ("a", "", " b")]
    for p, m, s in cases:
        ids = [tok.bos_id] + psm_tokens(tok, p, m, s) + [tok.eos_id]
        got, status = _attempt(fn, ids, tok)
        if status:
            return verdict(name, status)
        if got == p + m + s:
            continue
        if isinstance(got, str) and got.replace(" ", "") == (p + m + s).replace(" ", ""):
            return verdict(name, CLOSE, "only spaces differ: decode the suffix and middle with "
                                        "tok.decode_infilling (no implicit leading space)")
        return verdict(name, WRONG, f"expected {p + m + s!r}, got {got!r}")
    return verdict(name, RIGHT)


def check_chars_per_token(value: float, tok, texts: list[str]) -> str:
    """Exercise 02.3: characters per token of ``tok`` on ``texts``."""
    name = "02.3 chars per token"
    if value is None:
        return verdict(name, NOT_ATTEMPTED)
    want = sum(map(len, texts)) / sum(map(len, tok.encode_batch(texts)))
    err = abs(value - want) / want
    if err < 0.005:
        return verdict(name, RIGHT, f"{value:.3f}")
    if err < 0.1:
        return verdict(name, CLOSE, f"{value:.3f} vs {want:.3f}: count characters with len(text) and "
                                    "tokens without BOS/EOS")
    return verdict(name, WRONG, f"{value:.3f} vs {want:.3f} (tokens per char, inverted?)")
# ===================== end of notebook 02 =====================================================
