"""The code world: deterministic, every rendering computes its reference, MiniEval in
HumanEval's format, infilling sets, FIM designs, the stop fix, the copying probe."""

import random

import pytest
import torch

from minillama.codeworld import chains, handwritten
from minillama.codeworld.documents import documents, modules, plan_module
from minillama.codeworld.fimdesign import FimDesign, encode_modules, function_span
from minillama.codeworld.functions import make_function
from minillama.codeworld.minieval import TIERS, check_problem, infilling, problems
from minillama.codeworld.render import STYLES
from minillama.evaluation.benchmarks import HUMANEVAL_STOP, truncate
from minillama.fim import fim_parts
from minillama.generate import truncate_at_stop, word_start_variants


def test_documents_are_deterministic_and_prefix_stable():
    a, b = documents(6, seed=3), documents(6, seed=3)
    assert a == b
    assert documents(3, seed=3) == a[:3]
    assert documents(6, seed=4) != a
    for text in a:
        compile(text, "<module>", "exec")  # a module is valid Python


@pytest.mark.parametrize("seed", [0, 1])
def test_every_style_computes_the_reference(seed):
    rng = random.Random(seed)
    checked = 0
    for _ in range(120):
        chain, consts = chains.sample_training_behaviour(rng)
        for style in STYLES:
            fn = make_function(chain, consts, rng, style=style)
            if fn is None:
                continue
            ns = {}
            exec(fn.text, ns)
            for _ in range(4):
                args = fn.random_args(rng)
                want = fn.run(args)
                got = ns[fn.name](*args)
                assert got == want and type(got) is type(want), (fn.text, args, want, got)
                checked += 1
    assert checked > 1000


def test_a_wrong_rendering_is_caught():
    """The check above is real: a body with one operator changed fails it."""
    rng = random.Random(5)
    fn = make_function(("keep_even", "sum"), ((), ()), rng, style="oneliner")
    bad = fn.text.replace("% 2 == 0", "% 2 == 1")
    assert bad != fn.text
    ns = {}
    exec(bad, ns)
    assert any(ns[fn.name](a) != fn.run((a,)) for a in ([1, 2, 3], [2, 4], [5]))


@pytest.mark.parametrize("tier", TIERS)
def test_minieval_problems_are_humaneval_shaped_and_correct(tier):
    probs = problems(tier, 150)
    assert len(probs) == 150 and problems(tier, 150) == probs
    assert len({p["prompt"] for p in probs.values()}) == 150
    for tid, p in probs.items():
        assert tid == p["task_id"] and set(p) >= {"task_id", "prompt", "canonical_solution", "test", "entry_point"}
        assert p["prompt"].startswith(f"def {p['entry_point']}(") and ">>> " in p["prompt"]
        asserts = [line for line in p["test"].splitlines() if line.strip().startswith("assert candidate(")]
        assert p["test"].startswith("def check(candidate):") and 4 <= len(asserts) <= 6
        check_problem(p)  # the canonical solution passes
        with pytest.raises(AssertionError):  # and a wrong one does not
            check_problem(p, "    return None\n")


def test_tiers_hold_what_they_claim():
    held = set(chains.heldout_compositions())
    for p in problems("instances", 150).values():
        assert not chains.contains_heldout(tuple(p["chain"].split(">")))
    for p in problems("compositions", 150).values():
        chain = tuple(p["chain"].split(">"))
        assert chain in held and len(chain) >= 2
        assert not any(chains.BY_KEY[k].heldout for k in chain)
    prims = problems("primitives", 150).values()
    for p in prims:
        assert sum(chains.BY_KEY[k].heldout for k in p["chain"].split(">")) == 1
    assert {k for p in prims for k in p["chain"].split(">")} >= set(chains.HELDOUT_PRIMITIVES)
    # every stage of a held-out composition is trained somewhere
    trained = {k for d in (1, 2) for c in chains.all_chains(d) for k in c if not chains.contains_heldout(c)}
    assert {k for c in held for k in c} <= trained


def test_instance_prompts_never_appear_in_training():
    prompts = {p["prompt"] for p in problems("instances", 150).values()}
    for m in modules(150, seed=0):
        for fn in m.functions:
            assert fn.prompt not in prompts


@pytest.mark.parametrize("kind", ["single-line", "multi-line"])
def test_infilling_sets_follow_humaneval_infilling(kind):
    tasks = infilling(kind, "compositions", n=20)
    probs = problems("compositions", 20)
    assert tasks
    for tid, t in tasks.items():
        name = "SingleLineInfilling" if kind == "single-line" else "MultiLineInfilling"
        assert tid.startswith(f"{name}/MiniEval/compositions/")
        base = probs["/".join(tid.split("/")[1:4])]
        assert t["prompt"] + t["canonical_solution"] + t["suffix"] == base["prompt"] + base["canonical_solution"]
        assert t["canonical_solution"].strip() and t["canonical_solution"].endswith("\n")


