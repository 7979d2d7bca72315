"""The command line exposes the package's functions."""

import importlib
import subprocess
import sys

from minillama.__main__ import COMMAND_MODULES, main


def test_every_command_module_imports_and_registers():
    for name in COMMAND_MODULES:
        assert hasattr(importlib.import_module(name), "add_parser"), name


def test_info_lists_the_presets(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "codellama-7b" in out and "6,738,546,688" in out


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "minillama", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for command in ("train", "reproduce", "corpus", "tokenizer"):
        assert command in out.stdout
