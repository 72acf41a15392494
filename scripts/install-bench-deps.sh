#!/usr/bin/env bash
# Installs what the benchmarks need beyond a normal build: today nothing more, since their Python baselines
# (transformers and the hand-written T5 of bench/student) run in the virtualenv that scripts/install-deps.sh
# creates for every build. Kept so bench READMEs and habits keep working. Idempotent.
exec "$(dirname "$0")/install-deps.sh" --bench
