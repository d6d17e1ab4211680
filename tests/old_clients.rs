//! Clients that Kafka 4 left behind: librdkafka told it talks to a 0.8.2,
//! 0.9 or 0.10 broker (`api.version.request=false` and
//! `broker.version.fallback`) sends the requests those brokers knew:
//! Produce v1-v2 with message sets of magic 0 and 1, Fetch v1-v2,
//! ListOffsets v0, Metadata v0, OffsetCommit v1-v2, OffsetFetch v1 and the
//! v0 group APIs. Each test produces and consumes through such a client and
//! checks the records and their timestamps, and that new and old clients
//! read each other's records. The exact frames Sarama 1.22 sends
//! (OffsetCommit v1 without a retention, Produce v2 with a magic 1 set,
//! Fetch v2) are written byte by byte below, with the offset
//! retention of OffsetCommit v1-v4.

mod common;

use std::time::{Duration, Instant};

use common::{consume, Broker};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(30);

/// (offset, key, value, timestamp) of one record an old consumer read.
type Read = (i64, Option<Vec<u8>>, Option<Vec<u8>>, Option<i64>);

fn old_client(broker: &Broker, fallback: &str) -> ClientConfig {
    let mut config = broker.client_config();
    config
        .set("api.version.request", "false")
        .set("broker.version.fallback", fallback);
    config
}

/// Produces `count` keyed records with timestamps through a client of
/// `fallback`'s generation, compressed with `codec`.
fn produce_old(broker: &Broker, fallback: &str, codec: &str, topic: &str, count: usize) {
    let mut config = old_client(broker, fallback);
    config
        .set("linger.ms", "5")
        .set("compression.codec", codec)
        .set("message.timeout.ms", "30000");
    produce_with(config, topic, count);
}

/// Produces records 0..`count` (key-i, `expected_value(i)`, timestamps from
/// 1_700_000_000_000) to partition 0 of `topic` with acks=all through a
/// producer of `config`.
fn produce_with(mut config: ClientConfig, topic: &str, count: usize) {
    let producer: ThreadedProducer<DefaultProducerContext> =
        config.set("acks", "all").create().expect("create producer");
    for i in 0..count {
        let key = format!("key-{i}");
        let value = expected_value(i);
        producer
            .send(
                BaseRecord::to(topic)
                    .partition(0)
                    .key(&key)
                    .payload(&value)
                    .timestamp(1_700_000_000_000 + i as i64),
            )
            .expect("enqueue");
    }
    producer.flush(TIMEOUT).expect("flush");
}

fn expected_value(i: usize) -> Vec<u8> {
    format!("value-{i}-{}", "x".repeat(i % 50)).into_bytes()
}

/// Reads partition 0 of `topic` from `from` with a client of `fallback`'s
/// generation until `count` records arrived or the timeout passed.
fn consume_old(broker: &Broker, fallback: &str, topic: &str, from: i64, count: usize) -> Vec<Read> {
    let consumer: BaseConsumer = old_client(broker, fallback)
        .set("group.id", "old-clients-assign")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("create consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(from))
        .unwrap();
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + TIMEOUT;
    let mut out = Vec::new();
    while out.len() < count && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(e)) => panic!("old consumer error: {e}"),
            Some(Ok(m)) => out.push((
                m.offset(),
                m.key().map(<[u8]>::to_vec),
                m.payload().map(<[u8]>::to_vec),
                m.timestamp().to_millis(),
            )),
        }
    }
    out
}

