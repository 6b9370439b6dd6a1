#!/usr/bin/env bash
# A short, bounded run of every fuzz target (default 30 s each, one at a time, lowest priority) from its
# committed corpus. New inputs go to a scratch directory, so the committed corpus stays as it is; a
# crash stops the script and leaves its input in fuzz/artifacts/<target>/. docs/FUZZING.md says how to
# turn a crash into a regression test and records the long runs.
#
#   scripts/fuzz.sh [SECONDS] [TARGET…]        e.g. scripts/fuzz.sh 600 sse_parser
#
# Needs cargo-fuzz (installed from crates.io if missing). The toolchain is stable; cargo fuzz needs
# nightly-only flags (-Zsanitizer), which RUSTC_BOOTSTRAP=1 allows.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
if ! command -v cargo-fuzz >/dev/null; then
    echo "== installing cargo-fuzz (crates.io)" >&2
    cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1
SECONDS_EACH=${1:-30}
shift || true
if [ $# -gt 0 ]; then
    TARGETS=("$@")
else
    mapfile -t TARGETS < <(cargo fuzz list)
fi
echo "== building ${#TARGETS[@]} targets" >&2
for t in "${TARGETS[@]}"; do
    nice -n 19 cargo fuzz build "$t" >&2
done
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for t in "${TARGETS[@]}"; do
    mkdir -p "$scratch/$t"
    echo "== $t: ${SECONDS_EACH}s" >&2
    # One process, one job: the machine is shared. Stats go to stderr at the end.
    nice -n 19 cargo fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$SECONDS_EACH" -print_final_stats=1 2>"$scratch/$t.log" || {
        tail -n 40 "$scratch/$t.log" >&2
        echo "== $t FAILED: see fuzz/artifacts/$t/" >&2
        exit 1
    }
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$scratch/$t.log" | tr '\n' ' ' >&2
    echo >&2
done
echo "== every target ran ${SECONDS_EACH}s without a crash" >&2
