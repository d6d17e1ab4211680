//! A hostile client against a real broker, over raw TCP: huge counts in
//! array positions of several APIs, lying and truncated frames, unknown
//! APIs and versions, random bytes, thousands of idle connections,
//! slowloris frames, a client that never reads, 100 MiB length prefixes with
//! nothing behind them, connection limits and a panicking handler. After
//! each, a librdkafka produce and consume round trip still works and the
//! broker's resident memory (VmRSS) stays under the bound the test states.
//! The last test checks the CLI's decoding of a hostile broker's answers
//! (the replication client's is a unit test in `src/replication/client.rs`).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use common::raw::Conn;
use common::{Broker, BrokerOptions};
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, ResponseHeader};
use kafka_protocol::protocol::Decodable;

const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
const MIB: u64 = 1024;

// ---------------------------------------------------------------------------
// Helpers

/// The broker's resident memory in KiB (VmRSS).
fn rss_kib(broker: &Broker) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", broker.pid()))
        .expect("read the broker's /proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status")
}

/// Asserts the broker's RSS is at most `baseline + growth_kib`.
fn assert_rss_within(broker: &Broker, baseline: u64, growth_kib: u64, what: &str) -> u64 {
    let rss = rss_kib(broker);
    eprintln!(
        "{what}: RSS {} MiB (baseline {} MiB, bound +{} MiB)",
        rss / MIB,
        baseline / MIB,
        growth_kib / MIB
    );
    assert!(
        rss <= baseline + growth_kib,
        "{what}: broker RSS {rss} KiB exceeds baseline {baseline} KiB + {growth_kib} KiB"
    );
    rss
}

/// A topic and how many records the round trips have put in it.
struct RoundTrips {
    topic: String,
    produced: usize,
}

impl RoundTrips {
    fn new(broker: &Broker, topic: &str) -> RoundTrips {
        broker.create_topic(topic, 2, &[]);
        let mut trips = RoundTrips {
            topic: topic.to_string(),
            produced: 0,
        };
        trips.check(broker, "before any probe");
        trips
    }

