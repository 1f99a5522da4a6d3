#!/usr/bin/env bash
# Streams a synthetic shop into a fresh release daemon with `audiencesync feed` (queries and
# visibility probes beside the ingest) and reports feed's figures, the daemon's CPU and its peak
# RSS (sampled from /proc every second). Loopback only.
# usage: [BIN=path] [FEED_CPUS=list] scripts/bench-feed.sh [feed options…]     (docs/BENCHMARKS.md, "Ingest")
#   FEED_CPUS pins the load generator to those CPUs (taskset), to see its share of the tail;
#   FEED_BIN runs another build's load generator (an older daemon's feed lacks --order time)
#   default options: --customers 100000 --seed 1 --batch-size 1000 --in-flight 32 --streams 1
#                    --query-rate 5000 --visibility-probes 20
set -euo pipefail
source "$(dirname "$0")/bench-daemon.sh"
if [ $# -eq 0 ]; then
  set -- --customers 100000 --seed 1 --batch-size 1000 --in-flight 32 --streams 1 --query-rate 5000 --visibility-probes 20
fi
${FEED_CPUS:+taskset -c "$FEED_CPUS"} "${FEED_BIN:-$BIN}" feed --addr "http://$ADDR" "$@"
daemon_report
