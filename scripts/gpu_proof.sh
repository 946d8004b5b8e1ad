#!/usr/bin/env bash
# One command that proves the GPU path, run from the repository root of a GPU machine:
#
#   bash scripts/gpu_proof.sh             # build for sm_90, CUDA tests, compute-sanitizer,
#                                         # CUDA graphs, benchmarks, the GPU reproduction
#   bash scripts/gpu_proof.sh --dry-run   # the same stages at tiny sizes on the CPU, with
#                                         # the package already installed (CI runs this)
#
# Stages, in order of value; each has its own time cap and a minimum it needs to start.
# A stage that does not fit into what is left of the budget is skipped, and says so:
#   1. build     pip install from source for sm_90 (TORCH_CUDA_ARCH_LIST=9.0, all cores,
#                ninja); versions of the GPU, driver, torch, CUDA and the commit. A failed
#                build stops the script: nothing after it means anything without it.
#   2. test      pytest -k "cuda or nccl" over tests/python (test_cuda.py already runs the
#                optimizers' steps under torch.cuda.set_sync_debug_mode("error")).
#   3. sanitize  compute-sanitizer memcheck, racecheck, synccheck over
#                scripts/gpu_sanitize_workload.py (every phase, the fit, Muon/SoftMuon).
#   4. graph     scripts/gpu_graph_check.py: CUDA-graph capture and replay against eager.
#   5. bench     bench_step.py (GPT-2 small: every optimizer against fused SGD/AdamW, the
#                copy floor and torch.optim.Muon), bench_fit.py (against concatenate-and-
#                median), the 5000-tensor sweep point, then the 1B set while time is left.
#   6. repro     examples/python/compare.py --preset gpu for one seed, with a sha256 of
#                its corpus (the running Python's standard library).
#
# Environment:
#   OUT                  output folder (default build/gpu_proof/out; dry run: a temp folder,
#                        removed after a run that passed)
#   PYTHON               interpreter (default python3)
#   GPU_PROOF_BUDGET_S   wall-clock budget in seconds (default 530: done within 9 minutes)
#   GPU_PROOF_REPRO      compare.py arguments of stage 6 (default: signum and softsignum at
#                        one LR each; see stage_repro)
#
# It writes 8 files under $OUT (the GPU machine's tool returns no more than 8), each
# written line by line as the work goes, so that a run killed halfway returns what it had:
#   summary.json  stage -> {status ok/failed/skipped, seconds, note}, environment;
#                 rewritten whenever a stage starts or ends
#   proof.log     everything this script prints
#   build.log     the whole pip -v build log
#   pytest.txt    the whole pytest output (-rA)
#   sanitize.txt  the three compute-sanitizer runs (dry run: the workload on the CPU)
#   bench.jsonl   bench_step.py's JSON rows
#   results.md    bench_step tables (render.py), bench_fit tables, compare.py's tables
#   plots.tgz     render.py's plots and compare.py's validation curves
# Exit status: nonzero when a stage failed or the output check at the end failed.

# -u and pipefail for the plumbing, but not -e: a stage's failure is recorded and the next
# stage still runs, so every command whose status matters is checked explicitly (set -e
# would also be ignored inside the `if`/`||` contexts the stages are called from).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DRY=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    -h | --help)
      sed -n '2,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "gpu_proof.sh: unknown argument $arg (only --dry-run)" >&2
      exit 2
      ;;
  esac
done

PY="${PYTHON:-python3}"
BUDGET="${GPU_PROOF_BUDGET_S:-530}"
# Kept free at the end: the summary, the file check, and timeout's grace period (-k).
RESERVE=15
START=$SECONDS
# Python prints each line as it goes (a killed run keeps what it printed).
export PYTHONUNBUFFERED=1
# The dry run's numbers mean nothing, and on a shared CI machine torch's threads wait on
# each other when other work takes a core: one thread made its training stage 10x faster.
[ "$DRY" = 1 ] && export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

