#!/usr/bin/env bash
# The `moat` client benchmark: binary size, and exec-to-first-answer-byte against a loopback TLS
# emulator, side by side in one run with ort, aichat and llm (each installed if missing; a peer that
# cannot be installed or run is reported as such, never dropped silently).
#
#   bench/cli/run.sh [RUNS]        # default 30 timed runs per client, interleaved round by round
#
# Every client talks HTTPS to the same emulator process (crates/moat-testkit/examples/emulator.rs)
# with a throwaway CA: moat, aichat and llm verify the certificate against it (SSL_CERT_FILE /
# REQUESTS_CA_BUNDLE); ort does not verify certificates at all. Results go to stdout as a Markdown
# table; docs/BENCHMARKS.md records a run.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-30}
WORK=$(mktemp -d)
EMU_PID=""
cleanup() {
    if [ -n "$EMU_PID" ]; then kill "$EMU_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== building moat (cargo build --profile dist -p moat) and the emulator" >&2
cargo build --quiet --profile dist -p moat
cargo build --quiet --release -p moat-testkit --example emulator
MOAT=target/dist/moat

# GNU time (Debian's `time`) measures each client's peak RSS.
if [ ! -x /usr/bin/time ]; then
    echo "== installing GNU time (apt)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi

declare -A PEER_STATUS
install_peer() { # name, check command, install command...
    local name=$1 check=$2
    shift 2
    if ! command -v "$check" >/dev/null 2>&1; then
        echo "== installing $name: $*" >&2
        if ! "$@" >"$WORK/install-$name.log" 2>&1; then
            PEER_STATUS[$name]="could not be installed ($(tail -n 1 "$WORK/install-$name.log"))"
            return
        fi
    fi
    command -v "$check" >/dev/null 2>&1 || PEER_STATUS[$name]="installed but '$check' is not on PATH"
}
install_peer ort ort env RUSTC_BOOTSTRAP=1 cargo install --locked ort-openrouter-cli
install_peer aichat aichat cargo install --locked aichat
install_peer llm llm python3 -m pip install --quiet llm

echo "== starting the emulator" >&2
target/release/examples/emulator --listen 127.0.0.1:0 --tls-dir "$WORK/tls" >"$WORK/emu.out" &
EMU_PID=$!
for _ in $(seq 100); do
    grep -q "listening on" "$WORK/emu.out" 2>/dev/null && break
    sleep 0.05
done
URL=$(sed -n 's/^listening on //p' "$WORK/emu.out")
[ -n "$URL" ] || { echo "the emulator did not start" >&2; exit 1; }
CA="$WORK/tls/ca.pem"
KEY=sk-bench
echo "== emulator at $URL" >&2

# Per-client configuration, each in its own directory so nothing of the machine's is used.
mkdir -p "$WORK/ort" "$WORK/aichat/aichat" "$WORK/llm" "$WORK/moat"
cat >"$WORK/ort/ort.cfg" <<CFG
api_key: $KEY
base_url: $URL
dns: 127.0.0.1
model: tiny
quiet: true
private: true
CFG
cat >"$WORK/aichat/aichat/config.yaml" <<CFG
model: emu:tiny
stream: true
save: false
highlight: false
clients:
  - type: openai-compatible
    name: emu
    api_base: $URL
    api_key: $KEY
    models:
      - name: tiny
CFG
cat >"$WORK/llm/extra-openai-models.yaml" <<CFG
- model_id: emu-tiny
  model_name: tiny
  api_base: $URL
  api_key_name: emu
CFG
echo "{\"emu\": \"$KEY\"}" >"$WORK/llm/keys.json"

size_of() { if [ -n "${1:-}" ] && [ -f "$1" ]; then stat -c %s "$1"; else echo ""; fi; }

# name|command (run by bash -c with a clean HOME)|environment|binary
CLIENTS="$WORK/clients"
{
    echo "moat|$MOAT --private -q -m tiny --base-url $URL hello|SSL_CERT_FILE=$CA MOAT_API_KEY=$KEY XDG_CONFIG_HOME=$WORK/moat XDG_STATE_HOME=$WORK/moat MOAT_KEYRING=off|$MOAT"
    echo "moat --cacert (system roots + CA)|$MOAT --private -q -m tiny --base-url $URL --cacert $CA hello|MOAT_API_KEY=$KEY XDG_CONFIG_HOME=$WORK/moat XDG_STATE_HOME=$WORK/moat MOAT_KEYRING=off|$MOAT"
    [ -z "${PEER_STATUS[ort]:-}" ] && echo "ort (no certificate verification)|$(command -v ort) -m tiny hello|XDG_CONFIG_HOME=$WORK/ort|$(command -v ort)"
    [ -z "${PEER_STATUS[aichat]:-}" ] && echo "aichat|$(command -v aichat) hello|XDG_CONFIG_HOME=$WORK/aichat SSL_CERT_FILE=$CA|$(command -v aichat)"
    [ -z "${PEER_STATUS[llm]:-}" ] && echo "llm|$(command -v llm) -n -m emu-tiny hello|LLM_USER_PATH=$WORK/llm SSL_CERT_FILE=$CA REQUESTS_CA_BUNDLE=$CA|"
} >"$CLIENTS"
for name in "${!PEER_STATUS[@]}"; do echo "SKIP|$name|${PEER_STATUS[$name]}" >>"$CLIENTS"; done

python3 - "$CLIENTS" "$RUNS" "$WORK/home" <<'PY'
import os, shlex, statistics, subprocess, sys, time

clients_file, runs, home = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.makedirs(home, exist_ok=True)
clients, skipped = [], []
for line in open(clients_file):
    parts = line.rstrip("\n").split("|")
    if parts[0] == "SKIP":
        skipped.append((parts[1], parts[2]))
        continue
    name, cmd, env, binary = parts
    e = {"PATH": os.environ["PATH"], "HOME": home, "LANG": "C.UTF-8"}
    e.update(kv.split("=", 1) for kv in env.split())
    clients.append({"name": name, "cmd": shlex.split(cmd), "env": e, "binary": binary, "first": [], "total": []})

def once(c):
    t0 = time.perf_counter()
    p = subprocess.Popen(c["cmd"], env=c["env"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # The first byte of the answer itself ("You said: ..."): ort writes an escape sequence first.
    seen = b""
    while b"Y" not in seen:
        chunk = os.read(p.stdout.fileno(), 65536)
        if not chunk:
            break
        seen += chunk
    t1 = time.perf_counter()
    first, rest = seen, p.stdout.read()
    err = p.stderr.read()
    p.wait()
    t2 = time.perf_counter()
    return (t1 - t0) * 1000, (t2 - t0) * 1000, (first + rest).decode(errors="replace"), err.decode(errors="replace"), p.returncode

ok = []
for c in clients:  # smoke run: it must answer, or it is reported, not timed
    try:
        _, _, out, err, code = once(c)
    except OSError as e:
        skipped.append((c["name"], f"cannot run: {e}"))
        continue
    if code != 0 or "You said: hello" not in out:
        why = (err.strip().splitlines() or out.strip().splitlines() or ["no output"])[-1]
        skipped.append((c["name"], f"ran but did not answer (exit {code}): {why[:160]}"))
        continue
    ok.append(c)
for c in ok:  # warm-up: page cache, Python bytecode
    once(c); once(c)
for _ in range(runs):  # interleaved, so drift on a shared machine hits every client alike
    for c in ok:
        first, total, *_ = once(c)
        c["first"].append(first)
        c["total"].append(total)

def peak_rss_mib(c):
    """Peak resident set of one run, from GNU time's %M. Not from this script's own wait4: a child
    forked from Python keeps Python's high-water mark across exec, so every client would show ~15 MiB."""
    out = os.path.join(home, "rss")
    subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out] + c["cmd"], env=c["env"],
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return int(open(out).read().split()[-1]) / 1024

for c in ok:
    c["rss"] = [peak_rss_mib(c) for _ in range(3)]

def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]

ort = next((c for c in ok if c["name"].startswith("ort")), None)
base = statistics.median(ort["first"]) if ort else None
print(f"{runs} runs each, interleaved; times in ms from exec to the first byte of the answer text on stdout.\n")
print("| client | binary size | first byte median | p90 | min | whole run median | peak RSS (MiB) | vs ort |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for c in ok:
    size = os.path.getsize(c["binary"]) if c["binary"] and os.path.exists(c["binary"]) else None
    size_s = f"{size / 1e6:.2f} MB" if size else "Python package"
    med = statistics.median(c["first"])
    ratio = f"{med / base:.2f}×" if base else "n/a"
    print(f"| {c['name']} | {size_s} | {med:.1f} | {pct(c['first'], 0.9):.1f} | {min(c['first']):.1f} | "
          f"{statistics.median(c['total']):.1f} | {statistics.median(c['rss']):.1f} | {ratio} |")
for name, why in skipped:
    print(f"| {name} | — | not measured: {why} | | | | | |")
PY