fn check_round_trip(fallback: &str, codec: &str, timestamps: bool) {
    let mut broker = Broker::start();
    let topic = format!("old-{}-{codec}", fallback.replace('.', "-"));
    broker.create_topic(&topic, 1, &[]);
    produce_old(&broker, fallback, codec, &topic, 200);

    // The old client reads them back, in order, from offset 0 and from the
    // middle of what may be one stored batch.
    for from in [0, 137] {
        let read = consume_old(&broker, fallback, &topic, from, 200 - from as usize);
        assert_eq!(
            read.len(),
            200 - from as usize,
            "{fallback}/{codec} from {from}"
        );
        for (n, (offset, key, value, ts)) in read.iter().enumerate() {
            let i = from as usize + n;
            assert_eq!(*offset, i as i64);
            assert_eq!(key.as_deref(), Some(format!("key-{i}").as_bytes()));
            assert_eq!(value.as_deref(), Some(&expected_value(i)[..]));
            if timestamps {
                assert_eq!(*ts, Some(1_700_000_000_000 + i as i64), "{fallback}");
            }
        }
    }
    // A current client reads the same records.
    let read = consume(&broker, &topic, 1, 200, TIMEOUT);
    assert_eq!(read.len(), 200);
    for (i, m) in read.iter().enumerate() {
        assert_eq!(m.offset, i as i64);
        assert_eq!(m.value.as_deref(), Some(&expected_value(i)[..]));
        if timestamps {
            assert_eq!(m.timestamp, Some(1_700_000_000_000 + i as i64));
        }
    }
    broker.assert_running();
}

/// Reads up to `count` records of partition 0 as a member of `group` with
/// a client of `fallback`'s generation (0.8.2 has no group membership:
/// assigned by hand, starting at the group's commit), commits what it
/// read through the coordinator and closes. Answers the offsets read.
fn group_sitting(
    broker: &Broker,
    fallback: &str,
    topic: &str,
    group: &str,
    count: usize,
) -> Vec<i64> {
    let consumer: BaseConsumer = old_client(broker, fallback)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("create consumer");
    if fallback == "0.8.2" {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Stored).unwrap();
        consumer.assign(&tpl).expect("assign");
    } else {
        consumer.subscribe(&[topic]).expect("subscribe");
    }
    let deadline = Instant::now() + TIMEOUT;
    let mut read = Vec::new();
    let mut last = None;
    while read.len() < count && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(e)) => panic!("{fallback} group consumer error: {e}"),
            Some(Ok(m)) => {
                read.push(m.offset());
                last = Some((m.partition(), m.offset()));
            }
        }
    }
    if let Some((partition, offset)) = last {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(offset + 1))
            .unwrap();
        consumer
            .commit(&tpl, rdkafka::consumer::CommitMode::Sync)
            .unwrap_or_else(|e| panic!("{fallback} commit: {e}"));
    }
    read
}

/// librdkafka as a 0.8.2, 0.9 and 0.10 client commits in a group (OffsetCommit
/// v1 or v2, through GroupCoordinator v0) and the next member resumes at
/// the commit (OffsetFetch v1). (A one-letter topic name makes
/// librdkafka 2.12's Metadata v0 parser give up on the tiny response, a
/// size heuristic of its own that Kafka 0.9's identical bytes trip too;
/// the names here are longer.)
#[test]
fn fallback_clients_commit_in_a_group_and_the_next_member_resumes_there() {
    let mut broker = Broker::start();
    for fallback in ["0.8.2", "0.9.0", "0.10.0"] {
        let topic = format!("old-group-{}", fallback.replace('.', "-"));
        broker.create_topic(&topic, 1, &[]);
        common::produce_numbered(&broker, &topic, 1, 0, 10);
        let group = format!("old-group-{fallback}");
        let first = group_sitting(&broker, fallback, &topic, &group, 4);
        assert_eq!(first, (0..4).collect::<Vec<_>>(), "{fallback}");
        let second = group_sitting(&broker, fallback, &topic, &group, 6);
        assert_eq!(second, (4..10).collect::<Vec<_>>(), "{fallback}");
    }
    broker.assert_running();
}

#[test]
fn a_0_9_client_produces_magic_0_and_reads_it_back() {
    check_round_trip("0.9.0", "none", false);
}

#[test]
fn a_0_10_client_produces_gzip_magic_1_with_timestamps_and_reads_it_back() {
    check_round_trip("0.10.0", "gzip", true);
}

#[test]
fn a_0_10_client_produces_snappy_and_lz4_magic_1() {
    check_round_trip("0.10.0", "snappy", true);
    check_round_trip("0.10.0", "lz4", true);
}

