#!/usr/bin/env bash
# Runs corelog's fuzz targets briefly, one after the other.
#
#   fuzz/run.sh SECONDS [TARGET...]   each target (default: all) for SECONDS
#   fuzz/run.sh --cmin [TARGET...]    minimize the committed corpora in place
#   fuzz/run.sh --list                the targets
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz
# --locked`). Builds the targets, then runs each over its committed corpus
# fuzz/corpus/<target>/ (read only: new inputs go to a scratch directory),
# with the limits of targets.sh. A crash, an allocation over the target's
# malloc limit, a process over 2 GB or an input slower than 10 s is a
# finding: it is saved as fuzz/artifacts/<target>/<kind>-<sha1>, and the
# script exits 1 after running the remaining targets. Reproduce a finding
# with `cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/FILE` (see
# README.md). The long campaign is campaign.sh.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=targets.sh
source "$here/targets.sh"

usage() {
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

[ $# -ge 1 ] || usage
mode=run
case "$1" in
    --list)
        for t in "${TARGETS[@]}"; do echo "${t%% *}"; done
        exit 0
        ;;
    --cmin) mode=cmin; shift ;;
    -h|--help) usage ;;
    *)
        seconds=$1
        shift
        [[ "$seconds" =~ ^[0-9]+$ ]] || usage
        ;;
esac

selected=("$@")
if [ ${#selected[@]} -eq 0 ]; then
    for t in "${TARGETS[@]}"; do selected+=("${t%% *}"); done
fi
for name in "${selected[@]}"; do
    limits_of "$name" >/dev/null || { echo "run.sh: unknown target $name" >&2; exit 2; }
done

echo "run.sh: building the targets"
(cd "$here" && nice -n 10 cargo +nightly fuzz build >"${TMPDIR:-/tmp}/corelog-fuzz-build.log" 2>&1) || {
    tail -20 "${TMPDIR:-/tmp}/corelog-fuzz-build.log" >&2
    echo "run.sh: build failed; see (cd fuzz && cargo +nightly fuzz build)" >&2
    exit 2
}
bin_dir=$here/target/x86_64-unknown-linux-gnu/release

# Targets that decode files write them here: tmpfs when there is one.
scratch_root=/dev/shm
[ -d "$scratch_root" ] && [ -w "$scratch_root" ] || scratch_root=${TMPDIR:-/tmp}
scratch=$(mktemp -d "$scratch_root/corelog-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export CORELOG_FUZZ_SCRATCH=$scratch

failed=()
for name in "${selected[@]}"; do
    read -r max_len malloc_mb < <(limits_of "$name")
    bin=$bin_dir/$name
    [ -x "$bin" ] || { echo "run.sh: $name did not build" >&2; failed+=("$name"); continue; }
    corpus=$here/corpus/$name
    mkdir -p "$corpus" "$here/artifacts/$name"
    limits=(-max_len="$max_len" -malloc_limit_mb="$malloc_mb" -rss_limit_mb="$RSS_LIMIT_MB"
            -timeout="$TIMEOUT_S" -artifact_prefix="$here/artifacts/$name/")
    if [ "$mode" = cmin ]; then
        out=$scratch/cmin-$name
        mkdir -p "$out"
        echo "run.sh: minimizing $name ($(ls "$corpus" | wc -l) inputs)"
        isolated "$bin" -merge=1 "${limits[@]}" "$out" "$corpus" >"$scratch/$name.log" 2>&1
        if [ -n "$(ls -A "$out")" ]; then
            rm -f "$corpus"/*
            cp "$out"/* "$corpus"/
        fi
        echo "run.sh: $name keeps $(ls "$corpus" | wc -l) inputs ($(du -sh "$corpus" | cut -f1))"
        continue
    fi
    work=$scratch/corpus-$name
    mkdir -p "$work"
    echo "run.sh: $name for ${seconds}s"
    isolated "$bin" "${limits[@]}" -max_total_time="$seconds" -print_final_stats=1 \
        "$work" "$corpus" >"$scratch/$name.log" 2>&1
    status=$?
    grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$scratch/$name.log" \
        | sed "s/^/run.sh: $name: /"
    if [ $status -ne 0 ]; then
        failed+=("$name")
        echo "run.sh: $name FOUND A PROBLEM (exit $status):"
        grep -E 'ERROR: libFuzzer|panicked at|ERROR: AddressSanitizer|==[0-9]+== ?ERROR|Test unit written to|out-of-memory|malloc\(' \
            "$scratch/$name.log" | head -8 | sed 's/^/    /'
        cp "$scratch/$name.log" "$here/artifacts/$name/last-run.log"
        echo "    full log: fuzz/artifacts/$name/last-run.log"
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "run.sh: findings in: ${failed[*]}"
    exit 1
fi
echo "run.sh: no findings"