    /// Produces 50 more records with librdkafka and reads every record of
    /// the topic back, in order per partition.
    fn check(&mut self, broker: &Broker, after: &str) {
        common::produce_numbered(broker, &self.topic, 2, self.produced, 50);
        self.produced += 50;
        let got = common::consume(
            broker,
            &self.topic,
            2,
            self.produced,
            Duration::from_secs(30),
        );
        let mut values: Vec<usize> = got
            .iter()
            .map(|m| {
                String::from_utf8(m.value.clone().unwrap_or_default())
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        values.sort_unstable();
        assert_eq!(
            values,
            (0..self.produced).collect::<Vec<_>>(),
            "round trip after {after}"
        );
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// True if the peer closes `stream` (EOF or reset) within `timeout`, false
/// if it stays open; panics if it answers.
fn closed_within(stream: &mut TcpStream, timeout: Duration) -> bool {
    stream.set_read_timeout(Some(timeout)).unwrap();
    let mut buf = [0u8; 256];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(n) => panic!("expected a close, got {n} bytes: {:02x?}", &buf[..n]),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(_) => true,
    }
}

/// Sends `frame` on a new connection and asserts the broker closes it.
fn assert_closes(broker: &Broker, what: &str, frame: &[u8]) {
    let mut stream = connect(broker.addr());
    // The broker may close while we are still writing; that is fine.
    let _ = stream.write_all(frame);
    assert!(
        closed_within(&mut stream, CLOSE_TIMEOUT),
        "{what}: connection still open after {CLOSE_TIMEOUT:?}"
    );
}

/// A size-prefixed frame around `body`.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// Request header v1 (v2 adds an empty tagged-field section).
fn header(key: ApiKey, version: i16, flexible: bool) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_i16(key as i16);
    b.put_i16(version);
    b.put_i32(1);
    b.put_i16(1);
    b.put_slice(b"h");
    if flexible {
        b.put_u8(0);
    }
    b
}

const I32_MAX: [u8; 4] = [0x7f, 0xff, 0xff, 0xff];
/// An unsigned varint of u32::MAX: a compact count of u32::MAX - 1.
const VARINT_MAX: [u8; 5] = [0xff, 0xff, 0xff, 0xff, 0x0f];

/// Requests with a huge count or length in one array (or bytes, or string)
/// position each.
fn huge_count_probes() -> Vec<(&'static str, Vec<u8>)> {
    let mut probes = Vec::new();
    let mut add = |name, body: BytesMut| probes.push((name, frame(&body)));

    // The 14 bytes: Metadata v1, null client id, 2^31-1 topics.
    let mut b = BytesMut::new();
    b.put_slice(&[0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff]);
    b.put_slice(&I32_MAX);
    add("Metadata v1 topics 2^31-1 (14 bytes)", b);

    let mut b = header(ApiKey::Metadata, 12, true);
    b.put_slice(&VARINT_MAX);
    add("Metadata v12 topics (compact)", b);

    let mut b = header(ApiKey::Produce, 3, false);
    b.put_i16(-1); // transactional id
    b.put_i16(1); // acks
    b.put_i32(30_000);
    b.put_slice(&I32_MAX);
    add("Produce v3 topics", b);

    let mut b = header(ApiKey::Produce, 7, false);
    b.put_i16(-1);
    b.put_i16(1);
    b.put_i32(30_000);
    b.put_i32(1);
    b.put_i16(1);
    b.put_slice(b"t");
    b.put_slice(&I32_MAX);
    add("Produce v7 partitions of a topic", b);

    let mut b = header(ApiKey::Produce, 9, true);
    b.put_u8(0); // null compact transactional id
    b.put_i16(1);
    b.put_i32(30_000);
    b.put_slice(&VARINT_MAX);
    add("Produce v9 topics (compact)", b);

    let mut b = header(ApiKey::Produce, 7, false);
    b.put_i16(-1);
    b.put_i16(1);
    b.put_i32(30_000);
    b.put_i32(1);
    b.put_i16(1);
    b.put_slice(b"t");
    b.put_i32(1);
    b.put_i32(0); // partition
    b.put_slice(&I32_MAX); // records bytes length
    add("Produce v7 records length", b);

    let mut b = header(ApiKey::CreateTopics, 4, false);
    b.put_slice(&I32_MAX);
    add("CreateTopics v4 topics", b);

    let mut b = header(ApiKey::CreateTopics, 5, true);
    b.put_u8(2); // one topic
    b.put_u8(2);
    b.put_slice(b"t");
    b.put_i32(-1);
    b.put_i16(-1);
    b.put_slice(&VARINT_MAX); // assignments
    add("CreateTopics v5 assignments (compact)", b);

    let mut b = header(ApiKey::Fetch, 4, false);
    b.put_i32(-1); // replica id
    b.put_i32(500);
    b.put_i32(1);
    b.put_i32(1 << 20);
    b.put_i8(0);
    b.put_slice(&I32_MAX);
    add("Fetch v4 topics", b);

    let mut b = header(ApiKey::Fetch, 12, true);
    b.put_i32(-1);
    b.put_i32(500);
    b.put_i32(1);
    b.put_i32(1 << 20);
    b.put_i8(0);
    b.put_i32(0); // session id
    b.put_i32(-1); // session epoch
    b.put_slice(&VARINT_MAX);
    add("Fetch v12 topics (compact)", b);

    let mut b = header(ApiKey::OffsetCommit, 2, false);
    b.put_i16(1);
    b.put_slice(b"g");
    b.put_i32(-1);
    b.put_i16(0);
    b.put_i64(-1);
    b.put_slice(&I32_MAX);
    add("OffsetCommit v2 topics", b);

    let mut b = header(ApiKey::JoinGroup, 5, false);
    b.put_i16(1);
    b.put_slice(b"g");
    b.put_i32(10_000);
    b.put_i32(10_000);
    b.put_i16(0);
    b.put_i16(-1); // group instance id
    b.put_i16(8);
    b.put_slice(b"consumer");
    b.put_slice(&I32_MAX);
    add("JoinGroup v5 protocols", b);

    let mut b = header(ApiKey::ApiVersions, 3, true);
    b.put_slice(&VARINT_MAX);
    add("ApiVersions v3 client software name length", b);

    let mut b = header(ApiKey::SyncGroup, 0, false);
    b.put_i16(1);
    b.put_slice(b"g");
    b.put_i32(1);
    b.put_i16(1);
    b.put_slice(b"m");
    b.put_i32(1);
    b.put_i16(1);
    b.put_slice(b"m");
    b.put_slice(&I32_MAX); // assignment bytes
    add("SyncGroup v0 assignment length", b);

    let mut b = header(ApiKey::ListOffsets, 1, false);
    b.put_i32(-1);
    b.put_slice(&I32_MAX);
    add("ListOffsets v1 topics", b);
    probes
}

/// A small deterministic generator (xorshift), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

// ---------------------------------------------------------------------------
// Decoding

#[test]
fn huge_counts_close_only_their_connection() {
    let broker = Broker::start_with(BrokerOptions::default().shards(2));
    let mut trips = RoundTrips::new(&broker, "huge-counts");
    let baseline = rss_kib(&broker);
    let mut bystander = Conn::connect(broker.addr());
    bystander.api_versions();
    for (what, frame) in huge_count_probes() {
        assert_closes(&broker, what, &frame);
    }
    // Every probe again, 20 times over, pipelined on one connection each.
    for _ in 0..20 {
        for (_, frame) in huge_count_probes() {
            let mut stream = connect(broker.addr());
            let _ = stream.write_all(&frame);
        }
    }
    bystander.api_versions();
    trips.check(&broker, "huge counts");
    // The old decoder asked for 154 GB on the first probe.
    assert_rss_within(&broker, baseline, 64 * MIB, "after huge counts");
}

#[test]
fn truncated_lying_and_unknown_frames_close_the_connection() {
    let broker = Broker::start();
    let mut trips = RoundTrips::new(&broker, "lying-frames");
    let baseline = rss_kib(&broker);

    // Prefix says more than the body, then the client stops sending.
    let mut metadata = header(ApiKey::Metadata, 1, false);
    metadata.put_i32(0);
    let mut longer = ((metadata.len() + 100) as i32).to_be_bytes().to_vec();
    longer.extend_from_slice(&metadata);
    let mut stream = connect(broker.addr());
    stream.write_all(&longer).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    assert!(
        closed_within(&mut stream, CLOSE_TIMEOUT),
        "a frame cut by the client's close"
    );

    // Prefix says less than the body: the rest is taken as the next frame.
    let mut shorter = 10i32.to_be_bytes().to_vec();
    shorter.extend_from_slice(&metadata);
    shorter.extend_from_slice(&[0xee; 32]);
    assert_closes(&broker, "prefix shorter than the body", &shorter);

    // A valid Produce v9 cut at every length, the prefix telling the truth.
    let mut produce = header(ApiKey::Produce, 9, true);
    produce.put_u8(0);
    produce.put_i16(1);
    produce.put_i32(30_000);
    produce.put_u8(2);
    produce.put_u8(2);
    produce.put_slice(b"t");
    produce.put_u8(2);
    produce.put_i32(0);
    produce.put_u8(5);
    produce.put_slice(&[1, 2, 3, 4]);
    produce.put_u8(0);
    produce.put_u8(0);
    produce.put_u8(0);
    for cut in 8..produce.len() - 1 {
        assert_closes(
            &broker,
            &format!("Produce v9 cut at {cut}"),
            &frame(&produce[..cut]),
        );
    }

    for (what, body) in [
        ("unknown api key", header_raw(9_999, 0)),
        (
            "api key corelog does not serve (AddPartitionsToTxn)",
            header_raw(24, 0),
        ),
        ("Metadata v99", header_raw(3, 99)),
        ("Produce v2 (below the served range)", header_raw(0, 2)),
        ("negative api key", header_raw(-5, 0)),
    ] {
        assert_closes(&broker, what, &frame(&body));
    }
    for (what, prefix) in [
        ("negative size", -1i32),
        ("zero size", 0),
        ("size 7", 7),
        ("size past socket.request.max.bytes", (100 << 20) + 1),
        ("size i32::MAX", i32::MAX),
    ] {
        let mut bytes = prefix.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 16]);
        assert_closes(&broker, what, &bytes);
    }

