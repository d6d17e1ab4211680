#!/usr/bin/env bash
# The scaling workload in one command: builds the load generator and the sweep
# (cargo builds corelog with them), then runs the sweep (bench/scaling/main.rs) with the flags given.
# Defaults finish in 5-10 minutes on 2 cores; on a big machine:
#
#   bench/scaling.sh --full                         # shards 1..16, partitions 8..4096, 1 GiB, 8 generators, 3 rounds
#   bench/scaling.sh --full --shards-max 8          # cap the shard sweep
#   bench/scaling.sh --partitions 512 --record-bytes 1024 --latency-s 0 --mock-s 0
#
# Tansu must be installed first (bench/install-peers.sh) or it is left out.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo bench --no-run --bench loadgen --bench scaling
exec cargo bench --bench scaling -- "$@"
