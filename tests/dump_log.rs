//! `corelog dump-log` on a real segment written by a broker: Kafka's
//! kafka-dump-log.sh lines for the .log (batches and, with
//! --print-data-log, records), .index and .timeindex; one-line errors.

mod common;

use std::process::Command;

use common::raw::{encode_batch, record, Conn};
use common::{partition_dir, segment_logs, Broker};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::records::Compression;

fn dump(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_corelog"))
        .arg("dump-log")
        .args(args)
        .output()
        .expect("run corelog dump-log");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn dump_log_prints_batches_records_and_indexes() {
    let mut broker = Broker::start();
    let topic = "dumped";
    broker.create_topic(topic, 1, &[("index.interval.bytes", "100")]);
    let mut conn = Conn::connect(broker.addr());
    let version = conn.api_versions().pick(ApiKey::Produce, 9);
    for b in 0..4i64 {
        let mut records: Vec<_> = (0..3)
            .map(|i| {
                let n = b * 3 + i;
                record(
                    Some(format!("key{n}").as_bytes()),
                    format!("value{n}").as_bytes(),
                    1_700_000_000_000 + n,
                )
            })
            .collect();
        records[1]
            .headers
            .insert("trace".into(), Some(bytes::Bytes::from_static(b"t")));
        let codec = if b == 3 {
            Compression::Gzip
        } else {
            Compression::None
        };
        let (code, base) = conn.produce(version, topic, 0, encode_batch(&records, codec));
        assert_eq!((code, base), (0, b * 3));
    }
    drop(conn);
    // A clean stop cuts the active segment to its length and writes its indexes.
    let (status, _) = broker.terminate();
    assert!(status.success());
    let logs = segment_logs(&partition_dir(&broker, topic, 0));
    assert_eq!(logs.len(), 1);
    let log = logs[0].to_str().unwrap().to_string();

    let (ok, out, err) = dump(&["--files", &log]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("Dumping {log}"));
    assert_eq!(lines[1], "Log starting offset: 0");
    let batches: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with("baseOffset:"))
        .collect();
    assert_eq!(batches.len(), 4, "{out}");
    assert!(
        batches[0].starts_with(
            "baseOffset: 0 lastOffset: 2 count: 3 baseSequence: -1 lastSequence: -1 \
             producerId: -1 producerEpoch: -1 partitionLeaderEpoch: "
        ),
        "{}",
        batches[0]
    );
    assert!(batches[0].contains(
        " isTransactional: false isControl: false position: 0 CreateTime: 1700000000002 size: "
    ));
    assert!(batches[0].contains(" magic: 2 compresscodec: none crc: "));
    assert!(batches.iter().all(|b| b.ends_with("isvalid: true")));
    assert!(batches[3].contains("compresscodec: gzip"));
    assert!(!out.contains("| offset:"));

    let (ok, out, _) = dump(&["--files", &log, "--print-data-log"]);
    assert!(ok);
    let records: Vec<&str> = out.lines().filter(|l| l.starts_with("| offset:")).collect();
    assert_eq!(records.len(), 12);
    assert_eq!(
        records[0],
        "| offset: 0 CreateTime: 1700000000000 keySize: 4 valueSize: 6 sequence: -1 \
         headerKeys: [] key: key0 payload: value0"
    );
    assert_eq!(
        records[10],
        "| offset: 10 CreateTime: 1700000000010 keySize: 5 valueSize: 7 sequence: -1 \
         headerKeys: [trace] key: key10 payload: value10"
    );

    let index = log.replace(".log", ".index");
    let (ok, out, _) = dump(&["--files", &index]);
    assert!(ok);
    let entries: Vec<&str> = out.lines().skip(1).collect();
    assert!(
        !entries.is_empty(),
        "index.interval.bytes=100 indexes batches"
    );
    for e in &entries {
        let parts: Vec<&str> = e.split(' ').collect();
        assert_eq!((parts[0], parts[2]), ("offset:", "position:"), "{e}");
    }
    let time_index = log.replace(".log", ".timeindex");
    let (ok, out, _) = dump(&["--files", &time_index]);
    assert!(ok);
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("timestamp: 1700000000011 offset: 9"),
        "{out}"
    );

    let (ok, _, err) = dump(&["--files", "/nonexistent/00000000000000000000.log"]);
    assert!(!ok);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no such file"));
}

/// A partition's first segment has its .index and .timeindex from the
/// start (empty until the segment closes), and dump-log prints them as
/// Kafka's tool prints an empty index: the file's name and no entries. A
/// short index (a torn last entry) prints its whole entries and says how
/// many bytes are left over.
#[test]
fn a_fresh_segment_has_index_files_that_dump_log_prints() {
    let broker = Broker::start();
    broker.create_topic("fresh", 1, &[]);
    common::produce_numbered(&broker, "fresh", 1, 0, 3);
    let dir = partition_dir(&broker, "fresh", 0);
    let log = segment_logs(&dir).remove(0);
    let log = log.to_str().unwrap().to_string();
    for (ext, other) in [(".index", ".timeindex"), (".timeindex", ".index")] {
        let path = log.replace(".log", ext);
        assert!(
            std::path::Path::new(&path).is_file(),
            "{path} exists before the segment closes (and so does its {other})"
        );
        let (ok, out, err) = dump(&["--files", &path]);
        assert!(ok, "{err}");
        assert_eq!(out, format!("Dumping {path}\n"), "an empty index: {out}");
    }

    // A short index: one whole entry and 3 bytes of a torn one.
    let copy = tempfile::tempdir().unwrap();
    let short = copy.path().join("00000000000000000100.index");
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&5u32.to_be_bytes());
    bytes.extend_from_slice(&4096u32.to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 1]);
    std::fs::write(&short, bytes).unwrap();
    let short = short.to_str().unwrap();
    let (ok, out, err) = dump(&["--files", short]);
    assert!(ok, "{err}");
    assert_eq!(
        out,
        format!(
            "Dumping {short}\noffset: 105 position: 4096\n\
             Found 3 invalid bytes at the end of the index\n"
        )
    );
}
