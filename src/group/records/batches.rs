//! The batches of `__consumer_offsets`: one v2 batch of encoded records
//! to append (`batch`), and the loader's side, whole batches as a
//! partition read returns them decoded into keyed records (`decode_batches`),
//! each checked by the bounded stored-batch parser before any record is
//! read. The keys and values inside are the parent module's codecs.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::protocol::batch::BatchIter;
use crate::protocol::records;

/// One v2 batch holding `entries` (key, value or tombstone), ready for
/// `Partition::append`.
pub fn batch(entries: &[(Bytes, Option<Bytes>)], timestamp_ms: i64) -> Bytes {
    assert!(!entries.is_empty(), "a batch holds at least one record");
    let records: Vec<Record> = entries
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder starts a new batch whenever offset - sequence
            // changes: advance both together to get one batch.
            sequence: (i as i32).wrapping_sub(1),
            timestamp: timestamp_ms,
            key: Some(key.clone()),
            value: value.clone(),
            headers: IndexMap::new(),
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
    .expect("encoding records in memory cannot fail");
    buf.freeze()
}

/// What one read of an offsets partition decodes to.
#[derive(Debug, Default)]
pub struct Decoded {
    /// (offset, key, value) of every keyed record of the batches that
    /// passed the stored-batch parser, in order.
    pub records: Vec<(i64, Bytes, Option<Bytes>)>,
    /// Batches that failed it: (base offset, reason). Their records are
    /// not replayed.
    pub bad_batches: Vec<(i64, String)>,
    /// Offsets of records without a key (the coordinator never writes
    /// one), skipped.
    pub keyless: Vec<i64>,
    /// Just past the last whole batch read; None when none was whole.
    pub next_offset: Option<i64>,
}

/// Decodes whole batches as a partition read returns them, each checked by
/// the bounded stored-batch parser first (CRC, header, every record): a
/// batch that fails is reported, never decoded on trust. Control batches
/// are skipped. A trailing partial batch is left.
pub fn decode_batches(bytes: Bytes) -> Decoded {
    let mut out = Decoded::default();
    for (at, header) in BatchIter::new(&bytes, false) {
        let whole = bytes.slice(at..at + header.total_bytes());
        // Saturating: the header is not checked yet (a batch that fails the
        // check below is skipped, and the load goes on after it).
        out.next_offset = Some(header.last_offset().saturating_add(1));
        if let Err(e) = records::check_stored_batch(&whole) {
            out.bad_batches.push((header.base_offset, e.to_string()));
            continue;
        }
        if header.is_control() {
            continue;
        }
        let decoded = records::records_section(&whole, &header).and_then(|section| {
            let section = match section {
                std::borrow::Cow::Borrowed(s) => whole.slice_ref(s),
                std::borrow::Cow::Owned(v) => Bytes::from(v),
            };
            let views = records::parse_records(&section, &header)?;
            Ok(views
                .iter()
                .map(|r| {
                    (
                        header.base_offset + i64::from(r.offset_delta),
                        r.key.map(|k| section.slice_ref(k)),
                        r.value.map(|v| section.slice_ref(v)),
                    )
                })
                .collect::<Vec<_>>())
        });
        match decoded {
            Ok(records) => {
                for (offset, key, value) in records {
                    match key {
                        Some(key) => out.records.push((offset, key, value)),
                        None => out.keyless.push(offset),
                    }
                }
            }
            Err(e) => out.bad_batches.push((header.base_offset, e.to_string())),
        }
    }
    out
}