OUT_DEFAULTED=0
if [ -z "${OUT:-}" ]; then
  OUT_DEFAULTED=1
  if [ "$DRY" = 1 ]; then
    OUT="$(mktemp -d "${TMPDIR:-/tmp}/gpu_proof.XXXXXX")"
  else
    OUT="$ROOT/build/gpu_proof/out"
  fi
fi
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
FILES=(summary.json proof.log build.log pytest.txt sanitize.txt bench.jsonl results.md plots.tgz)
# Only this script's own files are cleared: a rerun must not append to the last run's.
for f in "${FILES[@]}"; do rm -f "${OUT:?}/$f"; done
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu_proof_work.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
LOG="$OUT/proof.log"
# The files the final check requires; each stage adds those it writes once it starts.
EXPECT=(summary.json proof.log build.log)

# ------------------------------------------------------------------------------ helpers

say() { printf '%s\n' "$*" | tee -a "$LOG"; }
elapsed() { echo $((SECONDS - START)); }
left() { echo $((BUDGET - (SECONDS - START) - RESERVE)); }

# The stage table of summary.json.
STAGES=(build test sanitize graph bench repro)
declare -A STATUS SECS NOTE ENVI
for s in "${STAGES[@]}"; do
  STATUS[$s]=pending
  SECS[$s]=0
  NOTE[$s]=""
done
CURRENT=""
STAGE_START=0
STAGE_END=0

# A JSON string: backslashes and quotes escaped, control characters dropped.
jstr() {
  local s
  s="$(printf '%s' "$1" | tr -d '\000-\037')"
  s="${s//\\/\\\\}"
  s="${s//\"/\\\"}"
  printf '"%s"' "$s"
}

write_summary() {
  local finished="$1" tmp="$WORK/summary.json" s k first=1
  {
    printf '{\n  "mode": %s,\n' "$(jstr "$([ "$DRY" = 1 ] && echo dry-run || echo gpu)")"
    printf '  "finished": %s,\n  "budget_s": %s,\n  "elapsed_s": %s,\n' \
      "$finished" "$BUDGET" "$(elapsed)"
    printf '  "env": {'
    for k in $(printf '%s\n' "${!ENVI[@]}" | sort); do
      [ $first = 1 ] || printf ','
      first=0
      printf '\n    %s: %s' "$(jstr "$k")" "$(jstr "${ENVI[$k]}")"
    done
    printf '\n  },\n  "stages": {'
    first=1
    for s in "${STAGES[@]}"; do
      [ $first = 1 ] || printf ','
      first=0
      printf '\n    "%s": {"status": %s, "seconds": %s, "note": %s}' \
        "$s" "$(jstr "${STATUS[$s]}")" "${SECS[$s]}" "$(jstr "${NOTE[$s]}")"
    done
    printf '\n  }\n}\n'
  } >"$tmp"
  # Replaced whole, so a reader never sees half a file.
  cp "$tmp" "$OUT/summary.json.part" && mv -f "$OUT/summary.json.part" "$OUT/summary.json"
}

# begin STAGE CAP MIN: starts a stage that may run CAP seconds and needs MIN to be worth
# starting; returns 1 (stage marked skipped) when less than MIN is left.
begin() {
  local stage="$1" cap="$2" min="$3" avail
  avail="$(left)"
  if [ "$avail" -lt "$min" ]; then
    STATUS[$stage]=skipped
    NOTE[$stage]="budget: ${avail} s left, the stage needs ${min} s"
    say "== [$(elapsed) s] $stage: skipped (${avail} s left of the budget, needs ${min} s)"
    write_summary false
    return 1
  fi
  CURRENT="$stage"
  STAGE_START=$SECONDS
  [ "$cap" -gt "$avail" ] && cap="$avail"
  STAGE_END=$((SECONDS + cap))
  STATUS[$stage]=running
  write_summary false
  say ""
  say "== [$(elapsed) s] $stage (cap ${cap} s)"
}

