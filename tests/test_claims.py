"""The report's claims table judges each claim from the measured numbers."""

from minillama.course.claims import CLAIMS, FAILS, HOLDS, INCONCLUSIVE, NOT_MEASURED, claims_table


def judge(name, summary):
    claim = next(c for c in CLAIMS if c.claim.startswith(name))
    return claim.judge(summary)[1]


def test_missing_numbers_are_reported_as_not_measured():
    assert all(c.judge({})[1] == NOT_MEASURED for c in CLAIMS)
    assert len(claims_table({})) == len(CLAIMS) + 2


def test_fim_cost_rule_can_hold_or_fail():
    assert judge("FIM costs little", {"pretraining": {"val_loss_l2r_fim": 2.905, "val_loss_l2r_no_fim": 2.9}}) == HOLDS
    assert judge("FIM costs little", {"pretraining": {"val_loss_l2r_fim": 2.97, "val_loss_l2r_no_fim": 2.9}}) == FAILS


def test_long_context_uses_the_paired_verdict_when_recorded():
    s = {"long_context": {"ppl_at_16x": {"lcft_theta_1e6": 99.0, "pi": 100.0}}}
    assert judge("θ = 10⁶ LCFT extrapolates", s) == HOLDS
    s["long_context"]["lcft_theta_1e6_vs"] = {"pi": "indistinguishable"}
    assert judge("θ = 10⁶ LCFT extrapolates", s).startswith("inconclusive")
    s["long_context"]["lcft_theta_1e6_vs"] = {"pi": "higher"}
    assert judge("θ = 10⁶ LCFT extrapolates", s) == FAILS


def test_self_instruct_needs_filtered_above_both():
    s = {"self_instruct": {"pass1_base": 0.05, "pass1_filtered": 0.40, "pass1_unfiltered": 0.60, "n_heldout": 120}}
    assert judge("execution-filtered", s) == FAILS
    s["self_instruct"]["pass1_unfiltered"] = 0.06
    assert judge("execution-filtered", s) == HOLDS
    s["self_instruct"].update(pass1_base=0.0, pass1_filtered=0.01, pass1_unfiltered=0.0)
    assert judge("execution-filtered", s) == INCONCLUSIVE
