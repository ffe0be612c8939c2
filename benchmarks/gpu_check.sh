#!/usr/bin/env bash
# The first-GPU check (benchmarks/gpu_check.py): no download, one output folder, summary.md at the end.
#   bash benchmarks/gpu_check.sh            on one GPU; OUT=folder to write elsewhere (default outputs/gpu_check)
#   bash benchmarks/gpu_check.sh --dry      tiny shapes on the CPU, to test the script itself
# Uses the project's .venv when there is one, else the python on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}"
OUT="${OUT:-outputs/gpu_check}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > /dev/null 2>&1 \
  && { mkdir -p "$OUT"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv"; }
exec "$PYTHON" benchmarks/gpu_check.py --out "$OUT" "$@"
