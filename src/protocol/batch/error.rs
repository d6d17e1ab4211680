//! Why a record batch, or the records inside it, is refused, and the Kafka
//! error class of each refusal ([`BatchFault`]).

use std::fmt;

use super::Codec;

/// Why a buffer is not a usable record batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchError {
    /// Fewer bytes than the header or than batchLength announces.
    Truncated,
    /// batchLength is below the header size (or not representable).
    InvalidLength,
    /// Magic byte other than 2.
    UnsupportedMagic(i8),
    /// CRC32C over attributes..end does not match the stored crc.
    CorruptCrc,
    /// Header fields that contradict each other (recordsCount against
    /// lastOffsetDelta or against the bytes present).
    Inconsistent(&'static str),
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Truncated => write!(f, "record batch is truncated"),
            BatchError::InvalidLength => write!(f, "record batch length is invalid"),
            BatchError::UnsupportedMagic(m) => write!(f, "record batch magic {m} is unsupported"),
            BatchError::CorruptCrc => write!(f, "record batch CRC32C does not match"),
            BatchError::Inconsistent(what) => {
                write!(f, "record batch header is inconsistent: {what}")
            }
        }
    }
}

impl std::error::Error for BatchError {}

/// Why a produce request's `records` for one partition is rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProduceBatchError {
    /// The single batch itself is malformed (length, magic, CRC).
    Batch(BatchError),
    /// More than one batch, or bytes after the batch (Kafka: INVALID_RECORD).
    MultipleBatches,
    /// No records at all (empty `records`, or recordsCount <= 0).
    Empty,
    /// recordsCount and lastOffsetDelta disagree (Kafka: INVALID_RECORD).
    InvalidRecordCount {
        records_count: i32,
        last_offset_delta: i32,
    },
    /// Larger than max.message.bytes (Kafka: MESSAGE_TOO_LARGE).
    TooLarge { size: usize, max: usize },
    /// Attribute bits 0-2 name no codec (Kafka: UNSUPPORTED_COMPRESSION_TYPE).
    UnknownCodec(u8),
    /// zstd in a Produce request older than v7 (KIP-110).
    ZstdNeedsV7,
    /// Clients may not write control batches (Kafka: INVALID_RECORD).
    ControlBatch,
    /// A transactional batch: corelog has no transaction coordinator, so no
    /// partition is ever part of an ongoing transaction (Kafka with
    /// transaction verification answers INVALID_TXN_STATE then).
    Transactional,
    /// A producer may not mark its batch LogAppendTime (Kafka: INVALID_TIMESTAMP).
    LogAppendTime,
    /// Producer id with a negative epoch or sequence (Kafka: INVALID_RECORD).
    InvalidProducer(&'static str),
    /// A record's timestamp is outside the topic's bounds.
    Timestamp {
        index: i32,
        timestamp: i64,
        min: i64,
        max: i64,
    },
    /// A record without a key on a compacted topic.
    NullKey { index: i32 },
    /// The records section does not parse, or decompresses past the bound.
    Records(RecordsError),
}

/// The Kafka error class of a refused batch; `server::errors` maps each
/// to its code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchFault {
    /// CORRUPT_MESSAGE
    Corrupt,
    /// INVALID_RECORD
    InvalidRecord,
    /// MESSAGE_TOO_LARGE
    TooLarge,
    /// UNSUPPORTED_FOR_MESSAGE_FORMAT
    UnsupportedFormat,
    /// UNSUPPORTED_COMPRESSION_TYPE
    UnsupportedCompression,
    /// INVALID_TIMESTAMP
    InvalidTimestamp,
    /// INVALID_TXN_STATE
    InvalidTxnState,
}

impl ProduceBatchError {
    pub fn fault(&self) -> BatchFault {
        match self {
            ProduceBatchError::Batch(BatchError::CorruptCrc)
            | ProduceBatchError::Batch(BatchError::InvalidLength) => BatchFault::Corrupt,
            ProduceBatchError::Batch(BatchError::UnsupportedMagic(_)) => {
                BatchFault::UnsupportedFormat
            }
            ProduceBatchError::Batch(_)
            | ProduceBatchError::MultipleBatches
            | ProduceBatchError::Empty
            | ProduceBatchError::InvalidRecordCount { .. }
            | ProduceBatchError::ControlBatch
            | ProduceBatchError::InvalidProducer(_)
            | ProduceBatchError::NullKey { .. } => BatchFault::InvalidRecord,
            ProduceBatchError::TooLarge { .. } => BatchFault::TooLarge,
            ProduceBatchError::UnknownCodec(_) | ProduceBatchError::ZstdNeedsV7 => {
                BatchFault::UnsupportedCompression
            }
            ProduceBatchError::Transactional => BatchFault::InvalidTxnState,
            ProduceBatchError::LogAppendTime | ProduceBatchError::Timestamp { .. } => {
                BatchFault::InvalidTimestamp
            }
            ProduceBatchError::Records(e) => match e {
                RecordsError::Batch(b) => ProduceBatchError::Batch(*b).fault(),
                RecordsError::UnknownCodec(_) => BatchFault::UnsupportedCompression,
                RecordsError::Codec(_) => BatchFault::Corrupt,
                RecordsError::Malformed { .. } => BatchFault::InvalidRecord,
                RecordsError::TooLarge => BatchFault::TooLarge,
            },
        }
    }