def test_handwritten_problems_pass_their_tests_and_are_not_generated():
    probs = handwritten.problems()
    assert len(probs) == 30
    generated = {p["prompt"] for t in TIERS for p in problems(t, 150).values()}
    for p in probs.values():
        check_problem(p)
        assert p["prompt"] not in generated


def test_assert_blocks_and_constant_functions_are_true():
    mods = modules(80, seed=11)
    assert any(m.asserts for m in mods) and any(any(p.constant for p in m.parts) for m in mods)
    for m in mods:
        exec(m.text, {})  # every assert of the block holds


def test_stop_strings_catch_the_word_start_def():
    raw = "    return x\n\n\n def g(y):\n    return y\n"
    assert "\n def " in word_start_variants(HUMANEVAL_STOP)
    assert truncate(raw) == "    return x\n\n"
    assert truncate_at_stop(raw, HUMANEVAL_STOP) == "    return x\n\n"
    # nothing else is cut: four-space indentation and nested defs stay
    body = "    def inner(a):\n        return a\n    # note\n    return inner(x)\n"
    assert truncate(body) == body


def _tok():
    from _tok_fixtures import tiny_tokenizer
    return tiny_tokenizer()


def test_function_fim_design_round_trips_and_aligns_to_lines():
    tok = _tok()
    mods = modules(12, seed=2)
    design = FimDesign("function", rate=1.0, line_share=1.0)
    docs, is_fim, plain = encode_modules(mods, tok, design, seq_len=1024, seed=0)
    fims = [d for d, f in zip(docs, is_fim) if f]
    texts = {p.text for m in mods for p in m.parts if p.function}
    assert len(fims) == sum(len(m.functions) for m in mods)
    for ids in fims:
        assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id and tok.eot_id in ids
        layout, prefix, middle, suffix = fim_parts(ids, tok)
        if layout == "psm":
            assert middle.endswith("\n") and prefix.endswith("\n")
            assert prefix + middle + suffix in texts
    # the rest of each module is plain text ending in EOS (no function was left: only constants)
    for d, f in zip(docs, is_fim):
        assert f or d[-1] == tok.eos_id


def test_function_span_character_cuts_cover_the_function():
    rng = random.Random(0)
    text = "def f(x: int) -> int:\n    \"\"\"Doc.\"\"\"\n    y = x + 1\n    return y\n"
    for _ in range(50):
        pre, mid, suf = function_span(text, text.index("    y"), rng, FimDesign("function", line_share=0.5))
        assert pre + mid + suf == text


def test_paper_design_is_the_pipelines_transform():
    tok = _tok()
    mods = modules(6, seed=2)
    docs, is_fim, plain = encode_modules(mods, tok, FimDesign("paper", rate=0.9), seq_len=256, seed=0)
    assert any(is_fim) and len(docs) == len(plain)
    for d, f, p in zip(docs, is_fim, plain):
        if f:
            assert tok.prefix_id in d and tok.eot_id in d
        else:
            assert d == p


def test_copying_probe_on_an_untrained_model(one_thread):
    from minillama.codeworld.probe import copying_probe
    from minillama.model import ModelConfig, Transformer
    tok = _tok()
    torch.manual_seed(0)
    model = Transformer(ModelConfig.from_name("debug", vocab_size=tok.vocab_size))
    out = copying_probe(model, tok, n=4, length=16)
    # an untrained model copies nothing: both copies cost about ln(vocab)
    assert abs(out["first"] - out["second"]) < 0.5 and abs(out["first"] - out["uniform"]) < 1.5


def test_plans_are_what_modules_render():
    """The keys the decontamination test checks are the behaviours the text holds: rendered
    functions are the plan's behaviours, in order (a slot may be dropped, never replaced)."""
    for i in range(20):
        plan = plan_module(0, i)
        rendered = modules(1, seed=0, start=i)[0].functions
        it = iter(plan)
        for fn in rendered:
            for chain, consts in it:
                same = chain == fn.chain and all(
                    a is None or a == b for ca, cb in zip(fn.consts, consts) for a, b in zip(ca, cb))
                if same:
                    break
            else:
                raise AssertionError(f"{fn.chain} {fn.consts} is not in the plan {plan}")


def test_paired_comparison_of_two_runs_uses_the_shared_tasks():
    from minillama.codeworld.compare import paired

    a = {"t1": True, "t2": True, "t3": False, "only_in_a": True}
    b = {"t1": True, "t2": False, "t3": True, "only_in_b": False}
    r = paired(a, b)
    assert (r["n"], r["a"], r["b"], r["only_a"], r["only_b"]) == (3, 2, 2, 1, 1)
    assert r["p"] == 1.0


def test_list_copy_probe_on_an_untrained_model(one_thread):
    from minillama.codeworld.probe import list_copy_probe
    from minillama.model import ModelConfig, Transformer
    tok = _tok()
    torch.manual_seed(0)
    model = Transformer(ModelConfig.from_name("debug", vocab_size=tok.vocab_size))
    out = list_copy_probe(model, tok, n=8)
    # nothing learned, nothing copied: both lists cost about the same
    assert out["n"] > 0 and abs(out["ratio"] - 1) < 0.1
