#!/usr/bin/env bash
# Installs everything distill needs to build, test and run: Debian bookworm packages, and a Python
# virtualenv with exact versions (scripts/python-requirements.txt) whose torch wheel carries the libtorch
# every C++ target links. The virtualenv lives outside the clone, in
# ${DISTILL_CACHE:-~/.cache/distill}/venv-<first 12 hex of the requirements' SHA-256> (scripts/venv-path.sh
# prints it; CMake finds it the same way), so a rerun, or CI on the same machine, reuses it.
# Idempotent: packages already present are skipped; safe to run on every CI start.
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
  # The virtualenv that holds the torch wheel (its libtorch is what the C++ side links).
  python3 python3-venv
  # The gloo headers c10d's ProcessGroupGloo.hpp includes: the wheel ships c10d's headers and gloo's
  # compiled code, not gloo's headers (tests/services/trainer/training/collective_test checks the pair).
  libgloo-dev
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
  # The student model's libtorch comes from the virtualenv (below), which needs Python.
  python3 python3-venv
  # The tokenizer's embedded shim dlopens libsentencepiece (common/student/tokenizer/).
  libsentencepiece0
  # HTTPS to teacher APIs.
  ca-certificates
)

if [ "${1:-}" = "--runtime" ]; then
  packages=("${runtime_packages[@]}")
elif [ "${1:-}" = "--bench" ]; then
  # The benchmarks' Python baselines run in the same virtualenv (transformers on the same torch).
  :
elif [ $# -gt 0 ]; then
  echo "usage: $0 [--bench | --runtime]" >&2
  exit 2
fi

install_packages() {
  local missing=()
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all $# Debian packages present"
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # --no-install-recommends keeps the prometheus package from pulling its web UI's extras.
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# The virtualenv: created under a temporary name and renamed when complete, so an interrupted install
# is never taken for a finished one.
install_venv() {
  local venv
  venv="$(bash "$(dirname "$0")/venv-path.sh")"
  if [ -x "${venv}/bin/python" ]; then
    echo "install-deps: virtualenv ${venv} present"
    return 0
  fi
  local partial="${venv}.partial"
  rm -rf "${partial}"
  mkdir -p "$(dirname "${venv}")"
  echo "install-deps: creating ${venv}"
  # Debian's python3 (not whatever python3 is first on PATH) so every machine builds the same venv.
  /usr/bin/python3 -m venv "${partial}"
  "${partial}/bin/pip" install --quiet --disable-pip-version-check --no-input \
    -r "$(dirname "$0")/python-requirements.txt"
  # A venv's scripts name its folder; the interpreter and site-packages do not: only python -m is used.
  mv "${partial}" "${venv}"
}

install_packages "${packages[@]}"
install_venv
