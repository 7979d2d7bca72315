"""The fast batch-1 decode path gives generate.py's greedy tokens, stop ids included."""

import pytest
import torch

from minillama.fast_decode import FastDecoder, greedy
from minillama.generate import generate
from minillama.model import ModelConfig, Transformer

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("preset, kv", [("debug", None), ("debug", 2)])
def test_fast_greedy_gives_generates_tokens(preset, kv):
    torch.manual_seed(0)
    cfg = ModelConfig.from_name(preset, vocab_size=256, **({"n_kv_heads": kv} if kv else {}))
    model = Transformer(cfg).eval()
    model.reset_parameters(std=0.1)  # logits far from ties: two float orders pick the same token
    fast = FastDecoder(model)
    for prompt in ([1, 5, 9, 200], [1], list(range(3, 40))):
        want = generate(model, [prompt], 48)[0]
        assert fast.greedy(prompt, 48) == want
        stop = want[10]
        assert greedy(model, prompt, 48, stop_ids=[stop]) == generate(model, [prompt], 48, stop_ids=[stop])[0]


def test_the_shipped_model_decodes_the_same():
    from minillama.codeworld.reference import reference_dir
    from minillama.hf import from_pretrained, load_tokenizer

    model, tok = from_pretrained(reference_dir()).eval(), load_tokenizer(reference_dir())
    prompt = [tok.bos_id] + tok.encode('def add_one(x):\n    """Return x plus one."""\n')
    assert greedy(model, prompt, 64, stop_ids=[tok.eos_id]) == generate(model, [prompt], 64, stop_ids=[tok.eos_id])[0]
