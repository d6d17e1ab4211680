# The fuzz targets and their libFuzzer limits, sourced by run.sh and
# campaign.sh. One line per target: name, -max_len (bytes), -malloc_limit_mb.
#
# -malloc_limit_mb makes a single allocation above it a finding (an
# allocation the input does not justify: inputs are at most max_len bytes).
# The batch targets allow 600 MB because a records section may legitimately
# decompress to limits::RECORDS_DECOMPRESSED_BYTES_MAX (256 MiB), which a
# growing buffer can round up to 512 MiB; anything past that is a
# decompression bomb getting through. -rss_limit_mb (the whole process) is
# 2048 for all, -timeout (one input) 10 s: beyond either is a finding too.
TARGETS=(
    "request 262144 256"
    "peer_response 262144 256"
    "produce_batch 131072 600"
    "stored_batches 131072 600"
    "log_recovery 262144 600"
    "replica_append 262144 600"
    "partition_files 65536 256"
    "consumer_offsets 131072 600"
    "controller 131072 256"
    "config 65536 256"
)
RSS_LIMIT_MB=2048
TIMEOUT_S=10

# Runs "$@" without network where the kernel allows it (the config target
# resolves listener host names; a fuzzer must not query DNS), niced, since
# the build machines are shared.
isolated() {
    if unshare -rn true 2>/dev/null; then
        nice -n 10 unshare -rn "$@"
    elif unshare -n true 2>/dev/null; then
        nice -n 10 unshare -n "$@"
    else
        nice -n 10 "$@"
    fi
}

# limits_of NAME: prints "max_len malloc_limit_mb"; fails for an unknown name.
limits_of() {
    local t NAME_WANTED=$1
    for t in "${TARGETS[@]}"; do
        # shellcheck disable=SC2086
        set -- $t
        if [ "$1" = "$NAME_WANTED" ]; then
            echo "$2 $3"
            return 0
        fi
    done
    return 1
}
