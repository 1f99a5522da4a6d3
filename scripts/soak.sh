#!/usr/bin/env bash
# Soak test: the real daemon (release build) under a bounded mixed load on loopback only:
# `audiencesync feed` streams, concurrent audience queries, admin calls and resyncs, and two
# destinations syncing (a local fake Data Manager API and CSV files). Prints resident memory
# over time and the error counts, and fails on any error, on lists that do not catch up, or
# on memory growing after the warm-up (runs of 120 s or more). Stops by itself.
#
#   scripts/soak.sh [--seconds N] [--customers N] [--seeds N] [--rate EVENTS_PER_SEC] [--debug]
#
# Defaults: 300 s, 2,000 customers per seed, 4 seeds, 5,000 events/s. The test is
# tests/soak.rs (`soak`, ignored by `cargo test`; CI runs `soak_smoke`, 15 s).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=(--release)
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) export SOAK_SECONDS="$2"; shift 2 ;;
        --customers) export SOAK_CUSTOMERS="$2"; shift 2 ;;
        --seeds) export SOAK_SEEDS="$2"; shift 2 ;;
        --rate) export SOAK_RATE="$2"; shift 2 ;;
        --debug) profile=(); shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
exec cargo test "${profile[@]}" --test soak soak -- --ignored --exact --nocapture
