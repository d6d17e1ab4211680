#!/usr/bin/env bash
# The table of a fuzzing campaign (campaign.sh), at any time: one row per
# target with its executions, executions per second (over its wall time),
# edges covered (cov), features (ft), corpus size, findings, wall time, and
# which criterion ended it: "runs" (it reached the campaign's execution
# count), "time" (its time budget), "running", "stopped" (the campaign was
# stopped during it), "pending" (not started). Figures come from the
# target's libFuzzer log, whose fork mode prints a status line each time a
# job ends, so a running target's row is at most one job (<= 300 s) old.
# Findings: crash/oom/timeout as libFuzzer counted them, and the inputs in
# the campaign's artifacts directory.
#
#   fuzz/summary.sh [DIR]            the latest campaign, or DIR
#   fuzz/summary.sh --row DIR TARGET one tab-separated row (campaign.sh)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)

# row DIR TARGET: target, execs, exec/s, cov, ft, corpus, crashes, ooms,
# timeouts, artifacts, seconds, met.
row() {
    local dir=$1 name=$2 log=$1/$2.log times=$1/$2.times
    local start end now elapsed last execs cov ft corp ooms timeouts crashes files met rate
    if [ ! -f "$times" ]; then
        printf '%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\tpending\n' "$name"
        return
    fi
    start=$(sed -n 1p "$times")
    end=$(sed -n 2p "$times")
    now=$(date +%s)
    elapsed=$(( ${end:-$now} - start ))
    last=$(grep -aE '^#[0-9]+: cov:' "$log" 2>/dev/null | tail -1)
    if [ -n "$last" ]; then
        execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$last")
        cov=$(sed -E 's/.* cov: ([0-9]+).*/\1/' <<<"$last")
        ft=$(sed -E 's/.* ft: ([0-9]+).*/\1/' <<<"$last")
        corp=$(sed -E 's/.* corp: ([0-9]+).*/\1/' <<<"$last")
        read -r ooms timeouts crashes < <(sed -E 's|.*oom/timeout/crash: ([0-9]+)/([0-9]+)/([0-9]+).*|\1 \2 \3|' <<<"$last")
        rate=$(( execs / (elapsed > 0 ? elapsed : 1) ))
    else
        execs=0 cov=- ft=- corp=- ooms=0 timeouts=0 crashes=0 rate=0
    fi
    files=$(find "$dir/artifacts/$name" -maxdepth 1 -type f 2>/dev/null | wc -l)
    if grep -aqE '^INFO: fuzzed for [0-9]+ iterations' "$log" 2>/dev/null; then
        met=runs
    elif grep -aqE '^INFO: fuzzed for [0-9]+ seconds' "$log" 2>/dev/null; then
        met=time
    elif [ -n "$end" ]; then
        met=stopped
    elif grep -q "^fuzzing $name " "$dir/state" 2>/dev/null \
        && kill -0 "$(cat "$dir/pid" 2>/dev/null)" 2>/dev/null; then
        met=running
    else
        met=stopped
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$execs" "$rate" "$cov" "$ft" \
        "$corp" "$crashes" "$ooms" "$timeouts" "$files" "$elapsed" "$met"
}

if [ "${1:-}" = --row ]; then
    row "${2%/}" "$3"
    exit 0
fi
dir=${1:-$(ls -d "$here"/logs/*/ 2>/dev/null | sort | tail -1)}
[ -n "$dir" ] && [ -d "$dir" ] || { echo "summary.sh: no campaign under fuzz/logs/" >&2; exit 1; }
dir=${dir%/}
echo "campaign $dir"
[ -f "$dir/plan" ] && echo "plan: $(cat "$dir/plan")"
echo "state: $(cat "$dir/state" 2>/dev/null || echo unknown)"
targets=$(sed -nE 's/.*targets=(.*)/\1/p' "$dir/plan" 2>/dev/null)
if [ -z "$targets" ]; then
    targets=$(ls "$dir"/*.log 2>/dev/null | xargs -rn1 basename | sed 's/\.log$//' | grep -v '^campaign$')
fi
{
    printf 'target\texecs\texec/s\tcov\tft\tcorpus\tcrash\toom\ttimeout\tinputs\twall_s\tmet\n'
    for name in $targets; do row "$dir" "$name"; done
} | column -t -s $'\t'
