//! The stored-batch parsers: what reads, ListOffsets, recovery, the
//! cleaner, `dump-log` and group loading run over bytes from a segment.
//! `BatchIter` walks the buffer; every batch it yields goes through the
//! bounded record parser (`protocol::records`): `check_stored_batch` (what
//! recovery, scrub, followers and group load judge a batch with),
//! `records_section` (decompression) and `parse_records` (compaction,
//! dump-log, the console consumer), its records' headers, `find_record`
//! (ListOffsets by timestamp), and, as a cross-check of what clients will
//! read, kafka-protocol's `RecordBatchDecoder`. A batch the stored-batch
//! parser accepts must decode whole everywhere else too.
//!
//! Input: `[control u8][segment bytes]`. Control bit 0 recomputes the CRC
//! of every batch, bit 1 asks the iterator to verify CRCs.

#![no_main]

use bytes::Bytes;
use corelog::protocol::batch::{BatchIter, IterStop};
use corelog::protocol::records::{check_stored_batch, find_record, parse_records, records_section};
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
        let checked = check_stored_batch(batch);
        let parsed = records_section(batch, &header).ok().map(|section| {
            parse_records(&section, &header).map(|records| {
                for record in &records {
                    // Every header of a parsed record reads back.
                    assert_eq!(record.headers().len(), record.header_count.max(0) as usize);
                }
                records.len()
            })
        });
        let found = find_record(batch, |ts| ts >= 0);
        let mut bytes = Bytes::copy_from_slice(batch);
        let decoded = RecordBatchDecoder::decode(&mut bytes);
        if let Ok(checked) = checked {
            assert_eq!(checked, header);
            let count = parsed
                .expect("a checked batch decompresses")
                .expect("a checked batch parses");
            assert_eq!(count, header.records_count as usize);
            // A record timestamp may overflow (the stored-batch parser
            // does not judge timestamps): ListOffsets then refuses the batch.
            let _ = found;
            let decoded = decoded.expect("kafka-protocol decodes a checked batch");
            assert_eq!(decoded.records.len(), header.records_count as usize);
        }
    }
    assert_eq!(it.position(), expected_at);
    match it.stop() {
        Some(IterStop::End) => assert_eq!(expected_at, buf.len()),
        Some(_) => assert!(expected_at < buf.len()),
        None => panic!("a finished iterator says why it stopped"),
    }
});
