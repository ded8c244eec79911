#!/usr/bin/env bash
# Where a bench server's CPU goes, kernel included: runs one scenario for one system, samples the server
# process with Linux perf for a few seconds of its measured phase, and prints the split by binary (kernel,
# node, JIT-compiled JavaScript) and the top symbols by self time.
#
#   sh bench/perf-top.sh channelkit s2            # after 6 s, sample 3 s of S2's channelkit server
#   DELAY=8 SECONDS_SAMPLED=4 sh bench/perf-top.sh ceiling s2
#
# V8's own profiler (`npm run bench -- --profile`) charges the kernel's work to the JavaScript call that
# entered it (`writeBuffer`); perf shows what that work is. Needs `perf` (linux-perf) and the right to
# sample the process (root, or kernel.perf_event_paranoid <= 1 for user-space only).
set -eu
system=${1:?system (channelkit, naive, socketio, ceiling)}
scenario=${2:?scenario (s2, s3, s4, ...)}
shift 2
delay=${DELAY:-6}
sampled=${SECONDS_SAMPLED:-3}
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# JIT frames get names from the perf map node writes to /tmp/perf-<pid>.map.
NODE_OPTIONS="--perf-basic-prof-only-functions" npx ts-node --transpile-only bench/run.ts \
  --only="$system" --scenarios="$scenario" "$@" > "$out/bench.log" 2>&1 &
bench=$!
pid=''
for _ in $(seq 1 300); do
  pid=$(pgrep -f "$(pwd)/bench/servers/$system.ts" | head -1 || true)
  [ -n "$pid" ] && break
  sleep 0.1
done
[ -n "$pid" ] || { echo "no $system server process appeared"; cat "$out/bench.log"; exit 1; }
sleep "$delay"
perf record -F 999 -g -p "$pid" -o "$out/perf.data" -- sleep "$sampled" > /dev/null 2>&1
wait "$bench" || true
grep -E "^\| " "$out/bench.log" | head -3
echo
echo "samples by binary:"
perf report -i "$out/perf.data" --no-children --sort dso -g none 2>/dev/null | grep -E '^ +[0-9]' | head -5
echo
echo "top symbols by self time:"
perf report -i "$out/perf.data" --no-children --sort sym -g none 2>/dev/null | grep -E '^ +[0-9]' | head -"${TOP:-30}"
rm -f "/tmp/perf-$pid.map"
