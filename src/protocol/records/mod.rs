//! The one bounded parser of the records inside a v2 record batch, and the
//! produce validation built on it (Kafka's `LogValidator` rules).
//!
//! Everything that looks inside a batch goes through here: produce
//! validation, ListOffsets by timestamp, recovery and index rebuild, the
//! scrub of stored segments, compaction, the `__consumer_offsets` load and
//! the CLI's dump-log. Nothing here trusts a count or a length read from
//! the bytes: recordsCount is checked against the records actually present
//! (never used to size anything), every length against the bytes that
//! remain in its record, every varint's width, and a compressed records
//! section is inflated in bounded chunks against a budget
//! ([`limits::RECORDS_DECOMPRESSED_BYTES_MAX`]), never sized from what the
//! stream claims.
//!
//! Two strictness levels ([`Origin`]): a batch from a client must number its
//! records 0..recordsCount-1 (as every Kafka client does; Kafka itself
//! would rewrite such a batch, corelog stores batches as they come and so
//! refuses it); a stored batch may have gaps (the cleaner drops records),
//! but its offset deltas must increase and stay within lastOffsetDelta.
//!
//! Pure and synchronous: no I/O, no shard state. The uncompressed produce
//! path allocates nothing; a compressed batch costs one chunk buffer and
//! the codec's own state.
//!
//! Split by concern: `source` reads a records section (in place, or
//! through a codec in bounded chunks), `walker` checks and positions each
//! record, `produce` is the produce validation; this file holds the
//! entry points every reader uses.

#![forbid(unsafe_code)]

mod produce;
mod source;
mod walker;

pub use produce::{recompress, validate_produce, ProduceRules, ValidBatch};

use std::borrow::Cow;

use super::batch::{
    verify_crc, BatchError, BatchHeader, Codec, RecordsError, BATCH_HEADER_BYTES, RECORD_BYTES_MIN,
};
use crate::limits;
use source::{inflater, SliceSource, Source, StreamSource};
use walker::{malformed, walk_slice, walk_source, Body};

/// Kafka's `RecordBatch.NO_TIMESTAMP`.
pub const NO_TIMESTAMP: i64 = -1;

/// How strictly a batch's records are judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// From a client: offset deltas are exactly 0..recordsCount-1.
    Client,
    /// From the log: offset deltas increase within [0, lastOffsetDelta].
    Stored,
}

/// One record's fields, positioned in the (decompressed) records section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordMeta {
    /// 0 for the batch's first record.
    pub index: i32,
    /// Position of the record's length varint, and just past the record.
    pub start: u64,
    pub end: u64,
    pub offset_delta: i32,
    pub timestamp_delta: i64,
    /// (position, length) of the key and value; None when null.
    pub key: Option<(u64, usize)>,
    pub value: Option<(u64, usize)>,
    /// Position of the first header and how many there are.
    pub headers_start: u64,
    pub header_count: i32,
}

impl RecordMeta {
    /// The record's timestamp in a batch with this header: the batch's max
    /// timestamp for LogAppendTime, else baseTimestamp + delta (None when
    /// that overflows).
    pub fn timestamp(&self, header: &BatchHeader) -> Option<i64> {
        if header.is_log_append_time() {
            Some(header.max_timestamp)
        } else {
            header.base_timestamp.checked_add(self.timestamp_delta)
        }
    }
}

/// The compressed (or plain) records section of one whole batch.
fn section_bytes<'a>(batch: &'a [u8], header: &BatchHeader) -> Result<&'a [u8], RecordsError> {
    let total = header.total_bytes();
    if batch.len() < total || total < BATCH_HEADER_BYTES {
        return Err(BatchError::Truncated.into());
    }
    Ok(&batch[BATCH_HEADER_BYTES..total])
}

fn codec_of(header: &BatchHeader) -> Result<Codec, RecordsError> {
    let id = header.compression();
    Codec::from_id(id).ok_or(RecordsError::UnknownCodec(id))
}