#[test]
fn an_old_consumer_reads_what_a_current_producer_wrote_with_headers_and_zstd() {
    let broker = Broker::start();
    broker.create_topic("new-to-old", 1, &[]);
    let producer: ThreadedProducer<DefaultProducerContext> = broker
        .producer_config()
        .set("compression.codec", "zstd")
        .create()
        .unwrap();
    for i in 0..100 {
        let key = format!("key-{i}");
        let value = expected_value(i);
        let headers = OwnedHeaders::new().insert(Header {
            key: "h",
            value: Some("dropped for old clients"),
        });
        producer
            .send(
                BaseRecord::to("new-to-old")
                    .partition(0)
                    .key(&key)
                    .payload(&value)
                    .headers(headers)
                    .timestamp(1_700_000_000_000 + i as i64),
            )
            .unwrap();
    }
    producer.flush(TIMEOUT).unwrap();
    for (fallback, timestamps) in [("0.9.0", false), ("0.10.0", true)] {
        let read = consume_old(&broker, fallback, "new-to-old", 0, 100);
        assert_eq!(read.len(), 100, "{fallback}");
        for (i, (offset, key, value, ts)) in read.iter().enumerate() {
            assert_eq!(*offset, i as i64);
            assert_eq!(key.as_deref(), Some(format!("key-{i}").as_bytes()));
            assert_eq!(value.as_deref(), Some(&expected_value(i)[..]));
            if timestamps {
                assert_eq!(*ts, Some(1_700_000_000_000 + i as i64));
            }
        }
    }
    // And the headers are still there for a current client.
    let read = consume(&broker, "new-to-old", 1, 100, TIMEOUT);
    assert_eq!(read.len(), 100);
    assert!(read.iter().all(|m| m.headers.len() == 1));
}

#[test]
fn an_old_client_reads_metadata_and_offsets() {
    let broker = Broker::start();
    broker.create_topic("old-offsets", 3, &[]);
    produce_old(&broker, "0.9.0", "none", "old-offsets", 10);
    let consumer: BaseConsumer = old_client(&broker, "0.9.0")
        .set("group.id", "old-offsets")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some("old-offsets"), TIMEOUT)
        .expect("metadata v0");
    assert_eq!(metadata.topics()[0].partitions().len(), 3);
    // ListOffsets v0: the earliest and latest offsets.
    let (low, high) = consumer
        .fetch_watermarks("old-offsets", 0, TIMEOUT)
        .expect("watermarks");
    assert_eq!((low, high), (0, 10));
    let (low, high) = consumer
        .fetch_watermarks("old-offsets", 1, TIMEOUT)
        .expect("watermarks");
    assert_eq!((low, high), (0, 0));
}

/// A request frame written as an old client writes it: size, api key,
/// version, correlation id, client id, then `body`.
fn frame(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let client = b"sarama";
    let size = 2 + 2 + 4 + 2 + client.len() + body.len();
    out.extend_from_slice(&(size as i32).to_be_bytes());
    out.extend_from_slice(&api_key.to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&correlation_id.to_be_bytes());
    put_str(&mut out, std::str::from_utf8(client).unwrap());
    out.extend_from_slice(body);
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Reads big-endian fields off a response frame.
struct Cursor(bytes::Bytes);

impl Cursor {
    fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.take(2).try_into().unwrap())
    }
    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().unwrap())
    }
    fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.take(8).try_into().unwrap())
    }
    fn string(&mut self) -> String {
        let len = self.i16();
        String::from_utf8(self.take(len.max(0) as usize)).unwrap()
    }
    fn take(&mut self, n: usize) -> Vec<u8> {
        assert!(self.0.len() >= n, "response ends early");
        self.0.split_to(n).to_vec()
    }
    fn done(&self) {
        assert!(
            self.0.is_empty(),
            "{} bytes left in the response",
            self.0.len()
        );
    }
}

fn call_raw(conn: &mut common::raw::Conn, request: &[u8], correlation_id: i32) -> Cursor {
    conn.send_bytes(request).expect("send");
    let mut c = Cursor(conn.recv_frame().expect("response"));
    assert_eq!(c.i32(), correlation_id);
    c
}

/// OffsetCommit v0 or v1 of one partition as Sarama writes it; v1 carries
/// a generation, a member and a commit timestamp per partition.
fn offset_commit_v0_v1(version: i16, group: &str, topic: &str, offset: i64, ts: i64) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(&mut body, group);
    if version == 1 {
        body.extend_from_slice(&(-1i32).to_be_bytes()); // generation: none
        put_str(&mut body, ""); // member id
    }
    body.extend_from_slice(&1i32.to_be_bytes());
    put_str(&mut body, topic);
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&0i32.to_be_bytes()); // partition
    body.extend_from_slice(&offset.to_be_bytes());
    if version == 1 {
        body.extend_from_slice(&ts.to_be_bytes());
    }
    put_str(&mut body, "meta");
    frame(8, version, 100 + version as i32, &body)
}

