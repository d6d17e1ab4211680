//! Turns a recording (record.sh: the proxy's frames and the brokers' data
//! directories after the run) into seed inputs for every fuzz target, in
//! each target's input format (see the target's module doc).
//!
//! `seeds RECORDING_DIR CORPUS_DIR` writes CORPUS_DIR/<target>/<sha1>.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use corelog::protocol::apis::SERVED_APIS;
use corelog::protocol::batch::BatchIter;
use corelog::server::dispatch::{parse, Parsed};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// Largest file content a seed carries (segments are cut: a torn tail is a
/// seed too), so the committed corpus stays small.
const FILE_BYTES_MAX: usize = 64 * 1024;

struct Out {
    root: PathBuf,
    written: usize,
}

impl Out {
    fn put(&mut self, target: &str, data: &[u8]) {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).unwrap();
        let digest = format!("{:016x}{:08x}", fnv(data), crc32c::crc32c(data));
        let path = dir.join(format!("seed-{digest}"));
        if !path.exists() {
            fs::write(path, data).unwrap();
            self.written += 1;
        }
    }
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

fn put_field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// Every directory under `root`, recursively.
fn dirs_under(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for p in files_in(root) {
        if p.is_dir() {
            out.push(p.clone());
            out.extend(dirs_under(&p));
        }
    }
    out
}

fn cut(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.len().min(FILE_BYTES_MAX)]
}

/// A default request of every served API, so every version has a seed
/// even where no recorded client used it.
fn default_request(key: ApiKey) -> Option<RequestKind> {
    Some(match key {
        ApiKey::Produce => RequestKind::Produce(ProduceRequest::default()),
        ApiKey::Fetch => RequestKind::Fetch(FetchRequest::default()),
        ApiKey::ListOffsets => RequestKind::ListOffsets(ListOffsetsRequest::default()),
        ApiKey::Metadata => RequestKind::Metadata(MetadataRequest::default()),
        ApiKey::FindCoordinator => RequestKind::FindCoordinator(FindCoordinatorRequest::default()),
        ApiKey::JoinGroup => RequestKind::JoinGroup(JoinGroupRequest::default()),
        ApiKey::SyncGroup => RequestKind::SyncGroup(SyncGroupRequest::default()),
        ApiKey::Heartbeat => RequestKind::Heartbeat(HeartbeatRequest::default()),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(LeaveGroupRequest::default()),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(OffsetCommitRequest::default()),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(OffsetFetchRequest::default()),
        ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
        ApiKey::DescribeGroups => RequestKind::DescribeGroups(DescribeGroupsRequest::default()),
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(DeleteGroupsRequest::default()),
        ApiKey::OffsetDelete => RequestKind::OffsetDelete(OffsetDeleteRequest::default()),
        ApiKey::ApiVersions => RequestKind::ApiVersions(ApiVersionsRequest::default()),
        ApiKey::CreateTopics => RequestKind::CreateTopics(CreateTopicsRequest::default()),
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(DeleteTopicsRequest::default()),
        ApiKey::InitProducerId => RequestKind::InitProducerId(InitProducerIdRequest::default()),
        ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(DescribeConfigsRequest::default()),
        ApiKey::AlterConfigs => RequestKind::AlterConfigs(AlterConfigsRequest::default()),
        ApiKey::IncrementalAlterConfigs => {
            RequestKind::IncrementalAlterConfigs(IncrementalAlterConfigsRequest::default())
        }
        ApiKey::CreatePartitions => {
            RequestKind::CreatePartitions(CreatePartitionsRequest::default())
        }
        ApiKey::DeleteRecords => RequestKind::DeleteRecords(DeleteRecordsRequest::default()),
        ApiKey::DescribeLogDirs => RequestKind::DescribeLogDirs(DescribeLogDirsRequest::default()),
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(DescribeClusterRequest::default()),
        ApiKey::DescribeQuorum => RequestKind::DescribeQuorum(DescribeQuorumRequest::default()),
        ApiKey::OffsetForLeaderEpoch => {
            RequestKind::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest::default())
        }
        ApiKey::ElectLeaders => RequestKind::ElectLeaders(ElectLeadersRequest::default()),
        ApiKey::ConsumerGroupHeartbeat => {
            RequestKind::ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest::default())
        }
        ApiKey::ConsumerGroupDescribe => {
            RequestKind::ConsumerGroupDescribe(ConsumerGroupDescribeRequest::default())
        }
        _ => return None,
    })
}