    // Only Produce may be larger than 8 MiB: a 9 MiB Metadata request is
    // refused from its prefix and api key, before its body is read (this
    // test sends none of it).
    let mut metadata_9_mib = (9i32 << 20).to_be_bytes().to_vec();
    metadata_9_mib.extend_from_slice(&header_raw(3, 9));
    assert_closes(&broker, "a 9 MiB Metadata request", &metadata_9_mib);

    // ApiVersions at an unknown version is answered in v0 (KIP-511).
    let mut stream = connect(broker.addr());
    stream.write_all(&frame(&header_raw(18, 127))).unwrap();
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).unwrap();
    let mut body = Bytes::from(body);
    let _ = ResponseHeader::decode(&mut body, 0).unwrap();
    let response = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(response.error_code, 35, "UNSUPPORTED_VERSION");

    trips.check(&broker, "lying frames");
    assert_rss_within(&broker, baseline, 64 * MIB, "after lying frames");
}

/// Api key, version, correlation id and a client id "h".
fn header_raw(key: i16, version: i16) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&key.to_be_bytes());
    b.extend_from_slice(&version.to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&1i16.to_be_bytes());
    b.push(b'h');
    b
}

#[test]
fn random_bytes_do_not_hurt_the_broker() {
    let broker = Broker::start_with(BrokerOptions::default().shards(2));
    let mut trips = RoundTrips::new(&broker, "random-bytes");
    let baseline = rss_kib(&broker);
    let mut rng = Rng(0x5eed_c0de_1234_5678);
    for round in 0..10 {
        let mut open = Vec::new();
        for i in 0..30 {
            let mut stream = connect(broker.addr());
            let bytes = match (round + i) % 3 {
                // Pure noise.
                0 => {
                    let len = (rng.next() % 8192) as usize;
                    rng.bytes(len)
                }
                // A plausible frame of noise.
                1 => {
                    let len = 8 + (rng.next() % 4096) as usize;
                    frame(&rng.bytes(len))
                }
                // A served API key and version, then noise.
                _ => {
                    let mut body = header_raw(
                        [0, 1, 3, 8, 9, 11, 19, 32][(rng.next() % 8) as usize],
                        (rng.next() % 10) as i16,
                    );
                    let len = (rng.next() % 512) as usize;
                    body.extend_from_slice(&rng.bytes(len));
                    frame(&body)
                }
            };
            let _ = stream.write_all(&bytes);
            open.push(stream);
        }
        drop(open);
    }
    trips.check(&broker, "random bytes");
    assert_rss_within(&broker, baseline, 64 * MIB, "after random bytes");
}

