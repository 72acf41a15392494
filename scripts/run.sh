#!/usr/bin/env bash
# The main job from a fresh clone: installs dependencies, builds, and runs the offline demo job
# (`distill run examples/arith-demo.yaml`: the all-in-one cluster on loopback, a synthetic teacher, two
# students compared, the better one served until Ctrl-C). Extra arguments go to `distill run` (e.g.
# --exit); `scripts/run.sh other-job.yaml` runs another job file instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
preset="${DISTILL_PRESET:-release}"
job="examples/arith-demo.yaml"
if [[ $# -gt 0 && "$1" != -* ]]; then job="$1"; shift; fi
exec "build/${preset}/bin/distill" run "$job" "$@"
