//! Every finding of the fuzz targets (`fuzz/`), as a test that feeds the
//! input the fuzzer found (minimized) to the same entry point: raw frames to
//! a running broker for the request path, a fake broker for what the CLI
//! decodes, and the decoding function itself where a failure is a panic the
//! test can observe. Each test failed while its defect was there and
//! passes since it was fixed (fuzz/FINDINGS.md names the fix of each); a
//! test whose fix is not merged yet is `#[ignore = "fixed by branch X"]`.
//! fuzz/README.md says how to reproduce a finding with the fuzz target
//! itself.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use common::raw::Conn;
use common::Broker;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, MetadataResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable};

/// How long a CLI run against a fake broker may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the broker may take to close a connection it refuses.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

fn unhex(hex: &str) -> Vec<u8> {
    let hex: String = hex.chars().filter(|c| !c.is_whitespace()).collect();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// A new connection still gets ApiVersions answered: the broker survived.
fn assert_serving(broker: &mut Broker) {
    broker.assert_running();
    let mut conn = Conn::connect(broker.addr());
    conn.api_versions();
}

/// Sends a request frame the fuzzer found on a fresh connection: the broker
/// may answer or close that connection, and must keep serving others.
fn send_and_survive(broker: &mut Broker, body: &[u8]) {
    let mut conn = Conn::connect(broker.addr());
    let _ = conn.send_bytes(&frame(body));
    // Either an answer or a close; both are fine, a dead broker is not.
    let _ = conn.closed_within(CLOSE_TIMEOUT);
    assert_serving(broker);
}

// ---------------------------------------------------------------------------
// request: the request path from frame bytes

/// fuzz target `request`, 2026-12-06: AlterConfigs v0 whose resources array
/// claims 671,088,773 elements in a 14-byte frame. kafka-protocol 0.18
/// pre-allocates the array from the count (`Vec::with_capacity`, 59 GB) and
/// the allocator aborts the broker. Same cause as issue 10's Metadata probe;
/// the fuzzer found it in every request type with an array within seconds.
#[test]
fn request_with_a_huge_array_count_does_not_abort_the_broker() {
    let mut broker = Broker::start();
    send_and_survive(&mut broker, &unhex("0021 0000 0080 0028 ffff 2800 0085"));
}

/// fuzz target `request`, 2026-12-06, second smoke run (crash-391c0692...,
/// a Produce v11 frame from the recorded corpus with a partition-level
/// tagged field whose tag is 2^31 or more; the same in `peer_response` with
/// a Fetch v12 response, crash-92c041ea...): kafka-protocol files such a tag
/// under a negative key, and its encoders counted it but never wrote it, so
/// a decoded message encoded to bytes that did not decode (or decoded to
/// another message: here the tag turned up one level up). What the broker
/// decodes must encode back to the same request.
#[test]
fn a_request_with_a_tag_past_i32_max_encodes_back_to_itself() {
    use corelog::server::dispatch::{parse, Parsed};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, RequestKind, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let mut partition = PartitionProduceData::default()
        .with_index(0)
        .with_records(Some(Bytes::from(valid_batch(1))));
    // Tag 2^31 + 1, as the decoder files it; and an ordinary unknown tag.
    partition
        .unknown_tagged_fields
        .insert(i32::MIN + 1, Bytes::from_static(b"\n\n"));
    partition
        .unknown_tagged_fields
        .insert(10, Bytes::from_static(b"\x0a\x00"));
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partition_data(vec![partition])]);
    let version = 11;
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(version)
        .with_correlation_id(7);
    let mut frame = BytesMut::new();
    header
        .encode(&mut frame, ApiKey::Produce.request_header_version(version))
        .unwrap();
    request.encode(&mut frame, version).unwrap();
    match parse(frame.freeze()) {
        Ok(Parsed::Request { body, .. }) => {
            assert_eq!(*body, RequestKind::Produce(request), "the request changed")
        }
        Ok(_) => panic!("the frame parsed as something else"),
        Err(e) => panic!("the encoded request does not parse: {e}"),
    }
}

// ---------------------------------------------------------------------------
// peer_response: responses the CLI and the replication client decode

