"""The report's claims table judges each claim from the measured numbers."""

from minillama.course.claims import (CLAIMS, CODEWORLD_CLAIMS, FAILS, HOLDS, INCONCLUSIVE, INCONCLUSIVE_PAIRED,
                                     NOT_MEASURED, NOT_RUN, NOT_TESTABLE,
                                     claims_table)


def judge(name, summary):
    claim = next(c for c in CLAIMS + CODEWORLD_CLAIMS if c.claim.startswith(name))
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
    s = {"self_instruct": {"pass1_base": 0.05, "pass1_filtered": 0.40, "pass1_unfiltered": 0.60, "n_heldout": 120,
                           "n_train_examples": 0}}
    assert judge("execution-filtered", s) == NOT_RUN  # no SFT ran: nothing to judge
    s["self_instruct"]["n_train_examples"] = 40
    assert judge("execution-filtered", s) == FAILS
    s["self_instruct"]["pass1_unfiltered"] = 0.06
    assert judge("execution-filtered", s) == HOLDS
    s["self_instruct"].update(pass1_base=0.0, pass1_filtered=0.01, pass1_unfiltered=0.0)
    assert judge("execution-filtered", s) == INCONCLUSIVE


def test_theta_alone_is_judged_against_the_base_not_against_lcft():
    s = {"long_context": {"ppl_at_16x": {"no_ft_theta_1e6": 40.0, "base_theta_1e4": 87.0, "lcft_theta_1e6": 20.0}}}
    assert judge("raising θ alone", s) == FAILS  # it did extend context here, whatever LCFT does
    s["long_context"]["no_ft_theta_1e6_vs_base"] = "indistinguishable"
    assert judge("raising θ alone", s) == HOLDS


def test_perplexity_past_finetuning_length():
    s = {"long_context": {"ppl_at_4x": {"lcft_theta_1e6": 10.0}, "ppl_at_16x": {"lcft_theta_1e6": 11.0}}}
    assert judge("perplexity keeps falling", s) == FAILS
    s["long_context"]["ppl_at_16x"]["lcft_theta_1e6"] = 9.5
    assert judge("perplexity keeps falling", s) == HOLDS


def test_retrieval_needs_its_positive_control_and_is_judged_at_the_finetuning_length():
    base = {"256@0.0": 0.0, "256@1.0": 0.0, "1024@0.0": 0.0, "1024@1.0": 1.0}
    lcft = {"256@0.0": 0.2, "256@1.0": 0.2, "1024@0.0": 0.5, "1024@1.0": 0.7, "4096@0.0": 0.0, "4096@1.0": 0.0}
    s = {"long_context": {"pretrain_len": 256, "finetune_len": 1024, "retrieval_prompts": 3,
                          "retrieval_by_cell": {"base_theta_1e4": base, "lcft_theta_1e6": lcft}}}
    assert judge("LCFT models retrieve", s) == NOT_TESTABLE
    base.update({"256@0.0": 1.0, "256@1.0": 0.9})
    assert judge("LCFT models retrieve", s) == HOLDS  # 60 % at 1024, whatever 256 and 4096 give
    lcft.update({"1024@0.0": 0.2})
    assert judge("LCFT models retrieve", s) == FAILS
    del s["long_context"]["finetune_len"]
    assert judge("LCFT models retrieve", s) == NOT_MEASURED


def test_fim_infilling_uses_the_natural_order_baseline():
    s = {"pretraining": {"infill_loss_fim": 2.8, "infill_loss_no_fim": 3.3}}  # sentinel rows: not judged
    assert judge("FIM training teaches", s) == NOT_MEASURED
    s["pretraining"].update(middle_loss_fim_psm=2.0, middle_loss_no_fim_natural=2.2, middle_examples=400)
    assert judge("FIM training teaches", s) == HOLDS
    s["pretraining"]["middle_loss_no_fim_natural"] = 1.9
    assert judge("FIM training teaches", s) == FAILS


def test_healing_is_judged_on_pass_at_1():
    heal = {"first_char": 0.2, "first_char_healed": 0.5, "p": 1e-6, "verdict": "helps", "pass1": 0.0, "pass1_healed": 0.0}
    s = {"evaluation": {"token_healing": {"SPM": heal}}}
    assert judge("token healing", s).startswith("not testable")
    heal.update(pass1=0.1, pass1_healed=0.2)
    assert judge("token healing", s) == HOLDS
    s["evaluation"]["token_healing"]["tasks"] = 164  # 1 of 164 vs 0: no pairing makes that significant
    heal.update(pass1=1 / 164, pass1_healed=0.0)
    assert judge("token healing", s) == INCONCLUSIVE_PAIRED
    heal.update(pass1=1 / 164, pass1_healed=20 / 164)
    assert judge("token healing", s) == HOLDS


def test_spm_vs_psm_uses_the_paired_test_when_recorded():
    inf = {"single-line PSM": {"pass@1": 0.30, "passed": 30, "total": 100},
           "single-line SPM": {"pass@1": 0.45, "passed": 45, "total": 100}}
    s = {"evaluation": {"infilling": inf, "infilling_spm_vs_psm": {"single-line": {"a_only": 17, "b_only": 2, "p": 0.0007}}}}
    assert judge("SPM infills", s) == HOLDS
    s["evaluation"]["infilling_spm_vs_psm"]["single-line"].update(a_only=3, b_only=2, p=1.0)
    assert judge("SPM infills", s).startswith("inconclusive")


