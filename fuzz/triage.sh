#!/usr/bin/env bash
# Groups findings by cause: replays every input in fuzz/artifacts/<target>/
# (or the files and directories given) through its target and prints one
# line per input: the target, the input, and a signature (the panic's
# message and place, or the first frame in corelog or a dependency of an
# allocation, ASan or libFuzzer report). Inputs with the same signature are
# the same defect.
#
#   fuzz/triage.sh TARGET [FILE|DIR...]
#   fuzz/triage.sh --all              every target's artifacts
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=targets.sh
source "$here/targets.sh"
bin_dir=$here/target/x86_64-unknown-linux-gnu/release
scratch_root=/dev/shm
[ -d "$scratch_root" ] && [ -w "$scratch_root" ] || scratch_root=${TMPDIR:-/tmp}
scratch=$(mktemp -d "$scratch_root/corelog-fuzz-triage.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export CORELOG_FUZZ_SCRATCH=$scratch

signature() { # log file
    local log=$1 sig
    sig=$(grep -m1 -A1 "panicked at" "$log" | tr '\n' ' ' | sed -E 's/.*panicked at ([^ ]+)/\1/')
    if [ -z "$sig" ]; then
        # The first frame outside the allocator, libFuzzer, ASan and std.
        sig=$(grep -E '^ +#[0-9]+ ' "$log" \
            | grep -vE 'libfuzzer|compiler-rt|asan|sanitizer|/library/(alloc|core|std)/|fuzz_targets|in (malloc|calloc|realloc)' \
            | head -1 | sed -E 's/^ +#[0-9]+ 0x[0-9a-f]+ in //; s| /root/.cargo/registry/src/[^/]+/| |; s|/work/[^/]+/||')
        local kind
        kind=$(grep -oE 'malloc\([0-9]+\)|allocator is trying to allocate 0x[0-9a-f]+ bytes' "$log" | head -1)
        [ -n "$kind" ] || kind=$(grep -oE 'out-of-memory \(used: [0-9]+Mb[^)]*\)|ERROR: AddressSanitizer: [a-z-]+|ERROR: libFuzzer: [a-z-]+' "$log" | head -1)
        sig="$kind @ $sig"
    fi
    echo "$sig"
}

replay() { # target file
    local name=$1 file=$2 log
    read -r max_len malloc_mb < <(limits_of "$name")
    log=$scratch/replay.log
    isolated "$bin_dir/$name" -runs=1 -malloc_limit_mb="$malloc_mb" -rss_limit_mb="$RSS_LIMIT_MB" \
        -timeout="$TIMEOUT_S" "$file" >"$log" 2>&1
    local status=$?
    if [ $status -eq 0 ]; then
        printf '%s\t%s\t%s\n' "$name" "$(basename "$file")" "no longer fails"
    else
        printf '%s\t%s\t%s\n' "$name" "$(basename "$file")" "$(signature "$log")"
    fi
}

[ $# -ge 1 ] || { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
if [ "$1" = --all ]; then
    set --
    for t in "${TARGETS[@]}"; do
        name=${t%% *}
        for f in "$here/artifacts/$name"/*; do
            [ -f "$f" ] && [ "$(basename "$f")" != last-run.log ] && replay "$name" "$f"
        done
    done
    exit 0
fi
name=$1
shift
limits_of "$name" >/dev/null || { echo "triage.sh: unknown target $name" >&2; exit 2; }
[ $# -gt 0 ] || set -- "$here/artifacts/$name"
for arg in "$@"; do
    if [ -d "$arg" ]; then
        for f in "$arg"/*; do
            [ -f "$f" ] && [ "$(basename "$f")" != last-run.log ] && replay "$name" "$f"
        done
    else
        replay "$name" "$arg"
    fi
done
