"""Drives kafka-python (2.0.2) as a client of an old broker generation.

kafka-python picks its protocol versions from `api_version` alone (no
ApiVersions request when it is given), so each generation sends exactly
the requests a deployed client of that era sends:

  0.8.2   Produce v0 (message set magic 0), Fetch v0, ListOffsets v0,
          Metadata v0, GroupCoordinator v0, OffsetCommit v1, OffsetFetch v1;
          no group membership (partitions assigned by hand)
  0.9     Produce v1 (magic 0), Fetch v1, OffsetCommit v2, OffsetFetch v1,
          JoinGroup/SyncGroup/Heartbeat/LeaveGroup v0
  0.10.0  Produce v2 (magic 1, timestamps), Fetch v2, Metadata v1
  0.10.1  Fetch v3, ListOffsets v1, JoinGroup v1

Usage: kafka_python_old.py API_VERSION BOOTSTRAP TOPIC GROUP COUNT

Produces COUNT keyed records (half uncompressed, half gzip), then reads
them in one group in two sittings: the first consumer reads part of them,
commits and leaves; the second, in the same group, must resume at that
commit and read the rest, each record exactly once. Prints one JSON line
with what it saw; exits 1 with the reason on any mismatch.
"""

import json
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

DEADLINE_S = 60
BASE_TS = 1_700_000_000_000


def fail(message):
    print(f"kafka_python_old: {message}", file=sys.stderr)
    sys.exit(1)


def produce(bootstrap, topic, api_version, count):
    half = count // 2
    for codec, indexes in ((None, range(0, half)), ("gzip", range(half, count))):
        producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            api_version=api_version,
            acks="all",
            compression_type=codec,
            linger_ms=5,
            request_timeout_ms=30_000,
        )
        futures = []
        for i in indexes:
            futures.append(
                producer.send(
                    topic,
                    key=f"key-{i}".encode(),
                    value=f"value-{i}-{'x' * (i % 50)}".encode(),
                    partition=i % 2,
                    timestamp_ms=BASE_TS + i,
                )
            )
        producer.flush(timeout=30)
        for future in futures:
            metadata = future.get(timeout=30)
            if metadata.offset < 0:
                fail(f"produce acknowledged without an offset: {metadata}")
        producer.close(timeout=10)


def consumer(bootstrap, topic, group, api_version):
    config = dict(
        bootstrap_servers=bootstrap,
        group_id=group,
        api_version=api_version,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        request_timeout_ms=30_000,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
    )
    partitions = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    if api_version < (0, 9):
        # No group membership before 0.9: assigned by hand, offsets still
        # committed to the group through the coordinator.
        c = KafkaConsumer(**config)
        c.assign(partitions)
    else:
        c = KafkaConsumer(topic, **config)
    return c, partitions


def read(c, wanted, seen):
    """Polls until `wanted` more records arrived (bounded by DEADLINE_S)."""
    got = []
    deadline = time.time() + DEADLINE_S
    while len(got) < wanted:
        if time.time() > deadline:
            fail(f"read {len(got)} of {wanted} records within {DEADLINE_S} s")
        batches = c.poll(timeout_ms=500, max_records=wanted - len(got))
        for records in batches.values():
            for r in records:
                ident = (r.partition, r.offset)
                if ident in seen:
                    fail(f"record read twice: partition {r.partition} offset {r.offset}")
                seen.add(ident)
                got.append(r)
    return got


def check_record(r, api_version):
    key = r.key.decode()
    i = int(key.split("-")[1])
    if r.value.decode() != f"value-{i}-{'x' * (i % 50)}":
        fail(f"record {key} has value {r.value!r}")
    if r.partition != i % 2:
        fail(f"record {key} is in partition {r.partition}")
    if api_version >= (0, 10) and r.timestamp != BASE_TS + i:
        fail(f"record {key} has timestamp {r.timestamp}, sent {BASE_TS + i}")
    return i


def main():
    version, bootstrap, topic, group, count = sys.argv[1:6]
    api_version = tuple(int(p) for p in version.split("."))
    count = int(count)
    produce(bootstrap, topic, api_version, count)

    seen = set()
    first, partitions = consumer(bootstrap, topic, group, api_version)
    first_read = read(first, count // 3, seen)
    first.commit()
    committed = {tp.partition: first.committed(tp) for tp in partitions}
    first.close()
    for tp in partitions:
        read_here = [r.offset for r in first_read if r.partition == tp.partition]
        expected = max(read_here) + 1 if read_here else None
        if expected is not None and committed[tp.partition] != expected:
            fail(f"partition {tp.partition}: committed {committed[tp.partition]}, read up to {expected}")

    second, _ = consumer(bootstrap, topic, group, api_version)
    second_read = read(second, count - len(first_read), seen)
    # Nothing more arrives: every record was read exactly once.
    extra = second.poll(timeout_ms=1000)
    if any(extra.values()):
        fail(f"more records than produced: {extra}")
    second.commit()
    second.close()

    indexes = sorted(check_record(r, api_version) for r in first_read + second_read)
    if indexes != list(range(count)):
        fail(f"read records {indexes}, produced 0..{count}")
    print(
        json.dumps(
            {
                "api_version": version,
                "produced": count,
                "first_sitting": len(first_read),
                "second_sitting": len(second_read),
                "committed_after_first": {str(p): o for p, o in committed.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
