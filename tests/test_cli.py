"""The command line exposes the package's functions and rejects bad arguments early."""

import subprocess
import sys
from pathlib import Path

import pytest

from minillama.cli import build_parser, main


def test_info_lists_the_presets(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "codellama-7b" in out and "6,738,546,688" in out


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "minillama", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for command in ("train", "reproduce", "corpus", "tokenizer", "long-context", "self-instruct", "check",
                    "generate", "evaluate", "convert"):
        assert command in out.stdout


def test_every_profile_option_has_the_same_choices():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    seen = 0
    for name, p in sub.choices.items():
        for action in p._actions:
            if action.dest == "profile":
                assert sorted(action.choices) == ["cpu", "gpu", "quick"], name
                seen += 1
    assert seen >= 5


@pytest.mark.parametrize("argv, words", [
    (["train", "--steps", "0"], ["--steps", ">= 1"]),
    (["train", "--steps", "ten"], ["integer"]),
    (["train", "--lr", "-1"], ["--lr", "> 0"]),
    (["train", "--lr", "nan"], ["finite"]),
    (["train", "--device", "banana"], ["banana", "cpu"]),
    (["train", "--profile", "huge"], ["invalid choice", "quick"]),
    (["eval-canonical", "--limit", "-1"], [">= 1"]),
    (["eval-canonical", "--workers", "0"], [">= 1"]),
    (["eval-canonical", "--workers", "-2"], [">= 1"]),
    (["check", "/no/such/file.py"], ["does not exist"]),
    (["check", "--timeout", "-3", __file__], ["--timeout", "> 0"]),
    (["evaluate", "--checkpoint", "/no/such/dir"], ["--checkpoint", "not a directory"]),
    (["evaluate", "--checkpoint", str(Path(__file__).parent)], ["neither an HF model folder", "ckpt.pt"]),
    (["evaluate", "--n", "0"], ["--n", ">= 1"]),
    (["evaluate", "--temperature", "-0.5"], ["--temperature", ">= 0"]),
    (["evaluate", "--benchmark", "mbpp"], ["invalid choice", "humaneval"]),
    (["evaluate", "--out", str(Path(__file__).parent)], ["--out", "is a directory"]),
    (["generate", "--top-p", "1.5", "--prompt", "x"], ["--top-p", "(0, 1]"]),
    (["generate", "--max-new-tokens", "0", "--prompt", "x"], ["--max-new-tokens", ">= 1"]),
])
def test_bad_arguments_are_rejected_before_any_work(argv, words, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    for w in words:
        assert w in err, (w, err)


def test_out_pointing_at_a_file_is_rejected(tmp_path, capsys):
    f = tmp_path / "a_file"
    f.write_text("x")
    with pytest.raises(SystemExit):
        main(["train", "--out", str(f)])
    assert "is a file" in capsys.readouterr().err


def test_cuda_on_a_cpu_only_torch_says_what_to_do(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit):
        main(["train", "--device", "cuda"])
    err = capsys.readouterr().err
    assert "CUDA" in err and "--device cpu" in err


def test_generate_without_checkpoint_needs_the_profiles_trained_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MINILLAMA_DATA", str(tmp_path))  # an empty data folder: nothing trained
    with pytest.raises(SystemExit) as e:
        main(["generate", "--profile", "quick", "--prompt", "x"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "no --checkpoint given" in err and "pretrain-fim" in err and "python -m minillama train" in err


def test_a_corpus_source_that_is_not_code_is_an_error_not_a_traceback(tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    with pytest.raises(SystemExit) as e:
        main(["corpus", "--source", str(f)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "neither a .py nor a .jsonl" in err and "Traceback" not in err


# --- one line, no traceback, for what a new user runs into first ---------------------------------
def run_cli(*argv, env=None, cwd=None):
    import os
    return subprocess.run([sys.executable, "-m", "minillama", *argv], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def assert_one_line_error(out, *words):
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    assert "Traceback" not in out.stderr, out.stderr[-2000:]
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.mark.parametrize("command", ["train", "reproduce"])
def test_an_unknown_profile_in_the_environment_is_one_line(command):
    assert_one_line_error(run_cli(command, env={"MINILLAMA_PROFILE": "huge"}), "MINILLAMA_PROFILE='huge'",
                          "quick")


def test_gpu_profile_without_cuda_is_one_line():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert_one_line_error(run_cli("train", "--profile", "gpu"), "needs a CUDA GPU", "MINILLAMA_PROFILE=cpu")


def test_convert_checks_its_source(tmp_path):
    assert_one_line_error(run_cli("convert", str(tmp_path / "does-not-exist"), str(tmp_path / "out")),
                          "does not exist", "training run directory", "HF model folder")
    note = tmp_path / "notamodel.txt"
    note.write_text("hello")
    assert_one_line_error(run_cli("convert", str(note), str(tmp_path / "out")), "is a file", "HF model folder")
    assert_one_line_error(run_cli("convert", str(tmp_path), str(tmp_path / "out")), "not a model folder")
    assert_one_line_error(run_cli("convert", "--meta", str(tmp_path), str(tmp_path / "out")), "params.json")
    assert not (tmp_path / "out").exists()


def test_convert_names_its_positional_output(tmp_path, capsys):
    f = tmp_path / "a_file"
    f.write_text("x")
    with pytest.raises(SystemExit):
        main(["convert", str(tmp_path), str(f)])
    err = capsys.readouterr().err
    assert "DST needs a directory" in err and "--out" not in err


def test_an_empty_prompt_is_refused(capsys):
    with pytest.raises(SystemExit) as e:
        main(["generate", "--prompt", ""])
    assert e.value.code == 2 and "the prompt is empty" in capsys.readouterr().err


def test_help_has_no_rst_markup():
    for argv in (["--help"], ["convert", "--help"], ["evaluate", "--help"], ["train", "--help"]):
        out = run_cli(*argv)
        assert out.returncode == 0, out.stderr
        assert "``" not in out.stdout and ":func:" not in out.stdout, out.stdout


def test_ctrl_c_during_train_says_how_to_resume(tmp_path, monkeypatch, capsys):
    """An interrupt (Ctrl-C) after the first checkpoint: exit 130, one line that names the step and
    the command that resumes; no KeyboardInterrupt traceback."""
    import minillama.training.pretrain as pretrain_mod
    from minillama.training.checkpoint import load_checkpoint

    real = pretrain_mod.train
    out = tmp_path / "run"

    def interrupted_after_checkpoint(cfg, *a, **kw):
        real(cfg, *a, **kw)  # finishes (and checkpoints) the steps asked for, then the user presses Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(pretrain_mod, "train", interrupted_after_checkpoint)
    monkeypatch.setattr(sys, "argv", ["minillama", "train", "--steps", "2"])
    with pytest.raises(SystemExit) as e:
        main(["train", "--profile", "quick", "--steps", "2", "--checkpoint-every", "1", "--out", str(out),
              "--no-compile"])
    assert e.value.code == 130
    err = capsys.readouterr().err
    step = load_checkpoint(out)["step"]
    assert f"checkpoint of step {step} of 2" in err and "to resume" in err and "minillama train" in err, err
