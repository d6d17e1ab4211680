#!/usr/bin/env bash
# The long fuzzing campaign: every target (or those named) in turn, each
# until it has run RUNS executions or SECONDS seconds, whichever comes
# first, in the background.
#
#   fuzz/campaign.sh [--runs N] [--seconds S] [--jobs J] [--foreground] [TARGET...]
#       defaults: --runs 10000000 --seconds 3600 --jobs 1
#   fuzz/campaign.sh --status [DIR]     the progress of the latest (or DIR) campaign
#
# It detaches at once (nohup) and prints where it writes:
#   fuzz/logs/<UTC stamp>/<target>.log   libFuzzer's output
#   fuzz/logs/<UTC stamp>/summary.tsv    per target: executions, edges
#                                        covered (cov), features (ft), corpus
#                                        size, crashes/ooms/timeouts, seconds
#   fuzz/logs/<UTC stamp>/corpus/<target>/  the grown corpus (the committed
#                                        one is read, never written)
#   fuzz/artifacts/<target>/             every finding's input
# libFuzzer runs in fork mode with -ignore_crashes/-ignore_ooms/
# -ignore_timeouts, so a target keeps going past a finding and collects the
# others; each job is niced and, where possible, without network. --jobs
# above 1 runs that many fuzzing processes per target (the machine's cores
# are shared: keep 1 unless the lead says otherwise).
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
        --status)
            dir=${2:-$(ls -d "$here"/logs/*/ 2>/dev/null | sort | tail -1)}
            [ -n "$dir" ] || { echo "campaign.sh: no campaign yet"; exit 1; }
            echo "campaign in $dir"
            cat "$dir/state" 2>/dev/null
            column -t -s $'\t' "$dir/summary.tsv" 2>/dev/null
            exit 0
            ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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
    nohup "$0" --foreground --runs "$runs" --seconds "$seconds" --jobs "$jobs" "${selected[@]}" \
        >"$dir/campaign.log" 2>&1 &
    echo "$!" >"$dir/pid"
    echo "campaign.sh: started (pid $!), writing $dir"
    echo "campaign.sh: progress: fuzz/campaign.sh --status; stop: kill $(cat "$dir/pid")"
    exit 0
fi

dir=$(ls -d "$here"/logs/*/ | sort | tail -1)
dir=${dir%/}
echo "building" >"$dir/state"
(cd "$here" && nice -n 10 cargo +nightly fuzz build) || { echo "build failed" >"$dir/state"; exit 2; }
# Targets that decode files write them here: tmpfs when there is one.
scratch_root=/dev/shm
[ -d "$scratch_root" ] && [ -w "$scratch_root" ] || scratch_root=${TMPDIR:-/tmp}
scratch=$(mktemp -d "$scratch_root/corelog-fuzz-campaign.XXXXXX")
export CORELOG_FUZZ_SCRATCH=$scratch
printf 'target\texecutions\tcov\tft\tcorpus\tcrashes\tooms\ttimeouts\tseconds\n' >"$dir/summary.tsv"

for name in "${selected[@]}"; do
    read -r max_len malloc_mb < <(limits_of "$name")
    corpus=$dir/corpus/$name
    mkdir -p "$corpus" "$here/artifacts/$name"
    echo "fuzzing $name since $(date -u +%H:%M:%SZ) (runs $runs, seconds $seconds)" >"$dir/state"
    start=$(date +%s)
    isolated "$here/target/x86_64-unknown-linux-gnu/release/$name" \
        -fork="$jobs" -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
        -runs="$runs" -max_total_time="$seconds" -print_final_stats=1 \
        -max_len="$max_len" -malloc_limit_mb="$malloc_mb" -rss_limit_mb="$RSS_LIMIT_MB" \
        -timeout="$TIMEOUT_S" -artifact_prefix="$here/artifacts/$name/" \
        "$corpus" "$here/corpus/$name" >"$dir/$name.log" 2>&1
    elapsed=$(( $(date +%s) - start ))
    # Fork mode's status lines: "#RUNS: cov: C ft: F corp: N exec/s: E
    # oom/timeout/crash: O/T/X time: S job: J".
    last=$(grep -E '^#[0-9]+: cov:' "$dir/$name.log" | tail -1)
    execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$last")
    cov=$(sed -E 's/.* cov: ([0-9]+).*/\1/' <<<"$last")
    ft=$(sed -E 's/.* ft: ([0-9]+).*/\1/' <<<"$last")
    corp=$(sed -E 's/.* corp: ([0-9]+).*/\1/' <<<"$last")
    read -r ooms timeouts crashes < <(sed -E 's|.*oom/timeout/crash: ([0-9]+)/([0-9]+)/([0-9]+).*|\1 \2 \3|' <<<"$last")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "${execs:-?}" "${cov:-?}" "${ft:-?}" \
        "${corp:-?}" "${crashes:-?}" "${ooms:-?}" "${timeouts:-?}" "$elapsed" >>"$dir/summary.tsv"
done
echo "done at $(date -u +%H:%M:%SZ); findings under fuzz/artifacts/" >"$dir/state"
rm -rf "$scratch"