// ---------------------------------------------------------------------------
// Resources

#[test]
fn forty_prefixes_of_100_mib_take_no_memory() {
    let broker = Broker::start_with(BrokerOptions::default().shards(2));
    let mut trips = RoundTrips::new(&broker, "prefixes");
    let baseline = rss_kib(&broker);
    // The issue: each 4-byte prefix used to reserve and zero 100 MiB.
    let prefixes: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut stream = connect(broker.addr());
            stream.write_all(&(100i32 << 20).to_be_bytes()).unwrap();
            stream
        })
        .collect();
    thread::sleep(Duration::from_secs(1));
    assert_rss_within(&broker, baseline, 32 * MIB, "40 prefixes of 100 MiB");
    // Small requests still pass the frames waiting for request memory.
    trips.check(&broker, "40 prefixes of 100 MiB");
    // Now 1 MiB behind each prefix: memory follows what arrived, and frames
    // beyond a shard's share of queued.max.request.bytes wait unread.
    let chunk = vec![0u8; 1 << 20];
    let mut prefixes = prefixes;
    for stream in &mut prefixes {
        let _ = stream.set_write_timeout(Some(Duration::from_millis(500)));
        let _ = stream.write_all(&chunk);
    }
    thread::sleep(Duration::from_secs(1));
    assert_rss_within(&broker, baseline, 96 * MIB, "40 prefixes with 1 MiB each");
    trips.check(&broker, "40 partial 100 MiB frames");
    drop(prefixes);
}

