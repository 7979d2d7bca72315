"""The shipped reference model: export writes fp16 weights + tokenizer + logs + sha256 sums,
verify catches a changed file, load_reference gives back the model (to fp16 rounding)."""

import copy
import json

import numpy as np
import pytest
import torch
from _tok_fixtures import tiny_tokenizer

from minillama.codeworld import reference
from minillama.data.pipeline import PackedData, tokenizer_fingerprint
from minillama.model import ModelConfig
from minillama.training.trainer import TrainConfig, train


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.set_num_threads(1)
    tok = tiny_tokenizer()
    run = tmp_path_factory.mktemp("run")
    data = PackedData.from_array(np.random.default_rng(0).integers(3, tok.vocab_size, (16, 33)))
    res = train(TrainConfig(steps=2, batch_size=4, lr=1e-3, warmup=1, eval_interval=0, out_dir=str(run),
                            progress=False),
                ModelConfig.from_name("debug", vocab_size=tok.vocab_size), data,
                tokenizer_hash=tokenizer_fingerprint(tok))
    (run / "tokenizer.model").write_bytes(tok.sp.serialized_model_proto())
    (run / "metrics.jsonl").write_text('{"step": 2, "loss": 1.0}\n')
    (run / "result.json").write_text(json.dumps({"recipe": {"name": "test"}}))
    out = reference.export(run, tmp_path_factory.mktemp("ship") / "codeworld")
    return tok, res.model, out


def test_export_ships_fp16_weights_with_sums(exported):
    tok, model, out = exported
    listed = reference.verify(out)
    assert {"model.safetensors", "config.json", "tokenizer.model", "train_log.jsonl", "result.json"} <= set(listed)
    from safetensors.torch import load_file
    assert {t.dtype for t in load_file(out / "model.safetensors").values()} == {torch.float16}


def test_load_reference_is_the_trained_model(exported):
    tok, model, out = exported
    loaded, tok2 = reference.load_reference(directory=out)
    assert tokenizer_fingerprint(tok2) == tokenizer_fingerprint(tok)
    x = torch.tensor([[tok.bos_id, *tok.encode("def f(x):\n    return x")]])
    with torch.no_grad():
        half = copy.deepcopy(model).to(torch.float16).to(torch.float32)  # the shipped weights: fp16 rounding
        torch.testing.assert_close(loaded(x), half(x), rtol=1e-4, atol=1e-4)


def test_a_changed_file_is_refused(exported, tmp_path):
    import shutil
    _, _, out = exported
    copy = tmp_path / "codeworld"
    shutil.copytree(out, copy)
    with open(copy / "model.safetensors", "r+b") as f:
        f.seek(-3, 2)
        f.write(b"\x00\x01\x02")
    with pytest.raises(ValueError, match="does not match its sha256"):
        reference.load_reference(directory=copy)
    (copy / "SHA256SUMS").unlink()
    with pytest.raises(FileNotFoundError, match="reference train"):
        reference.verify(copy)


def test_the_shipped_model_is_intact_and_loads_in_transformers():
    """The committed reference model: every file matches SHA256SUMS, the result it ships is the
    recipe's, and transformers reads the folder as a Llama model with the same logits."""
    from transformers import LlamaForCausalLM

    torch.set_num_threads(1)
    model, tok = reference.load_reference()
    shipped = json.loads((reference.reference_dir() / "result.json").read_text())
    assert shipped["params"] == sum(p.numel() for p in model.parameters())
    assert (reference.reference_dir() / "model.safetensors").stat().st_size <= reference.MAX_BYTES
    theirs = LlamaForCausalLM.from_pretrained(reference.reference_dir(), dtype=torch.float32).eval()
    x = torch.tensor([[tok.bos_id, *tok.encode("def total(xs: list[int]) -> int:\n    return")]])
    with torch.no_grad():
        torch.testing.assert_close(theirs(x).logits, model(x), rtol=1e-4, atol=1e-4)


def _constant_prompts(tok, n: int, max_tokens: int = 256):
    """World modules ending with ``assert name() == `` for one of their constant functions (held-out
    stream 4242), cut before the value: ``(prompt, value)`` pairs that fit ``max_tokens``."""
    from minillama.codeworld.documents import modules
    out = []
    for m in modules(3000, seed=4242):
        consts = [p.constant for p in m.parts if p.constant]
        last = m.asserts[-1] if m.asserts else ""
        for name, value in consts:
            if len(out) < n and last == f"assert {name}() == {value}" and 10 <= value <= 99:
                prompt = m.text[: m.text.rindex(last)] + f"assert {name}() == "
                if len(tok.encode(prompt, bos=True)) <= max_tokens:
                    out.append((prompt, value))
    return out[:n]


def test_the_long_trained_model_is_intact_and_retrieves_where_the_v3_reference_does_not():
    """The shipped long-trained model (notebook 04's base) finds a constant defined earlier in a module
    of its own world (the 16M-token world-v3 model does not): the positive control's premise."""
    from minillama.long_context.retrieval import score_two_digit
    assert set(reference.verify(reference.long_dir())) >= {"model.safetensors", "tokenizer.model", "result.json"}
    torch.set_num_threads(1)
    long_model, tok = reference.load_reference(directory=reference.long_dir())
    ref_model, ref_tok = reference.load_reference(directory=reference.v3_dir())
    prompts = _constant_prompts(tok, 20)
    assert len(prompts) >= 10

    def right(model, t):
        return sum(int(score_two_digit(model, t, p).argmax()) == v - 10 for p, v in prompts)
    assert right(long_model, tok) >= 0.75 * len(prompts)  # 17 of 20 here; modules with two constants are harder
    assert right(ref_model, ref_tok) <= 0.3 * len(prompts)


def test_the_shipped_reference_reads_new_names_where_the_v3_model_does_not():
    """On function and argument names that never occur in training (MiniEval's ``renamed`` tier), the
    shipped reference copies each argument's name from the signature into the body (the name probe's
    ratio far below 1) and still solves most problems; the world-v3 model writes the names it knows."""
    from minillama.codeworld import evaluation as cw
    from minillama.codeworld.probe import name_probe
    from minillama.codeworld.robustness import robustness_problems

    torch.set_num_threads(1)
    probs = robustness_problems("renamed", 10)  # 10 instances + 10 compositions
    ref, tok = reference.load_reference()
    v3, v3_tok = reference.load_reference(directory=reference.v3_dir())
    ref_probe, v3_probe = name_probe(ref, tok, list(probs.values())), name_probe(v3, v3_tok, list(probs.values()))
    assert ref_probe["ratio"] < 0.3 < 0.6 < v3_probe["ratio"], (ref_probe, v3_probe)
    ref_passed, v3_passed = cw.greedy(ref, tok, probs)["passed"], cw.greedy(v3, v3_tok, probs)["passed"]
    assert ref_passed >= 10 and v3_passed <= 2, (ref_passed, v3_passed)


def test_the_shipped_reference_was_built_by_the_command_the_code_runs():
    import shlex
    shipped = json.loads((reference.reference_dir() / "result.json").read_text())
    assert shlex.split(shipped["command"])[3:] == list(reference.RECIPE_ARGS)
