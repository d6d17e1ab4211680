//! Kafka's old message formats (message sets of magic 0 and 1), converted
//! at the edge: Produce v0-v2 is up-converted to one v2 record batch before
//! the partition sees it, and Fetch v0-v3 is down-converted from the stored
//! v2 batches. The log only ever holds v2 batches.
//!
//! Layout of one entry of a message set (big-endian): offset i64, size i32
//! (bytes after this field), crc u32 (CRC-32 (IEEE) of the bytes from magic
//! to the end), magic i8, attributes i8 (bits 0-2: codec, bit 3 on magic 1:
//! LogAppendTime), timestamp i64 (magic 1 only), key (i32 length, -1 for
//! null, then bytes), value (same). A compressed entry (a "wrapper") holds
//! in its value a compressed message set of the same magic whose entries
//! are not compressed again.
//!
//! Up-conversion keeps what the old formats carry: keys, values, record
//! timestamps (magic 1; magic 0 has none, so NO_TIMESTAMP, as Kafka's
//! converter leaves them) and the producer's codec (the whole batch is
//! compressed with the codec of its compressed entries). Old formats have no
//! producer id, sequence or headers, so the batch has none. Nothing from the
//! wire is trusted: every size is checked against the bytes present, every
//! entry's CRC is checked, and compressed values inflate in bounded chunks
//! against `limits::RECORDS_DECOMPRESSED_BYTES_MAX` for the whole set.
//!
//! Down-conversion writes one uncompressed message per record (headers
//! dropped; the old formats have none), so an old consumer gets the same
//! keys, values, offsets and (magic 1) timestamps, in order; control batches
//! are skipped as Kafka's converter skips them. Kafka keeps compression when
//! it down-converts; corelog sends the records uncompressed, which costs
//! network bytes, not broker CPU for recompression.
//!
//! Pure: no I/O, no shard state.

#![forbid(unsafe_code)]

mod down;
mod up;

#[cfg(test)]
mod tests;

pub use down::{down_convert, DownConverted};
pub use up::up_convert;

use super::batch::{BatchFault, RecordsError};

/// Position of the magic byte in a message-set entry, and in a v2 batch:
/// the same, so one look tells the formats apart.
pub const MAGIC_AT: usize = 16;
/// Bytes of an entry before its message: offset and size.
const LOG_OVERHEAD: usize = 12;
/// Smallest message (after the size field) of each magic: crc, magic,
/// attributes, [timestamp,] key length, value length.
const MESSAGE_BYTES_MIN_V0: usize = 14;
const MESSAGE_BYTES_MIN_V1: usize = 22;
const CODEC_MASK: u8 = 0x07;
const LOG_APPEND_TIME_BIT: u8 = 0x08;

/// True when `records` starts with a message-set entry of magic 0 or 1
/// (an old-format Produce), false for a v2 batch or too few bytes.
pub fn is_legacy(records: &[u8]) -> bool {
    matches!(records.get(MAGIC_AT), Some(0 | 1))
}

/// The message-set magic an old Fetch version reads: 0 before v2, 1 for
/// v2 and v3 (Kafka's `FetchRequest` version table).
pub fn fetch_magic(fetch_version: i16) -> i8 {
    if fetch_version < 2 {
        0
    } else {
        1
    }
}

fn message_bytes_min(magic: i8) -> usize {
    if magic == 0 {
        MESSAGE_BYTES_MIN_V0
    } else {
        MESSAGE_BYTES_MIN_V1
    }
}

/// Why an old-format message set is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LegacyError {
    #[error("message set holds no messages")]
    Empty,
    #[error("message {index} of the message set is truncated")]
    Truncated { index: usize },
    #[error("message {index} has an invalid size {size}")]
    InvalidSize { index: usize, size: i32 },
    #[error("message {index} fails its CRC check")]
    Crc { index: usize },
    #[error("message {index} has magic {magic}: a message set holds magic 0 or 1")]
    UnsupportedMagic { index: usize, magic: i8 },
    #[error("message {index} has magic {magic}, the set started with magic {first}")]
    MixedMagic { index: usize, magic: i8, first: i8 },
    #[error("message {index} has a key or value length that does not fit the message")]
    BadLength { index: usize },
    #[error("compressed message {index} holds a compressed message")]
    NestedCompression { index: usize },
    #[error("compressed message {index} holds no messages")]
    EmptyWrapper { index: usize },
    #[error("message {index} names unknown compression codec {codec}")]
    UnknownCodec { index: usize, codec: u8 },
    #[error("ZStandard compression needs the v2 record format (Produce v3 or later)")]
    Zstd,
    #[error("Producer should not set timestamp type to LogAppendTime")]
    LogAppendTime,
    #[error("message timestamps are too far apart for one record batch")]
    TimestampRange,
    #[error("more messages than one record batch can count")]
    TooManyMessages,
    #[error(transparent)]
    Records(#[from] RecordsError),
}

impl LegacyError {
    /// The Kafka error class: what Kafka's `LogValidator` answers for the
    /// same message set.
    pub fn fault(&self) -> BatchFault {
        match self {
            LegacyError::Truncated { .. }
            | LegacyError::InvalidSize { .. }
            | LegacyError::Crc { .. }
            | LegacyError::BadLength { .. } => BatchFault::Corrupt,
            LegacyError::Empty
            | LegacyError::MixedMagic { .. }
            | LegacyError::UnsupportedMagic { .. }
            | LegacyError::NestedCompression { .. }
            | LegacyError::EmptyWrapper { .. } => BatchFault::InvalidRecord,
            LegacyError::TooManyMessages => BatchFault::TooLarge,
            LegacyError::UnknownCodec { .. } | LegacyError::Zstd => {
                BatchFault::UnsupportedCompression
            }
            LegacyError::LogAppendTime | LegacyError::TimestampRange => {
                BatchFault::InvalidTimestamp
            }
            LegacyError::Records(RecordsError::TooLarge) => BatchFault::TooLarge,
            LegacyError::Records(_) => BatchFault::Corrupt,
        }
    }
}