/// A broker that answers ApiVersions (serving ApiVersions, Metadata and
/// ListGroups v0 only), Metadata (no brokers, no topics) and then answers
/// every other request with `hostile` (a response body after its
/// correlation id). Returns its port; serves one connection.
fn fake_broker(hostile: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        stream.set_read_timeout(Some(CLI_TIMEOUT)).unwrap();
        loop {
            let mut size = [0u8; 4];
            if stream.read_exact(&mut size).is_err() {
                return;
            }
            let mut body = vec![0u8; u32::from_be_bytes(size) as usize];
            if stream.read_exact(&mut body).is_err() {
                return;
            }
            let mut request = Bytes::from(body);
            let key = i16::from_be_bytes([request[0], request[1]]);
            let version = i16::from_be_bytes([request[2], request[3]]);
            let api = ApiKey::try_from(key).expect("the CLI sends known keys");
            let header = RequestHeader::decode(&mut request, api.request_header_version(version))
                .expect("the CLI sends valid headers");
            let mut out = BytesMut::new();
            ResponseHeader::default()
                .with_correlation_id(header.correlation_id)
                .encode(&mut out, api.response_header_version(version))
                .unwrap();
            match api {
                ApiKey::ApiVersions => {
                    let served = |key: ApiKey, max: i16| {
                        ApiVersion::default()
                            .with_api_key(key as i16)
                            .with_min_version(0)
                            .with_max_version(max)
                    };
                    ApiVersionsResponse::default()
                        .with_api_keys(vec![
                            served(ApiKey::ApiVersions, 3),
                            served(ApiKey::Metadata, 12),
                            served(ApiKey::ListGroups, 0),
                        ])
                        .encode(&mut out, version)
                        .unwrap();
                }
                ApiKey::Metadata => MetadataResponse::default()
                    .encode(&mut out, version)
                    .unwrap(),
                _ => out.put_slice(&hostile),
            }
            let reply = frame(&out);
            if stream.write_all(&reply).is_err() {
                return;
            }
        }
    });
    port
}

/// Runs `corelog ARGS` with a deadline; returns (exit code, stderr). A run
/// killed by a signal (an abort) has no exit code.
fn cli(args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_corelog"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn corelog");
    let deadline = Instant::now() + CLI_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            return (status.code(), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("corelog {args:?} still running after {CLI_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// fuzz target `peer_response`, 2026-12-06: a ListGroups v0 response whose
/// groups array claims 16,843,008 elements, which kafka-protocol
/// pre-allocates (2.5 GB from 10 bytes; the fuzzer's 256 MB allocation limit
/// caught it). With the count raised to 2^31-1 (the same input otherwise)
/// the allocation is 326 GB and aborts: `corelog consumer-groups --list`
/// against such a broker must fail with an error message instead.
#[test]
fn cli_refuses_a_response_with_a_huge_array_count() {
    // After the correlation id: error code, then the groups array count.
    let port = fake_broker(unhex("eb01 7fff ffff"));
    let (code, err) = cli(&[
        "consumer-groups",
        "--bootstrap-server",
        &format!("127.0.0.1:{port}"),
        "--list",
    ]);
    assert!(
        code.is_some_and(|c| c != 0),
        "the CLI must exit with an error, got {code:?}: {err}"
    );
}

// ---------------------------------------------------------------------------
// log_recovery: opening a partition log over damaged files

mod mem_log {
    use std::path::{Path, PathBuf};

    use corelog::io::{write_whole_file, Disk, MemDisk};
    use corelog::log::{LogConfig, PartitionLog, START_CHECKPOINT_FILE, TRUNCATE_INTENT_FILE};

    pub const DIR: &str = "/mem/topic-0";

    pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        futures_lite::future::block_on(f)
    }

    /// The files of a `log_recovery` fuzz input on a memory disk, as the
    /// target writes them: `[control]` then `[kind][base i64 LE][len u32
    /// LE][content]` (see fuzz/fuzz_targets/log_recovery.rs).
    pub fn disk_from_fuzz_input(data: &[u8]) -> (MemDisk, LogConfig) {
        let control = data[0];
        let disk = MemDisk::new();
        let dir = PathBuf::from(DIR);
        block_on(disk.create_dir_all(&dir)).unwrap();
        let mut at = 1;
        let take = |at: &mut usize, n: usize| {
            let end = (*at + n).min(data.len());
            let out = &data[*at..end];
            *at = end;
            out
        };
        for _ in 0..16 {
            if at >= data.len() {
                break;
            }
            let kind = take(&mut at, 1)[0];
            let mut b = [0u8; 8];
            let raw = take(&mut at, 8);
            b[..raw.len()].copy_from_slice(raw);
            let base = i64::from_le_bytes(b) & i64::MAX;
            let mut l = [0u8; 4];
            let raw = take(&mut at, 4);
            l[..raw.len()].copy_from_slice(raw);
            let mut content = take(&mut at, u32::from_le_bytes(l) as usize).to_vec();
            if control & 1 != 0 && matches!(kind % 9, 0 | 5 | 6) {
                fix_batch_crcs(&mut content);
            }
            let name = match kind % 9 {
                0 => format!("{base:020}.log"),
                1 => format!("{base:020}.index"),
                2 => format!("{base:020}.timeindex"),
                3 => START_CHECKPOINT_FILE.to_string(),
                4 => TRUNCATE_INTENT_FILE.to_string(),
                5 => format!("{base:020}.log.swap"),
                6 => format!("{base:020}.log.cleaned"),
                7 => format!("{base:020}.index.swap"),
                _ => format!("{TRUNCATE_INTENT_FILE}.tmp"),
            };
            block_on(write_whole_file(
                &disk,
                &Path::new(DIR).join(name),
                &content,
            ))
            .unwrap();
        }
        let (segment_bytes, index_interval_bytes) = match (control >> 1) & 3 {
            0 => (1024 * 1024 * 1024, 4096),
            1 => (1024, 1),
            2 => (16 * 1024, 512),
            _ => (100, 64),
        };
        let config = LogConfig {
            segment_bytes,
            index_interval_bytes,
            ..LogConfig::default()
        };
        (disk, config)
    }

    /// Recomputes the CRC32C of every whole batch at the front of `buf`, as
    /// the fuzz targets do so that mutations reach the code behind it.
    pub fn fix_batch_crcs(buf: &mut [u8]) {
        let mut pos = 0;
        while buf.len() - pos >= 61 {
            let length = i32::from_be_bytes(buf[pos + 8..pos + 12].try_into().unwrap());
            let Ok(length) = usize::try_from(length) else {
                break;
            };
            let total = 12 + length;
            if total < 61 || total > buf.len() - pos {
                break;
            }
            let crc = crc32c::crc32c(&buf[pos + 21..pos + total]);
            buf[pos + 17..pos + 21].copy_from_slice(&crc.to_be_bytes());
            pos += total;
        }
    }

    pub fn open(disk: &MemDisk, config: &LogConfig) -> Option<PartitionLog<MemDisk>> {
        block_on(PartitionLog::open_on(
            disk.clone(),
            Path::new(DIR),
            config.clone(),
        ))
        .ok()
    }
}

/// A valid uncompressed batch of `count` records (keys `k<i>`), base offset 0.
fn valid_batch(count: i32) -> Vec<u8> {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            sequence: i,
            timestamp: 1_700_000_000_000,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from_static(b"v")),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.to_vec()
}

