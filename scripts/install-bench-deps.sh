#!/usr/bin/env bash
# Installs what the benchmarks need beyond scripts/install-deps.sh, from Debian bookworm's archive only:
# the Python baseline of bench/student (Debian's PyTorch 1.13, the same libtorch the C++ side links).
# Idempotent: packages already present are skipped; nothing here is needed to build or test.
# The baseline runs under Debian's /usr/bin/python3, the interpreter these packages install into.
set -euo pipefail

packages=(
  # The plain-PyTorch T5 baseline (bench/student/t5_reference.py); numpy is what torch.from_numpy and
  # the safetensors reader use.
  python3 python3-torch python3-numpy
  # The same OpenBLAS backend the C++ side gets (see install-deps.sh).
  libopenblas0-pthread
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-bench-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "install-bench-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
