#!/usr/bin/env bash
# Compares two corelog binaries (for example the commit before a refactor and
# the current one) in the same run, alternating: A, B, A, B, ... so that a
# change in the machine's load falls on both. Each round runs `compare` with
# only corelog, from the given binary, over the same workloads.
#
#   bench/compare-commits.sh OLD_BIN NEW_BIN [ROUNDS] [OUT]
#       env WORKLOADS (default 1k-max,100b-max,latency-5k), DURATION_S (10),
#       WARMUP_S (3), BROKER_CPUS (1), LOADGEN_CPUS (0)
#
# Writes OUT/round-N-{old,new}/ (compare's results) and OUT/summary.md: per
# workload and figure, the median of each side and new/old.
set -euo pipefail
cd "$(dirname "$0")/.."

old_bin=${1:?usage: bench/compare-commits.sh OLD_BIN NEW_BIN [ROUNDS] [OUT]}
new_bin=${2:?usage: bench/compare-commits.sh OLD_BIN NEW_BIN [ROUNDS] [OUT]}
rounds=${3:-3}
out=${4:-bench/results/$(date -u +%F)-commits}
workloads=${WORKLOADS:-1k-max,100b-max,latency-5k}
duration=${DURATION_S:-10}
warmup=${WARMUP_S:-3}

for bin in "$old_bin" "$new_bin"; do
    [ -x "$bin" ] || { echo "compare-commits: $bin is not an executable" >&2; exit 2; }
done
mkdir -p "$out"
cargo bench --bench compare --no-run --quiet
for round in $(seq 1 "$rounds"); do
    for side in old new; do
        bin=$old_bin
        [ "$side" = new ] && bin=$new_bin
        echo "compare-commits: round $round, $side ($bin)"
        # Each run is bounded: a stuck broker must not hold the machine.
        timeout 900 cargo bench --bench compare --quiet -- \
            --out "$out/round-$round-$side" --brokers corelog --corelog-bin "$bin" \
            --workloads "$workloads" --duration-s "$duration" --warmup-s "$warmup" \
            --broker-cpus "${BROKER_CPUS:-1}" --loadgen-cpus "${LOADGEN_CPUS:-0}" \
            > "$out/round-$round-$side.log" 2>&1
    done
done

python3 - "$out" "$rounds" <<'EOF'
import json, statistics, sys, pathlib
out, rounds = pathlib.Path(sys.argv[1]), int(sys.argv[2])

def figures(d):
    p, c, cpu = d["produce"], d.get("consume") or {}, d["cpu"]
    f = {"produce MB/s": p["mb_per_s"], "broker cores": cpu["broker_cores"]}
    if cpu["broker_cores"]:
        f["MB/s per broker core"] = p["mb_per_s"] / cpu["broker_cores"]
    for name, h in (("ack", p.get("ack_latency_us")), ("e2e", c.get("e2e_latency_us"))):
        if isinstance(h, dict):
            for q in ("p50", "p99", "p999"):
                if q in h:
                    f[f"{name} {q} us"] = h[q]
    return f

rows = {}
for r in range(1, rounds + 1):
    for side in ("old", "new"):
        for path in sorted((out / f"round-{r}-{side}").glob("corelog-*.json")):
            workload = path.stem[len("corelog-"):]
            for k, v in figures(json.loads(path.read_text())).items():
                rows.setdefault((workload, k), {"old": [], "new": []})[side].append(v)

lines = ["| workload | figure | old (median) | new (median) | new/old | rounds |", "|---|---|---|---|---|---|"]
for (workload, k), v in sorted(rows.items()):
    if not v["old"] or not v["new"]:
        continue
    o, n = statistics.median(v["old"]), statistics.median(v["new"])
    ratio = f"{n / o:.3f}" if o else "-"
    lines.append(f"| {workload} | {k} | {o:.1f} | {n:.1f} | {ratio} | {len(v['old'])}/{len(v['new'])} |")
(out / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
