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

echo "== ctest"
ctest --test-dir "${SOFTSIGN_BUILD_DIR:-$ROOT/build/python}" --output-on-failure
