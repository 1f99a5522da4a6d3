#!/usr/bin/env bash
# Imports a JSONL history into a fresh release daemon and reports the rate, both processes'
# CPU and the daemon's peak RSS (sampled from /proc every second). Loopback only.
# usage: [BIN=path] [IN_FLIGHT=N] scripts/bench-import.sh FILE [BATCH_SIZE]     (docs/BENCHMARKS.md, "History import")
set -euo pipefail
FILE=$1; BATCH=${2:-5000}
source "$(dirname "$0")/bench-daemon.sh"
/usr/bin/time -f "importer CPU %U s user + %S s sys" "$BIN" import --addr "$ADDR" --format jsonl --batch-size "$BATCH" --in-flight "${IN_FLIGHT:-4}" "$FILE" 2>&1 | grep -E "^imported|importer CPU"
daemon_report
