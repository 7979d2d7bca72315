# minillama — run `make help` for the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= $(or $(MINILLAMA_PROFILE),cpu)

# torch is installed before the project so pip never resolves it on its own: on PyPI a Linux
# `torch` (pinned or not) is a multi-GB CUDA build. Without an NVIDIA GPU we install the CPU
# build this course is tested with, torch 2.13.0 from PyTorch's CPU index (pip prefers its
# 2.13.0+cpu to PyPI's 2.13.0), as environment.yml does (tests/test_packaging.py checks they
# agree). With a GPU, the newest torch that pip offers (a CUDA build) is installed. Override
# either: `make TORCH_SPEC="torch==2.5.1" TORCH_INDEX=--extra-index-url=https://download.pytorch.org/whl/cu128`.
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)
TORCH_SPEC ?= $(if $(HAS_GPU),torch,torch==2.13.0)
TORCH_INDEX ?= $(if $(HAS_GPU),,--extra-index-url=https://download.pytorch.org/whl/cpu)
# an unreachable index (an offline machine with a local wheel mirror) costs seconds, not minutes of retries
PIP_NET ?= --retries 1 --timeout 10

.PHONY: help setup test test-fast reproduce lab lab-command bench bench-smoke student assignments grading-check gpu-wheels gpu-dry-run clean
.DEFAULT_GOAL := help

help:  ## list the targets
	@echo "minillama — Code Llama rebuilt at laptop scale"
	@echo
	@echo "  make reproduce   set up .venv and run every notebook headless -> results/ (MINILLAMA_PROFILE=$(PROFILE))"
	@echo "  make test        set up .venv, run pytest and nbval over the notebooks (quick profile)"
	@echo "  make lab         JupyterLab on notebooks/ (LAB_ARGS=\"--no-browser --port=8888\"; --allow-root as root)"
	@echo "  make bench       the speed benchmarks in bench/ (prints ratios against transformers)"
	@echo "  make bench-smoke every benchmark at tiny sizes in seconds (make test does this too)"
	@echo "  make assignments the nbgrader course folder assignments/ (source -> release, gradebook)"
	@echo "  make grading-check  autograde all six assignments: reference answers full points, stubs zero"
	@echo "  make student     students' copies of the notebooks (nbgrader's release) in student/"
	@echo "  make gpu-wheels  fetch the wheels a GPU machine without network lacks -> gpu/wheels/ (for bash gpu/run.sh)"
	@echo "  make gpu-dry-run the gpu profile's one command rehearsed on the CPU at tiny sizes -> results/gpu-dry-run/"
	@echo "  make setup       only create .venv and install the project"
	@echo "  make clean       remove caches and generated data (keeps .venv and results/)"

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q $(PIP_NET) $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	@touch $@

setup: $(VENV)/.installed  ## create .venv and install

test: setup  ## pytest + nbval over every notebook, quick profile
	MINILLAMA_PROFILE=quick $(PY) -m pytest -q tests
	MINILLAMA_PROFILE=quick $(PY) -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env notebooks
	# the switch of notebooks 04-06 to notebook 03's own model
	MINILLAMA_CODING_MODEL=own MINILLAMA_PROFILE=quick $(PY) -m pytest -q -p no:cacheprovider --nbval-lax \
		--nbval-current-env notebooks/04_long_context.ipynb notebooks/05_self_instruct.ipynb notebooks/06_evaluation.ipynb

reproduce: setup  ## run the notebook series headless and write results/
	MINILLAMA_PROFILE=$(PROFILE) $(PY) -m minillama reproduce

# Jupyter refuses to run as root without --allow-root (containers, Colab-like VMs and many classroom
# machines run as root), so it is added there. LAB_ARGS passes anything else, e.g. on a remote machine:
# make lab LAB_ARGS="--no-browser --ip=0.0.0.0 --port=8888"
LAB_ARGS ?=
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
LAB_CMD = $(VENV)/bin/jupyter lab notebooks $(LAB_ROOT) $(LAB_ARGS)

lab: setup  ## JupyterLab on the notebooks (LAB_ARGS="..." adds arguments; as root, --allow-root is added)
	$(LAB_CMD)

lab-command:  # the command `make lab` runs (tests/test_lab.py starts it headless)
	@echo $(LAB_CMD)

student: setup  ## students' copies of the notebooks (nbgrader's release, solutions removed) -> student/
	$(PY) -m minillama student

assignments: setup  ## the nbgrader course folder: nbgrader_config.py, source/ and release/ from notebooks/
	$(PY) -m minillama assignments

grading-check: setup  ## nbgrader autogrades each assignment: reference answers full points, stubs zero (quick)
	MINILLAMA_PROFILE=quick $(PY) -m minillama grading-check

bench: setup  ## speed benchmarks (ratios against named baselines)
	$(PY) bench/bench_model.py
	$(PY) bench/bench_train.py
	$(PY) bench/bench_sampling.py --threads 1 --clock cpu
	$(PY) bench/bench_execution.py
	$(PY) bench/bench_sandbox_memory.py

bench-smoke: setup  ## every benchmark in seconds (tiny sizes): checks they run, measures nothing
	for b in bench/bench_*.py; do echo "== $$b --smoke"; $(PY) $$b --smoke || exit 1; done

gpu-wheels: setup  ## wheels for the GPU machine's Python 3.12 (what its image lacks) -> gpu/wheels/
	bash gpu/wheels.sh

gpu-dry-run: setup  ## bash gpu/run.sh --dry-run: the gpu profile's path on the CPU at tiny sizes
	PYTHON=$(PY) bash gpu/run.sh --dry-run

clean:  ## remove caches and generated data
	rm -rf data/cache data/artifacts .pytest_cache .hypothesis
	find . -name __pycache__ -prune -exec rm -rf {} +
