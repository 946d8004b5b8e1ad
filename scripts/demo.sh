#!/usr/bin/env bash
# The demo: sets everything up (scripts/setup.sh) and trains a small model with
# SoftSignum, Signum and torch's AdamW, printing a comparison table.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
source "${SOFTSIGN_VENV:-$ROOT/.venv}/bin/activate"
cd "$ROOT" && python examples/python/demo.py "$@"