fn synthetic_requests(out: &mut Out) {
    for api in SERVED_APIS {
        let Some(body) = default_request(api.key) else {
            eprintln!("seeds: no default request for {:?}", api.key);
            continue;
        };
        for version in api.min_version..=api.max_version {
            let header = RequestHeader::default()
                .with_request_api_key(api.key as i16)
                .with_request_api_version(version)
                .with_correlation_id(7)
                .with_client_id(Some(StrBytes::from_static_str("seed")));
            let mut buf = BytesMut::new();
            let encoded = header
                .encode(&mut buf, api.key.request_header_version(version))
                .and_then(|_| body.encode(&mut buf, version));
            match encoded {
                Ok(()) => out.put("request", &buf),
                Err(e) => eprintln!("seeds: {:?} v{version}: {e}", api.key),
            }
        }
    }
}

/// What the recorded frames give: requests and responses as they are, the
/// produced batches and the fetched record sets.
fn frames(recording: &Path, out: &mut Out) {
    for path in files_in(&recording.join("requests")) {
        let frame = fs::read(&path).unwrap();
        out.put("request", &frame);
        if let Ok(Parsed::Request { body, .. }) = parse(Bytes::from(frame)) {
            if let RequestKind::Produce(produce) = *body {
                for topic in &produce.topic_data {
                    for partition in &topic.partition_data {
                        if let Some(records) = &partition.records {
                            // CRC and length repaired: mutations reach validation.
                            let mut seed = vec![0x03];
                            seed.extend_from_slice(records);
                            out.put("produce_batch", &seed);
                            let mut plain = vec![0x00];
                            plain.extend_from_slice(records);
                            out.put("produce_batch", &plain);
                        }
                    }
                }
            }
        }
    }
    for path in files_in(&recording.join("responses")) {
        let data = fs::read(&path).unwrap();
        out.put("peer_response", &data);
        let key = i16::from_be_bytes([data[0], data[1]]);
        let version = i16::from_be_bytes([data[2], data[3]]);
        if key != ApiKey::Fetch as i16 {
            continue;
        }
        let mut body = Bytes::copy_from_slice(&data[4..]);
        let header_version = ApiKey::Fetch.response_header_version(version);
        if ResponseHeader::decode(&mut body, header_version).is_err() {
            continue;
        }
        let Ok(fetch) = FetchResponse::decode(&mut body, version) else {
            continue;
        };
        for topic in &fetch.responses {
            for partition in &topic.partitions {
                let Some(records) = partition.records.as_ref().filter(|r| !r.is_empty()) else {
                    continue;
                };
                let records = cut(records);
                let mut seed = vec![0x01];
                seed.extend_from_slice(records);
                out.put("stored_batches", &seed);
                // A follower's fetches: the same set, as one fetch, and in two.
                let mut append = vec![0x01];
                put_field(&mut append, records);
                out.put("replica_append", &append);
                let mut leader = vec![0x03];
                put_field(&mut leader, records);
                out.put("replica_append", &leader);
            }
        }
    }
}

/// The files of a partition directory as one `log_recovery` input.
fn partition_dir(dir: &Path, out: &mut Out) {
    let mut seed = vec![0x01];
    let mut files = 0;
    for path in files_in(dir) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let (stem, ext) = match name.split_once('.') {
            Some((s, e)) => (s.to_string(), e.to_string()),
            None => (name.clone(), String::new()),
        };
        let base: i64 = stem.parse().unwrap_or(0);
        let kind = match (ext.as_str(), name.as_str()) {
            ("log", _) => 0u8,
            ("index", _) => 1,
            ("timeindex", _) => 2,
            (_, "log-start-offset-checkpoint") => 3,
            (_, corelog::log::TRUNCATE_INTENT_FILE) => 4,
            _ => continue,
        };
        let bytes = fs::read(&path).unwrap();
        seed.push(kind);
        seed.extend_from_slice(&base.to_le_bytes());
        put_field(&mut seed, cut(&bytes));
        files += 1;
    }
    if files > 0 {
        out.put("log_recovery", &seed);
    }
    for path in files_in(dir) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let bytes = fs::read(&path).unwrap();
        if name.ends_with(".log") {
            let mut seed = vec![0x01];
            seed.extend_from_slice(cut(&bytes));
            out.put("stored_batches", &seed);
            if dir.to_string_lossy().contains("__consumer_offsets") {
                consumer_offsets(cut(&bytes), out);
            }
        }
        if name == corelog::partition::epochs::CHECKPOINT_FILE {
            let mut seed = vec![0x00];
            put_field(&mut seed, &bytes);
            seed.extend_from_slice(&[0, 5, 0, 0, 0, 100, 0, 0, 0, 0, 0, 0, 0]);
            out.put("partition_files", &seed);
        }
        if let Some(offset) = name
            .strip_suffix(".snapshot")
            .and_then(|s| s.parse::<i64>().ok())
        {
            // The snapshot, then the batch headers the log holds after it.
            let mut seed = vec![0x01];
            put_field(&mut seed, &bytes);
            seed.extend_from_slice(&offset.to_le_bytes());
            let log = dir.join(format!("{:020}.log", 0));
            if let Ok(segment) = fs::read(log) {
                for (at, h) in BatchIter::new(&segment, false).take(16) {
                    if h.base_offset >= offset {
                        seed.extend_from_slice(&segment[at..at + 61]);
                    }
                }
            }
            out.put("partition_files", &seed);
        }
    }
}

