//! Produce batch validation: the `records` of one partition of a Produce
//! request, as `validate_produce_records` gets them, then what the
//! partition does with a batch it accepted (null-key check of compacted
//! topics, recompression to the topic's `compression.type`, the base offset
//! and LogAppendTime patches).
//!
//! Input: `[control u8][records]`. Control bit 0 recomputes the batch CRC
//! and bit 1 sets batchLength to the real length, so mutations reach the
//! checks behind them; bits 2-3 pick `max.message.bytes`, bits 4-6 a codec
//! to recompress into (7: none).

#![no_main]

use corelog::protocol::batch::{
    has_null_key, patch_base_offset, recompress, set_log_append_time, validate_produce_records,
    Codec,
};
use libfuzzer_sys::fuzz_target;

/// Kafka's default `max.message.bytes` and smaller and larger settings.
const MAX_MESSAGE_BYTES: [usize; 4] = [1_048_588, 100, 64 * 1024, usize::MAX];

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let mut records = rest.to_vec();
    if control & 2 != 0 {
        corelog_fuzz::fix_batch_length(&mut records);
    }
    if control & 1 != 0 {
        corelog_fuzz::fix_batch_crcs(&mut records);
    }
    let max = MAX_MESSAGE_BYTES[usize::from((control >> 2) & 3)];
    let Ok(header) = validate_produce_records(&records, max) else {
        return;
    };
    // What validation promises the log: one whole batch within the limit,
    // with records and a consistent last offset delta.
    assert_eq!(header.total_bytes(), records.len());
    assert!(records.len() <= max);
    assert!(header.records_count > 0);
    assert_eq!(
        i64::from(header.last_offset_delta) + 1,
        i64::from(header.records_count)
    );
    let _ = has_null_key(&records);
    // The log's patches keep a valid batch valid.
    let mut stored = records.clone();
    patch_base_offset(&mut stored, 1 << 40);
    set_log_append_time(&mut stored, 1_700_000_000_000);
    validate_produce_records(&stored, max).expect("a patched valid batch stays valid");
    if let Some(codec) = Codec::from_id((control >> 4) & 7) {
        if let Ok(out) = recompress(&records, codec) {
            let again = validate_produce_records(&out, usize::MAX)
                .expect("a recompressed valid batch is valid");
            assert_eq!(again.records_count, header.records_count);
            assert_eq!(again.compression(), codec as u8);
        }
    }
});
