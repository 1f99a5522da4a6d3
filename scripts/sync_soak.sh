#!/usr/bin/env bash
# The long randomized sync soak (tests/sync_soak.rs): a shop's events in rounds while both fake
# networks inject faults and the daemon is killed -9 at random moments; every list must end
# equal to its audience's desired members or differ by exactly what status explains.
#   scripts/sync_soak.sh [--customers N] [--rounds N] [--kills N] [--faults N] [--seed S] [--debug]
set -euo pipefail
cd "$(dirname "$0")/.."
profile=(--release)
while [ $# -gt 0 ]; do
  case "$1" in
    --customers) export SYNC_SOAK_CUSTOMERS="$2"; shift 2 ;;
    --rounds) export SYNC_SOAK_ROUNDS="$2"; shift 2 ;;
    --kills) export SYNC_SOAK_KILLS="$2"; shift 2 ;;
    --faults) export SYNC_SOAK_FAULTS="$2"; shift 2 ;;
    --seed) export SYNC_SOAK_SEED="$2"; shift 2 ;;
    --debug) profile=(); shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
exec cargo test "${profile[@]}" --test sync_soak -- --ignored --nocapture sync_soak