#[test]
fn five_thousand_idle_connections_are_served_and_their_memory_returns() {
    let mut broker = Broker::start_with(BrokerOptions::default().shards(2));
    let mut trips = RoundTrips::new(&broker, "idle");
    let baseline = rss_kib(&broker);
    let started = Instant::now();
    let mut conns = Vec::with_capacity(5000);
    for _ in 0..5000 {
        conns.push(Conn::connect(broker.addr()));
    }
    // Each one served: an ApiVersions round trip on every connection.
    for conn in &mut conns {
        conn.api_versions();
    }
    eprintln!(
        "5,000 connections opened and served in {:?}",
        started.elapsed()
    );
    trips.check(&broker, "5,000 idle connections open");
    // Measured about 9 KiB each (task, channels, socket state, a 4 KiB
    // read buffer); bound at 16 KiB.
    let open = assert_rss_within(&broker, baseline, 5000 * 16, "5,000 idle connections");
    drop(conns);
    // Closed connections' memory goes back to the kernel at the next trim.
    let closed = Instant::now();
    let deadline = closed + Duration::from_secs(20);
    let mut rss = rss_kib(&broker);
    while rss > baseline + 16 * MIB && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(250));
        rss = rss_kib(&broker);
    }
    eprintln!(
        "RSS: baseline {} MiB, 5,000 open {} MiB, {} MiB {:?} after closing them",
        baseline / MIB,
        open / MIB,
        rss / MIB,
        closed.elapsed()
    );
    assert_rss_within(
        &broker,
        baseline,
        16 * MIB,
        "after 5,000 connections closed",
    );
    trips.check(&broker, "5,000 connections closed");
    let (status, out) = broker.terminate();
    assert!(status.success(), "{out}");
    assert!(common_stat(&out, "memory_trims") >= 1, "{out}");
}

#[test]
fn idle_connections_close_but_long_polls_do_not() {
    let mut broker = Broker::start_with(
        BrokerOptions::default().override_config("connections.max.idle.ms", "1500"),
    );
    let mut trips = RoundTrips::new(&broker, "idle-close");
    let mut idle = connect(broker.addr());
    let started = Instant::now();
    assert!(
        closed_within(&mut idle, Duration::from_secs(6)),
        "an idle connection stays open"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1400),
        "closed after {waited:?}, before the idle bound"
    );
    // A fetch that waits 2.5 s at the broker outlasts the idle bound and
    // is still answered.
    broker.create_topic("idle-poll", 1, &[]);
    let mut conn = Conn::connect(broker.addr());
    let version = conn.api_versions().pick(ApiKey::Fetch, 12);
    let started = Instant::now();
    let response = conn.fetch(version, "idle-poll", 0, 0, 2500);
    assert_eq!(response.responses[0].partitions[0].error_code, 0);
    assert!(
        started.elapsed() >= Duration::from_millis(2000),
        "the fetch did not wait: {:?}",
        started.elapsed()
    );
    // And the connection still serves.
    conn.api_versions();
    trips.check(&broker, "idle closes");
    let (status, out) = broker.terminate();
    assert!(status.success(), "{out}");
    let closed: u64 = common_stat(&out, "connections_idle_closed");
    assert!(closed >= 1, "connections_idle_closed={closed}\n{out}");
}

/// Sum of one shard-stats field over the shards.
fn common_stat(out: &str, key: &str) -> u64 {
    out.lines()
        .filter(|l| l.contains("shard-stats "))
        .flat_map(|l| l.split_whitespace())
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| v.parse::<u64>().unwrap())
        .sum()
}

#[test]
fn slowloris_frames_are_cut_at_their_deadline() {
    // connections.max.idle.ms of 3 s makes the frame deadline 3 s too.
    let mut broker = Broker::start_with(
        BrokerOptions::default()
            .shards(2)
            .override_config("connections.max.idle.ms", "3000"),
    );
    let mut trips = RoundTrips::new(&broker, "slowloris");
    let baseline = rss_kib(&broker);
    let mut streams: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut stream = connect(broker.addr());
            stream.write_all(&1000i32.to_be_bytes()).unwrap();
            stream
        })
        .collect();
    // One byte per connection every 200 ms, for at most 8 s.
    let started = Instant::now();
    let mut open = streams.len();
    while open > 0 && started.elapsed() < Duration::from_secs(8) {
        open = 0;
        for stream in &mut streams {
            if stream.write_all(&[0]).is_ok() {
                open += 1;
            }
        }
        thread::sleep(Duration::from_millis(200));
    }
    for stream in &mut streams {
        assert!(
            closed_within(stream, Duration::from_secs(2)),
            "a slowloris connection is open after {:?}",
            started.elapsed()
        );
    }
    trips.check(&broker, "100 slowloris connections");
    assert_rss_within(&broker, baseline, 32 * MIB, "after slowloris");
    let (status, out) = broker.terminate();
    assert!(status.success(), "{out}");
    assert_eq!(common_stat(&out, "frames_timed_out"), 100, "{out}");
    assert!(out.contains("did not arrive within 3s"), "{out}");
}

