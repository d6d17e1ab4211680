//! The Kafka v2 record-batch view: parse, validate and patch batches in place.
//!
//! Owns the byte layout of a record batch (magic 2) and nothing else: no I/O,
//! no allocation, no per-record decoding (records are walked, boundedly, by
//! `protocol::records`, which also holds the produce validator). It is pure,
//! so it runs on whichever shard holds the bytes (the produce path on the
//! partition's owner shard, the log's recovery and read paths on the same
//! shard).
//!
//! Layout (big-endian): baseOffset i64 @0, batchLength i32 @8 (bytes after this
//! field), partitionLeaderEpoch i32 @12, magic i8 @16, crc u32 @17 (CRC32C of
//! the bytes from attributes @21 to the end), attributes i16 @21,
//! lastOffsetDelta i32 @23, baseTimestamp i64 @27, maxTimestamp i64 @35,
//! producerId i64 @43, producerEpoch i16 @51, baseSequence i32 @53,
//! recordsCount i32 @57, records @61.
//!
//! Invariants: a `BatchHeader` returned by [`BatchHeader::parse`] has magic 2
//! and `batch_length >= BATCH_LENGTH_MIN`; the CRC and the header's
//! consistency ([`BatchHeader::check_consistent`]) are only checked where the
//! caller asks (`validate_produce_records`, a verifying `BatchIter`). The CRC
//! does not cover baseOffset or partitionLeaderEpoch, so patching those never
//! re-checksums; LogAppendTime changes attributes and maxTimestamp, so
//! [`set_log_append_time`] recomputes it. Mapping errors to Kafka codes is
//! `server/errors.rs`'s job, not this module's ([`BatchFault`] names the
//! class).

#![forbid(unsafe_code)]

use std::fmt;

/// Bytes of the fixed batch header, up to the first record.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes before the batchLength-counted part (baseOffset + batchLength).
pub const BATCH_LENGTH_PREFIX_BYTES: usize = 12;
/// Smallest legal batchLength: the header after the length field, no records.
pub const BATCH_LENGTH_MIN: i32 = (BATCH_HEADER_BYTES - BATCH_LENGTH_PREFIX_BYTES) as i32;
/// The only record-batch format this broker stores.
pub const MAGIC_V2: i8 = 2;

const BASE_OFFSET_AT: usize = 0;
const BATCH_LENGTH_AT: usize = 8;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORDS_COUNT_AT: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

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

/// The fixed header of one v2 record batch, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