/// OffsetCommit v2 with a retention time (Sarama with its retention set).
fn offset_commit_v2(group: &str, topic: &str, offset: i64, retention_ms: i64) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(&mut body, group);
    body.extend_from_slice(&(-1i32).to_be_bytes());
    put_str(&mut body, "");
    body.extend_from_slice(&retention_ms.to_be_bytes());
    body.extend_from_slice(&1i32.to_be_bytes());
    put_str(&mut body, topic);
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&0i32.to_be_bytes());
    body.extend_from_slice(&offset.to_be_bytes());
    put_str(&mut body, "");
    frame(8, 2, 102, &body)
}

/// The one partition error of an OffsetCommit v0-v2 response.
fn commit_error(mut c: Cursor) -> i16 {
    assert_eq!(c.i32(), 1);
    c.string();
    assert_eq!(c.i32(), 1);
    assert_eq!(c.i32(), 0);
    let error = c.i16();
    c.done();
    error
}

/// OffsetFetch v0/v1 of partition 0: (offset, metadata, error).
fn offset_fetch(
    conn: &mut common::raw::Conn,
    version: i16,
    group: &str,
    topic: &str,
) -> (i64, String, i16) {
    let mut body = Vec::new();
    put_str(&mut body, group);
    body.extend_from_slice(&1i32.to_be_bytes());
    put_str(&mut body, topic);
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&0i32.to_be_bytes());
    let mut c = call_raw(conn, &frame(9, version, 200, &body), 200);
    assert_eq!(c.i32(), 1);
    c.string();
    assert_eq!(c.i32(), 1);
    assert_eq!(c.i32(), 0);
    let offset = c.i64();
    let metadata = c.string();
    let error = c.i16();
    c.done();
    (offset, metadata, error)
}