/// Walks the records of one whole batch (`batch` holds at least
/// `header.total_bytes()`; its header, CRC and consistency are the
/// caller's to check), decompressing within the budget. Positions in the
/// [`RecordMeta`]s are in the decompressed section.
pub fn walk<E: From<RecordsError>>(
    batch: &[u8],
    header: &BatchHeader,
    origin: Origin,
    visit: impl FnMut(&RecordMeta) -> Result<(), E>,
) -> Result<(), E> {
    walk_within(
        batch,
        header,
        origin,
        limits::RECORDS_DECOMPRESSED_BYTES_MAX as u64,
        visit,
    )
}

/// [`walk`] with a decompression budget of `budget` bytes.
fn walk_within<E: From<RecordsError>>(
    batch: &[u8],
    header: &BatchHeader,
    origin: Origin,
    budget: u64,
    visit: impl FnMut(&RecordMeta) -> Result<(), E>,
) -> Result<(), E> {
    let section = section_bytes(batch, header)?;
    match codec_of(header)? {
        Codec::None => walk_slice(section, header, origin, visit),
        codec => {
            let mut src = StreamSource::new(inflater(codec, section, budget)?, budget);
            walk_source(&mut src, header, origin, visit)
        }
    }
}

/// The records section of one whole batch, decompressed within
/// `RECORDS_DECOMPRESSED_BYTES_MAX` (borrowed when the batch is
/// uncompressed). Memory grows with the bytes that really come out of the
/// codec, never with what the stream claims.
pub fn records_section<'a>(
    batch: &'a [u8],
    header: &BatchHeader,
) -> Result<Cow<'a, [u8]>, RecordsError> {
    section_within(batch, header, limits::RECORDS_DECOMPRESSED_BYTES_MAX)
}

/// [`records_section`] with a decompression budget of `budget` bytes.
fn section_within<'a>(
    batch: &'a [u8],
    header: &BatchHeader,
    budget: usize,
) -> Result<Cow<'a, [u8]>, RecordsError> {
    let section = section_bytes(batch, header)?;
    let codec = codec_of(header)?;
    if codec == Codec::None {
        return Ok(Cow::Borrowed(section));
    }
    inflate(codec, section, budget).map(Cow::Owned)
}

/// `compressed` inflated with `codec` (copied for `Codec::None`), in chunks of
/// `RECORDS_INFLATE_CHUNK_BYTES`, refused with `TooLarge` as soon as the
/// output passes `budget` bytes: memory follows the output actually
/// produced, never a length the stream claims.
pub fn inflate(codec: Codec, compressed: &[u8], budget: usize) -> Result<Vec<u8>, RecordsError> {
    if codec == Codec::None {
        if compressed.len() > budget {
            return Err(RecordsError::TooLarge);
        }
        return Ok(compressed.to_vec());
    }
    let mut inflate = inflater(codec, compressed, budget as u64)?;
    let mut out: Vec<u8> = Vec::new();
    loop {
        let len = out.len();
        let room = budget - len;
        let want = limits::RECORDS_INFLATE_CHUNK_BYTES.min(room.saturating_add(1));
        out.resize(len + want, 0);
        let n = inflate.read(&mut out[len..])?;
        out.truncate(len + n);
        if n == 0 {
            return Ok(out);
        }
        if n > room {
            return Err(RecordsError::TooLarge);
        }
    }
}

/// One stored record, borrowed from a decompressed records section. `raw`
/// is the whole encoded record (length prefix included): since it is
/// encoded relative to its batch's baseOffset and baseTimestamp, a batch
/// rebuilt with the same base values can carry it unchanged.
#[derive(Clone, Copy, Debug)]
pub struct RecordView<'a> {
    pub raw: &'a [u8],
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub header_count: i32,
    /// The encoded headers (each: key length, key, value length, value).
    pub headers: &'a [u8],
}

