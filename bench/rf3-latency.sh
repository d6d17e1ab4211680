#!/usr/bin/env bash
# Replicated produce latency: a local 3-node dev-cluster (RF 3, acks=all,
# min.insync.replicas 2 as dev-cluster sets it) against a single node (RF 1)
# at the same fixed rate, in the same run, alternating, so the machine's
# noise hits both. Each dev-cluster placement in DEV_CORES is measured
# (`auto`: distinct cores per node when there are enough, else unpinned;
# `0`: every node's shard on core 0, as dev-cluster placed them before it
# had --cores).
#
#   bench/rf3-latency.sh [rounds] [seconds]
#   env: CORELOG (binary), LOADGEN (bench binary), DEV_CORES ("auto 0"),
#        RATE (1000 msg/s), OUT (results directory)
#
# Prints ack p50 / p99 / p99.9 per configuration and round, then the
# medians and each one's p99 over the single node's.
set -euo pipefail
rounds=${1:-3}
secs=${2:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CORELOG:-$root/target/release/corelog}
loadgen=${LOADGEN:-$(ls -t "$root"/target/release/deps/loadgen-* 2>/dev/null | grep -v '\.d$' | head -1)}
rate=${RATE:-1000}
out=${OUT:-$(mktemp -d /tmp/rf3-latency.XXXXXX)}
mkdir -p "$out"
[[ -x $bin ]] || { echo "no corelog binary at $bin (cargo build --release)"; exit 1; }
[[ -x ${loadgen:-} ]] || { echo "no loadgen (cargo build --release --bench loadgen)"; exit 1; }

wait_for() { # file pattern seconds
    local deadline=$((SECONDS + $3))
    until grep -q "$2" "$1" 2>/dev/null; do
        ((SECONDS < deadline)) || { echo "timed out waiting for '$2' in $1"; tail -20 "$1"; return 1; }
        sleep 0.5
    done
}

# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

measure() { # name bootstrap rf
    timeout $((secs + 120)) "$loadgen" --bootstrap "$2" --rate "$rate" --acks all --linger-ms 0 \
        --replication-factor "$3" --duration-s "$secs" --warmup-s 3 --json "$out/$1.json" \
        >"$out/$1.txt" 2>&1 || { echo "loadgen failed for $1"; tail -5 "$out/$1.txt"; }
}

for round in $(seq 1 "$rounds"); do
    for cores in ${DEV_CORES:-auto 0}; do
        dir=$out/cluster-$round-$cores
        "$bin" dev-cluster --nodes 3 --dir "$dir" --base-port 19092 --cores "$cores" >"$dir.log" 2>&1 &
        pid=$!
        if wait_for "$dir.log" "nodes running" 90; then
            measure "rf3-cores-$cores-$round" 127.0.0.1:19092 3
        fi
        stop "$pid"
    done
    single=$out/single-$round
    "$bin" serve --listen 127.0.0.1:19192 --data-dir "$single" --shards 1 >"$single.log" 2>&1 &
    pid=$!
    if wait_port 19192 60; then
        measure "single-$round" 127.0.0.1:19192 1
    fi
    stop "$pid"
done

python3 - "$out" <<'EOF'
import json, glob, os, re, statistics, sys
out = sys.argv[1]
runs = {}
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    name = re.sub(r"-\d+$", "", os.path.basename(path)[:-5])
    with open(path) as f:
        report = json.load(f)
    lat = report["produce"]["ack_latency_us"]
    runs.setdefault(name, []).append((lat["p50"] / 1e3, lat["p99"] / 1e3, lat["p999"] / 1e3))
    print(f"{os.path.basename(path)[:-5]:24} ack p50 {lat['p50']/1e3:8.2f}  p99 {lat['p99']/1e3:8.2f}  p99.9 {lat['p999']/1e3:8.2f} ms")
single = runs.get("single")
print()
for name, rows in sorted(runs.items()):
    p50, p99, p999 = (statistics.median(r[i] for r in rows) for i in range(3))
    ratio = f"  p99 / single {p99 / statistics.median(r[1] for r in single):.2f}" if single else ""
    print(f"median {name:18} p50 {p50:7.2f}  p99 {p99:7.2f}  p99.9 {p999:7.2f} ms ({len(rows)} runs){ratio}")
print(f"results in {out}")
EOF
