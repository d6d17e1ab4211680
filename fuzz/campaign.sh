#!/usr/bin/env bash
# The long fuzzing campaign: every target (or those named) in turn, each
# until it has run RUNS executions or SECONDS seconds, whichever comes
# first, in the background, niced, one fuzzing process at a time.
#
#   fuzz/campaign.sh [--runs N] [--seconds S] [--jobs J] [--foreground] [TARGET...]
#       defaults: --runs 10000000 --seconds 3600 --jobs 1; the targets in
#       targets.sh's order (the fast ones first, so they can reach N)
#   fuzz/campaign.sh --status [DIR]     the table of summary.sh
#
# It detaches at once (nohup) and prints where it writes:
#   fuzz/logs/<UTC stamp>/<target>.log   libFuzzer's output: a status line
#                                        (executions, cov, ft, corpus,
#                                        ooms/timeouts/crashes) each time a
#                                        fork job ends (jobs last 1 s, then
#                                        longer, at most 300 s)
#   fuzz/logs/<UTC stamp>/<target>.times its start and end (epoch seconds)
#   fuzz/logs/<UTC stamp>/artifacts/<target>/  every finding's input
#   fuzz/logs/<UTC stamp>/corpus/<target>/     the grown corpus (the
#                                        committed one is read, never written)
#   fuzz/logs/<UTC stamp>/summary.tsv    one row per finished target
#   fuzz/logs/<UTC stamp>/state, pid, campaign.log
# `fuzz/summary.sh [DIR]` prints the table at any time, finished targets and
# the running one alike; `fuzz/triage.sh TARGET fuzz/logs/<stamp>/artifacts/
# <target>` groups a target's findings by cause. libFuzzer runs in fork mode
# with -ignore_crashes/-ignore_ooms/-ignore_timeouts, so a target keeps
# going past a finding and collects the others; without network where the
# kernel allows. --jobs above 1 runs that many fuzzing processes per target
# (the machine's cores are shared: keep 1 unless told otherwise). Stop it
# with `kill $(cat fuzz/logs/<stamp>/pid)`: the running target's libFuzzer
# stops with it.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=targets.sh
source "$here/targets.sh"

runs=10000000
seconds=3600
jobs=1
foreground=0
selected=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        --foreground) foreground=1; shift ;;
        --status) shift; exec "$here/summary.sh" "$@" ;;
        -h|--help) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) selected+=("$1"); shift ;;
    esac
done
if [ ${#selected[@]} -eq 0 ]; then
    for t in "${TARGETS[@]}"; do selected+=("${t%% *}"); done
fi
for name in "${selected[@]}"; do
    limits_of "$name" >/dev/null || { echo "campaign.sh: unknown target $name" >&2; exit 2; }
done

if [ $foreground -eq 0 ]; then
    stamp=$(date -u +%Y%m%dT%H%M%SZ)
    dir=$here/logs/$stamp
    mkdir -p "$dir"
    printf '%s\n' "runs=$runs seconds=$seconds jobs=$jobs targets=${selected[*]}" >"$dir/plan"
    CAMPAIGN_DIR=$dir nohup "$0" --foreground --runs "$runs" --seconds "$seconds" --jobs "$jobs" \
        "${selected[@]}" >"$dir/campaign.log" 2>&1 &
    echo "$!" >"$dir/pid"
    echo "campaign.sh: started (pid $!), writing $dir"
    echo "campaign.sh: progress: fuzz/summary.sh; stop: kill $!"
    exit 0
fi

dir=${CAMPAIGN_DIR:-$(ls -d "$here"/logs/*/ | sort | tail -1)}
dir=${dir%/}
current=""
# A stop (kill, or the session ending) ends the running libFuzzer and its
# fork job (the process group setsid gave it) and leaves the state saying so.
stop() {
    [ -n "$current" ] && kill -TERM -- "-$current" 2>/dev/null
    echo "stopped at $(date -u +%H:%M:%SZ)" >"$dir/state"
    exit 143
}
trap stop TERM INT HUP

echo "building" >"$dir/state"
(cd "$here" && nice -n 10 cargo +nightly fuzz build) || { echo "build failed" >"$dir/state"; exit 2; }
# Targets that decode files write them here: tmpfs when there is one.
scratch_root=/dev/shm
[ -d "$scratch_root" ] && [ -w "$scratch_root" ] || scratch_root=${TMPDIR:-/tmp}
scratch=$(mktemp -d "$scratch_root/corelog-fuzz-campaign.XXXXXX")
export CORELOG_FUZZ_SCRATCH=$scratch
printf 'target\texecs\texec_per_s\tcov\tft\tcorpus\tcrash\toom\ttimeout\tinputs\twall_s\tmet\n' >"$dir/summary.tsv"

for name in "${selected[@]}"; do
    read -r max_len malloc_mb < <(limits_of "$name")
    corpus=$dir/corpus/$name
    artifacts=$dir/artifacts/$name
    mkdir -p "$corpus" "$artifacts"
    echo "fuzzing $name since $(date -u +%H:%M:%SZ) (runs $runs, seconds $seconds)" >"$dir/state"
    start=$(date +%s)
    echo "$start" >"$dir/$name.times"
    isolation_prefix
    # setsid: libFuzzer and its fork jobs in a process group of their own
    # (its id is $!, as setsid, nice and unshare each exec the next).
    setsid "${ISOLATE[@]}" "$here/target/x86_64-unknown-linux-gnu/release/$name" \
        -fork="$jobs" -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
        -runs="$runs" -max_total_time="$seconds" -print_final_stats=1 \
        -max_len="$max_len" -malloc_limit_mb="$malloc_mb" -rss_limit_mb="$RSS_LIMIT_MB" \
        -timeout="$TIMEOUT_S" -artifact_prefix="$artifacts/" \
        "$corpus" "$here/corpus/$name" >"$dir/$name.log" 2>&1 &
    current=$!
    wait "$current"
    current=""
    end=$(date +%s)
    echo "$end" >>"$dir/$name.times"
    "$here/summary.sh" --row "$dir" "$name" >>"$dir/summary.tsv"
done
echo "done at $(date -u +%H:%M:%SZ)" >"$dir/state"
rm -rf "$scratch"
