#!/usr/bin/env bash
# TLS against plaintext produce throughput: one broker with a PLAINTEXT and
# an SSL listener (certificates made with openssl for the run), the same
# load against each listener in turn, alternating which goes first each
# round, in one run; prints each round's SSL/PLAINTEXT ratio and the median
# (target >= 0.70).
#
#   bench/tls-vs-plaintext.sh [rounds] [seconds]
#   env: CORELOG (binary), LOADGEN (bench binary), MESSAGE_BYTES (1000),
#        ACKS (1), LINGER_MS (5), PRODUCERS (2), SHARDS (2), OUT (results dir)
set -euo pipefail
rounds=${1:-3}
secs=${2:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CORELOG:-$root/target/release/corelog}
loadgen=${LOADGEN:-$(ls -t "$root"/target/release/deps/loadgen-* 2>/dev/null | grep -v '\.d$' | head -1)}
bytes=${MESSAGE_BYTES:-1000}
acks=${ACKS:-1}
linger=${LINGER_MS:-5}
producers=${PRODUCERS:-2}
shards=${SHARDS:-2}
out=${OUT:-$(mktemp -d /tmp/tls-bench.XXXXXX)}
mkdir -p "$out"
[[ -x $bin ]] || { echo "no corelog binary at $bin (cargo build --release)"; exit 1; }
[[ -x ${loadgen:-} ]] || { echo "no loadgen (cargo build --release --bench loadgen)"; exit 1; }
command -v openssl >/dev/null || { echo "openssl is needed to make the certificates"; exit 1; }

# shellcheck source=bench/lib.sh
source "$root/bench/lib.sh"

# A CA and a server certificate for 127.0.0.1 (PEM, unencrypted PKCS#8 key).
certs=$out/certs
mkdir -p "$certs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=bench CA" -keyout "$certs/ca.key" -out "$certs/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=127.0.0.1" -keyout "$certs/server.key" -out "$certs/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$certs/ext.cnf"
openssl x509 -req -in "$certs/server.csr" -CA "$certs/ca.crt" -CAkey "$certs/ca.key" \
    -CAcreateserial -days 2 -extfile "$certs/ext.cnf" -out "$certs/server.crt" 2>/dev/null
cat "$certs/server.key" "$certs/server.crt" >"$certs/server.pem"

plain=29301
ssl=29302
data=$(mktemp -d /tmp/tls-bench-data.XXXXXX)
cat >"$out/server.properties" <<PROPS
listeners=PLAINTEXT://127.0.0.1:$plain,SSL://127.0.0.1:$ssl
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL
log.dirs=$data
http.listeners=
ssl.keystore.type=PEM
ssl.keystore.location=$certs/server.pem
PROPS
"$bin" serve --config "$out/server.properties" --shards "$shards" >"$out/broker.log" 2>&1 &
pid=$!
trap 'stop $pid; rm -rf "$data"' EXIT
wait_port "$plain" 30
wait_port "$ssl" 30

run() { # round, listener (plaintext|ssl)
    local topic="bench-$1-$2" port=$plain extra=()
    "$bin" topics --bootstrap-server "127.0.0.1:$plain" --create --topic "$topic" \
        --partitions "$shards" >/dev/null
    if [[ $2 == ssl ]]; then
        port=$ssl
        # The consumer side reads the topic's offsets before and after.
        extra=(--producer-config security.protocol=SSL
            --producer-config "ssl.ca.location=$certs/ca.crt"
            --consumer-config security.protocol=SSL
            --consumer-config "ssl.ca.location=$certs/ca.crt")
    fi
    timeout $((secs + 120)) "$loadgen" --bootstrap "127.0.0.1:$port" --topic "$topic" \
        --partitions "$shards" --producers "$producers" --message-bytes "$bytes" \
        --acks "$acks" --linger-ms "$linger" --consumers 0 --duration-s "$secs" \
        --warmup-s 2 --broker-pid "$pid" "${extra[@]}" \
        --json "$out/run-$1-$2.json" >"$out/run-$1-$2.txt" 2>&1 ||
        echo "run $1 ($2) failed: $(tail -3 "$out/run-$1-$2.txt")"
}

echo "start $(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
    if ((round % 2)); then order="plaintext ssl"; else order="ssl plaintext"; fi
    for listener in $order; do run "$round" "$listener"; done
done
echo "end $(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def rate(r, listener):
    try:
        return json.load(open(f"{out}/run-{r}-{listener}.json"))["produce"]["mb_per_s"]
    except (OSError, ValueError, KeyError):
        return None
ratios = []
for r in range(1, rounds + 1):
    p, s = rate(r, "plaintext"), rate(r, "ssl")
    if p and s:
        ratios.append(s / p)
        print(f"round {r}: PLAINTEXT {p:.1f} MB/s, SSL {s:.1f} MB/s, SSL/PLAINTEXT {s / p:.3f}")
    else:
        print(f"round {r}: a run failed")
if ratios:
    print(f"{len(ratios)} rounds: SSL/PLAINTEXT median {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}; target >= 0.70)")
PY
echo "results in $out"