# end STAGE STATUS NOTE
end() {
  local stage="$1"
  STATUS[$stage]="$2"
  NOTE[$stage]="$3"
  SECS[$stage]=$((SECONDS - STAGE_START))
  CURRENT=""
  write_summary false
  say "== [$(elapsed) s] $stage: $2 (${SECS[$stage]} s)${3:+; $3}"
}

# capped CAP MIN FILE CMD...: runs CMD with stdout and stderr appended to FILE (FILE "-":
# shown, and kept in proof.log), for at most CAP seconds, never past the stage's cap or
# the budget. Returns CMD's status, 124/137 on a timeout, or 200 when less than MIN
# seconds are left (CMD not started). timeout signals CMD's whole process group, so the
# subprocesses of pytest and bench_fit.py go too.
capped() {
  local cap="$1" min="$2" file="$3" avail rc
  shift 3
  avail="$(left)"
  [ $((STAGE_END - SECONDS)) -lt "$avail" ] && avail=$((STAGE_END - SECONDS))
  if [ "$avail" -lt "$min" ]; then
    say "  skipped: $* (${avail} s left, needs ${min} s)"
    return 200
  fi
  [ "$cap" -gt "$avail" ] && cap="$avail"
  say "  \$ $* (cap ${cap} s)"
  if [ "$file" = "-" ]; then
    timeout -k 5 "$cap" "$@" 2>&1 | tee -a "$LOG"
    rc="${PIPESTATUS[0]}"
  else
    printf '\n$ %s\n' "$*" >>"$file"
    timeout -k 5 "$cap" "$@" >>"$file" 2>&1
    rc=$?
  fi
  local what="$*"
  [ ${#what} -gt 100 ] && what="${what:0:100}..."
  case "$rc" in
    0) ;;
    124 | 137) say "  TIMEOUT after ${cap} s: $what" ;;
    *) say "  exit status $rc: $what" ;;
  esac
  return "$rc"
}

# A SIGTERM or Ctrl-C still leaves a summary that says where the run stopped.
on_signal() {
  if [ -n "$CURRENT" ]; then
    STATUS[$CURRENT]=failed
    NOTE[$CURRENT]="killed by a signal after $((SECONDS - STAGE_START)) s"
    SECS[$CURRENT]=$((SECONDS - STAGE_START))
  fi
  write_summary true
  exit 143
}
trap on_signal TERM INT

# ------------------------------------------------------------------------------ stages