impl BatchHeader {
    /// Decodes the header at the start of `buf`. Checks magic and that
    /// batchLength is at least a header; does not check that the whole batch
    /// is present (see [`BatchHeader::total_bytes`]) nor the CRC.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        // The magic byte decides the layout, so it is judged before the rest
        // of the header has to be present (a magic 0/1 message can be short).
        if buf.len() <= MAGIC_AT {
            return Err(BatchError::Truncated);
        }
        let batch_length = be_i32(buf, BATCH_LENGTH_AT);
        let magic = buf[MAGIC_AT] as i8;
        if magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        if batch_length < BATCH_LENGTH_MIN {
            return Err(BatchError::InvalidLength);
        }
        if buf.len() < BATCH_HEADER_BYTES {
            return Err(BatchError::Truncated);
        }
        Ok(BatchHeader {
            base_offset: be_i64(buf, BASE_OFFSET_AT),
            batch_length,
            partition_leader_epoch: be_i32(buf, LEADER_EPOCH_AT),
            magic,
            crc: u32::from_be_bytes([
                buf[CRC_AT],
                buf[CRC_AT + 1],
                buf[CRC_AT + 2],
                buf[CRC_AT + 3],
            ]),
            attributes: be_i16(buf, ATTRIBUTES_AT),
            last_offset_delta: be_i32(buf, LAST_OFFSET_DELTA_AT),
            base_timestamp: be_i64(buf, BASE_TIMESTAMP_AT),
            max_timestamp: be_i64(buf, MAX_TIMESTAMP_AT),
            producer_id: be_i64(buf, PRODUCER_ID_AT),
            producer_epoch: be_i16(buf, PRODUCER_EPOCH_AT),
            base_sequence: be_i32(buf, BASE_SEQUENCE_AT),
            records_count: be_i32(buf, RECORDS_COUNT_AT),
        })
    }

    /// Bytes of the whole batch: batchLength plus the 12 bytes before it.
    pub fn total_bytes(&self) -> usize {
        self.batch_length as usize + BATCH_LENGTH_PREFIX_BYTES
    }

    /// baseOffset + lastOffsetDelta. Saturating, because headers are read
    /// from bytes before anything is checked: a header whose offsets do not
    /// fit is refused by [`BatchHeader::check_consistent`], never wrapped.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> u8 {
        (self.attributes & COMPRESSION_MASK) as u8
    }

    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// The sequence of the batch's last record; sequences wrap from
    /// i32::MAX to 0 as in Kafka's `DefaultRecordBatch.incrementSequence`.
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }

    /// Checks what the header alone can tell: lastOffsetDelta and
    /// baseOffset are not negative, the offset after the batch fits an i64,
    /// 0 <= recordsCount <= lastOffsetDelta + 1 (fewer records
    /// than offsets only after the cleaner dropped some), and an
    /// uncompressed batch has the bytes for recordsCount records of at
    /// least `RECORD_BYTES_MIN` each. Cheap: readers that trust a header
    /// (recovery, replication, scans) call it with the CRC check.
    pub fn check_consistent(&self) -> Result<(), BatchError> {
        if self.last_offset_delta < 0 {
            return Err(BatchError::Inconsistent("lastOffsetDelta is negative"));
        }
        if self.base_offset < 0 {
            return Err(BatchError::Inconsistent("baseOffset is negative"));
        }
        // The offset after the batch (a log's end) must be an offset too.
        if self.base_offset > i64::MAX - 1 - i64::from(self.last_offset_delta) {
            return Err(BatchError::Inconsistent(
                "the batch's offsets pass the largest offset",
            ));
        }
        if self.records_count < 0 {
            return Err(BatchError::Inconsistent("recordsCount is negative"));
        }
        if i64::from(self.records_count) > i64::from(self.last_offset_delta) + 1 {
            return Err(BatchError::Inconsistent(
                "recordsCount is larger than lastOffsetDelta + 1",
            ));
        }
        let records_bytes = self.total_bytes() - BATCH_HEADER_BYTES;
        if self.compression() == 0 && self.records_count as usize > records_bytes / RECORD_BYTES_MIN
        {
            return Err(BatchError::Inconsistent(
                "recordsCount is larger than the records bytes can hold",
            ));
        }
        Ok(())
    }
}

/// `sequence + increment`, wrapping past i32::MAX to 0 (Kafka's rule).
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// CRC32C over attributes..end of a whole batch.
fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES_AT..])
}

/// Checks the stored CRC of one whole batch (`batch.len()` == total bytes).
pub fn verify_crc(batch: &[u8], header: &BatchHeader) -> Result<(), BatchError> {
    assert_eq!(batch.len(), header.total_bytes());
    if compute_crc(batch) == header.crc {
        Ok(())
    } else {
        Err(BatchError::CorruptCrc)
    }
}

