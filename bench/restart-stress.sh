#!/usr/bin/env bash
# Restart stress: start a multi-shard broker again and again under client
# load and CPU contention, crash or stop it at random moments (during
# recovery, during the mesh join, while serving), and check that every start
# listens within its bound and every stop ends within its bound.
#
#   bench/restart-stress.sh [RESTARTS] [OUT_DIR]
#
# Environment (all optional):
#   SHARDS=2             shards of the broker
#   HOGS=2               busy-loop processes competing for the CPUs
#   RATE=2000            produced messages/s of the client load (0: no load)
#   PARTITIONS=32        partitions of the load topic (more: longer recovery)
#   START_BOUND_S=30     a start that does not listen within this is a hang
#   STOP_BOUND_S=35      a SIGTERM that does not end the process within this is a hang
#   CORELOG=path         the broker binary (default: target/release/corelog)
#   LOADGEN=path         the load generator (default: built with cargo)
#
# A hang is recorded with every thread's kernel stack, wchan and a gdb
# backtrace of every thread in OUT_DIR/hang-N/, then the broker is killed and
# the run goes on. The summary (starts, slowest start, hangs) is printed at the
# end and written to OUT_DIR/summary.txt; exit status 1 when anything hung.
set -euo pipefail

cd "$(dirname "$0")/.."

RESTARTS=${1:-500}
OUT=${2:-$(mktemp -d /tmp/restart-stress.XXXXXX)}
SHARDS=${SHARDS:-2}
HOGS=${HOGS:-2}
RATE=${RATE:-2000}
PARTITIONS=${PARTITIONS:-32}
START_BOUND_S=${START_BOUND_S:-30}
STOP_BOUND_S=${STOP_BOUND_S:-35}
CORELOG=${CORELOG:-target/release/corelog}
mkdir -p "$OUT"

if [[ -z ${LOADGEN:-} && $RATE -gt 0 ]]; then
    cargo build --release --bench loadgen >&2
    LOADGEN=$(ls -t target/release/deps/loadgen-* | grep -v '\.d$' | head -n1)