stage_build() {
  local rc smi torch_info mods commit src
  begin build 300 0 || return 1
  {
    echo "gpu_proof.sh$([ "$DRY" = 1 ] && echo ' --dry-run') on $(hostname), $(date -u +%FT%TZ)"
    echo "$(nproc) cores; python: $(command -v "$PY") ($("$PY" -V 2>&1))"
  } | tee -a "$LOG" "$OUT/build.log"
  if command -v nvidia-smi >/dev/null 2>&1; then
    smi="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
    say "nvidia-smi: $smi"
    ENVI[gpu]="$(echo "$smi" | head -1 | cut -d, -f1)"
    ENVI[driver]="$(echo "$smi" | head -1 | cut -d, -f2 | tr -d ' ')"
  else
    say "nvidia-smi: skipped (not found$([ "$DRY" = 1 ] && echo ': dry run on a CPU'))"
  fi
  if [ "$DRY" = 0 ]; then
    # CUDA_HOME from nvcc's own location (CMake and torch's extension helpers read it).
    # nvcc names its folder in a dry run (_HERE_), which also sees through wrapper
    # scripts such as a /usr/local/bin/nvcc that execs the real one; else follow links.
    local nvcc here
    nvcc="$(command -v nvcc || true)"
    [ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
    if [ -n "$nvcc" ]; then
      here="$("$nvcc" --dryrun -c -x cu /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ _HERE_=//p' | head -1)"
      [ -n "$here" ] || here="$(dirname "$(readlink -f "$nvcc")")"
      CUDA_HOME="$(dirname "$here")"
      export CUDA_HOME
      export PATH="$CUDA_HOME/bin:$PATH"
      ENVI[nvcc]="$("$nvcc" --version | grep -o 'release [0-9.]*' | head -1)"
      say "nvcc: $nvcc (${ENVI[nvcc]}); CUDA_HOME=$CUDA_HOME"
    else
      say "nvcc: not found"
    fi
  fi
  torch_info="$("$PY" -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "-", sep="|")' 2>&1)"
  rc=$?
  if [ $rc != 0 ]; then
    say "$torch_info"
    end build failed "$PY cannot import torch"
    return 1
  fi
  IFS='|' read -r ENVI[torch] ENVI[torch_cuda] ENVI[cuda_available] ENVI[device] <<<"$torch_info"
  ENVI[python]="$("$PY" -c 'import sys; print(sys.version.split()[0])')"
  # The stages' optional modules: pytest (stage 2), matplotlib (plots), numpy.
  mods="$("$PY" -c 'import importlib.util as u; print(" ".join(m + ("" if u.find_spec(m) else " MISSING") + ";" for m in ("pytest", "numpy", "matplotlib", "tqdm")))')"
  say "torch ${ENVI[torch]}, CUDA ${ENVI[torch_cuda]}, cuda available: ${ENVI[cuda_available]} (${ENVI[device]}); python ${ENVI[python]}; modules: $mods"
  # The commit, or (no .git on the machine: the tree may come as plain files) a hash of
  # the sources that make up the build, which identifies the tree either way.
  commit="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || true)"
  if [ -n "$commit" ]; then
    [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] &&
      commit="$commit (tracked files modified)"
  else
    commit="unknown: not a git checkout"
  fi
  src="$(find csrc python CMakeLists.txt setup.py pyproject.toml -type f \
    -not -path '*/__pycache__/*' -print0 2>/dev/null | sort -z | xargs -0 sha256sum |
    sha256sum | cut -c1-16)"
  ENVI[commit]="$commit"
  ENVI[source_sha256]="$src"
  say "commit: $commit; sources sha256 (csrc python CMakeLists.txt setup.py pyproject.toml): $src"

  if [ "$DRY" = 1 ]; then
    # CI installs the package once (scripts/setup.sh); the dry run uses that install.
    say "build: skipped (dry run: the installed package is used, CI does not build twice)"
  else
    export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
    export MAX_JOBS="$(nproc)"
    # Forced on: a build that silently left the CUDA kernels out would pass here.
    export SOFTSIGN_WITH_CUDA=1
    # Its own CMake folder: a build/python made elsewhere would hold another machine's paths.
    export SOFTSIGN_BUILD_DIR="${SOFTSIGN_BUILD_DIR:-$ROOT/build/gpu_proof/cmake}"
    # No network there: pip must not look for an index or a newer pip. The machine's
    # Python may be "externally managed" (PEP 668); this script installs into it anyway.
    export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
    export PIP_BREAK_SYSTEM_PACKAGES=1
    say "TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST MAX_JOBS=$MAX_JOBS SOFTSIGN_WITH_CUDA=1 SOFTSIGN_BUILD_DIR=$SOFTSIGN_BUILD_DIR"
    capped 300 0 "$OUT/build.log" "$PY" -m pip install --no-build-isolation --no-deps -v .
    rc=$?
    if [ $rc != 0 ]; then
      say "--- last 40 lines of build.log (the whole log is in $OUT/build.log)"
      tail -n 40 "$OUT/build.log" | tee -a "$LOG"
      end build failed "pip install $([ $rc = 124 ] || [ $rc = 137 ] && echo "timed out" || echo "exited with $rc")"
      return 1
    fi
  fi
  # The installed package, imported from tests/ so the source tree cannot shadow it; on
  # the GPU its CUDA kernels must be registered and a device visible.
  local check='import softsign, torch
print("softsign", softsign.__version__, "from", softsign.__file__)
has = torch._C._dispatch_has_kernel_for_dispatch_key("softsign::soft_sign_step_", "CUDA")
print("CUDA kernels registered:", has)
if GPU and not (has and torch.cuda.is_available()):
    raise SystemExit("no CUDA kernels in the build, or no CUDA device")'
  (cd tests && "$PY" -c "GPU = $([ "$DRY" = 1 ] && echo False || echo True)
$check") 2>&1 | tee -a "$LOG" "$OUT/build.log"
  rc="${PIPESTATUS[0]}"
  ENVI[softsign]="$(cd tests && "$PY" -c 'import softsign; print(softsign.__file__)' 2>&1)"
  if [ "$rc" != 0 ]; then
    end build failed "the installed package fails its check"
    return 1
  fi
  if [ "$DRY" = 1 ]; then
    end build skipped "dry run: versions printed, the installed package used"
  else
    end build ok "sm_${TORCH_CUDA_ARCH_LIST/./} with $MAX_JOBS jobs"
  fi
}

stage_test() {
  local rc summary
  begin test 240 30 || return 0
  if ! "$PY" -c 'import pytest' 2>/dev/null; then
    end test failed "pytest is not installed for $PY"
    return 0
  fi
  # From tests/ so that `import softsign` is the installed package. The whole folder: -k
  # keeps test_cuda.py (its module name matches) and every case named or parametrized
  # cuda/nccl in the other files; conftest.py skips them without a GPU.
  EXPECT+=(pytest.txt)
  (cd tests && capped 240 30 "$OUT/pytest.txt" "$PY" -m pytest -v -rA --durations=15 \
    -p no:cacheprovider python -k "cuda or nccl")
  rc=$?
  summary="$(grep -E '^=+ .*(passed|failed|skipped|error|deselected).* in [0-9.]+s' "$OUT/pytest.txt" | tail -1)"
  say "  ${summary:-no pytest summary line}"
  grep -E '^(FAILED|ERROR) ' "$OUT/pytest.txt" | head -20 | tee -a "$LOG"
  summary="$(echo "$summary" | tr -d '=' | sed 's/^ *//; s/ *$//')"
  if [ $rc != 0 ]; then
    end test failed "pytest exit status $rc: $summary"
  elif [ "$DRY" = 0 ] && ! echo "$summary" | grep -q passed; then
    end test failed "no CUDA test ran: $summary"
  else
    end test ok "$summary"
  fi
}

stage_sanitize() {
  local tool rc results="" failed=0 san
  begin sanitize 270 40 || return 0
  EXPECT+=(sanitize.txt)
  if [ "$DRY" = 1 ]; then
    say "compute-sanitizer: skipped (dry run); the workload runs on the CPU"
    capped 120 10 "$OUT/sanitize.txt" "$PY" scripts/gpu_sanitize_workload.py --device cpu
    rc=$?
    tail -n 3 "$OUT/sanitize.txt" | tee -a "$LOG"
    if [ $rc = 0 ]; then
      end sanitize skipped "dry run: no compute-sanitizer; the workload passed on the CPU"
    else
      end sanitize failed "the workload failed on the CPU (exit $rc)"
    fi
    return 0
  fi
  san="$(command -v compute-sanitizer || true)"
  [ -z "$san" ] && [ -x "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer" ] &&
    san="${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer"
  if [ -z "$san" ]; then
    echo "compute-sanitizer not found" >>"$OUT/sanitize.txt"
    end sanitize skipped "compute-sanitizer not found"
    return 0
  fi
  for tool in memcheck racecheck synccheck; do
    local extra=() envs=()
    if [ $tool = memcheck ]; then
      # Out-of-bounds accesses show only at the edge of a real allocation: without the
      # caching allocator each tensor gets its own. The large tensor spans two launches.
      envs=(PYTORCH_NO_CUDA_MEMORY_CACHING=1)
      extra=(--large)
    fi
    # API errors are left out: torch probes the driver with calls that fail by design,
    # and an error from softsign's own calls raises in the workload anyway.
    capped 120 30 "$OUT/sanitize.txt" env "${envs[@]}" "$san" --tool "$tool" \
      --error-exitcode 3 --report-api-errors no --print-limit 50 \
      "$PY" scripts/gpu_sanitize_workload.py --device cuda "${extra[@]}"
    rc=$?
    # The last summary line of this tool's run.
    say "  $tool: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/sanitize.txt" | tail -1 | sed 's/^=* *//')"
    case $rc in
      0) results+="$tool ok; " ;;
      200) results+="$tool skipped (budget); " ;;
      124 | 137)
        results+="$tool timed out; "
        failed=1
        ;;
      *)
        results+="$tool failed (exit $rc); "
        failed=1
        grep -E '^========= +(Invalid|Error|Race|Barrier|Program hit)' "$OUT/sanitize.txt" |
          sort | uniq -c | sort -rn | head -10 | tee -a "$LOG"
        ;;
    esac
  done
  if [ $failed = 1 ]; then
    end sanitize failed "${results%; }"
  else
    end sanitize ok "${results%; }"
  fi
}

