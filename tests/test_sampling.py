"""minillama.sampling: the same tokens as the plain decoder, samples that do not depend on their
batch, one prefill per prompt, finished rows out of the batch, stop strings found incrementally."""

import pytest
import torch
from torch.testing import assert_close

from _tok_fixtures import tiny_tokenizer
from minillama.generate import generate
from minillama.model import ModelConfig, Transformer
from minillama.evaluation.course_models import text_generator
from minillama.sampling import StopStrings, batch_generator, draw, sample, text_sampler, uniforms

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Transformer(ModelConfig.from_name("debug")).eval()


def prompts(n=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(3, 512, (int(L),), generator=g).tolist() for L in torch.randint(1, 30, (n,), generator=g)]


def test_per_row_positions_match_rows_decoded_alone(model):
    rows = prompts(3)
    new = torch.tensor([[7, 8, 9]] * 3)
    with torch.no_grad():
        cache = model.new_cache(3, 40)
        for i, p in enumerate(rows):  # prefill each row alone, then place it in the shared cache
            one = model.new_cache(1, 40)
            model(torch.tensor([p]), 0, one)
            for big, small in zip(cache.k + cache.v, one.k + one.v):
                big[i] = small[0]
        pos = torch.tensor([len(p) for p in rows])
        chunk = model(new[:, :2], pos, cache)  # a 2-token chunk per row, then one token
        last = model(new[:, 2:], pos + 2, cache)
        for i, p in enumerate(rows):
            alone = model(torch.tensor([p + [7, 8, 9]]))[0, -3:]
            assert_close(torch.cat([chunk[i], last[i]]), alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("max_rows", [128, 3, 1])
def test_greedy_equals_the_plain_decoder(model, max_rows):
    ps = prompts()
    plain = generate(model, ps, 24)
    stop = [plain[0][4], plain[3][1]]  # two rows end early, on different steps
    assert sample(model, ps, max_new_tokens=24, max_rows=max_rows) == plain
    stopped = sample(model, ps, max_new_tokens=24, stop_ids=stop, max_rows=max_rows)
    assert stopped == generate(model, ps, 24, stop_ids=stop)


@pytest.mark.parametrize("max_rows", [128, 5])
def test_greedy_with_prompts_stored_once_equals_the_plain_decoder(model, max_rows):
    ps = prompts()
    plain = generate(model, ps, 24)
    stop = [plain[0][4], plain[3][1]]
    for stop_ids in ([], stop):  # n > 1: the prompt-sharing cache and its attention
        want = generate(model, ps, 24, stop_ids=stop_ids)
        got = sample(model, ps, n=3, max_new_tokens=24, stop_ids=stop_ids, max_rows=max_rows)
        assert got == [w for w in want for _ in range(3)]


def test_sampling_is_reproducible_and_the_seed_matters(model):
    ps = prompts(4)
    kw = dict(n=5, max_new_tokens=20, temperature=0.9, top_p=0.9)
    a, b = sample(model, ps, seed=3, **kw), sample(model, ps, seed=3, **kw)
    assert a == b
    assert a != sample(model, ps, seed=4, **kw)
    assert len({tuple(s) for s in a[:5]}) > 1  # a prompt's samples differ from one another
    torch.manual_seed(11)
    c = sample(model, ps, **kw)
    torch.manual_seed(11)
    assert sample(model, ps, **kw) == c  # seed=None follows torch's global generator


def test_a_shared_prefill_sample_equals_the_sample_generated_alone(model):
    ps = prompts(3)
    kw = dict(max_new_tokens=20, temperature=0.9, top_p=0.9, seed=5)
    shared = sample(model, ps, n=4, max_rows=12, **kw)  # ragged rows, one prefill per prompt
    for i, p in enumerate(ps):
        for j in range(4):  # its own prefill, a batch of one
            assert sample(model, [p], n=1, offset=j, max_rows=1, **kw)[0] == shared[i * 4 + j]
    # nor does it depend on the other prompts, their order, or how many rows decode at once
    again = sample(model, ps[::-1], n=4, max_rows=5, **kw)
    assert again == shared[8:12] + shared[4:8] + shared[0:4]


def test_each_prompt_is_prefilled_once_and_finished_rows_leave(model):
    calls = []
    hook = model.register_forward_pre_hook(lambda m, args: calls.append(tuple(args[0].shape)))
    p, q = prompts(2)
    try:
        out = sample(model, [p, p, q], n=4, max_new_tokens=16, temperature=1.0, seed=0,
                     stop_ids=list(range(3, 512, 5)))  # a fifth of the vocabulary ends a sample
    finally:
        hook.remove()
    assert [s for s in calls if s[1] > 1] == [(1, len(p)), (1, len(q))]  # duplicates share a prefill
    decode_rows = sum(s[0] for s in calls if s[1] == 1)
    # a sample drawn k times (its tokens + the stop id if it met one) was in k - 1 decoding steps
    draws = sum(len(o) + (len(o) < 16) for o in out)
    assert decode_rows == draws - len(out)
    assert any(len(o) < 16 for o in out) and any(len(o) > 0 for o in out)
    assert out[:8] == sample(model, [p], n=8, max_new_tokens=16, temperature=1.0, seed=0,
                             stop_ids=list(range(3, 512, 5)))  # the two copies are samples 0-3 and 4-7


def test_draw_follows_the_nucleus_of_sample_next():
    grid = (torch.arange(4000) + 0.5) / 4000  # uniforms on a grid: frequencies are the probabilities
    for logits in (torch.tensor([3.0, 2.5, 1.0, 0.0] + [-4.0] * 96),  # nucleus within the top 64
                   torch.linspace(1.0, 0.0, 100)):  # nucleus beyond the top 64: the full sort
        for top_p in (0.5, 0.9, 1.0):
            probs = torch.softmax(logits / 0.8, -1)
            order = probs.argsort(descending=True)
            mass_above = probs[order].cumsum(0) - probs[order]
            nucleus = torch.zeros_like(probs)
            nucleus[order[mass_above <= top_p]] = probs[order[mass_above <= top_p]]
            tokens = draw(logits.expand(len(grid), -1), grid, 0.8, top_p)
            freq = torch.bincount(tokens, minlength=len(logits)) / len(grid)
            assert_close(freq, nucleus / nucleus.sum(), atol=2e-3, rtol=0)
    assert draw(torch.tensor([[0.0, 2.0, 1.0]]), None, 0.0, 0.5).tolist() == [1]  # greedy


def test_uniforms_are_uniform_and_differ_between_streams():
    keys = torch.arange(2000)
    u = torch.cat([uniforms(keys, keys * 7 + 1, torch.full_like(keys, s)) for s in range(50)])
    assert 0 <= float(u.min()) and float(u.max()) < 1
    counts = torch.histc(u, bins=10, min=0, max=1)
    assert float((counts / len(u) - 0.1).abs().max()) < 0.01
    assert len(set(u.tolist())) > 0.99 * len(u)


def test_stop_strings_fire_where_a_full_decode_first_shows_them():
    tok = tiny_tokenizer()
    ascii_ = "x = 1\n    y = 2\n# done\n    return y\ndef f():\n    pass\n"
    unicode = "x = 1\n    y = 'é'  # ünïcode\n    return y\ndef f():\n    pass\n"  # byte pieces
    for text, stop in ((ascii_, ["\ndef "]), (ascii_, ["\n#", "return"]), (ascii_, ["never"]),
                       (unicode, ["\ndef "]), (unicode, ["'é'"])):
        ids = tok.encode_infilling(text)
        check = StopStrings(tok, stop)
        fired = next((k for k in range(1, len(ids) + 1) if check(0, ids[:k])), None)
        brute = next((k for k in range(1, len(ids) + 1)
                      if any(s in tok.decode_infilling(ids[:k]) for s in stop)), None)
        assert fired == brute, stop


def test_stop_strings_fire_on_a_word_start_def():
    r"""A newline, "▁" and "def" decode as "\n def": HumanEval's "\ndef " stops them too."""
    tok = tiny_tokenizer()
    ids = tok.encode_infilling("    return 1\n def g(y):")
    check = StopStrings(tok, ["\ndef "])
    fired = next(k for k in range(1, len(ids) + 1) if check(0, ids[:k]))
    assert tok.decode_infilling(ids[:fired]) == "    return 1\n def "


def test_text_sampler_greedy_equals_the_plain_text_generator():
    tok = tiny_tokenizer()
    torch.manual_seed(0)
    m = Transformer(ModelConfig.from_name("debug", vocab_size=tok.vocab_size)).eval()
    texts = ["def add(a, b):\n", "import os\n\nclass A:\n    def f(self):", "x = ["]
    kw = dict(temperature=0.0, top_p=1.0, max_new_tokens=24, stop=["\n", "("])
    assert text_sampler(m, tok)(texts, **kw) == text_generator(m, tok)(texts, **kw)
    sampled = text_sampler(m, tok)(texts, temperature=0.8, top_p=0.95, max_new_tokens=24, stop=["\n"], n=3, seed=0)
    assert len(sampled) == 9 and not any("\n" in s for s in sampled)


def test_batch_generator_returns_the_stop_id(model):
    ps = prompts(4)
    plain = generate(model, ps, 12)
    stop = plain[1][3]
    out = batch_generator(model)(ps, 12, [stop])
    for o, g in zip(out, plain):
        cut = g.index(stop) + 1 if stop in g else len(g)
        assert o == g[:cut]


def test_bad_arguments_are_refused(model):
    with pytest.raises(ValueError, match="at least one token"):
        sample(model, [[]], max_new_tokens=4)
    with pytest.raises(ValueError, match="tokenizer does not match the model"):
        sample(model, [[1, 600]], max_new_tokens=4)
    with pytest.raises(ValueError, match="n >= 1"):
        sample(model, [[1]], n=0)
