//! The partition and data-directory files read at start, each decoded by
//! the function the broker calls, from a file in a scratch directory:
//!
//! - mode 0, `leader-epoch-checkpoint` (`LeaderEpochs::load`), then the
//!   operations a leader and a follower apply to it;
//! - mode 1, a producer-state snapshot taken at an offset from the input
//!   (`ProducerStates::from_snapshot`), then the replay of the batch
//!   headers after that offset that `Partition::open` does (check, then
//!   record);
//! - mode 2, the topic catalog `corelog-metadata.json`
//!   (`Catalog::load_or_create`);
//! - mode 3, `meta.properties` (`MetaProperties::read`).
//!
//! Input: `[mode u8][file: length u32 LE, content][operations...]`.
//! (`partition.metadata` is written, and compared as a whole, never parsed.)

#![no_main]

use corelog::metadata::{validate_topic_name, Catalog};
use corelog::partition::epochs::LeaderEpochs;
use corelog::partition::producers::{ProducerStates, SequenceCheck};
use corelog::protocol::batch::{BatchHeader, BATCH_HEADER_BYTES};
use corelog::storage::MetaProperties;
use corelog_fuzz::{scratch_dir, Reader};
use libfuzzer_sys::fuzz_target;

/// The catalog's file name in the data directory (`metadata.rs`).
const CATALOG_FILE: &str = "corelog-metadata.json";
const CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qg";
const OPERATIONS_MAX: usize = 64;
const CHECKPOINT_NAME: &str = corelog::partition::epochs::CHECKPOINT_FILE;

fn epochs(file: &[u8], ops: &mut Reader) {
    // The checkpoint is read through the disk seam; the in-memory disk is
    // the same code path without a file system.
    let disk = corelog::io::MemDisk::new();
    let dir = std::path::Path::new("/p-0");
    let mut cache = futures_lite::future::block_on(async {
        corelog::io::replace_file(&disk, dir, CHECKPOINT_NAME, file)
            .await
            .unwrap();
        let cache = LeaderEpochs::load(&disk, dir).await;
        // What loads is what the broker writes back: the text round-trips.
        LeaderEpochs::write(&disk, dir, &cache.to_text()).await.unwrap();
        assert_eq!(
            LeaderEpochs::load(&disk, dir).await,
            cache,
            "checkpoint text round trip"
        );
        cache
    });
    for _ in 0..OPERATIONS_MAX {
        if ops.is_empty() {
            break;
        }
        let op = ops.u8();
        let epoch = ops.u32() as i32;
        let offset = ops.i64();
        match op % 4 {
            0 => {
                cache.assign(epoch, offset);
            }
            1 => {
                cache.truncate_from_end(offset);
            }
            2 => {
                cache.truncate_from_start(offset);
            }
            _ => {
                let (found, end) = cache.end_offset_for(epoch, offset);
                assert!(found <= epoch || found == -1);
                let _ = end;
            }
        }
    }
}

fn producers(file: &[u8], ops: &mut Reader) {
    // The snapshot's file name: the log offset it was taken at.
    let offset = ops.i64() & (i64::MAX >> 1);
    let Ok(mut states) = ProducerStates::from_snapshot(file, offset) else {
        return;
    };
    // Partition::open replays the headers the log holds from the snapshot's
    // offset on: back to back, increasing. Their other fields are the input.
    let mut next = offset;
    for _ in 0..OPERATIONS_MAX {
        let raw = ops.bytes(BATCH_HEADER_BYTES);
        if raw.len() < BATCH_HEADER_BYTES {
            break;
        }
        let mut bytes = raw.to_vec();
        bytes[16] = 2; // magic
        bytes[8..12].copy_from_slice(&49i32.to_be_bytes());
        let Ok(mut header) = BatchHeader::parse(&bytes) else {
            continue;
        };
        header.base_offset = next;
        header.last_offset_delta = header.last_offset_delta.max(0);
        next = header.last_offset() + 1;
        if states.check(&header) == SequenceCheck::Append {
            states.record(
                &header,
                header.base_offset,
                header.last_offset(),
                header.max_timestamp,
            );
        }
    }
    let again =
        ProducerStates::from_snapshot(&states.to_snapshot(), next).expect("snapshot round trip");
    assert_eq!(again, states, "snapshot round trip");
}

fn catalog(file: &[u8], ops: &mut Reader) {
    let dir = scratch_dir();
    std::fs::write(dir.join(CATALOG_FILE), file).unwrap();
    let shards = usize::from(ops.u8() % 8) + 1;
    // The catalog's own cluster id, so the load is not refused for being
    // another cluster's (the recorded seeds come from other clusters).
    let cluster_id = serde_json::from_slice::<serde_json::Value>(file)
        .ok()
        .and_then(|v| v.get("cluster_id")?.as_str().map(str::to_string))
        .unwrap_or_else(|| CLUSTER_ID.to_string());
    let Ok(catalog) = Catalog::load_or_create(dir, shards, &cluster_id) else {
        return;
    };
    // The shards open a partition directory `<topic>-<index>` for every
    // partition placed on them: what loads must be a catalog the broker
    // could have written.
    for (name, topic) in &catalog.topics {
        assert_eq!(name, &topic.name, "a topic is filed under its own name");
        assert!(
            validate_topic_name(name).is_ok(),
            "topic name {name:?} loaded"
        );
        assert!(
            topic.partition_count() <= corelog::limits::TOPIC_PARTITIONS_MAX,
            "{} partitions loaded",
            topic.shards.len()
        );
        assert!(topic.shards.iter().all(|&s| (s as usize) < shards));
    }
    let again =
        Catalog::load_or_create(dir, shards, &cluster_id).expect("a persisted catalog loads");
    assert_eq!(again, catalog, "catalog round trip");
}

fn meta_properties(file: &[u8]) {
    let dir = scratch_dir();
    std::fs::write(dir.join(corelog::storage::META_PROPERTIES), file).unwrap();
    if let Ok(Some(meta)) = MetaProperties::read(dir) {
        std::fs::write(dir.join(corelog::storage::META_PROPERTIES), meta.to_text()).unwrap();
        let again = MetaProperties::read(dir).expect("written meta.properties reads");
        // Version 0 files have no directory id; the rewrite is version 1.
        if !meta.directory_id.is_empty() {
            assert_eq!(again, Some(meta), "meta.properties round trip");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Reader::new(data);
    let mode = input.u8();
    let file = input.field();
    match mode % 4 {
        0 => epochs(file, &mut input),
        1 => producers(file, &mut input),
        2 => catalog(file, &mut input),
        _ => meta_properties(file),
    }
});