def test_an_arm_that_did_not_run_is_reported_not_run_and_nothing_crashes():
    s = {"self_instruct": {"pass1_base": 0.0, "pass1_filtered": None, "pass1_unfiltered": 0.0, "pass1_oracle": 0.0,
                           "n_heldout": 20, "n_train_examples": 0, "p_filtered_vs_unfiltered": None}}
    assert judge("execution-filtered", s) == NOT_RUN
    s["self_instruct"]["n_train_examples"] = 3  # kept, but the arm's number is missing: still no crash
    assert judge("execution-filtered", s) == NOT_RUN
    assert len(claims_table(s)) == len(CLAIMS) + 2


# --- the code world's rows --------------------------------------------------------------------

def cw_judge(name, codeworld):
    from minillama.course.claims import CODEWORLD_CLAIMS
    claim = next(c for c in CODEWORLD_CLAIMS if c.claim.startswith(name))
    return claim.judge({"codeworld": codeworld})[1]


def test_codeworld_rows_are_not_measured_without_the_section():
    from minillama.course.claims import CODEWORLD_CLAIMS
    assert all(c.judge({})[1] == NOT_MEASURED for c in CODEWORLD_CLAIMS)


def test_held_out_programs_need_the_interval_above_0_and_the_control_below():
    tier = lambda p, lo: {"pass@1": p, "ci95": [lo, p + 0.05], "n": 150}
    s = {"pass1": {"instances": tier(0.4, 0.3), "compositions": tier(0.12, 0.07), "primitives": tier(0.01, 0.0)}}
    assert cw_judge("the model writes working programs", s) == HOLDS
    s["pass1"]["compositions"] = tier(0.01, 0.0)
    assert cw_judge("the model writes working programs", s) == FAILS
    s["pass1"]["compositions"], s["pass1"]["primitives"] = tier(0.05, 0.02), tier(0.06, 0.03)
    assert cw_judge("the model writes working programs", s).startswith("not testable")


def test_eot_and_paired_codeworld_rows():
    row = lambda eot, passed: {"pass@1": passed / 200, "passed": passed, "n": 200, "eot_stop": eot}
    s = {"infilling": {"single-line PSM": row(0.7, 40), "single-line SPM": row(0.65, 60)},
         "spm_vs_psm": {"single-line": {"a_only": 25, "b_only": 5, "p": 0.0003}},
         "token_healing": {"SPM": {"pass1": 0.1, "pass1_healed": 0.1, "fixed": 3, "broken": 3, "p": 1.0, "n": 150}}}
    assert cw_judge("infills end where", s) == HOLDS
    assert cw_judge("SPM infills", s) == HOLDS
    assert cw_judge("token healing", s).startswith("inconclusive")
    s["infilling"]["single-line SPM"]["eot_stop"] = 0.4
    assert cw_judge("infills end where", s) == FAILS


def test_temperature_shape_needs_both_paired_tests():
    shape = lambda p1, pn: {"1": {"low_T": 0.3, "high_T": 0.2, "low_better": 30, "high_better": 5, "p": p1},
                            "20": {"low_T": 0.4, "high_T": 0.6, "low_better": 2, "high_better": 25, "p": pn}}
    assert cw_judge("a low temperature", {"temperature_shape": {"instances": shape(0.001, 0.001)}}) == HOLDS
    assert cw_judge("a low temperature", {"temperature_shape": {"instances": shape(0.3, 0.001)}}).startswith("inconclusive")


def test_long_context_claims_sit_with_the_model_they_were_measured_on():
    from minillama.course.claims import LONG_CONTEXT_CLAIMS, claim_tables
    real, world = claim_tables({"long_context": {"model": "reference"}})
    assert all(c in world and c not in real for c in LONG_CONTEXT_CLAIMS)
    assert set(CODEWORLD_CLAIMS) <= set(world)
    real, world = claim_tables({"long_context": {"model": "own"}})
    assert all(c in real and c not in world for c in LONG_CONTEXT_CLAIMS)
    assert claim_tables({})[0] == CLAIMS  # older summaries (no model recorded): real code, as measured then


def test_reading_the_prompt_is_judged_on_the_ratio_intervals():
    def rob(renamed, paraphrased=(0.8, 0.9), combined=(0.7, 0.8)):
        row = lambda ci: {"pass@1": 0.5, "source_pass@1": 0.6, "n": 300, "ratio": sum(ci) / 2, "ratio_ci95": list(ci)}
        return {"robustness": {"renamed": row(renamed), "paraphrased": row(paraphrased), "combined": row(combined)}}
    name = "the model reads its prompt"
    assert cw_judge(name, rob((0.85, 0.95))) == "holds"
    assert cw_judge(name, rob((0.75, 0.85))).startswith("inconclusive")  # 0.8 inside the interval
    assert cw_judge(name, rob((0.5, 0.7))) == "does not hold"
    assert cw_judge(name, rob((0.85, 0.95), combined=(0.3, 0.5))) == "does not hold"
    assert cw_judge(name, {"robustness": {"renamed": {}}}) == "not measured"
