#!/usr/bin/env bash
# Cross-shard cost: a connection whose shard owns the partition against one
# whose shard does not, 2 shards, one partition. The kernel spreads
# connections over the shards' listeners (SO_REUSEPORT) and the partition's
# owner follows its topic's name, so each round (a fresh broker and topic)
# lands on one side or the other by chance; the broker's shard-stats say
# which (produce_forwarded, fetch_forwarded), and the figures are grouped by
# it. Each round measures:
#   - produce ack latency at a fixed rate (1 KiB, acks=all, linger 0, no
#     consumer), and
#   - a catch-up: 1 KiB records produced as fast as possible, then read by
#     one consumer (throughput of each).
#
#   bench/cross-shard.sh [rounds] [latency seconds]
#   env: CORELOG (binary), LOADGEN (bench binary), RATE (5000 msg/s),
#        CATCHUP_BYTES (268435456), OUT (results directory)
#
# Prints one line per round, then per side the medians and the non-owner
# side's ratios to the owner side (target: throughput >= 0.9x, p99 at most
# 0.2 ms more).
set -euo pipefail
rounds=${1:-8}
secs=${2:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CORELOG:-$root/target/release/corelog}
loadgen=${LOADGEN:-$(ls -t "$root"/target/release/deps/loadgen-* 2>/dev/null | grep -v '\.d$' | head -1)}
rate=${RATE:-5000}
catchup=${CATCHUP_BYTES:-268435456}
out=${OUT:-$(mktemp -d /tmp/cross-shard.XXXXXX)}
mkdir -p "$out"
[[ -x $bin ]] || { echo "no corelog binary at $bin (cargo build --release)"; exit 1; }
[[ -x ${loadgen:-} ]] || { echo "no loadgen (cargo build --release --bench loadgen)"; exit 1; }

# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

for round in $(seq 1 "$rounds"); do
    port=$((29000 + round))
    data=$(mktemp -d /tmp/cross-shard-data.XXXXXX)
    "$bin" serve --listen "127.0.0.1:$port" --data-dir "$data" --shards 2 \
        >"$out/broker-$round.log" 2>&1 &
    pid=$!
    wait_port "$port" 30
    timeout $((secs + 120)) "$loadgen" --bootstrap "127.0.0.1:$port" --partitions 1 \
        --rate "$rate" --acks all --linger-ms 0 --consumers 0 --duration-s "$secs" \
        --warmup-s 2 --json "$out/latency-$round.json" >"$out/latency-$round.txt" 2>&1 ||
        echo "latency run $round failed: $(tail -3 "$out/latency-$round.txt")"
    stop "$pid"
    # A fresh broker for the catch-up, so each phase's shard-stats are its own.
    "$bin" serve --listen "127.0.0.1:$port" --data-dir "$data" --shards 2 \
        >"$out/broker-$round-catchup.log" 2>&1 &
    pid=$!
    wait_port "$port" 30
    timeout 300 "$loadgen" --bootstrap "127.0.0.1:$port" --broker-pid "$pid" \
        --workload "$root/bench/workloads/catch-up.toml" --partitions 1 --producers 1 \
        --catchup-bytes "$catchup" --json "$out/catchup-$round.json" \
        >"$out/catchup-$round.txt" 2>&1 ||
        echo "catch-up run $round failed: $(tail -3 "$out/catchup-$round.txt")"
    stop "$pid"
    rm -rf "$data"
done

python3 - "$out" "$rounds" <<'PY'
import json, os, re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])

def stats(path):
    total = {}
    for line in open(path, errors="replace"):
        if "shard-stats " not in line:
            continue
        for k, v in re.findall(r"(\w+)=(\d+)", line):
            total[k] = total.get(k, 0) + int(v)
    return total

def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None

rows = {"produce": {True: [], False: []}, "fetch": {True: [], False: []},
        "latency": {True: [], False: []}}
for r in range(1, rounds + 1):
    lat = load(f"{out}/latency-{r}.json")
    cu = load(f"{out}/catchup-{r}.json")
    s_lat = stats(f"{out}/broker-{r}.log")
    s_cu = stats(f"{out}/broker-{r}-catchup.log")
    line = [f"round {r}:"]
    if lat:
        owner = s_lat.get("produce_forwarded", 0) == 0
        h = lat["produce"]["ack_latency_us"]
        p99 = h.get("p99", 0) / 1000
        rows["latency"][owner].append((h.get("p50", 0) / 1000, p99, h.get("p999", 0) / 1000))
        line.append(f"latency {'owner' if owner else 'other'} p99 {p99:.2f} ms")
    if cu:
        p_owner = s_cu.get("produce_forwarded", 0) == 0
        f_owner = s_cu.get("fetch_forwarded", 0) == 0
        prod = cu["produce"]["mb_per_s"]
        cons = cu["catchup"]["mb_per_s"]
        rows["produce"][p_owner].append(prod)
        rows["fetch"][f_owner].append(cons)
        line.append(f"produce {'owner' if p_owner else 'other'} {prod:.0f} MB/s")
        line.append(f"fetch {'owner' if f_owner else 'other'} {cons:.0f} MB/s")
    print(" ".join(line))

med = lambda xs: statistics.median(xs) if xs else float("nan")
print()
for side in (True, False):
    name = "owner shard " if side else "other shard "
    lats = rows["latency"][side]
    p50 = med([l[0] for l in lats]); p99 = med([l[1] for l in lats]); p999 = med([l[2] for l in lats])
    print(f"{name}: latency runs {len(lats)}, ack p50/p99/p99.9 {p50:.2f}/{p99:.2f}/{p999:.2f} ms; "
          f"produce runs {len(rows['produce'][side])}, {med(rows['produce'][side]):.0f} MB/s; "
          f"fetch runs {len(rows['fetch'][side])}, {med(rows['fetch'][side]):.0f} MB/s")
def ratio(kind):
    a, b = rows[kind][False], rows[kind][True]
    return med(a) / med(b) if a and b else float("nan")
lo, la = rows["latency"][True], rows["latency"][False]
dp99 = (med([l[1] for l in la]) - med([l[1] for l in lo])) if lo and la else float("nan")
print(f"other / owner: produce {ratio('produce'):.2f}x, fetch {ratio('fetch'):.2f}x, "
      f"p99 {dp99:+.2f} ms (targets: >= 0.90x, <= +0.20 ms)")
PY
echo "results in $out"