stage_graph() {
  local rc device=cuda
  begin graph 90 20 || return 0
  [ "$DRY" = 1 ] && device=cpu
  capped 90 20 - "$PY" scripts/gpu_graph_check.py --device "$device"
  rc=$?
  if [ $rc != 0 ]; then
    end graph failed "exit status $rc"
  elif [ "$DRY" = 1 ]; then
    end graph skipped "dry run: graph capture skipped, the eager comparison passed"
  else
    end graph ok "captured steps replay bit-identically to eager ones"
  fi
}

stage_bench() {
  local rc failed=0 done_="" skipped="" dev b="$ROOT/benchmarks"
  local step_args=() fit_gpt2=() sweep=() big=() fit_1b=()
  begin bench 420 70 || return 0
  if [ "$DRY" = 1 ]; then
    dev=(--device cpu)
    # Tiny shapes: the plumbing runs, the numbers mean nothing.
    step_args=(--scale 0.01 --repeats 3 --warmup 2 --rounds 1 --budget 1 --optimizers
      softsignum-sign softsignum-soft signum sgd-fused adamw-fused muon softmuon-ns
      softmuon-accurate torch-muon)
    fit_gpt2=(--repeats 1)
    # 50 tensors, not 5000: on a CPU the memory measurement (torch.profiler) takes a
    # minute per optimizer at 5000.
    sweep=(--scale 0.002 --sweep-counts 50 --repeats 3 --warmup 2 --rounds 1 --budget 0.5
      --optimizers softsignum-sign signum sgd-fused adamw-fused)
    big=(--scale 0.002 --repeats 3 --warmup 2 --rounds 1 --budget 1 --optimizers
      softsignum-sign softsignum-soft signum sgd-fused adamw-fused)
  else
    dev=(--device cuda)
    # Every optimizer (the matrix ones run by default on CUDA); --budget caps the slow
    # per-tensor loops so that one row cannot eat the stage.
    step_args=(--budget 5)
    fit_gpt2=(--repeats 5)
    sweep=(--sweep-counts 5000 --budget 3)
    big=(--budget 4)
    fit_1b=(--repeats 3)
  fi
  # Each line: what, its cap, the minimum to start it, then the command. In order of value.
  # Files one benchmark's exit status: done, skipped for lack of time (200), or failed.
  record_bench() {
    local what="$1" rc="$2"
    case $rc in
      0) done_+="$what; " ;;
      200) skipped+="$what; " ;;
      *)
        failed=1
        done_+="$what FAILED ($rc); "
        ;;
    esac
  }
  bench_one() {
    local what="$1" cap="$2" min="$3"
    shift 3
    say "-- $what"
    capped "$cap" "$min" - "$@"
    record_bench "$what" $?
    return 0
  }
  # bench_fit.py prints its table: it goes into results.md as well.
  fit_to_results() {
    local what="$1" cap="$2" min="$3"
    shift 3
    say "-- $what"
    printf '\n## %s\n\n' "$what" >>"$OUT/results.md"
    capped "$cap" "$min" - "$@" | tee -a "$OUT/results.md"
    record_bench "$what" "${PIPESTATUS[0]}"
    return 0
  }
  local J="$OUT/bench.jsonl"
  # The benchmarks stop 25 s early: render.py and the archive come after them.
  STAGE_END=$((STAGE_END - 25))
  bench_one "step, GPT-2 small" 150 40 "$PY" "$b/bench_step.py" "${dev[@]}" --shapes gpt2 \
    "${step_args[@]}" --json "$J"
  fit_to_results "fit, GPT-2 small" 90 25 "$PY" "$b/bench_fit.py" "${dev[@]}" --shapes gpt2 \
    "${fit_gpt2[@]}"
  bench_one "step, sweep at $([ "$DRY" = 1 ] && echo 50 || echo 5000) tensors" 150 40 "$PY" "$b/bench_step.py" "${dev[@]}" \
    --shapes sweep "${sweep[@]}" --json "$J"
  bench_one "step, 1B set" 180 60 "$PY" "$b/bench_step.py" "${dev[@]}" --shapes 1b \
    "${big[@]}" --json "$J"
  if [ "$DRY" = 1 ]; then
    # bench_fit.py has no scale option: 1.3B directions do not fit a CI machine.
    say "-- fit, 1B set: skipped (dry run: bench_fit.py has no small 1B set)"
    skipped+="fit, 1B set (dry run); "
  else
    fit_to_results "fit, 1B set" 90 40 "$PY" "$b/bench_fit.py" "${dev[@]}" --shapes 1b \
      "${fit_1b[@]}"
  fi
  # Tables and plots of whatever bench_step.py rows exist, even after a failure above.
  if [ -s "$J" ]; then
    EXPECT+=(bench.jsonl results.md)
    say "-- render.py"
    local png=(--png-dir "$WORK/plots")
    if "$PY" -c 'import matplotlib' 2>/dev/null; then
      EXPECT+=(plots.tgz)
    else
      png=()
      say "  matplotlib missing: tables only"
    fi
    if timeout -k 5 20 "$PY" "$b/render.py" "$J" --out "$WORK/step.md" "${png[@]}" >>"$LOG" 2>&1; then
      { printf '\n# bench_step.py\n\n' && cat "$WORK/step.md"; } >>"$OUT/results.md"
      # The plots travel as one archive: the device tool returns at most 8 files.
      [ -d "$WORK/plots" ] && tar czf "$OUT/plots.tgz" -C "$WORK" plots
    else
      failed=1
      done_+="render.py FAILED; "
      say "  render.py failed (its output is above in proof.log)"
    fi
  fi
  local note="${done_}${skipped:+skipped: $skipped}"
  if [ $failed = 1 ]; then
    end bench failed "${note%; }"
  else
    end bench ok "${note%; }"
  fi
}

