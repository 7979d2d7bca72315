"""The gpu profile, checked on a machine without a GPU.

* Every function that takes a model must build its inputs on the model's device. On a CPU-only
  machine a forgotten ``.to(device)`` never shows, so the model is put on the ``meta`` device
  (shapes only, no data) and its forward records the device of the tokens it receives, then
  stops the function (nothing can be computed on meta anyway).
* The training code path of the gpu profile (bf16 autocast, ``torch.compile``, fused AdamW) runs
  at the debug size on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minillama.data.pipeline import PackedData
from minillama.model import ModelConfig, Transformer
from minillama.training import schedule

from _tok_fixtures import tiny_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")


class Reached(Exception):
    """The model's forward was called: the inputs' device is recorded, the function stops here."""


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer(400)


@pytest.fixture
def meta_model(tok, monkeypatch):
    seen = []

    def forward(self, tokens, start_pos=0, cache=None):
        seen.append(tokens.device)
        raise Reached

    monkeypatch.setattr(Transformer, "forward", forward)
    with torch.device("meta"):
        model = Transformer(ModelConfig.from_name("debug", vocab_size=tok.vocab_size))
    model.seen = seen
    return model


def _data(tok, rows=8, seq=32):
    return PackedData.from_array(np.random.default_rng(0).integers(3, tok.vocab_size, (rows, seq + 1)))


def _call_sites():
    """(name, fn(model, tok)) for every library function that runs a model on inputs it builds.
    (instruct.pipeline.LM hands token lists to generate(); it always seeds it, and meta has no
    random generator, so it is covered through generate.)"""
    from minillama.evaluation.course_models import infill_middles, text_generator
    from minillama.generate import completion_fn, generate
    from minillama.healing import model_next_logits
    from minillama.instruct.sft import finetune as sft
    from minillama.long_context.cost import forward_cost
    from minillama.long_context.finetune import finetune as lcft
    from minillama.long_context.perplexity import context_sweep, perplexity, token_losses
    from minillama.long_context.retrieval import score_two_digit
    from minillama.training.pretrain import infill_exact_match, middle_mask
    from minillama.training.trainer import validation_loss

    windows = torch.randint(3, 300, (2, 33))
    task = {"prompt": "def f(x):\n    return x", "suffix": "\n", "canonical_solution": " + 1"}
    return [
        ("generate", lambda m, t: generate(m, [[1, 5, 9], [1, 7]], 4)),
        ("completion_fn", lambda m, t: completion_fn(m, t)(["def f():"], max_new_tokens=4)),
        ("text_generator", lambda m, t: text_generator(m, t)(["def f():"], max_new_tokens=4)),
        ("infill_middles", lambda m, t: infill_middles(m, t, [task], max_new_tokens=4)),
        ("infill_middles healed", lambda m, t: infill_middles(m, t, [task], heal_tokens=True, max_new_tokens=4)),
        ("model_next_logits", lambda m, t: model_next_logits(m)([1, 5, 9])),
        ("sft", lambda m, t: sft(m, t, [_example(t)], steps=1, batch_size=2)),
        ("token_losses", lambda m, t: token_losses(m, windows)),
        ("perplexity", lambda m, t: perplexity(m, windows)),
        ("context_sweep", lambda m, t: context_sweep(m, windows, [16], n_targets=8)),
        ("score_two_digit", lambda m, t: score_two_digit(m, t, "x = 1\nassert my_function() == ")),
        ("forward_cost", lambda m, t: forward_cost(m, [16], with_memory=False)),
        ("lcft", lambda m, t: lcft(m, windows.flatten(), 16, steps=1, batch_size=1)),
        ("validation_loss", lambda m, t: validation_loss(m, _data(t), 4)),
        ("validation_loss masked", lambda m, t: validation_loss(m, _data(t), 4, mask=middle_mask(t))),
        ("infill_exact_match", lambda m, t: infill_exact_match(m, t, [("def f(x):\n    ", "return x", "\n")],
                                                                max_new_tokens=4)),
    ]


def _example(tok):
    from minillama.instruct.pipeline import Example

    return Example(question="Add one to x.", shown_test="assert f(1) == 2", signature="def f(x):",
                   code="def f(x):\n    return x + 1\n")


@pytest.mark.parametrize("name", [name for name, _ in _call_sites()])
def test_inputs_are_built_on_the_models_device(name, meta_model, tok):
    fn = dict(_call_sites())[name]
    with pytest.raises(Reached):
        fn(meta_model, tok)
    assert meta_model.seen and all(d.type == "meta" for d in meta_model.seen), meta_model.seen


def test_middle_mask_follows_its_inputs(tok):
    from minillama.training.pretrain import middle_mask

    x = torch.tensor([[tok.bos_id, tok.prefix_id, 40, tok.middle_id, 50, 60, tok.eot_id, 70]])
    mask = middle_mask(tok)(x, x)
    assert mask.tolist() == [[False, False, False, True, True, True, False, False]]
    assert middle_mask(tok)(x.to("meta"), x.to("meta")).device.type == "meta"


# --- the gpu profile's training path, on the CPU ---------------------------------------------

MODEL = dict(dim=32, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=64, multiple_of=16, max_seq_len=64)


def _counting(n_rows=32, seq_len=16):
    rng = np.random.default_rng(0)
    start, stride = rng.integers(0, 64, (n_rows, 1)), rng.integers(1, 4, (n_rows, 1))
    return PackedData.from_array((start + stride * np.arange(seq_len + 1)) % 64)


def test_fused_adamw_takes_the_same_step():
    torch.manual_seed(0)
    a = Transformer(ModelConfig(**MODEL))
    b = Transformer(ModelConfig(**MODEL))
    b.load_state_dict(a.state_dict())
    x = torch.randint(0, 64, (4, 16))
    opts = [schedule.make_optimizer(a, 1e-2), schedule.make_optimizer(b, 1e-2, fused=True)]
    assert opts[1].defaults["fused"] and not opts[0].defaults["fused"]
    for model, opt in zip((a, b), opts):
        for _ in range(3):
            model(x).float().logsumexp(-1).mean().backward()
            opt.step()
            opt.zero_grad()
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.slow  # torch.compile builds C++ kernels: about a minute on a busy 2-core machine
def test_gpu_training_path_runs_on_the_cpu(monkeypatch):
    """bf16 autocast + torch.compile (inductor) + fused AdamW, as the gpu profile trains, against float32.
    (tests/test_gpu_run.py runs the same path through the dry run's backend in seconds.)"""
    from minillama.training.trainer import TrainConfig, train

    monkeypatch.delenv("MINILLAMA_COMPILE_BACKEND", raising=False)
    base = dict(steps=4, batch_size=8, lr=1e-2, warmup=1, eval_interval=0, progress=False)
    val = {"val": _counting(8)}
    gpu_path = train(TrainConfig(**base, dtype="bfloat16", compile=True, fused_adamw=True), ModelConfig(**MODEL),
                     _counting(), val)
    assert gpu_path.compile_error is None  # inductor compiled it (no fallback to eager)
    fp32 = train(TrainConfig(**base), ModelConfig(**MODEL), _counting(), val)
    losses = [[h["loss"] for h in r.history if "loss" in h] for r in (gpu_path, fp32)]
    assert all(np.isfinite(losses[0])) and losses[0][-1] < losses[0][0]  # it learns
    np.testing.assert_allclose(losses[0], losses[1], rtol=0.05)  # bf16 rounding, not another computation
    assert gpu_path.history[-1]["val_loss"] == pytest.approx(fp32.history[-1]["val_loss"], rel=0.05)