/// GroupCoordinator (FindCoordinator v0) for `group`, as old clients ask
/// before they commit, until the coordinator is ready.
fn find_coordinator_v0(conn: &mut common::raw::Conn, group: &str) {
    let mut body = Vec::new();
    put_str(&mut body, group);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let mut c = call_raw(conn, &frame(10, 0, 300, &body), 300);
        let error = c.i16();
        let node = c.i32();
        c.string();
        c.i32();
        c.done();
        if error == 0 {
            assert_eq!(node, 1);
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no coordinator for {group}: {error}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sarama_commits_with_offset_commit_v0_and_v1_and_reads_them_back() {
    let broker = Broker::start();
    broker.create_topic("sarama", 1, &[]);
    let mut conn = common::raw::Conn::connect(broker.addr());
    conn.set_timeout(TIMEOUT);
    for version in [0, 1] {
        let group = format!("sarama-v{version}");
        find_coordinator_v0(&mut conn, &group);
        // Sarama 1.22's default: v1 with no commit timestamp (-1, "now").
        let request = offset_commit_v0_v1(version, &group, "sarama", 42, -1);
        let error = commit_error(call_raw(&mut conn, &request, 100 + version as i32));
        assert_eq!(error, 0, "OffsetCommit v{version}");
        for fetch_version in [0, 1] {
            assert_eq!(
                offset_fetch(&mut conn, fetch_version, &group, "sarama"),
                (42, "meta".to_string(), 0),
                "OffsetCommit v{version}, OffsetFetch v{fetch_version}"
            );
        }
    }
    // A group that never committed: offset -1, no error.
    find_coordinator_v0(&mut conn, "sarama-none");
    assert_eq!(
        offset_fetch(&mut conn, 0, "sarama-none", "sarama"),
        (-1, String::new(), 0)
    );
}

#[test]
fn commits_expire_after_their_retention() {
    let broker = Broker::start_with(
        common::BrokerOptions::default()
            .override_config("offsets.retention.minutes", "1")
            .override_config("offsets.retention.check.interval.ms", "200"),
    );
    broker.create_topic("kept", 1, &[]);
    let mut conn = common::raw::Conn::connect(broker.addr());
    conn.set_timeout(TIMEOUT);
    for group in ["short", "old", "fresh"] {
        find_coordinator_v0(&mut conn, group);
    }
    let now = common::raw::now_ms();
    // v2 names its own retention: one second.
    let error = commit_error(call_raw(
        &mut conn,
        &offset_commit_v2("short", "kept", 7, 1_000),
        102,
    ));
    assert_eq!(error, 0);
    // v1 names the commit's time: two minutes ago, older than the broker's
    // one-minute retention of a group without members.
    let request = offset_commit_v0_v1(1, "old", "kept", 8, now - 120_000);
    assert_eq!(commit_error(call_raw(&mut conn, &request, 101)), 0);
    // A commit now, with the broker's retention: kept.
    let request = offset_commit_v0_v1(1, "fresh", "kept", 9, -1);
    assert_eq!(commit_error(call_raw(&mut conn, &request, 101)), 0);
    assert_eq!(offset_fetch(&mut conn, 1, "short", "kept").0, 7);

    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline
        && (offset_fetch(&mut conn, 1, "short", "kept").0 != -1
            || offset_fetch(&mut conn, 1, "old", "kept").0 != -1)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        offset_fetch(&mut conn, 1, "short", "kept").0,
        -1,
        "v2 retention"
    );
    assert_eq!(
        offset_fetch(&mut conn, 1, "old", "kept").0,
        -1,
        "v1 commit time"
    );
    assert_eq!(offset_fetch(&mut conn, 1, "fresh", "kept").0, 9, "kept");
}

#[test]
fn sarama_produces_v2_and_fetches_v2_as_raw_frames() {
    let broker = Broker::start();
    broker.create_topic("raw-old", 1, &[]);
    let mut conn = common::raw::Conn::connect(broker.addr());
    conn.set_timeout(TIMEOUT);
    // Produce v2: acks, timeout, [topic, [partition, set size, set]].
    let set = common::raw::legacy_message_set(1, "sarama", 3, 20, 1_700_000_000_000);
    let mut body = Vec::new();
    body.extend_from_slice(&(-1i16).to_be_bytes());
    body.extend_from_slice(&10_000i32.to_be_bytes());
    body.extend_from_slice(&1i32.to_be_bytes());
    put_str(&mut body, "raw-old");
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&0i32.to_be_bytes());
    body.extend_from_slice(&(set.len() as i32).to_be_bytes());
    body.extend_from_slice(&set);
    let mut c = call_raw(&mut conn, &frame(0, 2, 1, &body), 1);
    assert_eq!(c.i32(), 1);
    assert_eq!(c.string(), "raw-old");
    assert_eq!(c.i32(), 1);
    assert_eq!(c.i32(), 0);
    assert_eq!(c.i16(), 0, "produce error");
    assert_eq!(c.i64(), 0, "base offset");
    assert_eq!(c.i64(), -1, "log append time (CreateTime topic)");
    assert_eq!(c.i32(), 0, "throttle");
    c.done();

    // The same message set in Produce v3 (which starts with a null
    // transactional id): only v2 batches are allowed there, INVALID_RECORD
    // as in Kafka.
    let mut v3 = (-1i16).to_be_bytes().to_vec();
    v3.extend_from_slice(&body);
    let mut c = call_raw(&mut conn, &frame(0, 3, 4, &v3), 4);
    c.i32();
    c.string();
    c.i32();
    c.i32();
    assert_eq!(c.i16(), 87, "INVALID_RECORD");

    // A message set with a broken CRC: CORRUPT_MESSAGE, nothing stored.
    let mut bad = body.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let mut c = call_raw(&mut conn, &frame(0, 2, 2, &bad), 2);
    c.i32();
    c.string();
    c.i32();
    c.i32();
    assert_eq!(c.i16(), 2, "CORRUPT_MESSAGE");

    // Fetch v2: replica, max wait, min bytes, [topic, [partition, offset,
    // max bytes]]; answered with a magic 1 set from offset 1.
    let mut body = Vec::new();
    body.extend_from_slice(&(-1i32).to_be_bytes());
    body.extend_from_slice(&100i32.to_be_bytes());
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&1i32.to_be_bytes());
    put_str(&mut body, "raw-old");
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&0i32.to_be_bytes());
    body.extend_from_slice(&1i64.to_be_bytes());
    body.extend_from_slice(&(1i32 << 20).to_be_bytes());
    let mut c = call_raw(&mut conn, &frame(1, 2, 3, &body), 3);
    assert_eq!(c.i32(), 0, "throttle");
    assert_eq!(c.i32(), 1);
    assert_eq!(c.string(), "raw-old");
    assert_eq!(c.i32(), 1);
    assert_eq!(c.i32(), 0);
    assert_eq!(c.i16(), 0, "fetch error");
    assert_eq!(c.i64(), 3, "high watermark");
    let size = c.i32() as usize;
    let records = c.take(size);
    c.done();
    let expected = common::raw::decode_legacy(&set);
    assert_eq!(common::raw::decode_legacy(&records), expected[1..]);
}

