#!/usr/bin/env bash
# The checks that need the GPU machine, in stages that each fit in one call of the device tool
# (10 minutes a call, 30 minutes a session). They write what they print and their JSON under
# $OUT (default build/gpu):
#
#   bash scripts/gpu_session.sh build test   # install from source (sm_90), CUDA tests
#   bash scripts/gpu_session.sh bench        # step, fit, Muon and distributed benchmarks
#   bash scripts/gpu_session.sh repro --seeds 0 --optimizers softsignum signum
#                                            # compare.py --preset gpu with these arguments
#                                            # (the rest of the line; split runs across calls)
#
# The stages use the machine's own Python and torch (no network there): build installs with
# --no-build-isolation and no dependencies; the examples run without tqdm or matplotlib if
# those are missing.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/build/gpu}"
mkdir -p "$OUT"
cd "$ROOT"
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
PY="${PYTHON:-python}"

log() { tee -a "$OUT/$1.txt"; }

stage_build() {
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | log build
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | log build
  "$PY" -m pip install -q --no-build-isolation --no-deps . 2>&1 | tail -5 | log build
}

stage_test() {
  # From tests/ so that `import softsign` is the installed package.
  (cd tests && "$PY" -m pytest -q -x python/test_cuda.py python/test_ops.py \
    python/test_soft_signum.py python/test_soft_muon.py python/test_distributed.py \
    python/test_compile.py -k "cuda or nccl" 2>&1) | tail -30 | log test
}

stage_bench() {
  local b="$ROOT/benchmarks"
  (cd "$b" && "$PY" bench_step.py --device cuda --shapes gpt2 --json "$OUT/step.jsonl") 2>&1 | log bench
  (cd "$b" && "$PY" bench_step.py --device cuda --shapes 1b --json "$OUT/step.jsonl") 2>&1 | log bench
  (cd "$b" && "$PY" bench_step.py --device cuda --shapes sweep --json "$OUT/step.jsonl") 2>&1 | log bench
  (cd "$b" && "$PY" bench_fit.py --device cuda --shapes gpt2) 2>&1 | log bench
  (cd "$b" && "$PY" bench_fit.py --device cuda --shapes 1b) 2>&1 | log bench
  (cd "$b" && "$PY" bench_muon.py --device cuda --shapes gpt2) 2>&1 | log bench
  (cd "$b" && "$PY" bench_muon.py --device cuda --shapes 1b) 2>&1 | log bench
  (cd "$b" && "$PY" render.py "$OUT/step.jsonl" --out "$OUT/step.md" --png-dir "$OUT/plots") 2>&1 | log bench
  # The device tool returns at most 8 files from $OUT: the plots travel as one archive.
  tar czf "$OUT/plots.tgz" -C "$OUT" plots && rm -rf "$OUT/plots"
  (cd "$b" && "$PY" bench_distributed.py --device cuda) 2>&1 | log bench
  (cd "$b" && "$PY" bench_step_kernel.py --device cuda --sizes 65536 1048576 16777216) 2>&1 | log bench
}

stage_repro() {
  "$PY" examples/python/compare.py --preset gpu --no-progress --out "$OUT/repro" "$@" 2>&1 \
    | tail -40 | log repro
}

while [ $# -gt 0 ]; do
  case "$1" in
    build | test | bench) "stage_$1" ;;
    repro)
      shift
      stage_repro "$@"
      exit
      ;;
    *)
      echo "unknown stage: $1 (build, test, bench, repro [compare.py arguments])" >&2
      exit 2
      ;;
  esac
  shift
done