#[test]
fn a_client_that_never_reads_is_cut_off() {
    let broker = Broker::start_with(
        BrokerOptions::default().override_config("connections.max.idle.ms", "3000"),
    );
    let mut trips = RoundTrips::new(&broker, "never-reads");
    // 4 MB of records to fetch, again and again.
    broker.create_topic("big", 1, &[]);
    {
        use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
        let producer: ThreadedProducer<DefaultProducerContext> =
            broker.producer_config().create().unwrap();
        let value = vec![b'v'; 100_000];
        for _ in 0..40 {
            producer
                .send(BaseRecord::<(), [u8]>::to("big").payload(&value[..]))
                .map_err(|(e, _)| e)
                .unwrap();
        }
        producer.flush(Duration::from_secs(30)).unwrap();
    }
    let baseline = rss_kib(&broker);
    let version = Conn::connect(broker.addr())
        .api_versions()
        .pick(ApiKey::Fetch, 12);
    // Each answer is 1 MiB of records.
    let mut request = common::raw::fetch_request("big", 0, 0, 0);
    request.max_bytes = 1 << 20;
    request.topics[0].partitions[0].partition_max_bytes = 1 << 20;
    let fetch = {
        use kafka_protocol::protocol::Encodable;
        let mut b = header(ApiKey::Fetch, version, version >= 12);
        request.encode(&mut b, version).unwrap();
        frame(&b)
    };
    // Fetches as fast as the broker takes them, never reading an answer.
    let mut stream = connect(broker.addr());
    stream
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(15) && stream.write_all(&fetch).is_ok() {
        sent += 1;
    }
    eprintln!(
        "the broker stopped reading after {sent} fetches ({:?})",
        started.elapsed()
    );
    assert!(sent < 100_000, "the broker kept reading requests");
    // Answers held for this client: at most CONNECTION_RESPONSE_BYTES_QUEUED_MAX
    // (64 MiB) plus what the requests in flight (64) make, 1 MiB each.
    assert_rss_within(&broker, baseline, 160 * MIB, "a client that never reads");
    assert!(
        closed_or_flooding_within(&mut stream, Duration::from_secs(15)),
        "the connection of a client that reads nothing is still open"
    );
    let log = broker.stderr();
    assert!(
        log.contains("the client did not read a"),
        "the broker does not say why it cut the client off:\n{log}"
    );
    trips.check(&broker, "a client that never reads");
}