/// Writes `files` (name, content) into the memory disk's partition directory.
fn mem_partition(files: &[(&str, Vec<u8>)]) -> corelog::io::MemDisk {
    use corelog::io::Disk;
    let disk = corelog::io::MemDisk::new();
    let dir = Path::new(mem_log::DIR);
    mem_log::block_on(disk.create_dir_all(dir)).unwrap();
    for (name, content) in files {
        mem_log::block_on(corelog::io::write_whole_file(
            &disk,
            &dir.join(name),
            content,
        ))
        .unwrap();
    }
    disk
}

/// fuzz target `log_recovery`, 2026-12-06 (inputs crash-a0ea063f...,
/// crash-17eec4de..., crash-45809ca6... and five more; reduced by hand to
/// the mechanism): a valid segment, then a closed segment whose bytes are
/// not a batch, then an active one that is not either. The first open keeps
/// only the valid segment (end offset 3) but leaves the damaged closed
/// segment's files behind (cut to 0 bytes, with freshly written indexes), so
/// the next open takes that empty file as the active segment and the log
/// end jumps to its base (1000): a restart moves where the next produce
/// lands, and a follower's log end diverges from its leader's. Recovery
/// must reach the same offsets however often it runs.
#[test]
fn log_recovery_is_idempotent_over_a_damaged_closed_segment() {
    let disk = mem_partition(&[
        ("00000000000000000000.log", valid_batch(3)),
        ("00000000000000001000.log", vec![2]),
        ("00000000000000005000.log", vec![0; 64]),
    ]);
    let config = corelog::log::LogConfig::default();
    let first = mem_log::open(&disk, &config).expect("the log opens");
    let (start, end) = (first.start_offset(), first.end_offset());
    drop(first);
    let second = mem_log::open(&disk, &config).expect("the log opens again");
    assert_eq!(
        (second.start_offset(), second.end_offset()),
        (start, end),
        "a second open moved the log's offsets"
    );
}

/// fuzz target `log_recovery`, 2026-12-06 (crash-64df536e..., minimized):
/// a cleaner `.swap` segment (and, in other inputs, a closed segment whose
/// indexes are rebuilt) holding a CRC-valid batch more than 2^32 offsets
/// past the segment's base. Recovery panics in `Segment::rel` ("relative
/// offsets fit u32") at every start, so the broker cannot start. Such a
/// batch must be handled as corruption (Kafka splits or refuses the segment:
/// LogSegmentOffsetOverflowException), never a panic.
#[test]
fn log_recovery_does_not_panic_on_a_batch_far_past_its_segment_base() {
    let input = unhex(
        "017a016bdd0000350000000000000000f6000000000000000000696e6400000000\
         000000000032000000000201ca030b6531030b6500000000030b65ca31030b6531\
         030bf4030b65030b650b650000f40000030b6531030b65",
    );
    let (disk, config) = mem_log::disk_from_fuzz_input(&input);
    // Opening may refuse the log; it must not panic.
    let _ = mem_log::open(&disk, &config);
}

