#!/bin/bash
# Instructions per S4 cycle of bench/workload.ts in steady state, under callgrind:
#   bench/callgrind-steady.sh <compiled bench/workload.js> <ck|raw> N [W]
# The churn runs W cycles to warm up (default 3000; STEADY=W), then callgrind's counters are zeroed, N more
# cycles are counted and dumped. Printed per cycle: all instructions, the TurboFan compiles among them
# (Runtime_CompileOptimized: V8 still optimizes functions after the warm-up, more or fewer from run to run),
# and the rest, the figure that repeats within about 1%.
set -euo pipefail
js=$1; system=$2; n=$3; warmup=${4:-3000}
out=$(mktemp -d)
STEADY=$warmup valgrind --tool=callgrind --callgrind-out-file="$out/cg" node --single-threaded "$js" churn "$system" "$n" > "$out/log" 2>&1 &
vg=$!
until grep -q 'warm:' "$out/log"; do kill -0 $vg 2>/dev/null || { cat "$out/log"; exit 1; }; sleep 1; done
pid=$(grep -o '^==[0-9]*==' "$out/log" | head -1 | tr -d =)
callgrind_control -z "$pid" > /dev/null 2>&1
kill -USR2 "$pid"
until grep -q 'measured:' "$out/log"; do sleep 1; done
callgrind_control -d "$pid" > /dev/null 2>&1
kill -USR2 "$pid"
wait $vg || true
dump=$(ls "$out"/cg.* | head -1)
total=$(grep -h '^summary:\|^totals:' "$dump" | head -1 | awk '{print $2}')
compile=$(callgrind_annotate --inclusive=yes --threshold=100 "$dump" | grep 'Runtime_CompileOptimized(' | head -1 | awk '{print $1}' | tr -d ,)
compile=${compile:-0}
echo "churn $system $n after $warmup: per cycle $((total / n)) instructions, TurboFan compiles $((compile / n)), rest $(((total - compile) / n))"
rm -rf "$out"
