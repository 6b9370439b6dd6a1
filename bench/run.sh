#!/usr/bin/env bash
# The whole benchmark report in one command, from a fresh checkout:
#
#   bench/run.sh [gateways|cli|all] [extra moat-bench compare flags…]     (default: all)
#
# gateways: moatd side by side with nginx (proxy_pass), Portkey's gateway and LiteLLM's proxy in one
#           run against the same loopback emulator (`moat-bench compare`), then a PNG plot of added
#           latency against request rate. Missing peers are installed from their registries (apt
#           nginx-light, npm @portkey-ai/gateway, PyPI litellm[proxy], PyPI matplotlib for the plot);
#           one that cannot be installed or started is reported in the table, never dropped.
# cli:      moat vs ort vs aichat vs llm against a loopback TLS emulator (bench/cli/run.sh).
#
# Results: docs/bench-compare.json and docs/bench-compare.png (gateways), the tables on stdout.
# docs/BENCHMARKS.md records a run and how to read it. Run it on a quiet machine: the load generator,
# the emulator and the gateway share its cores.
set -euo pipefail
cd "$(dirname "$0")/.."
WHAT=${1:-all}
shift || true

gateways() {
    echo "== building moatd and moat-bench (release)" >&2
    cargo build --quiet --release -p moatd -p moat-bench
    if ! python3 -c 'import matplotlib' 2>/dev/null; then
        echo "== installing matplotlib (PyPI) for the plot" >&2
        python3 -m pip install --quiet --disable-pip-version-check matplotlib
    fi
    target/release/moat-bench compare --install --out docs/bench-compare.json "$@"
    python3 bench/plot.py docs/bench-compare.json docs/bench-compare.png
}

case "$WHAT" in
    gateways) gateways "$@" ;;
    cli) bench/cli/run.sh "$@" ;;
    all) gateways "$@"; bench/cli/run.sh ;;
    *) echo "usage: bench/run.sh [gateways|cli|all] [moat-bench compare flags…]" >&2; exit 2 ;;
esac
