#!/usr/bin/env bash
# Installs everything distill needs to build, test and run, from Debian bookworm's archive only.
# Idempotent: packages already present are skipped by apt-get; safe to run on every CI start.
# --bench also installs what the benchmarks need (not needed to build or test; see
# scripts/install-bench-deps.sh).
# --runtime installs only the shared libraries the built binaries load (no compilers, no -dev packages):
# the runtime stage of docker/Dockerfile.
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
  # Go with sprig and YAML (GOPATH sources): tests/deploy/helm renders the Helm chart as helm does.
  golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v2-dev golang-gopkg-yaml.v3-dev
)

# What the binaries under build/release/bin load at run time: the packages owning their NEEDED entries
# (objdump -p, dpkg -S), plus what they dlopen. libc6 and libgcc-s1 are in every Debian image.
# tests/deploy/compose (DeployRuntimePackagesTest) checks this list against the built binaries.
runtime_packages=(
  libabsl20220623 libgrpc29 libgrpc++1.51 libprotobuf32 libyaml-cpp0.7 libcurl4 libssl3 libsqlite3-0
  libcpp-httplib0.11 libstdc++6
  # The student model: libtorch (CPU) and, as above, the pthread OpenBLAS behind it.
  libtorch1.13 libopenblas0-pthread
  # The tokenizer's embedded shim dlopens libsentencepiece (common/student/tokenizer/).
  libsentencepiece0
  # HTTPS to teacher APIs.
  ca-certificates
)

if [ "${1:-}" = "--runtime" ]; then
  packages=("${runtime_packages[@]}")
elif [ "${1:-}" = "--bench" ]; then
  # The plain-PyTorch T5 baseline of bench/student (t5_reference.py, under /usr/bin/python3): Debian's
  # PyTorch 1.13, the same libtorch the C++ side links; numpy backs its safetensors reader.
  packages+=(python3 python3-torch python3-numpy)
elif [ $# -gt 0 ]; then
  echo "usage: $0 [--bench | --runtime]" >&2
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
