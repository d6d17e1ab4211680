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
//!
//! The error types a caller sees (and their Kafka class) are in `error`;
//! the tests, which `protocol::records` tests reuse, in `tests`.

#![forbid(unsafe_code)]

mod error;

pub use error::{BatchError, BatchFault, ProduceBatchError, RecordsError};

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

/// Records in the whole batches at the start of `batches` (headers only).
pub fn count_records(batches: &[u8]) -> usize {
    BatchIter::new(batches, false)
        .map(|(_, h)| usize::try_from(h.records_count).unwrap_or(0))
        .sum()
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
pub(crate) mod tests;