/// ListOffsets v0 as Kafka 0.8's GetOffsetShell sends it
/// (`--max-num-offsets 10`): the latest offset, then the base offset of
/// every older segment, largest first; from a time, the bases of the
/// segments written at or before it; at most the count asked for.
#[test]
fn list_offsets_v0_lists_segment_bases_like_get_offset_shell() {
    let broker = Broker::start();
    let topic = "old-segments";
    broker.create_topic(topic, 1, &[("segment.bytes", "2000")]);
    // Batches of 10 records, so segments of 2000 bytes roll between them.
    let mut config = old_client(&broker, "0.10.0");
    config.set("batch.num.messages", "10");
    produce_with(config, topic, 200);
    let dir = common::partition_dir(&broker, topic, 0);
    let mut bases: Vec<i64> = common::segment_logs(&dir)
        .iter()
        .map(|p| {
            let stem = p.file_stem().unwrap().to_str().unwrap();
            stem.parse().unwrap()
        })
        .collect();
    bases.sort_unstable_by(|a, b| b.cmp(a));
    assert!(bases.len() >= 4, "several segments: {bases:?}");

    let list = |conn: &mut common::raw::Conn, timestamp: i64, max: i32, id: i32| -> Vec<i64> {
        let mut body = Vec::new();
        body.extend_from_slice(&(-1i32).to_be_bytes()); // replica id: a consumer
        body.extend_from_slice(&1i32.to_be_bytes());
        put_str(&mut body, topic);
        body.extend_from_slice(&1i32.to_be_bytes());
        body.extend_from_slice(&0i32.to_be_bytes());
        body.extend_from_slice(&timestamp.to_be_bytes());
        body.extend_from_slice(&max.to_be_bytes());
        let mut c = call_raw(conn, &frame(2, 0, id, &body), id);
        assert_eq!(c.i32(), 1);
        assert_eq!(c.string(), topic);
        assert_eq!(c.i32(), 1);
        assert_eq!(c.i32(), 0);
        assert_eq!(c.i16(), 0, "error code");
        let n = c.i32();
        let offsets = (0..n).map(|_| c.i64()).collect();
        c.done();
        offsets
    };
    let mut conn = common::raw::Conn::connect(broker.addr());
    let mut latest = vec![200];
    latest.extend(bases.iter().copied().filter(|&b| b < 200));
    latest.truncate(10);
    assert_eq!(list(&mut conn, -1, 10, 1), latest);
    assert_eq!(list(&mut conn, -1, 1, 2), vec![200]);
    assert_eq!(list(&mut conn, -2, 10, 3), vec![0]);
    assert_eq!(list(&mut conn, -1, 0, 4), Vec::<i64>::new());
    // The records carry timestamps 1_700_000_000_000 + i: the segments
    // whose last record is at or before record 120's time.
    let before: Vec<i64> = {
        let mut ends: Vec<i64> = bases.iter().rev().skip(1).copied().collect();
        ends.push(200);
        // Segment k holds [bases_k, ends_k); its last record is ends_k - 1.
        bases
            .iter()
            .rev()
            .zip(ends)
            .filter(|&(_, end)| end - 1 <= 120)
            .map(|(&base, _)| base)
            .rev()
            .take(10)
            .collect()
    };
    assert_eq!(list(&mut conn, 1_700_000_000_120, 10, 5), before);
    assert!(list(&mut conn, 1_000, 10, 6).is_empty());
}
