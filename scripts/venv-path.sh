#!/usr/bin/env bash
# Prints the path of the Python virtualenv that scripts/install-deps.sh creates for the pinned
# requirements: ${DISTILL_CACHE:-~/.cache/distill}/venv-<first 12 hex of their SHA-256>. cmake/Dependencies.cmake
# computes the same path.
set -euo pipefail
cache="${DISTILL_CACHE:-${HOME}/.cache/distill}"
hash="$(sha256sum "$(dirname "$0")/python-requirements.txt" | cut -c1-12)"
echo "${cache}/venv-${hash}"
