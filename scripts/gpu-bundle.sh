#!/usr/bin/env bash
# Prepares what scripts/gpu-check.sh runs on a lent GPU machine, which has PyTorch (the pinned version)
# and CUDA but none of our Debian packages and no network: the gpu-labelled test binary and the GPU
# benchmark, stripped, plus every shared library they load that is neither libtorch's (the machine's own
# torch provides those) nor glibc's, in build/gpu-bundle/{bin,lib} (under 64 MiB). Then proves here that
# the bundle starts on its own libraries: every non-torch, non-glibc library resolves inside the bundle.
#
#   scripts/gpu-bundle.sh     # after scripts/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${DISTILL_PRESET:-release}"
build="build/${preset}"
out="build/gpu-bundle"
binaries=("${build}/tests/gpu/distill_tests_gpu_gpu_test" "${build}/bin/distill-bench-gpu")
torch_lib="$("$(bash scripts/venv-path.sh)/bin/python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"

rm -rf "${out}"
mkdir -p "${out}/bin" "${out}/lib"
for binary in "${binaries[@]}"; do
  [ -x "${binary}" ] || { echo "gpu-bundle: ${binary} is missing: run scripts/build.sh" >&2; exit 1; }
  objcopy --strip-all "${binary}" "${out}/bin/$(basename "${binary}")"
done
cp scripts/gpu-check.sh "${out}/"

# The libraries the binaries need, resolved here; torch's (its lib/ and the nvidia/ wheels beside it) and
# glibc's stay behind. libstdc++ and libgcc_s travel: the GPU machine's may be older than GCC 12's.
is_glibc() {
  case "$(basename "$1")" in
    libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|ld-linux*|libresolv.so.*|libutil.so.*) return 0 ;;
  esac
  return 1
}
site_packages="$(dirname "$(dirname "${torch_lib}")")"
for binary in "${out}"/bin/*; do
  ldd "${binary}" | awk '/=> \// {print $3}' | while read -r lib; do
    case "$(readlink -f "${lib}")" in "$(readlink -f "${site_packages}")"/*) continue ;; esac
    is_glibc "${lib}" && continue
    cp -L -n "${lib}" "${out}/lib/"
  done
done
strip --strip-unneeded "${out}"/lib/*.so* 2>/dev/null || true

size_kib="$(du -sk "${out}" | cut -f1)"
echo "gpu-bundle: ${out}: $(ls "${out}/lib" | wc -l) libraries, ${size_kib} KiB"
if [ "${size_kib}" -gt $((64 * 1024)) ]; then
  echo "gpu-bundle: over 64 MiB, which is what can be carried to the GPU machine" >&2
  exit 1
fi

# The proof: with only the bundle and torch's lib/ on the path, nothing resolves to /usr/lib except glibc.
for binary in "${out}"/bin/*; do
  stray="$(LD_LIBRARY_PATH="$(readlink -f "${out}/lib"):${torch_lib}" ldd "${binary}" | awk '/=> \// {print $3}' |
             while read -r lib; do
               case "$(readlink -f "${lib}")" in
                 "$(readlink -f "${out}")"/*|"$(readlink -f "${site_packages}")"/*) ;;
                 *) is_glibc "${lib}" || echo "${lib}" ;;
               esac
             done)"
  if [ -n "${stray}" ]; then
    echo "gpu-bundle: $(basename "${binary}") still loads from outside the bundle: ${stray}" >&2
    exit 1
  fi
done
LD_LIBRARY_PATH="$(readlink -f "${out}/lib"):${torch_lib}" "${out}/bin/distill_tests_gpu_gpu_test" --gtest_brief=1 | tail -3
echo "gpu-bundle: ready (carry ${out} to the GPU machine; run ${out}/gpu-check.sh there)"
