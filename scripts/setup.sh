#!/usr/bin/env bash
# Installs gatera-lab with its exact dependency versions (constraints.txt) into a project-local virtual
# environment, .venv by default (the first argument, or GATERA_LAB_VENV, names another; "system" installs into
# the current python3 instead). Idempotent and quick when nothing changed: a stamp in the environment records
# the hash of pyproject.toml, constraints.txt and this script, and a matching stamp skips the install.
# On a machine without an NVIDIA GPU, torch's CPU build is installed first, so that the torch requirement
# does not pull several GB of CUDA packages.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-${GATERA_LAB_VENV:-.venv}}"
TORCH_VERSION="$(sed -n 's/^torch==//p' constraints.txt)"

if [ "$VENV" = "system" ]; then
    PYTHON="${PYTHON:-python3}"
    STAMP="$("$PYTHON" -c 'import sys; print(sys.prefix)')/.gatera-lab-setup"
else
    if [ ! -x "$VENV/bin/python" ]; then
        echo "setup: creating the virtual environment $VENV"
        "${PYTHON:-python3}" -m venv "$VENV"
    fi
    PYTHON="$VENV/bin/python"
    STAMP="$VENV/.gatera-lab-setup"
fi
WANTED="$(cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANTED" ] && "$PYTHON" -c "import gatera_lab" 2>/dev/null; then
    echo "setup: $VENV is up to date"
    exit 0
fi

PIP=("$PYTHON" -m pip install --disable-pip-version-check -c constraints.txt)
if "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null; then
    echo "setup: torch $TORCH_VERSION already installed"
elif command -v nvidia-smi >/dev/null 2>&1; then
    "${PIP[@]}" "torch==$TORCH_VERSION"
elif ls "${PIP_FIND_LINKS:-/nonexistent}"/torch-"$TORCH_VERSION"* >/dev/null 2>&1; then
    "${PIP[@]}" "torch==$TORCH_VERSION"  # a local CPU wheel is configured for pip (find-links)
else
    "${PIP[@]}" "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu
fi
"${PIP[@]}" -e ".[dev,trl]"  # trl: the optional TRL integration, so the tests cover it
"$PYTHON" -m pip check
echo "$WANTED" > "$STAMP"
echo "setup: $VENV is ready"