fn consumer_offsets(segment: &[u8], out: &mut Out) {
    let mut seed = vec![0x02];
    seed.extend_from_slice(segment);
    out.put("consumer_offsets", &seed);
    let entries = corelog::group::records::decode_batches(Bytes::copy_from_slice(segment)).records;
    let mut records = vec![0x01];
    for (_, key, value) in entries.iter().take(64) {
        put_field(&mut records, key);
        records.push(u8::from(value.is_some()));
        put_field(&mut records, value.as_deref().unwrap_or_default());
    }
    out.put("consumer_offsets", &records);
    for (_, key, value) in entries.iter().take(200) {
        let mut one = vec![0x01];
        put_field(&mut one, key);
        one.push(u8::from(value.is_some()));
        put_field(&mut one, value.as_deref().unwrap_or_default());
        out.put("consumer_offsets", &one);
    }
}

fn data_dirs(recording: &Path, out: &mut Out) {
    for dir in dirs_under(&recording.join("data")) {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        if name == corelog::cluster::store::METADATA_DIR {
            controller_files(&dir, out);
            continue;
        }
        if files_in(&dir)
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "log"))
        {
            partition_dir(&dir, out);
        }
        let catalog = dir.join("corelog-metadata.json");
        if let Ok(bytes) = fs::read(&catalog) {
            let mut seed = vec![0x02];
            put_field(&mut seed, &bytes);
            seed.push(0);
            out.put("partition_files", &seed);
        }
        let meta = dir.join(corelog::storage::META_PROPERTIES);
        if let Ok(bytes) = fs::read(&meta) {
            let mut seed = vec![0x03];
            put_field(&mut seed, &bytes);
            out.put("partition_files", &seed);
        }
    }
}

fn controller_files(dir: &Path, out: &mut Out) {
    let read = |name: &str| fs::read(dir.join(name)).unwrap_or_default();
    let mut seed = vec![0x10];
    for name in ["raft.log", "hardstate", "snapshot"] {
        put_field(&mut seed, cut(&read(name)));
    }
    out.put("controller", &seed);
    // The image and the records, decoded, for the record mode.
    let present = |name: &str| fs::read(dir.join(name)).ok();
    let (hard_state, snapshot) = (present("hardstate"), present("snapshot"));
    let Ok((loaded, _)) = corelog::cluster::store::decode_files(
        &read("raft.log"),
        hard_state.as_deref(),
        snapshot.as_deref(),
    ) else {
        return;
    };
    let image = loaded
        .snapshot
        .as_ref()
        .map(|s| s.data.to_vec())
        .unwrap_or_default();
    let records: Vec<Vec<u8>> = loaded
        .entries
        .iter()
        .map(|e| e.data.to_vec())
        .filter(|d| d.first() == Some(&b'{') || d.first() == Some(&b'"'))
        .collect();
    for chunk in records.chunks(8) {
        let mut seed = vec![0x01];
        put_field(&mut seed, &image);
        for record in chunk {
            put_field(&mut seed, record);
        }
        out.put("controller", &seed);
    }
}

fn controller_messages(recording: &Path, out: &mut Out) {
    let mut requests = BTreeSet::new();
    let mut replies = BTreeSet::new();
    for path in files_in(&recording.join("controller")) {
        let data = fs::read(&path).unwrap();
        match data.first() {
            Some(2) => requests.insert(data[1..].to_vec()),
            Some(3) => replies.insert(data[1..].to_vec()),
            _ => false,
        };
    }
    let replies: Vec<_> = replies.into_iter().collect();
    for (i, request) in requests.iter().enumerate() {
        let mut seed = vec![0x02];
        put_field(&mut seed, request);
        if !replies.is_empty() {
            put_field(&mut seed, &replies[i % replies.len()]);
        }
        out.put("controller", &seed);
    }
}