fi
[[ -x $CORELOG ]] || { echo "restart-stress: no broker binary at $CORELOG (cargo build --release)" >&2; exit 2; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
data="$OUT/data"
log="$OUT/broker.log"
mkdir -p "$data"

pids_to_kill=()
groups_to_kill=()
broker_pid=""
cleanup() {
    for pid in "${pids_to_kill[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    for pgid in "${groups_to_kill[@]}"; do kill -9 -- "-$pgid" 2>/dev/null || true; done
    if [[ -n $broker_pid ]]; then kill -9 "$broker_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

now_ms() { date +%s%3N; }

# Starts the broker in the background; sets broker_pid.
start_broker() {
    echo "=== start $1 at $(date +%T.%3N)" >>"$log"
    RUST_LOG=${RUST_LOG:-corelog=debug} "$CORELOG" serve --listen "127.0.0.1:$port" \
        --data-dir "$data" --shards "$SHARDS" >>"$log" 2>&1 &
    broker_pid=$!
}

# Waits until the broker of this start printed its "serving" line; prints the
# milliseconds it took, or "hang" / "exit:...". (It runs in a command
# substitution, a subshell, so the caller reaps the broker.)
wait_listening() { # <start ms> <log offset>
    local start=$1 offset=$2
    while true; do
        if tail -c +"$offset" "$log" | grep -q "corelog: serving Kafka"; then
            echo $(($(now_ms) - start))
            return
        fi
        if ! kill -0 "$broker_pid" 2>/dev/null; then
            echo "exit:see-log"
            return
        fi
        if (($(now_ms) - start > START_BOUND_S * 1000)); then
            echo hang
            return
        fi
        sleep 0.02
    done
}

# Records where every thread of the broker is, then kills it.
record_hang() { # <label>
    local dir="$OUT/hang-$1"
    mkdir -p "$dir"
    for task in /proc/"$broker_pid"/task/*; do
        local tid=${task##*/}
        {
            echo "tid $tid comm $(cat "$task/comm" 2>/dev/null) wchan $(cat "$task/wchan" 2>/dev/null)"
            cat "$task/stack" 2>/dev/null || true
            echo
        } >>"$dir/stacks.txt"
    done
    if command -v gdb >/dev/null; then
        timeout 60 gdb -p "$broker_pid" -batch -ex "thread apply all bt" >"$dir/gdb.txt" 2>&1 || true
    fi
    cp "$log" "$dir/broker.log"
    kill -9 "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
}

# A process killed with SIGKILL keeps its io_uring listening socket for a
# moment after it is reaped (the ring is torn down asynchronously), and the
# broker refuses a port something still answers on: wait (bounded) until
# the port refuses connections.
wait_port_closed() {
    local start
    start=$(now_ms)
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        if (($(now_ms) - start > 10000)); then
            echo "restart-stress: port $port still accepts 10 s after the broker died" >&2
            return
        fi
        sleep 0.02
    done
}

hogs() {
    for _ in $(seq 1 "$HOGS"); do
        (while :; do :; done) &
        pids_to_kill+=($!)
    done
}

# First start: create the load topic.
offset=$(($(stat -c %s "$log" 2>/dev/null || echo 0) + 1))
t0=$(now_ms)
start_broker 0
r=$(wait_listening "$t0" "$offset")
if [[ $r == hang || $r == exit:* ]]; then
    echo "restart-stress: the first start failed ($r); see $log" >&2
    exit 2
fi
"$CORELOG" topics --bootstrap-server "127.0.0.1:$port" --create --topic stress \
    --partitions "$PARTITIONS" --if-not-exists >/dev/null
if ((RATE > 0)); then
    # The load generator runs at most an hour per run: start it again until
    # the stress ends. It keeps producing (acks=all) and consuming across the
    # broker's restarts; short reconnect backoffs, so it is back within a
    # fraction of a second of each start instead of backing off for seconds.
    # Its own process group, so the cleanup ends the loop and its child.
    fast="reconnect.backoff.ms=20 reconnect.backoff.max.ms=200 retry.backoff.ms=20"
    setsid bash -c '
        while :; do
            "$0" --bootstrap "127.0.0.1:$1" --topic stress --partitions "$2" --rate "$3" \
                --message-bytes 512 --acks all --linger-ms 5 --consumers 1 --duration-s 3600 \
                --warmup-s 0 --producer-config message.timeout.ms=15000 \
                $(for kv in $4; do echo --producer-config "$kv" --consumer-config "$kv"; done) \
                || sleep 1
        done' "$LOADGEN" "$port" "$PARTITIONS" "$RATE" "$fast" >>"$OUT/loadgen.log" 2>&1 &
    groups_to_kill+=($!)
fi
hogs

starts=0 hangs=0 stop_hangs=0 failed=0 slowest=0 total=0 slowest_stop=0
for i in $(seq 1 "$RESTARTS"); do
    # How this run ends: a crash (kill -9) or a clean stop (SIGTERM), early
    # (during start-up: recovery, mesh join) or after serving a while.
    mode=$((RANDOM % 4))
    case $mode in
        0) signal=KILL; delay_ms=$((RANDOM % 300)) ;;          # crash during start-up
        1) signal=KILL; delay_ms=$((500 + RANDOM % 1500)) ;;   # crash under load
        2) signal=TERM; delay_ms=$((RANDOM % 300)) ;;          # stop during start-up
        3) signal=TERM; delay_ms=$((500 + RANDOM % 1500)) ;;   # stop under load
    esac
    sleep "$(printf '0.%03d' $((delay_ms % 1000)))"
    sleep $((delay_ms / 1000))
    t=$(now_ms)
    kill -"$signal" "$broker_pid" 2>/dev/null || true
    while kill -0 "$broker_pid" 2>/dev/null; do
        if (($(now_ms) - t > STOP_BOUND_S * 1000)); then
            echo "restart $i: SIGTERM did not stop the broker within ${STOP_BOUND_S}s" | tee -a "$OUT/summary.txt"
            stop_hangs=$((stop_hangs + 1))
            record_hang "stop-$i"
            break
        fi
        sleep 0.01
    done
    wait "$broker_pid" 2>/dev/null && status=0 || status=$?
    stop_ms=$(($(now_ms) - t))
    if [[ $signal == TERM ]]; then
        ((stop_ms > slowest_stop)) && slowest_stop=$stop_ms
        # A clean stop exits 0; anything else is worth a look.
        ((status != 0)) && echo "restart $i: SIGTERM exit status $status after ${stop_ms} ms" >>"$OUT/summary.txt"
    fi

    wait_port_closed
    offset=$(($(stat -c %s "$log") + 1))
    t0=$(now_ms)
    start_broker "$i"
    r=$(wait_listening "$t0" "$offset")
    case $r in
        hang)
            hangs=$((hangs + 1))
            echo "restart $i: no listener within ${START_BOUND_S}s" | tee -a "$OUT/summary.txt"
            record_hang "start-$i"
            t0=$(now_ms)
            offset=$(($(stat -c %s "$log") + 1))
            start_broker "$i-again"
            r=$(wait_listening "$t0" "$offset")
            [[ $r == hang || $r == exit:* ]] && { echo "restart $i: cannot recover ($r)" >&2; exit 2; }
            ;;
        exit:*)
            failed=$((failed + 1))
            echo "restart $i: broker exited during start ($r)" | tee -a "$OUT/summary.txt"
            tail -n 20 "$log" >&2
            exit 2
            ;;
        *)
            starts=$((starts + 1))
            total=$((total + r))
            ((r > slowest)) && slowest=$r
            echo "$i $r $signal $delay_ms" >>"$OUT/starts.txt"
            ;;
    esac
    if ((i % 25 == 0)); then
        echo "restart-stress: $i/$RESTARTS restarts, slowest start ${slowest} ms, hangs $hangs, stop hangs $stop_hangs"
    fi
done

kill -TERM "$broker_pid" 2>/dev/null || true
wait "$broker_pid" 2>/dev/null || true
broker_pid=""
{
    echo "restarts: $RESTARTS, shards: $SHARDS, hogs: $HOGS, load: $RATE msg/s, partitions: $PARTITIONS"
    echo "starts that listened: $starts, mean $((starts ? total / starts : 0)) ms, slowest $slowest ms"
    echo "slowest SIGTERM stop: $slowest_stop ms"
    echo "start hangs (> ${START_BOUND_S}s): $hangs; stop hangs (> ${STOP_BOUND_S}s): $stop_hangs"
} | tee -a "$OUT/summary.txt"
((hangs == 0 && stop_hangs == 0))