stage_repro() {
  local rc corpus dir args=()
  begin repro 600 60 || return 0
  # The corpus: train_gpt.py's own reader, and the sha256 of all its bytes (train then
  # validation split, as train_gpt hashes them; its log keeps the first 16 hex digits).
  corpus="$("$PY" - <<'EOF' 2>&1
import hashlib, json, sys
sys.path.insert(0, "examples/python")
import train_gpt

train, val, info = train_gpt.stdlib_corpus()
digest = hashlib.sha256(bytes(train.tolist()) + bytes(val.tolist())).hexdigest()
assert digest.startswith(info["sha256"]), (digest, info["sha256"])
print(json.dumps(dict(info, sha256=digest)))
EOF
)"
  rc=$?
  say "corpus: $corpus"
  if [ $rc != 0 ]; then
    end repro failed "the corpus could not be read"
    return 0
  fi
  ENVI[corpus]="$corpus"
  ENVI[corpus_sha256]="$(echo "$corpus" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["sha256"])')"
  write_summary false
  if [ "$DRY" = 1 ]; then
    dir="$WORK/repro"
    args=(--preset tiny --steps 20 --sweep-steps 10 --optimizers signum softsignum
      --lrs-signum 1e-3 --lrs-softsignum 1e-3 --device cpu)
  else
    # Kept between calls on the same machine: --reuse continues an interrupted run.
    dir="$ROOT/build/gpu_proof/repro"
    # The paper's pair at train_gpt's default LR, one LR each (the sweep then only
    # trains its short run); a few minutes on an H100 for both. Override with
    # GPU_PROOF_REPRO (e.g. all five optimizers and their LR grids).
    # shellcheck disable=SC2206
    args=(${GPU_PROOF_REPRO:---optimizers signum softsignum --lrs-signum 3e-4 --lrs-softsignum 3e-4 --sweep-steps 100})
    args=(--preset gpu "${args[@]}")
  fi
  capped 600 60 - "$PY" examples/python/compare.py --seeds 0 --no-progress --reuse \
    --out "$dir" "${args[@]}"
  rc=$?
  if [ -f "$dir/compare.md" ]; then
    { printf '\n# compare.py (corpus sha256 %s)\n\n' "${ENVI[corpus_sha256]}" &&
      cat "$dir/compare.md"; } >>"$OUT/results.md"
  fi
  if [ -f "$dir/val_loss.png" ]; then
    mkdir -p "$WORK/plots"
    cp "$dir/val_loss.png" "$WORK/plots/repro_val_loss.png"
    tar czf "$OUT/plots.tgz" -C "$WORK" plots
  fi
  case $rc in
    0) end repro ok "corpus sha256 ${ENVI[corpus_sha256]}" ;;
    124 | 137) end repro failed "timed out; rerun continues it (--reuse, $dir)" ;;
    *) end repro failed "compare.py exit status $rc" ;;
  esac
}

