#!/usr/bin/env bash
# What recording the metrics costs: produce throughput of a broker with
# metrics.enabled=true (the default) against one with metrics.enabled=false,
# in pairs run one after the other (the order flips each round, so drift of
# the shared machine falls on both sides), a fresh broker and data directory
# per run. The pairs' on/off throughput ratios are the figure (target: the
# median at 0.98 or more, a recording cost of at most 2%).
#
#   bench/metrics-cost.sh [rounds] [seconds]
#   env: CORELOG (binary), LOADGEN (bench binary), MICRO (micro bench
#        binary), MESSAGE_BYTES (100), ACKS (all), LINGER_MS (5), RATE (0),
#        BATCH_BYTES (1048576, the producers' batch.size), OUT (results
#        directory)
#
# Small messages make per-request work the largest share; LINGER_MS=0 and
# ACKS=1 make requests smaller and more frequent still, and RATE (messages
# per second, 0 = as fast as possible) below the peak makes each request
# carry few records, as does a small BATCH_BYTES at full speed: the worst
# case for a per-request cost.
#
# Throughput on a shared machine spreads far more than 2%, so the script
# also reports what does not depend on the machine's other load:
# - the broker's CPU seconds per GB produced (its own utime + stime from
#   /proc, over the whole run), on against off, pair by pair;
# - the recording work itself: `cargo bench --bench micro -- --only
#   recording` times one produce request's recording with metrics on and
#   off (ns per request); divided by the broker's CPU per produce request
#   in the same run (cpu_us / requests_produce of its shard-stats lines),
#   that is the share of the broker's work that recording is.
set -euo pipefail
rounds=${1:-5}
secs=${2:-8}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CORELOG:-$root/target/release/corelog}
loadgen=${LOADGEN:-$(ls -t "$root"/target/release/deps/loadgen-* 2>/dev/null | grep -v '\.d$' | head -1)}
bytes=${MESSAGE_BYTES:-100}
acks=${ACKS:-all}
linger=${LINGER_MS:-5}
rate=${RATE:-0}
batch=${BATCH_BYTES:-1048576}
micro=${MICRO:-$(ls -t "$root"/target/release/deps/micro-* 2>/dev/null | grep -v '\.d$' | head -1)}
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
        --producers 2 --rate "$rate" --message-bytes "$bytes" --acks "$acks" \
        --linger-ms "$linger" --batch-bytes "$batch" --consumers 0 --duration-s "$secs" --warmup-s 2 \
        --json "$out/run-$1-$2.json" >"$out/run-$1-$2.txt" 2>&1 ||
        echo "run $1 ($2) failed: $(tail -3 "$out/run-$1-$2.txt")"
    # utime and stime (fields 14 and 15, clock ticks) of the whole run.
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$pid/stat" \
        >"$out/cpu-$1-$2.txt" 2>/dev/null || true
    stop "$pid"
    rm -rf "$data"
}

echo "start $(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -x ${micro:-} ]]; then
    "$micro" --only recording >"$out/micro-recording.txt" 2>&1 || true
fi
for round in $(seq 1 "$rounds"); do
    if ((round % 2)); then order="true false"; else order="false true"; fi
    for enabled in $order; do run "$round" "$enabled"; done
done
echo "end $(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$out" "$rounds" <<'PY'
import json, re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def run_json(r, enabled):
    try:
        return json.load(open(f"{out}/run-{r}-{enabled}.json"))
    except (OSError, ValueError):
        return None
def cpu_s(r, enabled):
    try:
        return float(open(f"{out}/cpu-{r}-{enabled}.txt").read())
    except (OSError, ValueError):
        return None
def shard_stats(r, enabled):
    """(cpu_us, requests_produce) summed over the shards' last lines."""
    last = {}
    try:
        for line in open(f"{out}/broker-{r}-{enabled}.log"):
            if "shard-stats" in line:
                f = dict(re.findall(r"(\w+)=(\d+)", line))
                last[f.get("shard")] = f
    except OSError:
        return None
    if not last:
        return None
    return (sum(int(f.get("cpu_us", 0)) for f in last.values()),
            sum(int(f.get("requests_produce", 0)) for f in last.values()))
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

# CPU seconds per GB acknowledged, on against off.
cpu_ratios, per_request = [], []
for r in range(1, rounds + 1):
    figures = {}
    for enabled in ("true", "false"):
        j, c = run_json(r, enabled), cpu_s(r, enabled)
        if j and c:
            gb = j["produce"]["acked_bytes_total"] / 1e9
            figures[enabled] = c / gb if gb > 0 else None
        stats = shard_stats(r, enabled)
        if enabled == "true" and stats and stats[1] > 0:
            per_request.append(stats[0] / stats[1])
    if figures.get("true") and figures.get("false"):
        cpu_ratios.append(figures["true"] / figures["false"])
        print(f"round {r}: CPU s/GB on {figures['true']:.2f}, off {figures['false']:.2f}, "
              f"on/off {figures['true'] / figures['false']:.3f}")
if cpu_ratios:
    med = statistics.median(cpu_ratios)
    print(f"CPU seconds per GB, on/off median {med:.3f} (min {min(cpu_ratios):.3f}, "
          f"max {max(cpu_ratios):.3f})")

# The recording work against the broker's CPU per produce request.
try:
    text = open(f"{out}/micro-recording.txt").read()
    ns = {k: float(v) for k, v in re.findall(r"request, (on|off)\s+([\d.]+) ns/op", text)}
except OSError:
    ns = {}
if "on" in ns and "off" in ns and per_request:
    work_ns = ns["on"] - ns["off"]
    cpu_us = statistics.median(per_request)
    print(f"recording: {work_ns:.0f} ns per produce request (micro, on {ns['on']:.0f} - off "
          f"{ns['off']:.0f}); broker CPU per produce request {cpu_us:.0f} us (median of the 'on' "
          f"runs); share {100 * work_ns / (cpu_us * 1000):.3f}% (target <= 2%)")
PY