/// Whether the broker closes `stream` within `timeout`, reading (and
/// discarding) whatever answers were already on their way first.
fn closed_or_flooding_within(stream: &mut TcpStream, timeout: Duration) -> bool {
    // Let the broker time out first, then drain what the socket holds.
    thread::sleep(Duration::from_secs(5));
    let deadline = Instant::now() + timeout;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = vec![0u8; 1 << 20];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn connection_limits_refuse_the_extra_connection() {
    let mut broker = Broker::start_with(
        BrokerOptions::default()
            .shards(2)
            .override_config("max.connections", "8")
            .override_config("max.connections.per.ip", "4")
            .override_config("max.connections.per.ip.overrides", "127.0.0.1:6"),
    );
    // The harness's readiness probe may still hold a slot for a moment.
    thread::sleep(Duration::from_millis(500));
    let from = |ip: &str| {
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let local: SocketAddr = format!("{ip}:0").parse().unwrap();
        socket.bind(&local.into()).unwrap();
        socket
            .connect_timeout(&broker.addr().into(), Duration::from_secs(5))
            .unwrap();
        let stream: TcpStream = socket.into();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    };
    let served = |stream: &mut TcpStream| {
        let mut request = header_raw(18, 0);
        request = frame(&request);
        stream.write_all(&request).is_ok() && {
            let mut size = [0u8; 4];
            stream.read_exact(&mut size).is_ok()
        }
    };
    // The override lets 127.0.0.1 have 6.
    let mut local: Vec<TcpStream> = (0..6).map(|_| from("127.0.0.1")).collect();
    for stream in &mut local {
        assert!(served(stream), "one of the first 6 from 127.0.0.1 refused");
    }
    let mut extra = from("127.0.0.1");
    assert!(
        closed_within(&mut extra, CLOSE_TIMEOUT),
        "the 7th from 127.0.0.1"
    );
    // 127.0.0.2 has the plain per-ip limit (4), but only 2 fit under
    // max.connections (8).
    let mut other: Vec<TcpStream> = (0..2).map(|_| from("127.0.0.2")).collect();
    for stream in &mut other {
        assert!(served(stream), "127.0.0.2 refused under every limit");
    }
    let mut over_total = from("127.0.0.2");
    assert!(
        closed_within(&mut over_total, CLOSE_TIMEOUT),
        "the 9th connection"
    );
    // A place freed is a place taken.
    drop(local.pop());
    thread::sleep(Duration::from_millis(300));
    let mut again = from("127.0.0.2");
    assert!(served(&mut again), "a freed place");
    drop((local, other, again));
    let (status, out) = broker.terminate();
    assert!(status.success(), "{out}");
    assert_eq!(common_stat(&out, "connections_refused"), 2, "{out}");
}

// ---------------------------------------------------------------------------
// Defense in depth

#[test]
fn a_panicking_request_closes_only_its_connection() {
    let mut broker = Broker::start_with(
        BrokerOptions::default()
            .shards(2)
            .env("CORELOG_TEST_PANIC_CLIENT_ID", "boom"),
    );
    let mut trips = RoundTrips::new(&broker, "panics");
    let mut bystander = Conn::connect(broker.addr());
    bystander.api_versions();
    for _ in 0..3 {
        let mut body = BytesMut::new();
        body.put_i16(ApiKey::Metadata as i16);
        body.put_i16(1);
        body.put_i32(42);
        body.put_i16(4);
        body.put_slice(b"boom");
        body.put_i32(0);
        assert_closes(&broker, "a request whose handler panics", &frame(&body));
    }
    bystander.api_versions();
    trips.check(&broker, "panicking requests");
    let (status, out) = broker.terminate();
    assert!(status.success(), "{out}");
    assert_eq!(common_stat(&out, "request_panics"), 3, "{out}");
    assert!(
        out.contains("Metadata v1 request (correlation id 42, client id \"boom\") panicked"),
        "{out}"
    );
}

// ---------------------------------------------------------------------------
// The CLI decoding a hostile broker's answers

#[test]
fn the_cli_refuses_a_broker_answering_huge_counts() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        // Answer every request (ApiVersions v3, then the v0 retry) with a
        // response whose api_keys array claims more entries than exist.
        for _ in 0..2 {
            let mut prefix = [0u8; 4];
            if socket.read_exact(&mut prefix).is_err() {
                return;
            }
            let mut request = vec![0u8; i32::from_be_bytes(prefix) as usize];
            socket.read_exact(&mut request).unwrap();
            let version = i16::from_be_bytes([request[2], request[3]]);
            let mut body = request[4..8].to_vec(); // correlation id
            body.extend_from_slice(&0i16.to_be_bytes());
            if version >= 3 {
                body.extend_from_slice(&VARINT_MAX);
            } else {
                body.extend_from_slice(&I32_MAX);
            }
            let _ = socket.write_all(&frame(&body));
        }
    });
    let run = common::corelog(
        &["topics", "--bootstrap-server", &addr.to_string(), "--list"],
        "",
    );
    assert!(!run.success(), "{run:?}");
    assert_eq!(
        run.status.code(),
        Some(1),
        "an error exit, not a signal: {run:?}"
    );
    assert!(run.stderr.contains("exceeds"), "{run:?}");
    peer.join().unwrap();
}
