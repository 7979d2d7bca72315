"""Checks for the exercises of notebook 03 (pretraining), against the course's schedule, FLOP
count and FIM rule."""

from __future__ import annotations

import math

from minillama.exercises.verdict import (CLOSE, RIGHT, WRONG, call, cases_rng, compare, exercise, grade,
                                         number, shown)
from minillama.fim import fim_applicable
from minillama.model import ModelConfig, flops_per_token
from minillama.training.schedule import lr_at


@exercise("03.1")
def check_schedule(my_lr) -> tuple[str, str]:
    """``my_lr(step, peak, warmup, total)``: linear warm-up, then a cosine to the floor at the last step."""
    rng = cases_rng("03.1")
    runs = [(1e-3, 20, 200), (3e-4, 1, 10)]
    runs += [(10 ** rng.uniform(-4, -2), rng.randint(1, 50), rng.randint(60, 1000)) for _ in range(3)]
    floor = lr_at(9, 10, 1.0, 1)  # the last step of any run lands on peak · this ratio

    def judge(run):
        peak, warmup, total = run
        steps = sorted({0, warmup - 1, warmup, (warmup + total) // 2, total - 1, *rng.sample(range(total), 5)})
        want = [lr_at(s, total, peak, warmup) for s in steps]
        raw = [call(my_lr, s, peak, warmup, total) for s in steps]
        run_name = f"peak {peak:.2e}, warmup {warmup}, total {total}"
        got = [number(g) for g in raw]
        if None in got:
            i = got.index(None)
            return WRONG, f"{run_name}: at step {steps[i]} got {shown(raw[i])}, expected a number"
        status, why = compare(got, want, rtol=1e-6)
        if status == RIGHT:
            return status, why
        if abs(got[-1]) < 0.2 * peak * floor:
            return WRONG, (f"{run_name}: at the last step you give {got[-1]:.2e}; the cosine ends at the floor, "
                           f"peak × {floor:.4g} = {peak * floor:.2e}, not at 0")
        late = [i for i, s in enumerate(steps) if s >= warmup]
        if all(math.isclose(got[i], want[i], rel_tol=1e-6) for i in late):
            return CLOSE, (f"{run_name}: the cosine matches, the warm-up does not: step s of the warm-up "
                           "gets peak·(s+1)/warmup, so the peak is reached at step warmup−1")
        if all(math.isclose(g, w, rel_tol=0.05) for g, w in zip(got, want)):
            return CLOSE, f"{run_name}: within 5 % everywhere: {why}; an off-by-one in the cosine's progress?"
        return WRONG, f"{run_name}: {why}"

    return grade(runs, judge, f"warm-up, cosine and floor match on {len(runs)} runs")


@exercise("03.2")
def check_tokens_seen(fn) -> tuple[str, str]:
    """``fn(steps, batch_size, seq_len)``: how many tokens a run trains on (targets, not row tokens)."""
    rng = cases_rng("03.2")
    cases = [(600, 16, 256), (30, 8, 128), (1, 1, 2)]
    cases += [(rng.randint(1, 5000), rng.randint(1, 64), rng.choice([64, 256, 1024, 4096])) for _ in range(4)]

    def judge(case):
        steps, batch, seq_len = case
        want = steps * batch * seq_len
        raw = call(fn, steps, batch, seq_len)
        got = number(raw)
        name = f"{steps} steps × batch {batch} × seq_len {seq_len}"
        if got == want:
            return RIGHT, ""
        if got == steps * batch * (seq_len + 1):
            return CLOSE, (f"{name}: a row holds seq_len + 1 tokens, but only seq_len of them are predicted "
                           "(the first one is only an input)")
        return WRONG, f"{name}: got {shown(raw)}, expected {want:,}"

    return grade(cases, judge, f"steps × batch × seq_len on {len(cases)} runs")


@exercise("03.3")
def check_training_flops(fn) -> tuple[str, str]:
    """``fn(cfg, seq_len, tokens)``: training FLOPs of ``tokens`` tokens (6 × matmul parameters per
    token plus the attention scores, as :func:`minillama.model.flops_per_token`)."""
    rng = cases_rng("03.3")
    fixed = (("debug", 128, 7_680), ("tiny", 256, 2_457_600), ("codellama-7b", 4096, 5e11))
    cases = [(ModelConfig.from_name(name), seq_len, tokens) for name, seq_len, tokens in fixed]
    for _ in range(3):  # random shapes, and contexts long enough that the attention term matters
        heads = rng.choice([2, 4, 8])
        cfg = ModelConfig(dim=heads * rng.choice([16, 32, 64]), n_layers=rng.randint(1, 12), n_heads=heads,
                          vocab_size=rng.randint(256, 32_000))
        cases.append((cfg, rng.choice([1024, 4096, 16384]), rng.randint(10**5, 10**9)))

    def judge(case):
        cfg, seq_len, tokens = case
        want = flops_per_token(cfg, seq_len) * tokens
        raw = call(fn, cfg, seq_len, tokens)
        got = number(raw)
        name = f"dim {cfg.dim}, {cfg.n_layers} layers, vocab {cfg.vocab_size}, seq_len {seq_len}"
        if got is None:
            return WRONG, f"{name}: got {shown(raw)}, expected a number"
        ratio = got / want
        if math.isclose(ratio, 1.0, rel_tol=1e-3):  # the norm gains (a few d per layer) may be counted
            return RIGHT, ""
        embedding = 6 * cfg.vocab_size * cfg.dim * tokens
        attention = 6 * cfg.n_layers * seq_len * cfg.dim * tokens
        if math.isclose(got, want + embedding, rel_tol=1e-3):
            return CLOSE, f"{name}: the embedding lookup is not a matmul; count the output head only"
        if math.isclose(got, want - attention, rel_tol=1e-3):
            return WRONG, (f"{name}: the attention scores are missing, 6 · n_layers · seq_len · dim per token: "
                           f"{attention / want:.0%} of the total at this seq_len")
        if math.isclose(ratio, 1 / 3, rel_tol=0.05):
            return WRONG, f"{name}: that is the forward pass only (2 per parameter); backward costs twice the forward"
        if 0.9 < ratio < 1.1:
            return CLOSE, f"{name}: {ratio:.3f}× the reference; which matrices did you count?"
        return WRONG, f"{name}: {ratio:.3g}× the reference {want:.3e}; use 6 × matmul parameters per token"

    return grade(cases, judge, f"6·N per token plus the attention scores, on {len(cases)} models")


@exercise("03.4")
def check_fim_share(fn) -> tuple[str, str]:
    """``fn(doc_lengths, seq_len, rate)``: the expected share of documents that become FIM examples."""
    rng = cases_rng("03.4")
    cases = [([100, 300, 120, 250, 50], 256, 0.9), ([249, 250, 251, 256, 10], 256, 0.9), ([10, 20], 128, 0.5)]
    for _ in range(4):  # lengths spread around the context, some inside the sentinel margin
        seq_len = rng.choice([128, 256, 1024, 4096])
        lengths = [max(2, int(seq_len * rng.lognormvariate(-0.5, 1))) for _ in range(rng.randint(5, 40))]
        lengths += [seq_len - rng.randint(0, 7)]
        cases.append((lengths, seq_len, rng.choice([0.5, 0.9, round(rng.uniform(0.1, 1), 2)])))

    def judge(case):
        lengths, seq_len, rate = case
        fits = [fim_applicable(n, seq_len) for n in lengths]
        want = rate * sum(fits) / len(lengths)
        raw = call(fn, list(lengths), seq_len, rate)
        got = number(raw)
        name = f"{len(lengths)} documents, seq_len {seq_len}, rate {rate}"
        if got is None:
            return WRONG, f"{name}: got {shown(raw)}, expected a number"
        if math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12):
            return RIGHT, ""
        if math.isclose(got, sum(fits) / len(lengths), rel_tol=1e-9):
            return CLOSE, f"{name}: the right documents, but each becomes a FIM example only with probability {rate}"
        if math.isclose(got, rate * sum(n <= seq_len for n in lengths) / len(lengths), rel_tol=1e-9):
            return CLOSE, (f"{name}: the rule is fim_applicable(n, seq_len): the FIM example is a few tokens "
                           "longer than the document (PRE, SUF, MID, EOT) and must still fit one context")
        if math.isclose(got, rate, rel_tol=1e-9):
            return WRONG, f"{name}: not every document: only those not cut across contexts get FIM"
        return WRONG, f"{name}: got {got:.4g}, expected {want:.4g}"

    return grade(cases, judge, f"rate × share of documents that fit one context, on {len(cases)} corpora")