# ------------------------------------------------------------------------------ the end

# Checks what the run wrote: at most 8 files, a summary that parses, and the files that
# the stages which ran promised (EXPECT; the dry run runs all of them, so all 8).
check_outputs() {
  local n f missing=()
  n="$(find "$OUT" -type f | wc -l)"
  for f in "${EXPECT[@]}"; do
    [ -s "$OUT/$f" ] || missing+=("$f")
  done
  local bad=0
  say ""
  say "== files in $OUT: $n (at most 8)"
  (cd "$OUT" && ls -l | tail -n +2 | tee -a "$LOG")
  [ "$n" -le 8 ] || {
    say "CHECK FAILED: $n files, more than 8"
    bad=1
  }
  if ! "$PY" -c 'import json, sys; s = json.load(open(sys.argv[1])); assert set(s["stages"]) == set(sys.argv[2:])' \
    "$OUT/summary.json" "${STAGES[@]}" 2>>"$LOG"; then
    say "CHECK FAILED: summary.json does not parse or lacks stages"
    bad=1
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    say "CHECK FAILED: missing or empty: ${missing[*]}"
    bad=1
  fi
  return $bad
}

say "gpu_proof.sh: OUT=$OUT, budget ${BUDGET} s$([ "$DRY" = 1 ] && echo ', dry run on the CPU')"
BUILD_OK=1
stage_build || BUILD_OK=0
if [ $BUILD_OK = 1 ]; then
  stage_test
  stage_sanitize
  stage_graph
  stage_bench
  stage_repro
else
  for s in test sanitize graph bench repro; do
    STATUS[$s]=skipped
    NOTE[$s]="the build failed"
  done
  say "build failed: the other stages are skipped"
fi

write_summary true
status=0
check_outputs || status=1
say ""
say "== summary ($(elapsed) s of ${BUDGET} s)"
for s in "${STAGES[@]}"; do
  say "$(printf '  %-9s %-8s %4s s  %s' "$s" "${STATUS[$s]}" "${SECS[$s]}" "${NOTE[$s]}")"
  [ "${STATUS[$s]}" = failed ] && status=1
done
write_summary true
if [ $status = 0 ]; then
  say "gpu_proof.sh: passed"
  if [ "$DRY" = 1 ] && [ $OUT_DEFAULTED = 1 ]; then
    rm -rf "$OUT"
  fi
else
  say "gpu_proof.sh: FAILED (outputs in $OUT)"
fi
exit $status
