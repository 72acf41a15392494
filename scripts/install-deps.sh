#!/usr/bin/env bash
# Installs everything distill needs to build, test and run, from Debian bookworm's archive only.
# Idempotent: packages already present are skipped by apt-get; safe to run on every CI start.
# --bench also installs what the benchmarks need (not needed to build or test; see
# scripts/install-bench-deps.sh).
set -euo pipefail

packages=(
  # Toolchain.
  cmake ninja-build g++ pkg-config ccache git ca-certificates
  # RPC and serialisation.
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  # Student model: libtorch (CPU) and the gloo headers that c10d includes.
  libtorch-dev libgloo-dev
  # Without the pthread OpenBLAS, libtorch falls back to the reference BLAS (~14x slower matmul).
  libopenblas0-pthread
  # Configuration, tests, benchmarks, tokenizer, JSON, HTTP client, storage, HTTP server.
  libssl-dev libyaml-cpp-dev libgtest-dev libgmock-dev libbenchmark-dev libsentencepiece-dev
  nlohmann-json3-dev libcurl4-openssl-dev libsqlite3-dev libcpp-httplib-dev
  # Prometheus server and promtool: tests check every exposition and rule with them.
  prometheus
  # openssl makes the throwaway certificates of the TLS tests.
  openssl
)

if [ "${1:-}" = "--bench" ]; then
  # The plain-PyTorch T5 baseline of bench/student (t5_reference.py, under /usr/bin/python3): Debian's
  # PyTorch 1.13, the same libtorch the C++ side links; numpy backs its safetensors reader.
  packages+=(python3 python3-torch python3-numpy)
elif [ $# -gt 0 ]; then
  echo "usage: $0 [--bench]" >&2
  exit 2
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# --no-install-recommends keeps the prometheus package from pulling its web UI's extras.
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
