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
#
# Fastest first (executions in a 60 s run.sh on the shared build machine at
# f55113f: request 772k, consumer_offsets 640k, peer_response 635k,
# produce_batch 510k, controller 387k, replica_append 237k, stored_batches
# 226k, partition_files 127k, log_recovery 115k, config 90k): campaign.sh
# runs them in this order, so the cheap ones can reach its execution count
# and the slow ones get its time budget.
TARGETS=(
    "request 262144 256"
    "consumer_offsets 131072 600"
    "peer_response 262144 256"
    "produce_batch 131072 600"
    "controller 131072 256"
    "replica_append 262144 600"
    "stored_batches 131072 600"
    "partition_files 65536 256"
    "log_recovery 262144 600"
    "config 65536 256"
    "legacy_message_sets 131072 600"
    "http 65536 256"
    "http_api 65536 256"
    "sasl_tokens 16384 256"
)
RSS_LIMIT_MB=2048
TIMEOUT_S=10

# Runs "$@" without network where the kernel allows it (the config target
# resolves listener host names; a fuzzer must not query DNS), niced, since
# the build machines are shared.
isolated() {
    isolation_prefix
    "${ISOLATE[@]}" "$@"
}

# Sets ISOLATE to the command prefix `isolated` uses: nice, then unshare
# where allowed. Each of them execs the next, so a command started as
# `"${ISOLATE[@]}" prog &` has prog's pid in $!.
isolation_prefix() {
    if unshare -rn true 2>/dev/null; then
        ISOLATE=(nice -n 10 unshare -rn)
    elif unshare -n true 2>/dev/null; then
        ISOLATE=(nice -n 10 unshare -n)
    else
        ISOLATE=(nice -n 10)
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
