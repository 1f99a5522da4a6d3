#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz / libFuzzer) of event decoding + validation,
# identifier normalization and on-disk record decoding: the targets in fuzz/fuzz_targets,
# whose checks are fuzz/checks.rs (CI runs the same checks over seeds and generated inputs
# in tests/fuzz_smoke.rs). Bounded: each target runs --seconds, then the script stops.
#
#   scripts/fuzz.sh [--seconds N] [--target NAME]... [--sanitizer address|none]
#
# Works on the stable toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz use its -Z flags.
# Installs cargo-fuzz with `cargo install` if it is missing (about a minute).
# New corpus entries go to fuzz/corpus/<target> (ignored by git); a crash leaves its input
# in fuzz/artifacts/<target>/ and makes the script exit non-zero with the command to replay it.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=60
sanitizer=address
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --target) targets+=("$2"); shift 2 ;;
        --sanitizer) sanitizer="$2"; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ ${#targets[@]} -eq 0 ] && targets=(event_validate identity_normalize record_decode)

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

failed=0
for t in "${targets[@]}"; do
    echo "== fuzzing $t for ${seconds}s (sanitizer: $sanitizer)"
    mkdir -p "corpus/$t"
    if ! cargo fuzz run --sanitizer "$sanitizer" "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1; then
        echo "!! $t found a failing input: see fuzz/artifacts/$t/" >&2
        echo "   replay: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run $t fuzz/artifacts/$t/<file>)" >&2
        failed=1
    fi
done
exit $failed
