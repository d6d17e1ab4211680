//! The old message formats (`protocol::legacy`): a Produce v0-v2 message
//! set of magic 0 or 1 from a client, up-converted to one v2 batch, and the
//! way back for Fetch v0-v3. Whatever up-conversion accepts must be a batch
//! produce validation accepts and the stored-batch parser reads, and must
//! down-convert again without error into messages that up-convert once
//! more to the same records.
//!
//! Input: `[control u8][message set]`. Control bit 0 recomputes the CRC of
//! every top-level message (CRC-32 of magic..end), so mutations reach the
//! checks behind it; bit 1 picks the magic to down-convert to.

#![no_main]

use corelog::protocol::legacy::{down_convert, is_legacy, up_convert};
use corelog::protocol::records::{check_stored_batch, validate_produce, ProduceRules};
use libfuzzer_sys::fuzz_target;

/// Recomputes the CRC of each top-level message whose size fits the input.
fn fix_crcs(set: &mut [u8]) {
    let mut at = 0;
    while at + 12 <= set.len() {
        let size = i32::from_be_bytes(set[at + 8..at + 12].try_into().unwrap());
        let Ok(size) = usize::try_from(size) else {
            return;
        };
        let end = at + 12 + size;
        if size < 5 || end > set.len() {
            return;
        }
        let crc = crc32fast::hash(&set[at + 16..end]);
        set[at + 12..at + 16].copy_from_slice(&crc.to_be_bytes());
        at = end;
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else {
        return;
    };
    let mut set = rest.to_vec();
    if control & 1 != 0 {
        fix_crcs(&mut set);
    }
    let _ = is_legacy(&set);
    let Ok(batch) = up_convert(&set) else {
        return;
    };
    let rules = ProduceRules {
        max_message_bytes: usize::MAX,
        now_ms: 0,
        log_append_time: false,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: i64::MAX,
        require_keys: false,
        zstd_allowed: false,
    };
    let valid = validate_produce(&batch, &rules).expect("an up-converted batch is valid");
    check_stored_batch(&batch).expect("an up-converted batch reads back");
    let magic = (control >> 1 & 1) as i8;
    let mut old = Vec::new();
    let done = down_convert(&batch, magic, 0, usize::MAX, &mut old).expect("down-converts");
    assert_eq!(done.messages as i32, valid.header.records_count);
    let again = up_convert(&old).expect("a down-converted set up-converts");
    let header = check_stored_batch(&again).expect("reads back");
    assert_eq!(header.records_count, valid.header.records_count);
});
