#!/usr/bin/env bash
# The demo: sets everything up (scripts/setup.sh), then runs examples/python/compare.py
# --quick: a byte-level GPT (0.14M parameters) trained with AdamW, Signum, SoftSignum, Muon
# and SoftMuon, each with a two-value LR sweep, then a table of final validation losses.
# About two minutes on 2 CPU cores. Extra arguments go to compare.py (e.g. --threads 1 on
# a busy machine, --optimizers adamw softsignum). Its tables, logs and plots go to
# build/demo (ignored by git) unless --out says otherwise.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup.sh"
source "${SOFTSIGN_VENV:-$ROOT/.venv}/bin/activate"
cd "$ROOT" && python examples/python/compare.py --quick --out build/demo "$@"
