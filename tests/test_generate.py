"""Generation: the KV-cache decoder against a naive full-forward loop."""

import pytest
import torch

from minillama.generate import generate, sample_next, truncate_at_stop, word_start_variants
from minillama.model import ModelConfig, Transformer


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Transformer(ModelConfig.from_name("debug")).eval()


def naive_greedy(model, prompt, n):
    x = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            x.append(int(model(torch.tensor([x]))[0, -1].argmax()))
    return x[len(prompt):]


def test_greedy_matches_full_forward_for_a_ragged_batch(model):
    prompts = [[1, 5, 9, 33], [1, 7], [1, 2, 3, 4, 5, 6, 7, 8, 9]]
    batch = generate(model, prompts, 24)
    for prompt, out in zip(prompts, batch):
        assert out == naive_greedy(model, prompt, 24)
        assert out == generate(model, [prompt], 24)[0]  # batching does not change a row


def test_stop_token_ends_a_row_and_is_not_returned(model):
    full = generate(model, [[1, 5, 9]], 12)[0]
    stop = full[4]
    first = full.index(stop)
    out = generate(model, [[1, 5, 9]], 12, stop_ids=[stop])[0]
    assert out == full[:first]


def test_should_stop_callback(model):
    out = generate(model, [[1, 5], [1, 6]], 30, should_stop=lambda row, new: len(new) >= 3 + row)
    assert [len(o) for o in out] == [3, 4]


def test_sampling_is_reproducible_with_a_seed_and_respects_top_p(model):
    a = generate(model, [[1, 2, 3]] * 2, 16, temperature=0.9, top_p=0.9, seed=7)
    b = generate(model, [[1, 2, 3]] * 2, 16, temperature=0.9, top_p=0.9, seed=7)
    assert a == b
    logits = torch.tensor([[5.0, 4.0, -10.0, -10.0]])
    g = torch.Generator().manual_seed(0)
    draws = {int(sample_next(logits, 1.0, 0.5, g)) for _ in range(200)}
    assert draws == {0}  # token 0 alone holds > 50% of the mass: nucleus of size one
    draws = {int(sample_next(logits, 1.0, 0.99, g)) for _ in range(400)}
    assert draws == {0, 1}


def test_bad_prompts_are_refused(model):
    with pytest.raises(ValueError, match="at least one token"):
        generate(model, [[]], 4)
    with pytest.raises(ValueError, match="tokenizer does not match the model"):
        generate(model, [[1, 10_000]], 4)


@pytest.mark.parametrize("kwargs, words", [
    (dict(max_new_tokens=-1), "max_new_tokens must be an integer >= 0"),
    (dict(max_new_tokens=2.5), "max_new_tokens must be an integer"),
    (dict(temperature=float("nan")), "temperature must be a finite number"),
    (dict(temperature=-0.5), "temperature must be a finite number >= 0"),
    (dict(top_p=0.0), "top_p must lie in"),
    (dict(top_p=1.5), "top_p must lie in"),
    (dict(max_new_tokens=10_000), "exceeds the model's context"),
])
def test_bad_decoding_settings_are_refused_in_both_decoders(model, kwargs, words):
    from minillama.sampling import sample

    args = dict(max_new_tokens=4, temperature=0.8, top_p=0.9)
    args.update(kwargs)
    with pytest.raises(ValueError, match=words):
        generate(model, [[1, 2]], args["max_new_tokens"], args["temperature"], args["top_p"])
    with pytest.raises(ValueError, match=words):
        sample(model, [[1, 2]], n=2, max_new_tokens=args["max_new_tokens"], temperature=args["temperature"],
               top_p=args["top_p"])


def test_truncate_at_stop():
    assert truncate_at_stop("    return x\ndef g():\n", ["\ndef ", "\nclass "]) == "    return x"
    assert truncate_at_stop("abc", ["\n#"]) == "abc"


def test_a_word_start_def_is_a_stop_too():
    r"""A tokenizer with a word-start piece can write a new top-level def as "\n" + "▁def",
    which decodes as "\n def": it ends the completion like "\ndef " does."""
    stops = word_start_variants(["\ndef ", "\nclass ", "\n def ", "\n\n", "[DONE]"])
    assert stops == ["\ndef ", "\nclass ", "\n def ", "\n\n", "[DONE]", "\n class "]
    assert truncate_at_stop("    return x\n def g(y):\n    return y\n", ["\ndef "]) == "    return x"
    body = "    def inner(a):\n        return a\n    return inner(x)\n"  # four-space code is never cut
    assert truncate_at_stop(body, ["\ndef ", "\nclass "]) == body


def _echo_model(tok, target):
    """A "model" that always predicts the next token of ``target`` (counting its calls), with the
    interface completion_fn needs."""
    class Echo(torch.nn.Module):
        cfg = ModelConfig.from_name("debug", vocab_size=tok.vocab_size)

        def __init__(self):
            super().__init__()
            self.tok_embeddings = torch.nn.Embedding(1, 1)
            self.calls = 0

        def new_cache(self, batch_size, max_len=None):
            return None

        def forward(self, tokens, start_pos=0, cache=None):
            logits = torch.full((tokens.shape[0], tokens.shape[1], tok.vocab_size), -1e9)
            logits[:, -1, target[min(self.calls, len(target) - 1)]] = 0.0
            self.calls += 1
            return logits

    return Echo()


def test_a_word_start_def_stops_decoding():
    from _tok_fixtures import tiny_tokenizer

    from minillama.generate import completion_fn

    tok = tiny_tokenizer()
    target = tok.encode_infilling("    return 1\n def g(y):\n    return y\n")
    assert "\n def g" in tok.decode_infilling(target)  # "\n", "▁", "def", ...

    model = _echo_model(tok, target)
    out = completion_fn(model, tok)(["def f(x):\n"], max_new_tokens=len(target), stop=["\ndef ", "\nclass "])
    assert out == ["    return 1"]
    first = next(k for k in range(len(target)) if "\n def " in tok.decode_infilling(target[:k]))
    assert model.calls == first < len(target)  # decoding stopped at the token that completed "\n def "


def test_completion_fn_keeps_leading_indentation_of_the_continuation(tmp_path):
    from minillama.generate import completion_fn
    from minillama.tokenizer import Tokenizer

    text = "def f(x):\n    return x + 1\n\ndef g(y):\n    return y * 2\n" * 20
    tok = Tokenizer.train([text], 300, tmp_path / "tok.model")
    target = tok.encode_infilling("    return x + 1\n")

    run = completion_fn(_echo_model(tok, target), tok)
    out = run(["def f(x):\n"], max_new_tokens=len(target))[0]
    assert out == "    return x + 1\n"
