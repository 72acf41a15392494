#!/usr/bin/env bash
# Configures and builds distill with a CMake preset (default: release). Incremental: re-running only
# rebuilds what changed (ccache also serves rebuilds from a clean tree).
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${DISTILL_PRESET:-release}"
# ccache keys on paths relative to the clone and not on the build folder, so a fresh clone elsewhere (CI)
# reuses what an earlier build compiled; libtorch's headers make a cold build of the tests long.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-20G}"
if [ ! -f "build/${preset}/build.ninja" ]; then
  cmake --preset "${preset}" >/dev/null
fi
cmake --build --preset "${preset}" -- -j"${DISTILL_JOBS:-$(nproc)}"
