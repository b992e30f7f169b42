#!/usr/bin/env bash
# The GPU check: nanoGPT's shakespeare-char recipe trained on a CUDA GPU (bfloat16, torch.compile) to
# val loss <= 1.47; prints ms/iter, MFU, tokens/s, the time it took, and sampling speed with and
# without the KV cache. The measuring is `nanogpt-tui bench gpu` (core/bench_gpu.py).
#
#   scripts/gpu_check.sh [TINYSHAKESPEARE.txt] [more `bench gpu` flags, e.g. --iters 2000]
#
# The text defaults to ../shared/data/tinyshakespeare.txt beside the repository, else the download
# cache (`nanogpt-tui prepare shakespeare` fills it). PYTHON picks the interpreter (default: python3);
# NANOGPT_TUI_PEAK_TFLOPS sets the GPU's peak bfloat16 TFLOPS when its name is not in the table.
# Without a CUDA GPU it says so and exits with status 1.
set -euo pipefail
cd "$(dirname "$0")/.."
text=()
if [[ $# -gt 0 && $1 != -* ]]; then
    text=(--text "$1")
    shift
fi
exec "${PYTHON:-python3}" -m nanogpt_tui.cli bench gpu ${text[@]+"${text[@]}"} "$@"