/// fuzz target `log_recovery`, 2026-12-06, second smoke run
/// (crash-d9111dd7..., reduced by hand to the mechanism): an active segment
/// whose only batch recovery cuts (here: its CRC does not match), and a
/// log-start checkpoint (DeleteRecords) at 5. The first open clamped the
/// start to the log end (0) in memory only; three records appended and
/// flushed then took offsets 0..2, and the next open read the checkpoint
/// again and moved the start to 3: acknowledged records vanished from the
/// log. The log must open to the same offsets every time and keep what it
/// acknowledged.
#[test]
fn log_start_checkpoint_ahead_of_a_cut_log_does_not_hide_new_records() {
    let mut damaged = valid_batch(4);
    let n = damaged.len();
    damaged[n - 1] ^= 0x55;
    let disk = mem_partition(&[
        ("00000000000000000000.log", damaged),
        ("log-start-offset-checkpoint", b"0\n5\n".to_vec()),
    ]);
    let config = corelog::log::LogConfig::default();
    let mut log = mem_log::open(&disk, &config).expect("the log opens");
    let start = log.start_offset();
    let info = log.append(&valid_batch(3), None).expect("appends");
    let job = log.take_flush().expect("a flush is due");
    let outcome = mem_log::block_on(job.run(true));
    let end = log.complete_flush(outcome).expect("flushes");
    assert_eq!(end, info.last_offset + 1);
    drop(log);
    let again = mem_log::open(&disk, &config).expect("the log opens again");
    assert_eq!(
        (again.start_offset(), again.end_offset()),
        (start, end),
        "a reopen moved the log's offsets"
    );
    assert!(
        again.start_offset() <= info.base_offset,
        "acknowledged records at {}..={} are below the log start {}",
        info.base_offset,
        info.last_offset,
        again.start_offset()
    );
}

/// fuzz target `log_recovery`, 2026-12-06 (crash-0cee370e...): a segment
/// file named `09223372036854775807.log` (base offset i64::MAX). The log
/// opens with its end at i64::MAX and the next append computes its last
/// offset as i64::MAX + 2: an overflow panic where overflow checks are on;
/// in the release broker the offset wraps negative and `Segment::account`'s
/// `last >= base` assertion panics. A log must refuse offsets it cannot
/// represent (refuse to open such a segment, or refuse the append).
#[test]
fn log_never_hands_out_offsets_past_i64_max() {
    let disk = mem_partition(&[("09223372036854775807.log", b"8".to_vec())]);
    let Some(mut log) = mem_log::open(&disk, &corelog::log::LogConfig::default()) else {
        return; // refusing the segment is a fix
    };
    match log.append(&valid_batch(3), None) {
        Err(_) => {}
        Ok(info) => assert!(
            info.base_offset >= 0 && info.last_offset >= info.base_offset,
            "append handed out offsets {}..={}",
            info.base_offset,
            info.last_offset
        ),
    }
}

// ---------------------------------------------------------------------------
// replica_append: a follower appending what its leader's Fetch returned

/// fuzz target `replica_append`, 2026-12-06 (crash-bba96de0..., minimized):
/// a fetched record set holding one CRC-valid batch whose lastOffsetDelta is
/// negative (-43,752,072). `Partition::append_replicated` walked the fetched
/// batches with only their CRCs checked and handed each to
/// `PartitionLog::append`, whose contract is "one validated batch": the
/// segment's `last >= base` assertion panicked, so one bad batch from a
/// leader (a bug, a corrupted leader log, anything on the wire) killed the
/// follower broker. Kafka validates a follower's appends too
/// (`analyzeAndValidateRecords`). Here on a real follower partition (glommio,
/// a real disk), through what the fetcher runs: the set is refused with an
/// error before anything is appended, and the partition goes on appending
/// what its leader sends next.
#[test]
fn follower_refuses_a_fetched_batch_with_a_negative_last_offset_delta() {
    use corelog::config::TopicConfig;
    use corelog::log::CacheBudget;
    use corelog::partition::replica::{FetchedBatches, ReplicaState};
    use corelog::partition::{Partition, PartitionError};
    let mut hostile = unhex(
        "0000000000000000000000310000000002c58d9efa0000fd6465782efeffffffff\
         ffff776170310476330065782e7377617031047600782e7331047600",
    );
    mem_log::fix_batch_crcs(&mut hostile);
    let good = valid_batch(3);
    let end = glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            let root = tempfile::tempdir().unwrap();
            corelog::io::prepare_disk(root.path()).await.unwrap();
            let partition = Partition::open(
                root.path(),
                "t",
                0,
                uuid::Uuid::new_v4(),
                TopicConfig::resolve(&Default::default(), &Default::default()),
                CacheBudget::disabled(),
            )
            .await
            .unwrap();
            partition.set_replica_state(ReplicaState {
                me: 2,
                leader: 1,
                leader_epoch: 1,
                partition_epoch: 0,
                replicas: vec![1, 2],
                isr: vec![1, 2],
                replicated: true,
            });
            match FetchedBatches::check(&hostile) {
                Err(PartitionError::InvalidRecord(_)) => {}
                Ok(fetched) => {
                    // Appending it must not panic either.
                    let _ = partition.append_replicated(1, 1, &fetched);
                    panic!("a batch with a negative lastOffsetDelta was accepted");
                }
                Err(e) => panic!("refused for another reason: {e}"),
            }
            let fetched = FetchedBatches::check(&good).expect("a valid batch passes");
            let wait = partition
                .append_replicated(1, 1, &fetched)
                .expect("the follower appends what comes next")
                .expect("a new batch waits for its flush");
            drop(wait);
            partition.follower_position().1
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(end, 3, "the follower's log end after the valid batch");
}

