//! The Kafka v2 record-batch view: parse, validate and patch batches in place.
//!
//! Owns the byte layout of a record batch (magic 2) and nothing else: no I/O,
//! no allocation, no per-record decoding. It is pure, so it runs on whichever
//! shard holds the bytes (the produce path on the partition's owner shard, the
//! log's recovery and read paths on the same shard).
//!
//! Layout (big-endian): baseOffset i64 @0, batchLength i32 @8 (bytes after this
//! field), partitionLeaderEpoch i32 @12, magic i8 @16, crc u32 @17 (CRC32C of
//! the bytes from attributes @21 to the end), attributes i16 @21,
//! lastOffsetDelta i32 @23, baseTimestamp i64 @27, maxTimestamp i64 @35,
//! producerId i64 @43, producerEpoch i16 @51, baseSequence i32 @53,
//! recordsCount i32 @57, records @61.
//!
//! Invariants: a `BatchHeader` returned by [`BatchHeader::parse`] has magic 2
//! and `batch_length >= BATCH_LENGTH_MIN`; the CRC is only checked where the
//! caller asks (`validate_produce_records`, `BatchIter::verify_crc`). The CRC
//! does not cover baseOffset or partitionLeaderEpoch, so patching those never
//! re-checksums; LogAppendTime changes attributes and maxTimestamp, so
//! [`set_log_append_time`] recomputes it. Mapping errors to Kafka codes is
//! `protocol/error.rs`'s job, not this module's.

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
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Truncated => write!(f, "record batch is truncated"),
            BatchError::InvalidLength => write!(f, "record batch length is invalid"),
            BatchError::UnsupportedMagic(m) => write!(f, "record batch magic {m} is unsupported"),
            BatchError::CorruptCrc => write!(f, "record batch CRC32C does not match"),
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
    /// No records at all (empty `records`, or recordsCount == 0).
    Empty,
    /// recordsCount, lastOffsetDelta inconsistent (Kafka: INVALID_RECORD / CORRUPT_MESSAGE).
    InvalidRecordCount {
        records_count: i32,
        last_offset_delta: i32,
    },
    /// Larger than max.message.bytes (Kafka: MESSAGE_TOO_LARGE).
    TooLarge { size: usize, max: usize },
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
        }
    }
}

impl std::error::Error for ProduceBatchError {}

impl From<BatchError> for ProduceBatchError {
    fn from(e: BatchError) -> Self {
        ProduceBatchError::Batch(e)
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

    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
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
            if let Err(e) = verify_crc(&rest[..total], &header) {
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
mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
        TimestampType,
    };

    fn record(offset: i64, ts: i64, value: &[u8]) -> Record {
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

    fn encode(n: i64, compression: Compression) -> Vec<u8> {
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
    fn sequence_wraps_like_kafka() {
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(increment_sequence(5, 2), 7);
    }
}
