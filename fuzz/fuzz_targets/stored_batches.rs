//! The stored-batch parsers: what reads, ListOffsets, recovery, the
//! cleaner, `dump-log` and group loading run over bytes from a segment.
//! `BatchIter` walks the buffer; every batch it yields goes through
//! `records_section` (decompression) and `parse_records`, its records'
//! header keys, `has_null_key`, and kafka-protocol's `RecordBatchDecoder`
//! (group load, ListOffsets max timestamp, the console consumer).
//!
//! Input: `[control u8][segment bytes]`. Control bit 0 recomputes the CRC
//! of every batch, bit 1 asks the iterator to verify CRCs.

#![no_main]

use bytes::Bytes;
use corelog::protocol::batch::{has_null_key, parse_records, records_section, BatchIter, IterStop};
use kafka_protocol::records::RecordBatchDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let mut buf = rest.to_vec();
    if control & 1 != 0 {
        corelog_fuzz::fix_batch_crcs(&mut buf);
    }
    let mut it = BatchIter::new(&buf, control & 2 != 0);
    let mut expected_at = 0;
    for (at, header) in it.by_ref() {
        // Batches are back to back and whole.
        assert_eq!(at, expected_at);
        let total = header.total_bytes();
        assert!(at + total <= buf.len());
        expected_at = at + total;
        let batch = &buf[at..at + total];
        if let Ok(section) = records_section(batch, &header) {
            if let Ok(records) = parse_records(&section, header.records_count) {
                assert_eq!(records.len(), header.records_count.max(0) as usize);
                for record in &records {
                    let _ = record.header_keys();
                }
            }
        }
        let _ = has_null_key(batch);
        let mut bytes = Bytes::copy_from_slice(batch);
        let _ = RecordBatchDecoder::decode(&mut bytes);
    }
    assert_eq!(it.position(), expected_at);
    match it.stop() {
        Some(IterStop::End) => assert_eq!(expected_at, buf.len()),
        Some(_) => assert!(expected_at < buf.len()),
        None => panic!("a finished iterator says why it stopped"),
    }
});