// ---------------------------------------------------------------------------
// controller: the metadata log and what controllers are sent

/// A metadata image with topic `t` (id [`TOPIC_ID`]) whose partition 0 is
/// led by broker 1 at leader epoch 5 with ISR [1, 2].
const IMAGE_JSON: &str = r#"{"cluster_id":"c","version":3,"topics":{"t":{"name":"t",
    "id":"9f1c2f0e-3b1a-4d5e-8f00-112233445566","shards":[0],"configs":{},"replicas":[
    {"replicas":[1,2],"isr":[1,2],"leader":1,"leader_epoch":5,"partition_epoch":0}]}},
    "producer_id_block_end":0}"#;
const TOPIC_ID: &str = "9f1c2f0e-3b1a-4d5e-8f00-112233445566";

/// fuzz target `controller` (record mode), 2026-12-06, from a seed of the
/// recorded cluster's metadata log with its leader or epoch changed: a
/// committed `Partitions` record whose leader is not in its ISR, or whose
/// leader epoch goes back, trips the `assert!`s of
/// `records::apply_partition_changes` ("a leader is always in the ISR",
/// "leader epochs never go back"). Committed records come from the Raft log
/// on disk and from the leader controller; a controller must refuse such a
/// record (`Rejected`) or skip it, never panic: once committed, a panicking
/// record crash-loops every controller at every start.
#[test]
fn controller_apply_refuses_partition_changes_that_break_invariants() {
    use corelog::cluster::records::{apply, MetadataRecord};
    use corelog::metadata::Catalog;
    for (what, isr, epoch) in [
        ("leader outside the ISR", "[2]", 6),
        ("leader epoch going back", "[1,2]", 4),
    ] {
        let mut image: Catalog = serde_json::from_str(IMAGE_JSON).unwrap();
        let record: MetadataRecord = serde_json::from_str(&format!(
            r#"{{"Partitions":[{{"topic":"t","topic_id":"{TOPIC_ID}","partition":0,
                "set":{{"replicas":[1,2],"isr":{isr},"leader":1,"leader_epoch":{epoch},
                "partition_epoch":0}}}}]}}"#
        ))
        .unwrap();
        let before = image.clone();
        let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            apply(&mut image, &record, 4)
        }));
        assert!(applied.is_ok(), "{what}: applying the record panicked");
        if applied.unwrap().is_err() {
            assert_eq!(
                image.topics, before.topics,
                "{what}: a refused record changed topics"
            );
        }
    }
}

