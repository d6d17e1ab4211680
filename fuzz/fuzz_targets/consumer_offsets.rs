//! `__consumer_offsets` records as a coordinator loads them: the batches a
//! partition read returns (`records::decode_batches`: each batch checked by
//! the bounded stored-batch parser, then its records parsed), each record's key and value (`records::decode`: offset
//! commits, classic group metadata, KIP-848 consumer group records), and the
//! replay of what decodes into group state (`ClassicGroup::restore`,
//! `ConsumerGroup::replay`), as `GroupCoordinator::load_partition` does.
//! Decoded records must also encode back to the same entry.
//!
//! Input: `[control u8]` then, with control bit 0 clear, the read bytes
//! (bit 1 recomputes their batch CRCs); with bit 0 set, up to 64 records
//! `[key: length u32 LE, bytes][value flag u8][value: length u32 LE, bytes]`
//! (flag bit 0 clear: a tombstone).

#![no_main]

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use corelog::group::records::{self, ConsumerRecord, Entry};
use corelog::group::{ClassicGroup, ConsumerGroup};
use corelog_fuzz::Reader;
use libfuzzer_sys::fuzz_target;

const RECORDS_MAX: usize = 64;
/// group.consumer.session.timeout.ms's default.
const SESSION_TIMEOUT_MS: i32 = 45_000;

#[derive(Default)]
struct Groups {
    classic: HashMap<String, ClassicGroup>,
    consumer: HashMap<String, ConsumerGroup>,
    offsets: HashMap<(String, String, i32), records::OffsetValue>,
}

impl Groups {
    fn replay(&mut self, entry: Entry, now: Instant) {
        match entry {
            Entry::Offset {
                group,
                topic,
                partition,
                value,
            } => match value {
                Some(v) => {
                    self.offsets.insert((group, topic, partition), v);
                }
                None => {
                    self.offsets.remove(&(group, topic, partition));
                }
            },
            Entry::Group { group, value } => {
                let restored = match value {
                    Some(v) => ClassicGroup::restore(v, now),
                    None => ClassicGroup::default(),
                };
                self.consumer.remove(&group);
                self.classic.insert(group, restored);
            }
            Entry::Consumer { group, record } => {
                if record == ConsumerRecord::Epoch(None) {
                    self.consumer.remove(&group);
                } else {
                    self.classic.remove(&group);
                    self.consumer
                        .entry(group)
                        .or_default()
                        .replay(record, now, SESSION_TIMEOUT_MS);
                }
            }
        }
    }
}

/// Offset and classic-group records re-encode to what decodes the same.
fn round_trip(entry: &Entry) {
    let (key, value) = match entry {
        Entry::Offset {
            group,
            topic,
            partition,
            value,
        } => (
            records::offset_key(group, topic, *partition),
            value.as_ref().map(records::offset_value),
        ),
        Entry::Group { group, value } => (
            records::group_key(group),
            value.as_ref().map(records::group_value),
        ),
        Entry::Consumer { group, record } => records::consumer_entry(group, record),
    };
    let again = records::decode(&key, value.as_ref())
        .expect("an encoded record decodes")
        .expect("an encoded record is known");
    assert!(&again == entry, "record changed in a round trip");
}

fn replay_one(groups: &mut Groups, key: &Bytes, value: Option<&Bytes>, now: Instant) {
    if let Ok(Some(entry)) = records::decode(key, value) {
        round_trip(&entry);
        groups.replay(entry, now);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Reader::new(data);
    let control = input.u8();
    let now = Instant::now();
    let mut groups = Groups::default();
    if control & 1 == 0 {
        let mut bytes = input.rest().to_vec();
        if control & 2 != 0 {
            corelog_fuzz::fix_batch_crcs(&mut bytes);
        }
        let decoded = records::decode_batches(Bytes::from(bytes));
        for (_, key, value) in decoded.records {
            replay_one(&mut groups, &key, value.as_ref(), now);
        }
    } else {
        for _ in 0..RECORDS_MAX {
            if input.is_empty() {
                break;
            }
            let key = Bytes::copy_from_slice(input.field());
            let present = input.u8() & 1 != 0;
            let value = Bytes::copy_from_slice(input.field());
            replay_one(&mut groups, &key, present.then_some(&value), now);
        }
    }
});
