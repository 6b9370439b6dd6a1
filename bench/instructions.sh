#!/usr/bin/env bash
# Instructions per request through moatd, counted by valgrind's callgrind: a figure that does not
# depend on machine noise, so changes can be compared on a busy box (docs/BENCHMARKS.md).
#
#   bench/instructions.sh [MOATD_BINARY]          (default: target/release/moatd, built if missing)
#
# moatd runs under callgrind in front of the loopback emulator (`moat-bench emulator`, not measured)
# with a virtual key that has a budget, the privacy scan and the audit log on (the defaults). A
# keep-alive client sends W whole answers and S streamed answers (20 chunks each) per run, in three
# runs: (N1, N1), (N2, N1), (N1, N2). Start-up, warm-up and shutdown cost the same in every run, so
#   instructions per whole request    = (I(N2, N1) - I(N1, N1)) / (N2 - N1)
#   instructions per streamed request = (I(N1, N2) - I(N1, N1)) / (N2 - N1)
# for the whole moatd process (all threads).
set -euo pipefail
cd "$(dirname "$0")/.."
MOATD=${1:-target/release/moatd}
N1=${N1:-200}
N2=${N2:-1200}
CHUNKS=20

if ! command -v valgrind >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
if [ "$MOATD" = target/release/moatd ] || [ ! -x target/release/moat-bench ]; then
    cargo build --quiet --release -p moatd -p moat-bench
fi

scratch=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$scratch"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {
    for _ in $(seq 1 600); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$1$2" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing answered on port $1" >&2
    return 1
}

emu_port=$(free_port)
target/release/moat-bench emulator --listen "127.0.0.1:$emu_port" >"$scratch/emu.log" 2>&1 &
pids+=($!)
wait_http "$emu_port" /v1/models

cat >"$scratch/moatd.toml" <<EOF
[[providers]]
name = "emu"
kind = "openai"
base_url = "http://127.0.0.1:$emu_port/v1"
prices = { "*" = [1.0, 2.0] }
EOF

# One measured moatd run with $1 whole and $2 streamed requests; prints its total instruction count.
run() {
    local n="$1-$2" data="$scratch/data-$1-$2" port out
    mkdir -p "$data"
    key=$(XDG_DATA_HOME="$data" "$MOATD" keys create --name bench --budget 1000000/day \
        --config "$scratch/moatd.toml")
    port=$(free_port)
    out="$scratch/callgrind-$n.out"
    XDG_DATA_HOME="$data" MOAT_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$MOATD" serve --config "$scratch/moatd.toml" --listen "127.0.0.1:$port" \
        >"$scratch/moatd-$n.log" 2>&1 &
    local pid=$!
    wait_http "$port" /health
    python3 - "$port" "$key" "$1" "$2" "$CHUNKS" <<'PY'
import http.client, json, sys
port, key, whole, streamed, chunks = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
conn = http.client.HTTPConnection("127.0.0.1", port)
headers = {"content-type": "application/json", "authorization": "Bearer " + key}
def ask(stream):
    body = {"model": "emu/tiny", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}
    if stream:
        # The emulator answers one chunk per word of the prompt (as `moat-bench compare` asks).
        words = " ".join(f"w{i}" for i in range(chunks))
        body.update(messages=[{"role": "user", "content": words}], stream=True, max_tokens=chunks + 8)
    conn.request("POST", "/v1/chat/completions", json.dumps(body), headers)
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        sys.exit(f"status {r.status}: {data[:300]!r}")
for _ in range(whole):
    ask(False)
for _ in range(streamed):
    ask(True)
PY
    kill -TERM "$pid"
    wait "$pid" || true
    awk '/^totals:/ {print $2}' "$out"
}

base=$(run "$N1" "$N1")
whole=$(run "$N2" "$N1")
streamed=$(run "$N1" "$N2")
echo "moatd at $(git rev-parse --short HEAD 2>/dev/null || echo '?'); keyed with a budget, privacy scan and audit log on"
echo "instructions per whole request:             $(( (whole - base) / (N2 - N1) ))"
echo "instructions per streamed request (${CHUNKS} chunks): $(( (streamed - base) / (N2 - N1) ))"