/// Validates the `records` of one partition in a produce request: exactly
/// one v2 batch filling `records`, consistent counts, a matching CRC32C, and
/// at most `max_message_bytes`. One CRC pass; no allocation, no record decode.
pub fn validate_produce_records(
    records: &[u8],
    max_message_bytes: usize,
) -> Result<BatchHeader, ProduceBatchError> {
    if records.is_empty() {
        return Err(ProduceBatchError::Empty);
    }
    let header = BatchHeader::parse(records)?;
    let total = header.total_bytes();
    if total > records.len() {
        return Err(BatchError::Truncated.into());
    }
    if total < records.len() {
        return Err(ProduceBatchError::MultipleBatches);
    }
    if total > max_message_bytes {
        return Err(ProduceBatchError::TooLarge {
            size: total,
            max: max_message_bytes,
        });
    }
    if header.records_count <= 0 {
        return Err(ProduceBatchError::Empty);
    }
    if header.last_offset_delta < 0
        || i64::from(header.records_count) != i64::from(header.last_offset_delta) + 1
    {
        return Err(ProduceBatchError::InvalidRecordCount {
            records_count: header.records_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    verify_crc(records, &header)?;
    Ok(header)
}

/// Writes baseOffset (not covered by the CRC).
pub fn patch_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Writes partitionLeaderEpoch (not covered by the CRC).
pub fn patch_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks the batch LogAppendTime with `ts` as its maxTimestamp and
/// recomputes the CRC, as Kafka's `setMaxTimestamp` does. `batch` must be
/// exactly one whole batch.
pub fn set_log_append_time(batch: &mut [u8], ts: i64) {
    assert!(batch.len() >= BATCH_HEADER_BYTES);
    let (header, records) = batch.split_at_mut(BATCH_HEADER_BYTES);
    set_log_append_time_parts(header, records, ts);
}

/// [`set_log_append_time`] for a batch held as its 61-byte header and the
/// records after it (the log patches a header copy while the records go
/// straight from the request into its write buffer). Only `header` changes.
pub fn set_log_append_time_parts(header: &mut [u8], records: &[u8], ts: i64) {
    assert_eq!(header.len(), BATCH_HEADER_BYTES);
    let attributes = be_i16(header, ATTRIBUTES_AT) | TIMESTAMP_TYPE_BIT;
    header[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    header[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&ts.to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header[ATTRIBUTES_AT..]), records);
    header[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Sets a CreateTime batch's maxTimestamp to `ts` (the largest record
/// timestamp, which Kafka's validator makes it whatever the producer
/// wrote) and recomputes the CRC; `header`/`records` as in
/// [`set_log_append_time_parts`].
pub fn set_max_timestamp_parts(header: &mut [u8], records: &[u8], ts: i64) {
    assert_eq!(header.len(), BATCH_HEADER_BYTES);
    header[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&ts.to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header[ATTRIBUTES_AT..]), records);
    header[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// A record-batch compression codec (attributes bits 0-2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

impl Codec {
    /// The codec of attribute bits 0-2, None for the reserved values 5-7.
    pub fn from_id(id: u8) -> Option<Codec> {
        Some(match id {
            0 => Codec::None,
            1 => Codec::Gzip,
            2 => Codec::Snappy,
            3 => Codec::Lz4,
            4 => Codec::Zstd,
            _ => return None,
        })
    }

    /// A topic's `compression.type` value: Some(codec) for a named codec,
    /// None for `producer` (or an unknown name).
    pub fn from_topic_config(value: &str) -> Option<Codec> {
        Some(match value {
            "uncompressed" => Codec::None,
            "gzip" => Codec::Gzip,
            "snappy" => Codec::Snappy,
            "lz4" => Codec::Lz4,
            "zstd" => Codec::Zstd,
            _ => return None,
        })
    }

    /// The name kafka-dump-log prints (`compresscodec: ...`).
    pub fn dump_name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
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

/// Smallest encoded record: its length varint, then attributes, timestamp
/// delta, offset delta, key length, value length and header count, one
/// byte each.
pub const RECORD_BYTES_MIN: usize = 7;

/// Builds one batch from `template`'s header fields (baseOffset,
/// partitionLeaderEpoch, attributes other than the codec, lastOffsetDelta,
/// timestamps, producer id, epoch and base sequence) around `raw_records`
/// (`records_count` encoded records, relative to the template's base offset
/// and base timestamp), compressed with `codec`. The CRC is computed anew.
pub fn build_batch(
    template: &BatchHeader,
    codec: Codec,
    records_count: i32,
    raw_records: &[u8],
) -> Result<Vec<u8>, RecordsError> {
    use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};
    let mut out: Vec<u8> = Vec::with_capacity(BATCH_HEADER_BYTES + raw_records.len());
    out.resize(BATCH_HEADER_BYTES, 0);
    let copy = |b: &mut bytes::BytesMut| -> anyhow::Result<()> {
        b.extend_from_slice(raw_records);
        Ok(())
    };
    match codec {
        Codec::None => {
            out.extend_from_slice(raw_records);
            Ok(())
        }
        Codec::Gzip => Gzip::compress(&mut out, copy),
        Codec::Snappy => Snappy::compress(&mut out, copy),
        Codec::Lz4 => Lz4::compress(&mut out, copy),
        Codec::Zstd => Zstd::compress(&mut out, copy),
    }
    .map_err(|_| RecordsError::Codec(codec))?;
    let batch_length =
        i32::try_from(out.len() - BATCH_LENGTH_PREFIX_BYTES).map_err(|_| RecordsError::TooLarge)?;
    let attributes = (template.attributes & !COMPRESSION_MASK) | codec as i16;
    out[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&template.base_offset.to_be_bytes());
    out[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    out[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4]
        .copy_from_slice(&template.partition_leader_epoch.to_be_bytes());
    out[MAGIC_AT] = MAGIC_V2 as u8;
    out[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    out[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4]
        .copy_from_slice(&template.last_offset_delta.to_be_bytes());
    out[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8]
        .copy_from_slice(&template.base_timestamp.to_be_bytes());
    out[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8]
        .copy_from_slice(&template.max_timestamp.to_be_bytes());
    out[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&template.producer_id.to_be_bytes());
    out[PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2]
        .copy_from_slice(&template.producer_epoch.to_be_bytes());
    out[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4]
        .copy_from_slice(&template.base_sequence.to_be_bytes());
    out[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&records_count.to_be_bytes());
    let crc = compute_crc(&out);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// Why a [`BatchIter`] stopped before the end of its buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IterStop {
    /// The buffer ended exactly at a batch boundary.
    End,
    /// The next batch is only partly in the buffer (or the header is cut):
    /// `needed` bytes from its position would complete it, when known.
    Incomplete { needed: Option<usize> },
    /// The bytes at the position are not a valid batch.
    Invalid(BatchError),
}

/// Iterates back-to-back batches in `buf`, yielding `(position, header)` for
/// each whole (and, if asked, CRC-valid) batch, and records why it stopped.
pub struct BatchIter<'a> {
    buf: &'a [u8],
    position: usize,
    verify_crc: bool,
    stop: Option<IterStop>,
}

impl<'a> BatchIter<'a> {
    pub fn new(buf: &'a [u8], verify_crc: bool) -> BatchIter<'a> {
        BatchIter {
            buf,
            position: 0,
            verify_crc,
            stop: None,
        }
    }

    /// Position just past the last batch yielded: the end of the valid prefix.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Why iteration stopped; `None` while it has not.
    pub fn stop(&self) -> Option<IterStop> {
        self.stop
    }
}

impl Iterator for BatchIter<'_> {
    type Item = (usize, BatchHeader);

    fn next(&mut self) -> Option<(usize, BatchHeader)> {
        if self.stop.is_some() {
            return None;
        }
        let rest = &self.buf[self.position..];
        if rest.is_empty() {
            self.stop = Some(IterStop::End);
            return None;
        }
        let header = match BatchHeader::parse(rest) {
            Ok(h) => h,
            Err(BatchError::Truncated) => {
                self.stop = Some(IterStop::Incomplete { needed: None });
                return None;
            }
            Err(e) => {
                self.stop = Some(IterStop::Invalid(e));
                return None;
            }
        };
        let total = header.total_bytes();
        if total > rest.len() {
            self.stop = Some(IterStop::Incomplete {
                needed: Some(total),
            });
            return None;
        }
        if self.verify_crc {
            let checked =
                verify_crc(&rest[..total], &header).and_then(|_| header.check_consistent());
            if let Err(e) = checked {
                self.stop = Some(IterStop::Invalid(e));
                return None;
            }
        }
        let at = self.position;
        self.position += total;
        Some((at, header))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };

    pub(crate) fn record(offset: i64, ts: i64, value: &[u8]) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: 42,
            producer_epoch: 1,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: offset as i32,
            timestamp: ts,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::copy_from_slice(value)),
            headers: Default::default(),
        }
    }

    pub(crate) fn encode(n: i64, compression: Compression) -> Vec<u8> {
        let records: Vec<Record> = (0..n).map(|i| record(i, 1_000 + i, b"hello")).collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        buf.to_vec()
    }

    #[test]
    fn parse_and_validate_uncompressed_and_compressed() {
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let batch = encode(3, compression);
            let h = validate_produce_records(&batch, 1 << 20).unwrap();
            assert_eq!(h.total_bytes(), batch.len());
            assert_eq!(h.records_count, 3);
            assert_eq!(h.last_offset_delta, 2);
            assert_eq!(h.last_offset(), 2);
            assert_eq!(h.compression(), compression as u8);
            assert_eq!(h.max_timestamp, 1_002);
            assert_eq!(h.producer_id, 42);
            assert!(h.has_producer_id());
            assert_eq!(h.last_sequence(), 2);
            assert!(!h.is_transactional() && !h.is_control() && !h.is_log_append_time());
        }
    }

    #[test]
    fn corrupt_truncated_multiple_too_large() {
        let batch = encode(2, Compression::None);
        let mut bad = batch.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x40;
        assert_eq!(
            validate_produce_records(&bad, 1 << 20),
            Err(ProduceBatchError::Batch(BatchError::CorruptCrc))
        );
        assert_eq!(
            validate_produce_records(&batch[..batch.len() - 1], 1 << 20),
            Err(ProduceBatchError::Batch(BatchError::Truncated))
        );
        assert_eq!(
            validate_produce_records(&batch[..20], 1 << 20),
            Err(ProduceBatchError::Batch(BatchError::Truncated))
        );
        let mut two = batch.clone();
        two.extend_from_slice(&batch);
        assert_eq!(
            validate_produce_records(&two, 1 << 20),
            Err(ProduceBatchError::MultipleBatches)
        );
        assert!(matches!(
            validate_produce_records(&batch, batch.len() - 1),
            Err(ProduceBatchError::TooLarge { .. })
        ));
        let mut old = batch.clone();
        old[MAGIC_AT] = 1;
        assert_eq!(
            validate_produce_records(&old, 1 << 20),
            Err(ProduceBatchError::Batch(BatchError::UnsupportedMagic(1)))
        );
        let mut short = batch.clone();
        short[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&10i32.to_be_bytes());
        assert_eq!(
            validate_produce_records(&short, 1 << 20),
            Err(ProduceBatchError::Batch(BatchError::InvalidLength))
        );
        assert_eq!(
            validate_produce_records(&[], 1 << 20),
            Err(ProduceBatchError::Empty)
        );
    }

    #[test]
    fn inconsistent_count_is_rejected() {
        let mut batch = encode(2, Compression::None);
        batch[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&5i32.to_be_bytes());
        let crc = compute_crc(&batch);
        batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            validate_produce_records(&batch, 1 << 20),
            Err(ProduceBatchError::InvalidRecordCount { .. })
        ));
    }

    /// fuzz target `consumer_offsets`: a stored batch at base offset
    /// i64::MAX - 1 made `last_offset() + 1` overflow in the group load.
    /// Offsets that do not fit are inconsistent, and `last_offset`
    /// saturates on a header not checked yet.
    #[test]
    fn offsets_past_i64_max_are_inconsistent() {
        let mut batch = encode(2, Compression::None);
        let mut at = |base: i64| {
            patch_base_offset(&mut batch, base);
            BatchHeader::parse(&batch).unwrap()
        };
        assert!(at(i64::MAX - 2).check_consistent().is_ok());
        let h = at(i64::MAX - 1);
        assert_eq!(h.last_offset(), i64::MAX);
        assert!(h.check_consistent().is_err());
        let h = at(i64::MAX);
        assert_eq!(h.last_offset(), i64::MAX);
        assert!(h.check_consistent().is_err());
        assert!(at(-1).check_consistent().is_err());
    }

    #[test]
    fn patches_keep_crc_valid_and_decodable() {
        let mut batch = encode(4, Compression::None);
        patch_base_offset(&mut batch, 1_000);
        patch_partition_leader_epoch(&mut batch, 7);
        let h = validate_produce_records(&batch, 1 << 20).unwrap();
        assert_eq!(h.base_offset, 1_000);
        assert_eq!(h.last_offset(), 1_003);
        assert_eq!(h.partition_leader_epoch, 7);

        set_log_append_time(&mut batch, 99_999);
        let h = validate_produce_records(&batch, 1 << 20).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 99_999);
        let mut bytes = Bytes::from(batch);
        let set = RecordBatchDecoder::decode(&mut bytes).unwrap();
        assert_eq!(set.records.len(), 4);
        assert_eq!(set.records[0].offset, 1_000);
        assert_eq!(set.records[0].timestamp_type, TimestampType::LogAppend);
        // kafka-protocol reports per-record timestamps even for LogAppendTime;
        // the batch's maxTimestamp (checked above) is what Kafka clients use.
    }

    #[test]
    fn iter_walks_batches_and_stops_with_reason() {
        let a = encode(2, Compression::None);
        let b = encode(3, Compression::Snappy);
        let mut buf = a.clone();
        buf.extend_from_slice(&b);
        let mut it = BatchIter::new(&buf, true);
        let got: Vec<_> = it.by_ref().map(|(p, h)| (p, h.records_count)).collect();
        assert_eq!(got, vec![(0, 2), (a.len(), 3)]);
        assert_eq!(it.stop(), Some(IterStop::End));
        assert_eq!(it.position(), buf.len());

        let mut it = BatchIter::new(&buf[..buf.len() - 3], true);
        assert_eq!(it.by_ref().count(), 1);
        assert_eq!(
            it.stop(),
            Some(IterStop::Incomplete {
                needed: Some(b.len())
            })
        );
        assert_eq!(it.position(), a.len());

        let mut zeros = a.clone();
        zeros.extend_from_slice(&[0u8; 100]);
        let mut it = BatchIter::new(&zeros, true);
        assert_eq!(it.by_ref().count(), 1);
        assert_eq!(
            it.stop(),
            Some(IterStop::Invalid(BatchError::UnsupportedMagic(0)))
        );

        let mut flipped = buf.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let mut it = BatchIter::new(&flipped, true);
        assert_eq!(it.by_ref().count(), 1);
        assert_eq!(it.stop(), Some(IterStop::Invalid(BatchError::CorruptCrc)));
        assert_eq!(BatchIter::new(&flipped, false).count(), 2);
    }

    #[test]
    fn inconsistent_headers_stop_a_verifying_iterator() {
        let good = encode(2, Compression::None);
        let reseal = |b: &mut Vec<u8>| {
            let crc = compute_crc(b);
            b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        };
        for (at, value, what) in [
            (LAST_OFFSET_DELTA_AT, -1i32, "lastOffsetDelta is negative"),
            (RECORDS_COUNT_AT, -1, "recordsCount is negative"),
            (
                RECORDS_COUNT_AT,
                3,
                "recordsCount is larger than lastOffsetDelta + 1",
            ),
        ] {
            let mut b = good.clone();
            b[at..at + 4].copy_from_slice(&value.to_be_bytes());
            reseal(&mut b);
            let mut it = BatchIter::new(&b, true);
            assert_eq!(it.by_ref().count(), 0, "{what}");
            assert_eq!(
                it.stop(),
                Some(IterStop::Invalid(BatchError::Inconsistent(what)))
            );
            // Without verification the header still parses (fetch serves bytes as stored).
            assert_eq!(BatchIter::new(&b, false).count(), 1);
        }
        let mut b = good.clone();
        b[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        b[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&i32::MAX.to_be_bytes());
        reseal(&mut b);
        assert_eq!(
            BatchHeader::parse(&b).unwrap().check_consistent(),
            Err(BatchError::Inconsistent(
                "recordsCount is larger than the records bytes can hold"
            ))
        );
    }

    #[test]
    fn sequence_wraps_like_kafka() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(increment_sequence(5, 2), 7);
    }
}
