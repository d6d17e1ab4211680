//! Fetch v0-v3: stored v2 batches written out as an old-format message set.

use super::{message_bytes_min, LOG_APPEND_TIME_BIT, LOG_OVERHEAD};
use crate::protocol::batch::{BatchIter, IterStop, RecordsError};
use crate::protocol::records::{parse_records, records_section};

/// What [`down_convert`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DownConverted {
    pub messages: usize,
    /// Bytes of whole v2 batches read from the input.
    pub batches_bytes: usize,
}

/// Appends to `out` every record of the whole v2 batches at the start of
/// `batches` whose offset is `from_offset` or later, as uncompressed
/// messages of `magic` (0 or 1) with their absolute offsets, stopping before
/// the message that would take `out` past `max_bytes`. The first message
/// always goes in, however large, as a fetch since KIP-74 returns one
/// record larger than its limit rather than none. Control batches are
/// skipped; a batch cut short at the end of `batches` (a fetch may end
/// inside one) ends the conversion.
pub fn down_convert(
    batches: &[u8],
    magic: i8,
    from_offset: i64,
    max_bytes: usize,
    out: &mut Vec<u8>,
) -> Result<DownConverted, RecordsError> {
    debug_assert!(matches!(magic, 0 | 1));
    let start_len = out.len();
    let mut done = DownConverted::default();
    let mut iter = BatchIter::new(batches, false);
    for (at, header) in iter.by_ref() {
        let batch = &batches[at..at + header.total_bytes()];
        done.batches_bytes = at + batch.len();
        if header.is_control() {
            continue;
        }
        let section = records_section(batch, &header)?;
        for record in parse_records(&section, &header)? {
            let offset = header.base_offset + i64::from(record.offset_delta);
            if offset < from_offset {
                continue;
            }
            let timestamp = if header.is_log_append_time() {
                header.max_timestamp
            } else {
                header.base_timestamp.wrapping_add(record.timestamp_delta)
            };
            let size = message_bytes_min(magic)
                + record.key.map_or(0, <[u8]>::len)
                + record.value.map_or(0, <[u8]>::len);
            let written = out.len() - start_len;
            if written > 0 && written + LOG_OVERHEAD + size > max_bytes {
                return Ok(done);
            }
            let attributes = if magic == 1 && header.is_log_append_time() {
                LOG_APPEND_TIME_BIT
            } else {
                0
            };
            put_message(
                out,
                magic,
                attributes,
                offset,
                timestamp,
                record.key,
                record.value,
            );
            done.messages += 1;
        }
    }
    match iter.stop() {
        Some(IterStop::Invalid(e)) => Err(e.into()),
        _ => Ok(done),
    }
}

/// One entry: offset, size, crc, magic, attributes, [timestamp], key, value.
pub(super) fn put_message(
    out: &mut Vec<u8>,
    magic: i8,
    attributes: u8,
    offset: i64,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    let size = message_bytes_min(magic) + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len);
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&(size as i32).to_be_bytes());
    let crc_at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(magic as u8);
    out.push(attributes);
    if magic == 1 {
        out.extend_from_slice(&timestamp.to_be_bytes());
    }
    for field in [key, value] {
        match field {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(b) => {
                out.extend_from_slice(&(b.len() as i32).to_be_bytes());
                out.extend_from_slice(b);
            }
        }
    }
    let crc = crc32fast::hash(&out[crc_at + 4..]);
    out[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
}
