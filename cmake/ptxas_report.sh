#!/usr/bin/env bash
# CUDA compiler launcher: runs the nvcc command it is given (built with -Xptxas -v) and
# keeps its output, the ptxas report of registers and spills per kernel, in
# <object>.ptxas.txt for tests/cpp/kernel_budget.py. The output still reaches the log:
# the report costs no second compile.
out=""
prev=""
for arg in "$@"; do
  if [ "$prev" = "-o" ]; then out="$arg"; fi
  prev="$arg"
done
if [ -z "$out" ]; then exec "$@"; fi
"$@" >"$out.ptxas.txt" 2>&1
rc=$?
cat "$out.ptxas.txt" >&2
exit $rc
