#!/usr/bin/env bash
# Records real client traffic against a real corelog cluster and turns it
# into seed corpora for the fuzz targets.
#
#   fuzz/record/record.sh [RECORDING_DIR]
#
# Starts two brokers (node 1: broker and controller, node 2: broker only)
# from target/release/corelog, each client listener and the controller
# listener behind proxy.py, with advertised.listeners and
# controller.quorum.voters naming the proxies, so clients, the CLI, the
# replica fetchers and the brokers' controller traffic all pass through
# them. Then drives librdkafka (src/bin/drive.rs) and every corelog CLI tool
# through the proxies, stops everything (SIGTERM), and runs
# src/bin/seeds.rs over the frames and the brokers' data directories,
# adding seeds to fuzz/corpus/<target>/ (minimize afterwards with
# `fuzz/run.sh --cmin`). Every wait is bounded; everything it starts is
# stopped on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
rec=${1:-$(mktemp -d /tmp/corelog-record.XXXXXX)}
mkdir -p "$rec"/{data,config,logs}
bin=$repo/target/release/corelog

pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

echo "record: building the broker and the recording tools"
(cd "$repo" && cargo build --release --bin corelog)
(cd "$here" && CARGO_TARGET_DIR="$repo/target" cargo build --release --bins)
tools=$repo/target/release

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

b1=$(free_port); b2=$(free_port); c1=$(free_port)
p1=$(free_port); p2=$(free_port); pc1=$(free_port)

proxy() { # listen target mode
    python3 "$here/proxy.py" --listen "$1" --target "127.0.0.1:$2" --out "$rec" --mode "$3" \
        >"$rec/logs/proxy-$1.log" 2>&1 &
    pids+=($!)
}
proxy "$p1" "$b1" kafka
proxy "$p2" "$b2" kafka
proxy "$pc1" "$c1" controller

cat >"$rec/config/node1.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$pc1
listeners=PLAINTEXT://127.0.0.1:$b1,CONTROLLER://127.0.0.1:$c1
advertised.listeners=PLAINTEXT://127.0.0.1:$p1
controller.listener.names=CONTROLLER
log.dirs=$rec/data/node1
offsets.topic.replication.factor=2
default.replication.factor=2
log.segment.bytes=65536
EOF
cat >"$rec/config/node2.properties" <<EOF
process.roles=broker
node.id=2
controller.quorum.voters=1@127.0.0.1:$pc1
listeners=PLAINTEXT://127.0.0.1:$b2
advertised.listeners=PLAINTEXT://127.0.0.1:$p2
controller.listener.names=CONTROLLER
log.dirs=$rec/data/node2
offsets.topic.replication.factor=2
default.replication.factor=2
log.segment.bytes=65536
EOF
cat >"$rec/config/server.toml" <<EOF
listen = "127.0.0.1:9092"
advertised_host = "localhost"
data_dir = "data"
shards = 2

[kafka]
"num.partitions" = 3
"log.retention.hours" = 168
"auto.create.topics.enable" = true
EOF

cluster_id=$("$bin" storage random-uuid)
for n in 1 2; do
    "$bin" storage format -t "$cluster_id" -c "$rec/config/node$n.properties" >/dev/null
done
for n in 1 2; do
    RUST_LOG=info "$bin" serve --config "$rec/config/node$n.properties" --shards 2 \
        >"$rec/logs/node$n.log" 2>&1 &
    pids+=($!)
done

wait_port() { # port
    for _ in $(seq 300); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "record: nothing listens on $1" >&2
    return 1
}
wait_port "$b1"
wait_port "$b2"
sleep 3 # node 2 registers with the controller

boot=127.0.0.1:$p1
cli() {
    echo "record: corelog $*"
    timeout 60 "$bin" "$@" >>"$rec/logs/cli.log" 2>&1 || echo "record: (failed: corelog $*)"
}

cli broker-api-versions --bootstrap-server "$boot"
cli topics --bootstrap-server "$boot" --create --topic cli-topic --partitions 2 --replication-factor 2 --config retention.ms=600000
cli topics --bootstrap-server "$boot" --list
cli topics --bootstrap-server "$boot" --describe
printf 'a\nb\nc\nk1:with-key\n' | timeout 60 "$bin" console-producer --bootstrap-server "$boot" --topic cli-topic \
    >>"$rec/logs/cli.log" 2>&1 || true
printf 'k2:v2\nk3:v3\n' | timeout 60 "$bin" console-producer --bootstrap-server "$boot" --topic cli-topic \
    --property parse.key=true --property key.separator=: >>"$rec/logs/cli.log" 2>&1 || true

timeout 120 "$tools/drive" "$boot" 2 >"$rec/logs/drive.log" 2>&1 || echo "record: drive failed (see $rec/logs/drive.log)"

cli console-consumer --bootstrap-server "$boot" --topic cli-topic --from-beginning --max-messages 5 --timeout-ms 10000
cli console-consumer --bootstrap-server "$boot" --topic fz-plain --group cli-group --from-beginning --max-messages 50 --timeout-ms 10000
cli consumer-groups --bootstrap-server "$boot" --list
cli consumer-groups --bootstrap-server "$boot" --describe --group cli-group
cli consumer-groups --bootstrap-server "$boot" --describe --group fz-848
cli consumer-groups --bootstrap-server "$boot" --reset-offsets --group cli-group --topic fz-plain --to-earliest --execute
cli consumer-groups --bootstrap-server "$boot" --reset-offsets --group cli-group --topic fz-plain --to-datetime 2020-01-01T00:00:00.000 --execute
cli consumer-groups --bootstrap-server "$boot" --delete --group cli-group
cli configs --bootstrap-server "$boot" --entity-type topics --entity-name cli-topic --describe
cli configs --bootstrap-server "$boot" --entity-type topics --entity-name cli-topic --alter --add-config retention.ms=7200000
cli configs --bootstrap-server "$boot" --entity-type topics --entity-name cli-topic --alter --delete-config retention.ms
cli configs --bootstrap-server "$boot" --entity-type brokers --entity-name 1 --describe
cli delete-records --bootstrap-server "$boot" --topic cli-topic --partition 0 --before-offset 1
cli log-dirs --bootstrap-server "$boot" --describe
cli metadata-quorum --bootstrap-server "$boot" describe --status
cli metadata-quorum --bootstrap-server "$boot" describe --replication
cli topics --bootstrap-server "$boot" --alter --topic cli-topic --partitions 4
cli topics --bootstrap-server "$boot" --delete --topic cli-topic
sleep 2

echo "record: stopping the brokers"
cleanup
pids=()
trap - EXIT

"$tools/seeds" "$rec" "$repo/fuzz/corpus"
echo "record: frames and data in $rec"