    /// The index in its batch of the record at fault, when one is (Produce
    /// v8+ reports it in `record_errors`).
    pub fn record_index(&self) -> Option<i32> {
        match self {
            ProduceBatchError::Timestamp { index, .. }
            | ProduceBatchError::NullKey { index }
            | ProduceBatchError::Records(RecordsError::Malformed { index, .. }) => Some(*index),
            _ => None,
        }
    }
}

impl fmt::Display for ProduceBatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProduceBatchError::Batch(e) => e.fmt(f),
            ProduceBatchError::MultipleBatches => {
                write!(f, "produce records hold more than one record batch")
            }
            ProduceBatchError::Empty => write!(f, "produce records hold no records"),
            ProduceBatchError::InvalidRecordCount {
                records_count,
                last_offset_delta,
            } => write!(
                f,
                "record batch recordsCount {records_count} does not match lastOffsetDelta {last_offset_delta}"
            ),
            ProduceBatchError::TooLarge { size, max } => {
                write!(f, "record batch of {size} bytes exceeds max.message.bytes {max}")
            }
            ProduceBatchError::UnknownCodec(c) => {
                write!(f, "record batch names unknown compression codec {c}")
            }
            ProduceBatchError::ZstdNeedsV7 => write!(
                f,
                "Produce requests with version < 7 must not use ZStandard compression"
            ),
            ProduceBatchError::ControlBatch => {
                write!(f, "Clients are not allowed to write control records")
            }
            ProduceBatchError::Transactional => write!(
                f,
                "transactional batches are not supported: this broker runs no transactions"
            ),
            ProduceBatchError::LogAppendTime => write!(
                f,
                "Producer should not set timestamp type to LogAppendTime"
            ),
            ProduceBatchError::InvalidProducer(what) => f.write_str(what),
            ProduceBatchError::Timestamp {
                index,
                timestamp,
                min,
                max,
            } => write!(
                f,
                "Timestamp {timestamp} of record {index} is out of range. \
                 The timestamp should be within [{min}, {max}]"
            ),
            ProduceBatchError::NullKey { index } => write!(
                f,
                "Compacted topic cannot accept message without key (record {index})"
            ),
            ProduceBatchError::Records(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ProduceBatchError {}

impl From<BatchError> for ProduceBatchError {
    fn from(e: BatchError) -> Self {
        ProduceBatchError::Batch(e)
    }
}

impl From<RecordsError> for ProduceBatchError {
    fn from(e: RecordsError) -> Self {
        ProduceBatchError::Records(e)
    }
}

/// Why the records inside a batch could not be decoded or re-encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordsError {
    Batch(BatchError),
    /// Attribute bits name a codec that does not exist.
    UnknownCodec(u8),
    /// The codec's stream is corrupt (or it failed to compress).
    Codec(Codec),
    /// The records section does not parse: `index` is the record at fault
    /// (recordsCount when bytes follow the last one).
    Malformed {
        index: i32,
        what: &'static str,
    },
    /// Decompressed records larger than `RECORDS_DECOMPRESSED_BYTES_MAX`.
    TooLarge,
}

impl fmt::Display for RecordsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordsError::Batch(e) => e.fmt(f),
            RecordsError::UnknownCodec(c) => write!(f, "record batch names unknown codec {c}"),
            RecordsError::Codec(c) => {
                write!(f, "record batch {} stream is corrupt", c.dump_name())
            }
            RecordsError::Malformed { index, what } => {
                write!(f, "record {index} of the batch is malformed: {what}")
            }
            RecordsError::TooLarge => write!(
                f,
                "record batch decompresses to more than {} bytes",
                crate::limits::RECORDS_DECOMPRESSED_BYTES_MAX
            ),
        }
    }
}

impl std::error::Error for RecordsError {}

impl From<BatchError> for RecordsError {
    fn from(e: BatchError) -> Self {
        RecordsError::Batch(e)
    }
}
