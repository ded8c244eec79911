#!/bin/sh
# Runs Autobahn|Testsuite (fuzzingclient, all cases but 12.* and 13.*: permessage-deflate is off) against a
# channelkit echo consumer and a plain `ws` echo server, then prints the per-behaviour counts of both and
# every case where channelkit is worse. Needs ../shared/autobahn (Python 2.7 and the suite); ~5 minutes.
#   sh bench/autobahn/run.sh [workdir]      (AB_PORTS="9001 9002" to move the two servers)
#   AB_DEFLATE=1 sh bench/autobahn/run.sh   permessage-deflate on in both servers, and only cases 12.* and 13.* (long:
#                                           1,000 messages per case, up to 128 KiB each; AB_ONLY narrows the cases)
set -e
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${1:-/tmp/channelkit-autobahn}
SHARED=${AUTOBAHN_DIR:-$REPO/../shared/autobahn}
PYTHON=${PYTHON2:-$HOME/.pyenv/versions/2.7.18/bin/python}
set -- ${AB_PORTS:-9001 9002}
mkdir -p "$WORK"
[ -d "$WORK/site" ] || tar -xzf "$SHARED/py2-site.tar.gz" -C "$WORK"
SPEC=spec.json
MODE=
[ -n "$AB_DEFLATE" ] && SPEC=spec-deflate.json && MODE=deflate && AB_CASES=${AB_CASES:-12.1.1,13.3.1,13.7.18}
sed -e "s/9001/$1/" -e "s/9002/$2/" "$REPO/bench/autobahn/$SPEC" > "$WORK/spec.json"
# AB_ONLY='["12.*.1", "13.1.*"]' runs those cases only (Autobahn's wildcards).
[ -n "$AB_ONLY" ] && sed -i "s/\"cases\": \[.*\]/\"cases\": $AB_ONLY/" "$WORK/spec.json"
cd "$REPO"
# ts-node itself (not npx), so that $! is the server process and the trap stops it.
LOG_LEVEL=${LOG_LEVEL:-warn} node_modules/.bin/ts-node --transpile-only bench/autobahn/echo-servers.ts "$1" "$2" $MODE > "$WORK/servers.log" 2>&1 &
SERVERS=$!
trap 'kill $SERVERS 2>/dev/null' EXIT
until grep -q 'echo servers' "$WORK/servers.log"; do
  kill -0 $SERVERS 2>/dev/null || { cat "$WORK/servers.log"; exit 1; }
  sleep 0.5
done
cd "$WORK"
rm -rf reports
PYTHONPATH="$WORK/site" "$PYTHON" "$SHARED/wstest_py2.py" -m fuzzingclient -s spec.json > wstest.log 2>&1
cd "$REPO"
AB_CASES=${AB_CASES:-3.2,3.3,4.1.3,4.1.4,4.2.3,4.2.4,5.15} npx ts-node --transpile-only bench/autobahn/summary.ts "$WORK/reports/index.json"
