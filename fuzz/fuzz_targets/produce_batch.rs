//! Produce batch validation: the `records` of one partition of a Produce
//! request, as `Partition::append` gets them, through
//! `protocol::records::validate_produce` (Kafka's LogValidator rules: the
//! batch, its CRC, attributes, producer fields and every record), then what
//! the partition does with a batch it accepted (recompression to the
//! topic's `compression.type`, the base offset, leader epoch and
//! LogAppendTime patches). Whatever produce validation accepts must pass
//! the stored-batch parser (`check_stored_batch`) once patched as the log
//! stores it: readers, recovery and followers judge it with that parser.
//!
//! Input: `[control u8][records]`. Control bit 0 recomputes the batch CRC
//! and bit 1 sets batchLength to the real length, so mutations reach the
//! checks behind them; bits 2-3 pick `max.message.bytes`, bits 4-6 a codec
//! to recompress into (7: none), bit 7 the topic's rules (compacted with
//! LogAppendTime and zstd refused, or the defaults).

#![no_main]

use corelog::protocol::batch::{
    patch_base_offset, patch_partition_leader_epoch, set_log_append_time, BatchHeader,
    Codec,
};
use corelog::protocol::records::{
    check_stored_batch, parse_records, records_section, recompress, validate_produce, ProduceRules,
};
use libfuzzer_sys::fuzz_target;

/// Kafka's default `max.message.bytes` and smaller and larger settings.
const MAX_MESSAGE_BYTES: [usize; 4] = [1_048_588, 100, 64 * 1024, usize::MAX];
/// The recorded seeds' clock: their timestamps are within a day of it.
const NOW_MS: i64 = 1_765_000_000_000;
/// message.timestamp.before.max.ms / after.max.ms: Kafka's defaults
/// (unbounded before, one hour after) and a tight pair.
const DAY_MS: i64 = 24 * 3600 * 1000;

fn rules(control: u8) -> ProduceRules {
    let max_message_bytes = MAX_MESSAGE_BYTES[usize::from((control >> 2) & 3)];
    if control & 0x80 == 0 {
        ProduceRules {
            max_message_bytes,
            now_ms: NOW_MS,
            log_append_time: false,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: 3600 * 1000,
            require_keys: false,
            zstd_allowed: true,
        }
    } else {
        ProduceRules {
            max_message_bytes,
            now_ms: NOW_MS,
            log_append_time: true,
            timestamp_before_max_ms: DAY_MS,
            timestamp_after_max_ms: DAY_MS,
            require_keys: true,
            zstd_allowed: false,
        }
    }
}

/// What every consumer of a stored batch relies on.
fn check_as_stored(batch: &[u8], header: &BatchHeader, what: &str) {
    let again = check_stored_batch(batch)
        .unwrap_or_else(|e| panic!("{what}: the stored-batch parser refuses it: {e}"));
    assert_eq!(again.records_count, header.records_count, "{what}");
    assert_eq!(again.last_offset_delta, header.last_offset_delta, "{what}");
    let section = records_section(batch, &again).expect("a checked batch decompresses");
    let records = parse_records(&section, &again).expect("a checked batch parses");
    assert_eq!(records.len(), again.records_count as usize, "{what}");
}

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
    let rules = rules(control);
    let Ok(valid) = validate_produce(&records, &rules) else {
        return;
    };
    let header = valid.header;
    // What validation promises the log: one whole batch within the limit,
    // with records numbered 0..n-1, a known codec, not a control batch.
    assert_eq!(header.total_bytes(), records.len());
    assert!(records.len() <= rules.max_message_bytes);
    assert!(header.records_count > 0);
    assert_eq!(
        i64::from(header.last_offset_delta) + 1,
        i64::from(header.records_count)
    );
    assert!(Codec::from_id(header.compression()).is_some());
    assert!(!header.is_control());
    if !rules.log_append_time {
        assert!(valid.max_timestamp <= NOW_MS + rules.timestamp_after_max_ms);
    }
    // The log's patches keep a valid batch valid, for produce and for
    // every reader of the stored copy.
    let mut stored = records.clone();
    patch_base_offset(&mut stored, 1 << 40);
    patch_partition_leader_epoch(&mut stored, 7);
    if rules.log_append_time {
        set_log_append_time(&mut stored, NOW_MS);
    }
    check_as_stored(&stored, &header, "a patched valid batch");
    if !rules.log_append_time {
        validate_produce(&stored, &rules).expect("a patched valid batch stays valid");
    }
    let Some(codec) = Codec::from_id((control >> 4) & 7) else {
        return;
    };
    if let Ok(mut out) = recompress(&records, codec) {
        let again = validate_produce(
            &out,
            &ProduceRules {
                max_message_bytes: usize::MAX,
                zstd_allowed: true,
                ..rules
            },
        )
        .expect("a recompressed valid batch is valid");
        assert_eq!(again.header.records_count, header.records_count);
        assert_eq!(again.header.compression(), codec as u8);
        assert_eq!(again.max_timestamp, valid.max_timestamp);
        // The log stores it with its offset (a client's baseOffset means
        // nothing and may be anything).
        patch_base_offset(&mut out, 1 << 40);
        check_as_stored(&out, &header, "a recompressed valid batch");
    }
});
