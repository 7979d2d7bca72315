"""Checks for the exercises of notebook 02 (a code tokenizer and fill-in-the-middle), against
:mod:`minillama.fim` and the tokenizer."""

from __future__ import annotations

import math

from minillama.exercises.verdict import CLOSE, RIGHT, WRONG, call, cases_rng, exercise, grade, shown
from minillama.fim import infilling_prompt, psm_tokens

# The random cases cut this function at random characters.
_CODE = '''def count_words(path: str, min_len: int = 3) -> dict[str, int]:
    """How often each word of at least ``min_len`` letters occurs in the file."""
    counts = {}
    with open(path) as f:
        for line in f:
            for word in line.split():
                if len(word) >= min_len:
                    counts[word] = counts.get(word, 0) + 1
    return counts
'''


def _cut(rng, n: int) -> list[int]:
    return sorted(rng.randint(1, len(_CODE) - 1) for _ in range(n))


@exercise("02.1")
def check_spm_prompt(fn, tok) -> tuple[str, str]:
    """``fn(tok, prefix, suffix)`` returns Code Llama's SPM infilling prompt."""
    rng = cases_rng("02.1")
    cases = [('def remove_non_ascii(s: str) -> str:\n    """ ', '\n    return result\n'),
             ("def f(x):\n    return", " x + 1\n"), ("", "\nprint('done')\n"),
             ("import os\n", "    path = os.getcwd()\n")]
    for _ in range(4):
        a, b = _cut(rng, 2)
        cases.append((_CODE[:a], _CODE[b:]))

    def judge(case):
        prefix, suffix = case
        want = infilling_prompt(tok, prefix, suffix, spm=True)
        got = list(call(fn, tok, prefix, suffix))
        if got == want:
            return RIGHT, ""
        naive = [tok.bos_id, tok.prefix_id, tok.suffix_id] + tok.encode(suffix) + [tok.middle_id] + tok.encode(prefix)
        if got == naive:
            return CLOSE, ("the suffix carries a stray leading space: encode it with tok.encode_infilling, "
                           "not tok.encode")
        if sorted(got) == sorted(want):
            return CLOSE, "the right tokens in the wrong order: SPM is [BOS, PRE, SUF] suffix [MID] prefix"
        i = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w), min(len(got), len(want)))
        return WRONG, (f"prefix …{prefix[-20:]!r}, suffix {suffix[:20]!r}…: {len(got)} ids, expected {len(want)}; "
                       f"first difference at position {i}: got {got[i:i + 4]}…, expected {want[i:i + 4]}…")

    return grade(cases, judge, f"Code Llama's SPM prompt for {len(cases)} (prefix, suffix) pairs")


@exercise("02.2")
def check_psm_inverse(fn, tok) -> tuple[str, str]:
    """``fn(ids, tok)`` turns a PSM training example ``[BOS, PRE, …, EOT, EOS]`` back into its document."""
    rng = cases_rng("02.2")
    cases = [("def f(x):\n    ret", "urn x", " + 1\n"), ("x = 1\n", " y = 2", "\n  z = 3\n"), ("a", "", " b")]
    for _ in range(4):  # a non-empty prefix: with an empty one, PSM is laid out as SPM
        a, b = _cut(rng, 2)
        cases.append((_CODE[:a], _CODE[a:b], _CODE[b:]))

    def judge(case):
        p, m, s = case
        got = call(fn, [tok.bos_id] + psm_tokens(tok, p, m, s) + [tok.eos_id], tok)
        if got == p + m + s:
            return RIGHT, ""
        if isinstance(got, str) and got.replace(" ", "") == (p + m + s).replace(" ", ""):
            return CLOSE, ("only spaces differ: decode the suffix and the middle with tok.decode_infilling "
                           "(no implicit leading space)")
        return WRONG, f"expected {shown(p + m + s)}, got {shown(got)}"

    return grade(cases, judge, f"the document back from {len(cases)} PSM examples")


@exercise("02.3")
def check_chars_per_token(fn, tok, texts: list[str]) -> tuple[str, str]:
    """``fn(tok, texts)``: characters per token of ``tok`` on ``texts`` (no BOS/EOS)."""
    rng = cases_rng("02.3")
    cases = [list(texts), ["x = 1\n"], ["def f():\n    pass\n", "    return 0\n", "import os"]]
    cases += [rng.sample(list(texts), min(len(texts), rng.randint(1, 5))) for _ in range(3)]

    def judge(sample):
        want = sum(map(len, sample)) / sum(map(len, tok.encode_batch(sample)))
        got = call(fn, tok, list(sample))
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            return WRONG, f"got {shown(got)}, expected a number"
        where = f"{len(sample)} text(s) of {sum(map(len, sample)):,} characters"
        if math.isclose(got, want, rel_tol=1e-6):
            return RIGHT, ""
        if got and math.isclose(1 / got, want, rel_tol=1e-3):
            return WRONG, f"{where}: {got:.4f} is tokens per character, inverted"
        if math.isclose(got, sum(map(len, sample)) / sum(len(ids) + 2 for ids in tok.encode_batch(sample)),
                        rel_tol=1e-6):
            return CLOSE, f"{where}: {got:.4f}, expected {want:.4f}: count tokens without BOS and EOS"
        if math.isclose(got, want, rel_tol=0.1):
            return CLOSE, (f"{where}: {got:.4f}, expected {want:.4f}: count characters with len(text), tokens "
                           "without BOS/EOS, and divide the totals (not the mean of per-text ratios)")
        return WRONG, f"{where}: {got:.4f}, expected {want:.4f}"

    return grade(cases, judge, f"total characters / total tokens on {len(cases)} sets of texts")
