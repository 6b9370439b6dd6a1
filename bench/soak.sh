#!/usr/bin/env bash
# 10,000 (or --streams N) streams held open through moatd at once: RSS per open stream and file
# descriptors before, during and after (`moat-bench soak`). Raises the open-file limit first.
#
#   bench/soak.sh [--streams N] [--concurrency N] [--hold 5s]
#
# docs/BENCHMARKS.md records a run. It needs ~4 descriptors per stream across moatd, the emulator
# and the client, and two loopback ports per stream.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
cargo build --quiet --release -p moatd -p moat-bench
exec target/release/moat-bench soak "$@"