fn configs(recording: &Path, repo: &Path, out: &mut Out) {
    for path in files_in(&recording.join("config")) {
        let bytes = fs::read(&path).unwrap();
        let mode = if path.extension().is_some_and(|e| e == "toml") {
            1
        } else {
            0
        };
        let mut seed = vec![mode];
        put_field(&mut seed, &bytes);
        seed.extend_from_slice(b"num.partitions=3\nlog.retention.hours=24\n");
        out.put("config", &seed);
    }
    for path in files_in(&repo.join("tuning")) {
        if path.extension().is_some_and(|e| e == "toml") {
            let mut seed = vec![2];
            put_field(&mut seed, &fs::read(&path).unwrap());
            out.put("config", &seed);
        }
    }
    let client = "retention.ms=3600000\nsegment.bytes=1048576\ncleanup.policy=compact,delete\n\
                  compression.type=zstd\nmessage.timestamp.type=LogAppendTime\n\
                  max.message.bytes=1048588\nmin.insync.replicas=2\nflush.ms=1000\n\
                  log.retention.minutes=60\nauto.create.topics.enable=false\n\
                  group.consumer.session.timeout.ms=45000\nnum.partitions=6\n";
    let mut seed = vec![3];
    put_field(&mut seed, client.as_bytes());
    out.put("config", &seed);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(recording), Some(corpus)) = (args.next(), args.next()) else {
        eprintln!("usage: seeds RECORDING_DIR CORPUS_DIR");
        std::process::exit(2);
    };
    let recording = PathBuf::from(recording);
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut out = Out {
        root: PathBuf::from(corpus),
        written: 0,
    };
    synthetic_requests(&mut out);
    frames(&recording, &mut out);
    data_dirs(&recording, &mut out);
    controller_messages(&recording, &mut out);
    configs(&recording, &repo, &mut out);
    synthetic_partition_files(&mut out);
    // Targets without recorded inputs still start from something valid.
    let mut batch = vec![0x03];
    batch.extend_from_slice(&valid_batch());
    out.put("produce_batch", &batch);
    out.put("stored_batches", &batch);
    println!("seeds: wrote {} new seed files", out.written);
}

/// Partition files a short recording does not produce: a leader-epoch
/// checkpoint with several epochs and producer snapshots with producers.
fn synthetic_partition_files(out: &mut Out) {
    use corelog::partition::epochs::LeaderEpochs;
    use corelog::partition::producers::ProducerStates;
    use corelog::protocol::batch::BatchHeader;
    let mut epochs = LeaderEpochs::default();
    for (epoch, start) in [(0, 0), (2, 100), (5, 250), (9, 4000)] {
        epochs.assign(epoch, start);
    }
    let mut seed = vec![0x00];
    put_field(&mut seed, epochs.to_text().as_bytes());
    for (op, epoch, offset) in [
        (0u8, 11i32, 5000i64),
        (1, 0, 300),
        (2, 0, 120),
        (3, 5, 6000),
    ] {
        seed.push(op);
        seed.extend_from_slice(&(epoch as u32).to_le_bytes());
        seed.extend_from_slice(&offset.to_le_bytes());
    }
    out.put("partition_files", &seed);
    let batch = valid_batch();
    let template = BatchHeader::parse(&batch).unwrap();
    let mut states = ProducerStates::default();
    let mut offset = 0;
    for (pid, epoch, seq) in [
        (1000i64, 0i16, 0i32),
        (1000, 0, 2),
        (1001, 3, 0),
        (1002, 0, 7),
    ] {
        let header = BatchHeader {
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            base_offset: offset,
            ..template
        };
        states.record(&header, offset, header.last_offset(), 1_700_000_000_000);
        offset = header.last_offset() + 1;
    }
    let mut seed = vec![0x01];
    put_field(&mut seed, &states.to_snapshot());
    seed.extend_from_slice(&offset.to_le_bytes());
    for (pid, seq) in [(1000i64, 4i32), (1001, 2), (1003, 0)] {
        let mut header = batch[..61].to_vec();
        header[43..51].copy_from_slice(&pid.to_be_bytes());
        header[51..53].copy_from_slice(&0i16.to_be_bytes());
        header[53..57].copy_from_slice(&seq.to_be_bytes());
        seed.extend_from_slice(&header);
    }
    out.put("partition_files", &seed);
}

/// One valid batch of two records, encoded by kafka-protocol.
fn valid_batch() -> Vec<u8> {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let records: Vec<Record> = (0..2)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: i as i32,
            timestamp: 1_700_000_000_000,
            key: Some(Bytes::from_static(b"k")),
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
