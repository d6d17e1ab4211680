#!/usr/bin/env bash
# What recording the metrics costs: produce throughput of a broker with
# metrics.enabled=true (the default) against one with metrics.enabled=false,
# in pairs run one after the other (the order flips each round, so drift of
# the shared machine falls on both sides), a fresh broker and data directory
# per run. The pairs' on/off throughput ratios are the figure (target: the
# median at 0.98 or more, a recording cost of at most 2%).
#
#   bench/metrics-cost.sh [rounds] [seconds]
#   env: CORELOG (binary), LOADGEN (bench binary), MESSAGE_BYTES (100),
#        ACKS (all), LINGER_MS (5), OUT (results directory)
#
# Small messages make per-request work the largest share; LINGER_MS=0 and
# ACKS=1 make requests smaller and more frequent still (the worst case for a
# per-request cost).
set -euo pipefail
rounds=${1:-5}
secs=${2:-8}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CORELOG:-$root/target/release/corelog}
loadgen=${LOADGEN:-$(ls -t "$root"/target/release/deps/loadgen-* 2>/dev/null | grep -v '\.d$' | head -1)}
bytes=${MESSAGE_BYTES:-100}
acks=${ACKS:-all}
linger=${LINGER_MS:-5}
out=${OUT:-$(mktemp -d /tmp/metrics-cost.XXXXXX)}
mkdir -p "$out"
[[ -x $bin ]] || { echo "no corelog binary at $bin (cargo build --release)"; exit 1; }
[[ -x ${loadgen:-} ]] || { echo "no loadgen (cargo build --release --bench loadgen)"; exit 1; }

# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

run() { # round, enabled (true|false)
    local port=$((29200 + $1)) data pid
    data=$(mktemp -d /tmp/metrics-cost-data.XXXXXX)
    "$bin" serve --listen "127.0.0.1:$port" --data-dir "$data" --shards 2 \
        --override "metrics.enabled=$2" --override "http.listeners=" \
        >"$out/broker-$1-$2.log" 2>&1 &
    pid=$!
    wait_port "$port" 30
    timeout $((secs + 120)) "$loadgen" --bootstrap "127.0.0.1:$port" --partitions 2 \
        --producers 2 --rate 0 --message-bytes "$bytes" --acks "$acks" \
        --linger-ms "$linger" --consumers 0 --duration-s "$secs" --warmup-s 2 \
        --json "$out/run-$1-$2.json" >"$out/run-$1-$2.txt" 2>&1 ||
        echo "run $1 ($2) failed: $(tail -3 "$out/run-$1-$2.txt")"
    stop "$pid"
    rm -rf "$data"
}

echo "start $(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
    if ((round % 2)); then order="true false"; else order="false true"; fi
    for enabled in $order; do run "$round" "$enabled"; done
done
echo "end $(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def rate(r, enabled):
    try:
        return json.load(open(f"{out}/run-{r}-{enabled}.json"))["produce"]["msgs_per_s"]
    except (OSError, ValueError, KeyError):
        return None
ratios = []
for r in range(1, rounds + 1):
    on, off = rate(r, "true"), rate(r, "false")
    if on and off:
        ratios.append(on / off)
        print(f"round {r}: on {on:,.0f} msg/s, off {off:,.0f} msg/s, on/off {on / off:.3f}")
    else:
        print(f"round {r}: a run failed")
if ratios:
    med = statistics.median(ratios)
    print(f"{len(ratios)} pairs: on/off median {med:.3f} (min {min(ratios):.3f}, "
          f"max {max(ratios):.3f}); recording cost {100 * (1 - med):.1f}% (target <= 2%)")
PY
