#!/usr/bin/env bash
# Imports a JSONL history into a fresh release daemon and reports the rate, both processes'
# CPU and the daemon's peak RSS (sampled from /proc every second). Loopback only.
# usage: [IN_FLIGHT=N] scripts/bench-import.sh FILE [BATCH_SIZE]     (docs/BENCHMARKS.md, "History import")
set -euo pipefail
FILE=$1; BATCH=${2:-5000}
BIN=${BIN:-target/release/audiencesync}
WORK=$(mktemp -d); trap 'kill $DAEMON 2>/dev/null && wait $DAEMON 2>/dev/null; rm -rf "$WORK"' EXIT
cat > "$WORK/cfg.toml" <<CFG
destinations = []
[server]
listen = "127.0.0.1:0"
[storage]
data_dir = "$WORK/data"
[metrics]
listen = "127.0.0.1:0"
[web]
listen = ""
CFG
"$BIN" serve --config "$WORK/cfg.toml" > "$WORK/daemon.out" 2> "$WORK/daemon.log" & DAEMON=$!
until ADDR=$(grep -o 'listening on [0-9.:]*' "$WORK/daemon.out" | cut -d' ' -f3) && [ -n "$ADDR" ]; do sleep 0.2; done
( while kill -0 $DAEMON 2>/dev/null; do awk '/VmRSS/{print $2}' /proc/$DAEMON/status; sleep 1; done ) > "$WORK/rss" &
/usr/bin/time -f "importer CPU %U s user + %S s sys" "$BIN" import --addr "$ADDR" --format jsonl --batch-size "$BATCH" --in-flight "${IN_FLIGHT:-4}" "$FILE" 2>&1 | tail -2
echo "daemon CPU $(awk '{printf "%.1f", ($14+$15)/100}' /proc/$DAEMON/stat) s"
sort -n "$WORK/rss" | tail -1 | awk '{printf "daemon peak RSS %.0f MiB\n", $1/1024}'
