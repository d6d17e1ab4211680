#!/usr/bin/env bash
# What exporting a group's lag from its coordinator costs a /metrics scrape
# in a cluster: a local 3-node dev-cluster, one topic of PARTITIONS (4096)
# partitions at RF 1 (each node leads a third), one group with a committed
# offset on every partition (kafka-consumer-groups --reset-offsets). The
# group's coordinator exports all its lags, asking the two other leaders
# for their high watermarks (one ListOffsets each per scrape); another node
# exports none. /metrics is fetched ROUNDS times from each, alternating, so
# the machine's noise hits both. Prints each one's median and largest
# scrape time, the coordinator's over the other node's, and the lag
# samples each exported.
#
#   bench/group-lag-scrape.sh [rounds]
#   env: CORELOG (binary), PARTITIONS (4096), OUT (results directory)
set -euo pipefail
rounds=${1:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CORELOG:-$root/target/release/corelog}
partitions=${PARTITIONS:-4096}
out=${OUT:-$(mktemp -d /tmp/group-lag-scrape.XXXXXX)}
mkdir -p "$out"
[[ -x $bin ]] || { echo "no corelog binary at $bin (cargo build --release)"; exit 1; }
command -v curl >/dev/null || { echo "needs curl"; exit 1; }

# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

base=29300
bootstrap=127.0.0.1:$base
"$bin" dev-cluster --nodes 3 --dir "$out/cluster" --base-port "$base" --cores none \
    >"$out/cluster.log" 2>&1 &
pid=$!
trap 'stop $pid' EXIT
deadline=$((SECONDS + 120))
until grep -q "nodes running" "$out/cluster.log" 2>/dev/null; do
    ((SECONDS < deadline)) || { echo "cluster not running"; tail -20 "$out/cluster.log"; exit 1; }
    sleep 0.5
done
timeout 600 "$bin" topics --bootstrap-server "$bootstrap" --create --topic lagged \
    --partitions "$partitions" --replication-factor 1 >"$out/create.txt" 2>&1
# Every partition needs its leader before the group can commit to it.
sleep 10
timeout 300 "$bin" consumer-groups --bootstrap-server "$bootstrap" --group scraped \
    --reset-offsets --topic lagged --to-earliest --execute >"$out/reset.txt" 2>&1
echo "created $partitions partitions and committed them; $(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"

lags() { # http port: the group's lag samples in one scrape
    curl -s --max-time 30 "http://127.0.0.1:$1/metrics" | grep -c '^corelog_group_lag{group="scraped"' || true
}
coordinator=""
other=""
for i in 1 2 3; do
    port=$((base + 200 + i))
    n=$(lags "$port")
    echo "node $i: $n lag samples"
    if [[ $n -gt 0 ]]; then coordinator=$port; else other=$port; fi
done
[[ -n $coordinator && -n $other ]] || { echo "no coordinator found"; exit 1; }

# One unmeasured scrape each: connections, caches warm.
curl -s -o /dev/null --max-time 30 "http://127.0.0.1:$coordinator/metrics"
curl -s -o /dev/null --max-time 30 "http://127.0.0.1:$other/metrics"
: >"$out/coordinator.txt"
: >"$out/other.txt"
for _ in $(seq 1 "$rounds"); do
    curl -s -o "$out/scrape-coordinator.txt" --max-time 30 -w '%{time_total}\n' \
        "http://127.0.0.1:$coordinator/metrics" >>"$out/coordinator.txt"
    curl -s -o "$out/scrape-other.txt" --max-time 30 -w '%{time_total}\n' \
        "http://127.0.0.1:$other/metrics" >>"$out/other.txt"
done
echo "done $(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$out" <<'PY'
import statistics, sys
out = sys.argv[1]
med = {}
for name in ("coordinator", "other"):
    times = [float(l) * 1000 for l in open(f"{out}/{name}.txt") if l.strip()]
    lags = sum(1 for l in open(f"{out}/scrape-{name}.txt") if l.startswith('corelog_group_lag{group="scraped"'))
    missing = [l.split()[-1] for l in open(f"{out}/scrape-{name}.txt") if l.startswith("corelog_group_lag_unavailable ")]
    med[name] = statistics.median(times)
    print(f"{name:12} {len(times)} scrapes, median {med[name]:.1f} ms, max {max(times):.1f} ms; "
          f"{lags} lag samples, corelog_group_lag_unavailable {missing}")
print(f"coordinator / other node median = {med['coordinator'] / med['other']:.2f}; "
      f"coordinator median / 100 ms target = {med['coordinator'] / 100:.2f}")
PY
