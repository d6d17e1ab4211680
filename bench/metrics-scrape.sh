#!/usr/bin/env bash
# What a /metrics scrape costs at many partitions: a 2-shard broker with one
# topic of PARTITIONS (4096) partitions, /metrics fetched ROUNDS times with
# curl at each metrics.partition.limit in LIMITS (set between series with
# kafka-configs' syntax: a dynamic cluster-wide broker config). Per limit:
# the median and largest scrape time, the median over the target (100 ms)
# and the scrape's size.
#
#   bench/metrics-scrape.sh [rounds]
#   env: CORELOG (binary), PARTITIONS (4096), LIMITS ("5000 0"; 5000 is the
#        default, which covers 4096), OUT (results directory)
set -euo pipefail
rounds=${1:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CORELOG:-$root/target/release/corelog}
partitions=${PARTITIONS:-4096}
limits=${LIMITS:-5000 0}
out=${OUT:-$(mktemp -d /tmp/metrics-scrape.XXXXXX)}
mkdir -p "$out"
[[ -x $bin ]] || { echo "no corelog binary at $bin (cargo build --release)"; exit 1; }
command -v curl >/dev/null || { echo "needs curl"; exit 1; }

# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

port=29190
http=29191
data=$(mktemp -d /tmp/metrics-scrape-data.XXXXXX)
"$bin" serve --listen "127.0.0.1:$port" --data-dir "$data" --shards 2 \
    --override "http.listeners=127.0.0.1:$http" >"$out/broker.log" 2>&1 &
pid=$!
trap 'stop $pid; rm -rf "$data"' EXIT
wait_port "$port" 30
wait_port "$http" 30
timeout 300 "$bin" topics --bootstrap-server "127.0.0.1:$port" --create --topic scraped \
    --partitions "$partitions" --replication-factor 1 >"$out/create.txt" 2>&1
echo "created $partitions partitions; $(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"

for limit in $limits; do
    timeout 60 "$bin" configs --bootstrap-server "127.0.0.1:$port" --alter \
        --entity-type brokers --entity-default \
        --add-config "metrics.partition.limit=$limit" >>"$out/configs.txt" 2>&1
    # One unmeasured scrape: the limit is in force and caches are warm.
    curl -s -o /dev/null --max-time 30 "http://127.0.0.1:$http/metrics"
    : >"$out/limit-$limit.txt"
    for _ in $(seq 1 "$rounds"); do
        curl -s -o "$out/scrape-$limit.txt" --max-time 30 \
            -w '%{time_total} %{size_download}\n' \
            "http://127.0.0.1:$http/metrics" >>"$out/limit-$limit.txt"
    done
done
echo "done $(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$out" "$limits" "$partitions" <<'PY'
import statistics, sys
out, limits, partitions = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])
for limit in limits:
    rows = [l.split() for l in open(f"{out}/limit-{limit}.txt") if l.strip()]
    times = [float(t) * 1000 for t, _ in rows]
    sizes = sorted({int(s) for _, s in rows})
    med = statistics.median(times)
    exported = sum(1 for l in open(f"{out}/scrape-{limit}.txt")
                   if l.startswith("corelog_partition_log_end_offset{"))
    print(f"metrics.partition.limit={limit}: {partitions} partitions held, {exported} exported; "
          f"{len(times)} scrapes, median {med:.1f} ms, max {max(times):.1f} ms, "
          f"median / 100 ms target = {med / 100:.2f}; size {sizes[-1]} bytes")
PY