/// The same record, sent as any process that reaches the controller
/// listener can send it: a `Propose` request. The controller commits it
/// without looking at it, then panics applying it, and the record stays in
/// the log. The node must keep running (and refuse the proposal).
#[test]
fn controller_survives_a_proposal_whose_leader_is_not_in_its_isr() {
    use corelog::cluster::quorum::ControllerRequest;
    use corelog::cluster::records::{MetadataRecord, PartitionChange};
    use corelog::cluster::transport::{encode_json, Kind};
    use corelog::metadata::ReplicaSet;

    let dir = tempfile::tempdir().unwrap();
    let (port, controller_port) = (common::free_port(), common::free_port());
    let data = dir.path().join("data");
    let config = dir.path().join("node1.properties");
    std::fs::write(
        &config,
        format!(
            "process.roles=broker,controller\nnode.id=1\n\
             controller.quorum.voters=1@127.0.0.1:{controller_port}\n\
             listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
             controller.listener.names=CONTROLLER\nlog.dirs={}\n",
            data.display()
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_corelog");
    let id = Command::new(bin)
        .args(["storage", "random-uuid"])
        .output()
        .unwrap();
    let id = String::from_utf8(id.stdout).unwrap().trim().to_string();
    let formatted = Command::new(bin)
        .args(["storage", "format", "-t", &id, "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(formatted.status.success(), "format: {formatted:?}");
    let mut broker = Broker::start_with(
        common::BrokerOptions::default()
            .config_file(config, port)
            .data_dir(data)
            .create_data_dir(false),
    );
    broker.create_topic("t", 1, &[]);
    let mut conn = Conn::connect(broker.addr());
    let metadata = conn.metadata(12, &["t"]);
    let topic_id = metadata.topics[0].topic_id;

    let record = MetadataRecord::Partitions(vec![PartitionChange {
        topic: "t".into(),
        topic_id,
        partition: 0,
        set: ReplicaSet {
            replicas: vec![1],
            isr: vec![],
            leader: 1,
            leader_epoch: 1_000,
            partition_epoch: 0,
        },
        expect_partition_epoch: None,
        proposer: None,
    }]);
    let mut controller = TcpStream::connect(("127.0.0.1", controller_port)).unwrap();
    controller.set_read_timeout(Some(CLOSE_TIMEOUT)).unwrap();
    controller
        .write_all(&encode_json(
            Kind::Request,
            &ControllerRequest::Propose(record),
        ))
        .unwrap();
    // The reply (or a closed connection) comes once the record is handled.
    let mut reply = [0u8; 256];
    let _ = controller.read(&mut reply);
    thread::sleep(Duration::from_millis(500));
    assert_serving(&mut broker);
    // Nothing poisonous stayed in the metadata log either.
    broker.restart();
    assert_serving(&mut broker);
}

// ---------------------------------------------------------------------------
// Found by reading the code the fuzz targets reach, then confirmed with the
// target (an input the fuzzer had not reached in the first campaign).

/// Target `controller` (files mode), 2026-12-06: a `raft.log` of two
/// CRC-valid entry frames, index 1 then index 5. `RaftStore::new` appends
/// them to raft-rs' `MemStorage`, which panics ("raft logs should be
/// continuous, last index: 1, new appended: 5"): a damaged metadata log
/// stops the controller at every start with a panic instead of an error
/// naming the file.
#[test]
fn controller_log_with_an_index_gap_is_an_error_not_a_panic() {
    use corelog::cluster::store::{decode_files, RaftStore};
    // raft-rs Entry protobufs: term 1 (field 2), index 1 / index 5 (field 3).
    let mut log = Vec::new();
    for entry in [unhex("10011801"), unhex("10011805")] {
        log.extend_from_slice(&(entry.len() as u32).to_be_bytes());
        log.extend_from_slice(&crc32c::crc32c(&entry).to_be_bytes());
        log.extend_from_slice(&entry);
    }
    // What `RaftFiles::open` decodes the files' bytes with.
    let opened = std::panic::catch_unwind(|| match decode_files(&log, None, None) {
        Ok((loaded, _)) => RaftStore::new(vec![1], loaded).is_ok(),
        Err(_) => false,
    });
    assert!(opened.is_ok(), "opening the metadata log panicked");
}

/// fuzz target `controller`, 2026-12-06, third smoke run (crash-7c3c1225...,
/// files mode): a CRC-valid `raft.log` entry whose type is 8. prost keeps
/// the number, and raft-rs and the controller read it with
/// `Entry::get_entry_type`, which panics on a type it does not know
/// ("Unknown enum variant: 8"): at the controller's first apply, or in
/// raft-rs on becoming leader. The same holds for a Raft message from a
/// peer (its `msg_type`, its entries). Both are refused when decoded.
#[test]
fn controller_refuses_raft_entries_and_messages_of_unknown_types() {
    use corelog::cluster::store::decode_files;
    use corelog::cluster::transport::decode_raft_message;
    // Entry: entry_type 8 (field 1), term 1 (field 2), index 1 (field 3).
    let entry = unhex("0808 1001 1801");
    let mut log = Vec::new();
    log.extend_from_slice(&(entry.len() as u32).to_be_bytes());
    log.extend_from_slice(&crc32c::crc32c(&entry).to_be_bytes());
    log.extend_from_slice(&entry);
    let applied = std::panic::catch_unwind(|| match decode_files(&log, None, None) {
        // What the controller's apply and raft-rs read of every entry.
        Ok((loaded, _)) => loaded.entries.iter().all(|e| {
            let _ = e.get_entry_type();
            true
        }),
        Err(_) => false,
    });
    assert!(applied.is_ok(), "an entry of an unknown type panicked");
    // Message: msg_type 99 (field 1); then type 3 (MsgAppend) carrying the
    // same entry (field 7).
    for message in [unhex("0863"), [unhex("0803 3a06"), entry.clone()].concat()] {
        let read = std::panic::catch_unwind(|| match decode_raft_message(&message) {
            Ok(m) => {
                let _ = m.get_msg_type();
                m.entries.iter().for_each(|e| {
                    let _ = e.get_entry_type();
                });
                true
            }
            Err(_) => false,
        });
        assert!(read.is_ok(), "a raft message of an unknown type panicked");
    }
}

// ---------------------------------------------------------------------------
// partition_files: files a partition reads at start

/// Target `partition_files` (producer snapshot mode), 2026-12-06, input
/// pf-snap (hex below): a producer-state snapshot whose last batch of
/// producer 7 says it ended at offset 999,999 while the log after the
/// snapshot continues that producer at offset 5. `Partition::open` replays
/// the headers after the snapshot into the producer state, and `record`'s
/// assertion ("producer batches must be appended in offset order") panics:
/// a snapshot damaged on disk (one digit) stops the broker at every start.
/// Here on a real broker: an idempotent producer's partition rolls (which
/// writes snapshots), the broker stops, the newest snapshot's last offsets
/// are changed, and the broker must start again (a damaged snapshot is
/// ignored, as a missing one is, and the state rebuilt from the log).
///
/// The fuzz input: 01 a3000000 {"entries": {"7": {"epoch": 0, "batches":
/// [{"first_seq": 0, "last_seq": 4, "first_offset": 0, "last_offset":
/// 999999, "max_timestamp": 1}], "last_offset": 999999}}} 0500000000000000
/// and one batch header at offset 5 of producer 7, epoch 0, sequence 5.
#[test]
fn broker_starts_over_a_producer_snapshot_that_contradicts_its_log() {
    use rdkafka::producer::BaseRecord;
    let mut broker = Broker::start();
    broker.create_topic("snap", 1, &[("segment.bytes", "2048")]);
    let mut config = broker.producer_config();
    config.set("enable.idempotence", "true");
    let producer = common::logged_producer(&config);
    // One batch per round (flushed), about 17 to a segment: the newest
    // snapshot (written at a roll) has batches of the producer after it.
    let value = [b'v'; 10];
    for round in 0..40 {
        for i in 0..5usize {
            common::send_record(
                &producer,
                BaseRecord::<[u8], [u8], usize>::with_opaque_to("snap", round * 100 + i)
                    .payload(&value[..]),
            );
        }
        common::flush(&producer, Duration::from_secs(30));
    }
    drop(producer);
    let (status, out) = broker.terminate();
    assert!(status.success(), "broker exited with {status}: {out}");
    let dir = common::partition_dir(&broker, "snap", 0);
    let mut snapshots: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "snapshot"))
        .collect();
    snapshots.sort();
    let newest = snapshots
        .last()
        .expect("rolling segments wrote producer snapshots");
    let text = std::fs::read_to_string(newest).unwrap();
    let damaged = regex::Regex::new(r#""last_offset":\d+"#)
        .unwrap()
        .replace_all(&text, r#""last_offset":999999999"#);
    assert_ne!(damaged, text, "the snapshot names last offsets");
    std::fs::write(newest, damaged.as_bytes()).unwrap();
    // Starting panics (and Broker::restart reports it) while the defect is there.
    broker.restart();
    assert_serving(&mut broker);
}

/// Target `partition_files` (catalog mode), 2026-12-06: the topic catalog
/// `corelog-metadata.json` is loaded as it is; a topic name in it is not
/// checked against Kafka's rule, and each shard opens `<data dir>/<topic>-<p>`
/// for it. A damaged (or hand-edited) catalog naming topic `../escape` makes
/// the broker create and write a partition directory outside its data
/// directory. Loading must refuse such a name (an error at start, or the
/// topic skipped with a log line); nothing may be created outside the data
/// directory.
#[test]
fn catalog_topic_names_cannot_leave_the_data_directory() {
    let mut broker = Broker::start();
    broker.create_topic("inside", 1, &[]);
    let (status, out) = broker.terminate();
    assert!(status.success(), "broker exited with {status}: {out}");
    let catalog_path = broker.data_dir().join("corelog-metadata.json");
    let mut catalog: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&catalog_path).unwrap()).unwrap();
    let mut topic = catalog["topics"]["inside"].clone();
    topic["name"] = "../escape".into();
    topic["id"] = TOPIC_ID.into();
    catalog["topics"]["../escape"] = topic;
    std::fs::write(&catalog_path, serde_json::to_vec(&catalog).unwrap()).unwrap();
    let outside = broker.data_dir().parent().unwrap().join("escape-0");
    // Refusing to start is an acceptable answer; writing outside is not.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| broker.restart()));
    assert!(
        !outside.exists(),
        "the broker created {} outside its data directory",
        outside.display()
    );
}

// ---------------------------------------------------------------------------
// stored_batches: what readers of stored batches decode

/// fuzz target `stored_batches`, 2026-12-06, second smoke run
/// (crash-e1dd0d77...): a batch the stored-batch parser accepts (as Kafka
/// does: header keys are not checked for UTF-8 by its broker) whose record
/// has a header key that is not UTF-8. kafka-protocol's record decoder
/// failed the whole batch, so `corelog console-consumer` stopped with
/// "cannot decode a batch" at a record Kafka's console consumer prints
/// (Kafka's clients read header keys with replacement characters). Here
/// with a real broker and the CLI.
#[test]
fn console_consumer_reads_a_header_key_that_is_not_utf8() {
    use kafka_protocol::messages::ApiKey;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let mut headers = kafka_protocol::indexmap::IndexMap::new();
    headers.insert(
        StrBytes::from_static_str("hk"),
        Some(Bytes::from_static(b"hv")),
    );
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: 0,
        timestamp: 1_700_000_000_000,
        key: Some(Bytes::from_static(b"k")),
        value: Some(Bytes::from_static(b"value-0")),
        headers,
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &[record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    let mut batch = buf.to_vec();
    let at = batch
        .windows(2)
        .position(|w| w == b"hk")
        .expect("the header key");
    batch[at] = 0xff; // not UTF-8
    mem_log::fix_batch_crcs(&mut batch);
    let broker = Broker::start();
    broker.create_topic("latin", 1, &[]);
    let mut conn = Conn::connect(broker.addr());
    let version = conn.api_versions().pick(ApiKey::Produce, 9);
    let (code, _) = conn.produce(version, "latin", 0, Bytes::from(batch));
    assert_eq!(code, 0, "the broker stores it, as Kafka does");
    let addr = broker.addr().to_string();
    let (code, out, err) = cli_output(&[
        "console-consumer",
        "--bootstrap-server",
        &addr,
        "--topic",
        "latin",
        "--from-beginning",
        "--max-messages",
        "1",
        "--timeout-ms",
        "10000",
        "--property",
        "print.headers=true",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("value-0"), "stdout: {out:?}, stderr: {err}");
    assert!(out.contains("\u{fffd}k:hv"), "stdout: {out:?}");
}

/// Runs `corelog ARGS` with a deadline; returns (exit code, stdout, stderr).
fn cli_output(args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_corelog"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn corelog");
    let deadline = Instant::now() + CLI_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let (mut out, mut err) = (String::new(), String::new());
            let _ = child.stdout.take().unwrap().read_to_string(&mut out);
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            return (status.code(), out, err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("corelog {args:?} still running after {CLI_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// consumer_offsets: what a group coordinator loads

/// fuzz target `consumer_offsets`, 2026-12-06, second smoke run
/// (crash-4c81a9a6...): a batch read from `__consumer_offsets` whose base
/// offset is i64::MAX - 1. `decode_batches` computed the load's next
/// offset as `last_offset() + 1`: an overflow panic where overflow checks
/// are on, and in the release broker a wrap to i64::MIN, a "next offset"
/// before the one just read. Offsets that do not fit are refused by the
/// stored-batch parser, and the next offset never goes back.
#[test]
fn consumer_offsets_load_does_not_wrap_past_the_largest_offset() {
    use corelog::group::records::decode_batches;
    let mut batch = valid_batch(2);
    batch[..8].copy_from_slice(&(i64::MAX - 1).to_be_bytes());
    let decoded = decode_batches(Bytes::from(batch));
    let next = decoded.next_offset.expect("a whole batch was read");
    assert!(
        next >= i64::MAX - 1,
        "the load's next offset went back to {next}"
    );
    assert!(decoded.records.is_empty(), "records past i64::MAX replayed");
    assert_eq!(decoded.bad_batches.len(), 1);
}

// ---------------------------------------------------------------------------
// produce_batch: a produced batch the broker must look inside

/// A zstd frame of `blocks` RLE blocks of 128 KiB of zeros each: 4 bytes of
/// frame per 128 KiB of output (the most a zstd frame can expand).
fn zstd_rle_bomb(blocks: usize) -> Vec<u8> {
    const BLOCK: u32 = 128 * 1024;
    let mut out = vec![0x28, 0xb5, 0x2f, 0xfd]; // magic
    out.push(0x00); // no content size, no checksum, a window descriptor follows
    out.push(7 << 3); // window 2^(10+7) = 128 KiB
    for i in 0..blocks {
        let last = u32::from(i + 1 == blocks);
        let header = (BLOCK << 3) | (1 << 1) | last; // RLE block
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.push(0);
    }
    out
}

/// A one-record batch whose records section is `section`, compressed with
/// `codec`, CRC computed.
fn batch_around(codec: i16, section: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 61];
    b.extend_from_slice(section);
    let length = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&length.to_be_bytes());
    b[16] = 2;
    b[21..23].copy_from_slice(&codec.to_be_bytes());
    b[27..35].copy_from_slice(&1_700_000_000_000i64.to_be_bytes());
    b[35..43].copy_from_slice(&1_700_000_000_000i64.to_be_bytes());
    b[43..51].copy_from_slice(&(-1i64).to_be_bytes());
    b[51..53].copy_from_slice(&(-1i16).to_be_bytes());
    b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    b[57..61].copy_from_slice(&1i32.to_be_bytes());
    mem_log::fix_batch_crcs(&mut b);
    b
}

/// The broker's peak resident memory (VmHWM), in bytes.
fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/<pid>/status");
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// Target `produce_batch`, 2026-12-06, input pb-gzip-bomb (a 1 MB gzip
/// records section of 1 GiB of zeros; here the same as a 32 KB zstd frame):
/// `records_section` inflates the whole section and only then compares it
/// with `RECORDS_DECOMPRESSED_BYTES_MAX` (256 MiB), so one produce to a
/// compacted topic (or one whose compression.type differs) allocates 1 GiB
/// (the fuzzer's 600 MB allocation limit caught it: malloc(1073741824)).
/// The section must be inflated in bounded steps, stopping at the limit.
#[test]
fn a_decompression_bomb_does_not_take_memory() {
    use kafka_protocol::messages::ApiKey;
    let mut broker = Broker::start();
    broker.create_topic("bomb", 1, &[("cleanup.policy", "compact")]);
    let before = peak_rss_bytes(broker.pid());
    let batch = batch_around(4, &zstd_rle_bomb(8192)); // 1 GiB of zeros
    let mut conn = Conn::connect(broker.addr());
    let version = conn.api_versions().pick(ApiKey::Produce, 9);
    conn.set_timeout(Duration::from_secs(60));
    let (code, _) = conn.produce(version, "bomb", 0, Bytes::from(batch));
    assert_ne!(code, 0, "the bomb was stored");
    let peak = peak_rss_bytes(broker.pid());
    assert!(
        peak < before + 600 * 1024 * 1024,
        "the broker's peak memory grew from {} MiB to {} MiB",
        before >> 20,
        peak >> 20
    );
    assert_serving(&mut broker);
}
