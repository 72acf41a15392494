#!/usr/bin/env bash
# Runs on a lent GPU machine, from the bundle that scripts/gpu-bundle.sh prepared (this file is copied
# into it): the gpu-labelled tests, then the small-shape GPU throughput (training and generation
# tokens/s, peak GPU memory). Uses that machine's own torch libraries (the same version as our pin), found
# through its python3. Finishes in a few minutes; prints everything to stdout, and writes JSON and the
# test report under $OUT when set.
#
#   bash build/gpu-bundle/gpu-check.sh
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"
echo "== machine"
uname -m
ldd --version 2>&1 | head -1
"${python}" -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "gpus", torch.cuda.device_count()); [print(" ", torch.cuda.get_device_name(i)) for i in range(torch.cuda.device_count())]'
torch_lib="$("${python}" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="${here}/lib:${torch_lib}${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"
out="${OUT:-/tmp}"

echo "== gpu tests"
timeout 300 "${here}/bin/distill_tests_gpu_gpu_test" --gtest_output="xml:${out}/gpu_test.xml"
tests=$?

echo "== throughput (t5-v1_1-small shape)"
timeout 240 "${here}/bin/distill-bench-gpu" --out "${out}/gpu_bench.json"
bench=$?
echo "== done: tests exit ${tests}, bench exit ${bench}"
[ "${tests}" -eq 0 ] && [ "${bench}" -eq 0 ]
