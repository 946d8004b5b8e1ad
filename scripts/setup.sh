#!/usr/bin/env bash
# Creates (or reuses) the virtual environment .venv, installs torch and the tools, and
# builds and installs softsign into it. Idempotent: a second run rebuilds only what
# changed (the CMake folder build/python is kept). Source it or run it.
#   SOFTSIGN_VENV          where the environment lives (default .venv)
#   SOFTSIGN_BUILD_TESTS=1 also build the GoogleTest tests and the C++ example
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${SOFTSIGN_VENV:-$ROOT/.venv}"
TORCH_VERSION="${SOFTSIGN_TORCH_VERSION:-2.14.1}"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
if ! python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  python -m pip install -q "torch==$TORCH_VERSION"
fi
python -m pip install -q -r requirements-dev.txt

if [ "${SOFTSIGN_BUILD_TESTS:-0}" = "1" ] && [ ! -f /usr/include/gtest/gtest.h ]; then
  # GoogleTest for the C++ tests, from Debian.
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libgtest-dev >/dev/null
fi

# One architecture keeps CI builds short; set TORCH_CUDA_ARCH_LIST for your GPUs.
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
export MAX_JOBS="${MAX_JOBS:-$(nproc)}"
python -m pip install -q --no-build-isolation --no-deps "$ROOT"
