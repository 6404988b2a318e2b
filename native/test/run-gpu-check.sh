#!/usr/bin/env bash
# On a GPU machine with CUDA and CMake (Node not needed): build the kernels with CUDA, run the
# CUDA-vs-CPU parity test through ctest, then time every kernel on CPU and CUDA (JSON lines).
# Usage: native/test/run-gpu-check.sh [build-dir]   (GRADCAM_CUDA=AUTO to allow a CPU-only build)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-${TMPDIR:-/tmp}/gradcam-gpu-check}"
cuda="${GRADCAM_CUDA:-ON}"
command -v nvcc >/dev/null 2>&1 || export PATH="/usr/local/cuda/bin:$PATH"
t0=$(date +%s)
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGRADCAM_TESTS=ON -DGRADCAM_CUDA="$cuda" >/dev/null
cmake --build "$build" --target gradcam_kernels_test -j "$(nproc 2>/dev/null || echo 4)" >/dev/null
echo "{\"step\":\"build\",\"seconds\":$(( $(date +%s) - t0 ))}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available"
(cd "$build" && ctest -V)
"$build/gradcam_kernels_test" --bench
