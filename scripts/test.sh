#!/usr/bin/env bash
# Every test: sets everything up with the C++ tests (scripts/setup.sh), then lint
# (ruff, clang-format), pytest and ctest. CUDA tests skip without a GPU.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SOFTSIGN_BUILD_TESTS=1 bash "$ROOT/scripts/setup.sh"
source "${SOFTSIGN_VENV:-$ROOT/.venv}/bin/activate"
cd "$ROOT"

echo "== lint"
ruff check python tests benchmarks examples scripts setup.py
ruff format --check python tests benchmarks examples scripts setup.py
git ls-files -- 'csrc/*.h' 'csrc/*.cpp' 'csrc/*.cu' 'csrc/*.cuh' 'tests/cpp/*.cpp' 'examples/cpp/*.cpp' \
  | xargs clang-format --dry-run -Werror

echo "== pytest"
# Run from tests/ so `import softsign` is the installed package, not the source tree.
(cd tests && python -m pytest -q python "$@")

echo "== gpu_proof.sh --dry-run"
# The GPU proof's stages at tiny sizes on the CPU, with the package installed above: CI
# keeps the one GPU command working between the rare sessions that have a GPU.
bash scripts/gpu_proof.sh --dry-run

BUILD="${SOFTSIGN_BUILD_DIR:-$ROOT/build/python}"
echo "== ctest"
ctest --test-dir "$BUILD" --output-on-failure

echo "== the installed C++ package, used by a separate project"
# `cmake --install` of the build above into a fresh prefix, then the C++ example configured
# out of tree with nothing but CMAKE_PREFIX_PATH, built, and run without LD_LIBRARY_PATH.
CONSUMER="$(mktemp -d)"
trap 'rm -rf "$CONSUMER"' EXIT
cmake --install "$BUILD" --prefix "$CONSUMER/prefix" >/dev/null
cmake -S "$ROOT/examples/cpp" -B "$CONSUMER/build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$CONSUMER/prefix" >"$CONSUMER/configure.log" ||
  { cat "$CONSUMER/configure.log"; exit 1; }
cmake --build "$CONSUMER/build" --target train_soft_signum -j "${MAX_JOBS:-$(nproc)}" >/dev/null
env -u LD_LIBRARY_PATH "$CONSUMER/build/train_soft_signum" | tail -n 2