impl<'a> RecordView<'a> {
    /// Header keys in order (duplicates kept, as Kafka allows them).
    pub fn header_keys(&self) -> Vec<&'a [u8]> {
        self.headers().into_iter().map(|(key, _)| key).collect()
    }

    /// Headers in order, each its key and value (`None`: a null value);
    /// duplicate keys kept, as Kafka allows them.
    pub fn headers(&self) -> Vec<(&'a [u8], Option<&'a [u8]>)> {
        let mut out =
            Vec::with_capacity((self.header_count.max(0) as usize).min(self.headers.len()));
        let mut src = SliceSource {
            buf: self.headers,
            at: 0,
        };
        // The walk that made this view checked every header already; a
        // failure here just ends the list.
        let mut body = Body {
            left: self.headers.len(),
            src: &mut src,
            index: 0,
        };
        for _ in 0..self.header_count {
            let Ok(key_len) = body.varint() else {
                break;
            };
            let key_at = body.src.pos() as usize;
            let key_len = key_len.max(0) as usize;
            if body.skip(key_len).is_err() {
                break;
            }
            let key = &self.headers[key_at..key_at + key_len];
            match body.nullable_len("record header value length is negative") {
                Ok(Some(n)) => {
                    let value_at = body.src.pos() as usize;
                    if body.skip(n).is_err() {
                        break;
                    }
                    out.push((key, Some(&self.headers[value_at..value_at + n])));
                }
                Ok(None) => out.push((key, None)),
                Err(_) => break,
            }
        }
        out
    }
}

/// Parses every record of a stored batch's decompressed records `section`
/// (from [`records_section`]) with the stored rules.
pub fn parse_records<'a>(
    section: &'a [u8],
    header: &BatchHeader,
) -> Result<Vec<RecordView<'a>>, RecordsError> {
    // Each record takes at least RECORD_BYTES_MIN bytes: the capacity
    // follows the bytes present, not the count claimed.
    let capacity = (header.records_count.max(0) as usize).min(section.len() / RECORD_BYTES_MIN);
    let mut out = Vec::with_capacity(capacity);
    let slice = |at: u64, len: usize| &section[at as usize..at as usize + len];
    walk_slice(section, header, Origin::Stored, |r: &RecordMeta| {
        let headers_end = r.end as usize;
        out.push(RecordView {
            raw: &section[r.start as usize..r.end as usize],
            timestamp_delta: r.timestamp_delta,
            offset_delta: r.offset_delta,
            key: r.key.map(|(at, len)| slice(at, len)),
            value: r.value.map(|(at, len)| slice(at, len)),
            header_count: r.header_count,
            headers: &section[r.headers_start as usize..headers_end],
        });
        Ok::<(), RecordsError>(())
    })?;
    Ok(out)
}

/// The stored-batch parser: checks one whole batch read from the log (or
/// a peer) as a reader must before trusting it: header, length, CRC,
/// header consistency and every record. Returns its header.
pub fn check_stored_batch(batch: &[u8]) -> Result<BatchHeader, RecordsError> {
    let header = BatchHeader::parse(batch)?;
    if header.total_bytes() != batch.len() {
        return Err(BatchError::Truncated.into());
    }
    verify_crc(batch, &header)?;
    header.check_consistent()?;
    walk(batch, &header, Origin::Stored, |_| {
        Ok::<(), RecordsError>(())
    })?;
    Ok(header)
}

/// The (offset, timestamp) of the first record of one whole stored batch
/// that `wanted` accepts (ListOffsets by timestamp).
pub fn find_record(
    batch: &[u8],
    mut wanted: impl FnMut(i64) -> bool,
) -> Result<Option<(i64, i64)>, RecordsError> {
    let header = BatchHeader::parse(batch)?;
    if header.total_bytes() > batch.len() {
        return Err(BatchError::Truncated.into());
    }
    header.check_consistent()?;
    let mut found = None;
    walk(batch, &header, Origin::Stored, |r| {
        if found.is_none() {
            let ts = r
                .timestamp(&header)
                .ok_or_else(|| malformed(r.index, "record timestamp overflows"))?;
            if wanted(ts) {
                found = Some((header.base_offset + i64::from(r.offset_delta), ts));
            }
        }
        Ok::<(), RecordsError>(())
    })?;
    Ok(found)
}

#[cfg(test)]
mod tests;
