#!/usr/bin/env bash
# Installs what the benchmarks need beyond a normal build (the Python baseline of bench/student), plus
# everything scripts/install-deps.sh installs. Idempotent; nothing here is needed to build or test.
exec "$(dirname "$0")/install-deps.sh" --bench
