#!/usr/bin/env bash
# Fresh-machine check: clone the repository into an empty folder and run README's main
# command as written, in the quick profile. (`make test`, README's other command, is what
# .ci/run itself runs in its own fresh clone.)
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone -q "$src" "$work/minillama"
cd "$work/minillama"
MINILLAMA_PROFILE=quick make reproduce
python3 - <<'PY'
import json, pathlib
summary = json.loads(pathlib.Path("results/quick/summary.json").read_text())
needed = {"run", "rope", "fim", "pretraining", "long_context", "self_instruct", "evaluation"}
missing = needed - set(summary)
assert not missing, f"results/quick/summary.json lacks sections {sorted(missing)}"
assert not summary["run"]["failures"], summary["run"]["failures"]
assert pathlib.Path("results/quick/REPORT.md").read_text().count("| ") > 10
print(f"fresh-machine check: make reproduce (quick) wrote {len(summary)} sections in "
      f"{summary['run']['wall_seconds_total']:.0f} s")
PY
