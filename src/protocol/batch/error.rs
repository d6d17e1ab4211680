//! Why a record batch, or the records inside it, is refused, and the Kafka
//! error class of each refusal ([`BatchFault`]).

use super::Codec;

/// Why a buffer is not a usable record batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than the header or than batchLength announces.
    #[error("record batch is truncated")]
    Truncated,
    /// batchLength is below the header size (or not representable).
    #[error("record batch length is invalid")]
    InvalidLength,
    /// Magic byte other than 2.
    #[error("record batch magic {0} is unsupported")]
    UnsupportedMagic(i8),
    /// CRC32C over attributes..end does not match the stored crc.
    #[error("record batch CRC32C does not match")]
    CorruptCrc,
    /// Header fields that contradict each other (recordsCount against
    /// lastOffsetDelta or against the bytes present).
    #[error("record batch header is inconsistent: {0}")]
    Inconsistent(&'static str),
}

/// Why a produce request's `records` for one partition is rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProduceBatchError {
    /// The single batch itself is malformed (length, magic, CRC).
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// More than one batch, or bytes after the batch (Kafka: INVALID_RECORD).
    #[error("produce records hold more than one record batch")]
    MultipleBatches,
    /// No records at all (empty `records`, or recordsCount <= 0).
    #[error("produce records hold no records")]
    Empty,
    /// recordsCount and lastOffsetDelta disagree (Kafka: INVALID_RECORD).
    #[error(
        "record batch recordsCount {records_count} does not match lastOffsetDelta \
         {last_offset_delta}"
    )]
    InvalidRecordCount {
        records_count: i32,
        last_offset_delta: i32,
    },
    /// Larger than max.message.bytes (Kafka: MESSAGE_TOO_LARGE).
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge { size: usize, max: usize },
    /// Attribute bits 0-2 name no codec (Kafka: UNSUPPORTED_COMPRESSION_TYPE).
    #[error("record batch names unknown compression codec {0}")]
    UnknownCodec(u8),
    /// zstd in a Produce request older than v7 (KIP-110).
    #[error("Produce requests with version < 7 must not use ZStandard compression")]
    ZstdNeedsV7,
    /// Clients may not write control batches (Kafka: INVALID_RECORD).
    #[error("Clients are not allowed to write control records")]
    ControlBatch,
    /// A transactional batch: corelog has no transaction coordinator, so no
    /// partition is ever part of an ongoing transaction (Kafka with
    /// transaction verification answers INVALID_TXN_STATE then).
    #[error("transactional batches are not supported: this broker runs no transactions")]
    Transactional,
    /// A producer may not mark its batch LogAppendTime (Kafka: INVALID_TIMESTAMP).
    #[error("Producer should not set timestamp type to LogAppendTime")]
    LogAppendTime,
    /// Producer id with a negative epoch or sequence (Kafka: INVALID_RECORD).
    #[error("{0}")]
    InvalidProducer(&'static str),
    /// A record's timestamp is outside the topic's bounds.
    #[error(
        "Timestamp {timestamp} of record {index} is out of range. The timestamp should be \
         within [{min}, {max}]"
    )]
    Timestamp {
        index: i32,
        timestamp: i64,
        min: i64,
        max: i64,
    },
    /// A record without a key on a compacted topic.
    #[error("Compacted topic cannot accept message without key (record {index})")]
    NullKey { index: i32 },
    /// The records section does not parse, or decompresses past the bound.
    #[error(transparent)]
    Records(#[from] RecordsError),
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

/// Why the records inside a batch could not be decoded or re-encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordsError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// Attribute bits name a codec that does not exist.
    #[error("record batch names unknown codec {0}")]
    UnknownCodec(u8),
    /// The codec's stream is corrupt (or it failed to compress).
    #[error("record batch {} stream is corrupt", .0.dump_name())]
    Codec(Codec),
    /// The records section does not parse: `index` is the record at fault
    /// (recordsCount when bytes follow the last one).
    #[error("record {index} of the batch is malformed: {what}")]
    Malformed { index: i32, what: &'static str },
    /// Decompressed records larger than `RECORDS_DECOMPRESSED_BYTES_MAX`.
    #[error(
        "record batch decompresses to more than {} bytes",
        crate::limits::RECORDS_DECOMPRESSED_BYTES_MAX
    )]
    TooLarge,
}
