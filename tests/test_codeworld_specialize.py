"""Specialization: the mixed stream holds the asked share of world tokens, and the continued run
starts from the base, changes it, and is cached by the base's weights and the settings."""

from dataclasses import replace

import pytest
import torch

from minillama.codeworld.documents import documents
from minillama.codeworld.specialize import get_specialized, mixed_stream, world_validation
from minillama.model import ModelConfig, Transformer
from minillama.profiles import get_profile
from minillama.tokenizer import get_tokenizer


@pytest.fixture(scope="module")
def tok():
    return get_tokenizer("quick")


def test_mixed_stream_holds_the_world_share(tok):
    world = documents(60, seed=5)
    stdlib = ["import os\n\n\ndef f(x):\n    return os.path.join(x, 'a')\n" * 3] * 40
    stream = mixed_stream(tok, world, stdlib, 20_000, 0.75)
    n_world = sum(len(i) for i in tok.encode_batch(world, bos=True, eos=True))
    assert 20_000 <= len(stream) <= 20_000 + 2 * max(map(len, tok.encode_batch(world + stdlib)))
    assert int((stream == tok.bos_id).sum()) == int((stream == tok.eos_id).sum())  # whole documents
    only_world = mixed_stream(tok, world, stdlib, 5_000, 1.0)
    assert len(only_world) <= n_world + 600 and "os.path" not in tok.decode(only_world.tolist())
    with pytest.raises(ValueError):
        mixed_stream(tok, world, stdlib, 1000, 1.5)


def test_specialized_model_starts_from_the_base_and_is_cached(tok, tmp_path, monkeypatch):
    monkeypatch.setenv("MINILLAMA_DATA", str(tmp_path))
    torch.manual_seed(0)
    base = Transformer(ModelConfig.from_name("debug", vocab_size=tok.vocab_size)).eval()
    before = {k: v.clone() for k, v in base.state_dict().items()}
    profile = replace(get_profile("quick"), notebook=replace(get_profile("quick").notebook, specialize_steps=3))
    stdlib = ["def g(y):\n    return y * 2\n" * 20] * 10
    model, info = get_specialized(base, tok, stdlib, profile, show_progress=False)
    assert not info["cached"] and len(info["losses"]) == 3 and info["lr"] == profile.lr / 3
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())  # the base is untouched
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    again, info2 = get_specialized(base, tok, stdlib, profile, show_progress=False)
    assert info2["cached"] and all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                                     again.state_dict().values()))
    other, info3 = get_specialized(base, tok, stdlib, profile, world_share=0.5, show_progress=False)
    assert not info3["cached"]
    val = world_validation(tok, 64, 5)
    assert val.rows.shape == (5, 65)
