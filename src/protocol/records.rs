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

#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::io::Read;

use super::batch::{
    build_batch, verify_crc, BatchError, BatchHeader, Codec, ProduceBatchError, RecordsError,
    BATCH_HEADER_BYTES, RECORD_BYTES_MIN,
};
use crate::limits;

/// Smallest record body (after its length varint).
const RECORD_BODY_BYTES_MIN: i32 = 6;
/// Kafka's `RecordBatch.NO_TIMESTAMP`.
pub const NO_TIMESTAMP: i64 = -1;
/// Longest varint (i32) and varlong (i64) encodings, as Kafka's ByteUtils.
const VARINT_BYTES_MAX: u32 = 5;
const VARLONG_BYTES_MAX: u32 = 10;
/// The most one snappy input byte can expand to: a 3-byte copy element
/// writes at most 64 bytes. A block claiming more than this times its
/// compressed length cannot be valid, so its claim is refused before
/// anything is allocated for it.
const SNAPPY_EXPANSION_MAX: usize = 22;
/// xerial's snappy-java framing, which Kafka's Java client writes: an
/// 8-byte magic, two i32 versions, then (i32 length, raw block) pairs.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_BYTES: usize = 16;

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

// ---------------------------------------------------------------------------
// Sources: a borrowed slice, or a decompressor read in bounded chunks

trait Source {
    /// The next byte; None at the end of the records section.
    fn byte(&mut self) -> Result<Option<u8>, RecordsError>;
    /// Skips `n` bytes; false when the section ends first.
    fn skip(&mut self, n: usize) -> Result<bool, RecordsError>;
    /// Bytes consumed so far.
    fn pos(&self) -> u64;
}

struct SliceSource<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Source for SliceSource<'_> {
    #[inline]
    fn byte(&mut self) -> Result<Option<u8>, RecordsError> {
        let b = self.buf.get(self.at).copied();
        if b.is_some() {
            self.at += 1;
        }
        Ok(b)
    }

    #[inline]
    fn skip(&mut self, n: usize) -> Result<bool, RecordsError> {
        if self.buf.len() - self.at < n {
            self.at = self.buf.len();
            return Ok(false);
        }
        self.at += n;
        Ok(true)
    }

    #[inline]
    fn pos(&self) -> u64 {
        self.at as u64
    }
}

/// A codec's decompressed output, read in pieces.
trait Inflate {
    fn read(&mut self, out: &mut [u8]) -> Result<usize, RecordsError>;
}

/// gzip, lz4 and zstd through their streaming `Read` decoders.
struct ReadInflate<R: Read> {
    reader: R,
    codec: Codec,
}

impl<R: Read> Inflate for ReadInflate<R> {
    fn read(&mut self, out: &mut [u8]) -> Result<usize, RecordsError> {
        loop {
            match self.reader.read(out) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(RecordsError::Codec(self.codec)),
            }
        }
    }
}

/// Snappy, framed as xerial's snappy-java writes it (Kafka's Java client),
/// or one raw block (librdkafka), as Kafka's `SnappyInputStream` accepts.
/// Snappy blocks cannot be inflated piecewise, so each block is inflated
/// whole, after its claimed length passed the budget and the expansion
/// bound.
struct SnappyInflate<'a> {
    input: &'a [u8],
    framed: bool,
    raw_done: bool,
    block: Vec<u8>,
    at: usize,
    budget: u64,
}

impl<'a> SnappyInflate<'a> {
    fn new(input: &'a [u8], budget: u64) -> SnappyInflate<'a> {
        let framed = input.len() >= XERIAL_HEADER_BYTES && input.starts_with(XERIAL_MAGIC);
        SnappyInflate {
            input: if framed {
                &input[XERIAL_HEADER_BYTES..]
            } else {
                input
            },
            framed,
            raw_done: false,
            block: Vec::new(),
            at: 0,
            budget,
        }
    }

    /// Inflates the next block into `self.block`; false at the end.
    fn next_block(&mut self) -> Result<bool, RecordsError> {
        let corrupt = RecordsError::Codec(Codec::Snappy);
        let compressed = if self.framed {
            if self.input.is_empty() {
                return Ok(false);
            }
            if self.input.len() < 4 {
                return Err(corrupt);
            }
            let len =
                u32::from_be_bytes([self.input[0], self.input[1], self.input[2], self.input[3]])
                    as usize;
            let rest = &self.input[4..];
            if len > rest.len() {
                return Err(corrupt);
            }
            let (block, after) = rest.split_at(len);
            self.input = after;
            block
        } else {
            if self.raw_done {
                return Ok(false);
            }
            self.raw_done = true;
            self.input
        };
        let claimed = snap::raw::decompress_len(compressed).map_err(|_| corrupt)?;
        if claimed as u64 > self.budget {
            return Err(RecordsError::TooLarge);
        }
        if claimed > compressed.len().saturating_mul(SNAPPY_EXPANSION_MAX) {
            return Err(corrupt);
        }
        self.block.clear();
        self.block.resize(claimed, 0);
        let n = snap::raw::Decoder::new()
            .decompress(compressed, &mut self.block)
            .map_err(|_| corrupt)?;
        if n != claimed {
            return Err(corrupt);
        }
        self.budget -= claimed as u64;
        self.at = 0;
        Ok(true)
    }
}

impl Inflate for SnappyInflate<'_> {
    fn read(&mut self, out: &mut [u8]) -> Result<usize, RecordsError> {
        while self.at == self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.block.len() - self.at);
        out[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The decoder of `codec` over `compressed`, bounded by `budget` bytes of
/// output (snappy checks it per block; the others are checked by the reader
/// of their output).
fn inflater<'a>(
    codec: Codec,
    compressed: &'a [u8],
    budget: u64,
) -> Result<Box<dyn Inflate + 'a>, RecordsError> {
    Ok(match codec {
        Codec::None => unreachable!("uncompressed records are read in place"),
        Codec::Gzip => Box::new(ReadInflate {
            reader: flate2::read::GzDecoder::new(compressed),
            codec,
        }),
        Codec::Snappy => Box::new(SnappyInflate::new(compressed, budget)),
        Codec::Lz4 => Box::new(ReadInflate {
            reader: lz4::Decoder::new(compressed).map_err(|_| RecordsError::Codec(codec))?,
            codec,
        }),
        Codec::Zstd => {
            let mut decoder = zstd::stream::read::Decoder::with_buffer(compressed)
                .map_err(|_| RecordsError::Codec(codec))?;
            // The window a frame may ask for is memory the decoder takes:
            // bounded here rather than by what the frame header claims.
            decoder
                .window_log_max(limits::ZSTD_WINDOW_LOG_MAX)
                .map_err(|_| RecordsError::Codec(codec))?;
            Box::new(ReadInflate {
                reader: decoder,
                codec,
            })
        }
    })
}

/// A decompressor's output as a [`Source`], read in chunks of
/// `RECORDS_INFLATE_CHUNK_BYTES`; more than `budget` bytes in all is
/// `TooLarge`.
struct StreamSource<'a> {
    inflate: Box<dyn Inflate + 'a>,
    buf: Vec<u8>,
    at: usize,
    len: usize,
    /// Bytes of the section before `buf[0]`.
    before: u64,
    budget: u64,
    done: bool,
}

impl<'a> StreamSource<'a> {
    fn new(inflate: Box<dyn Inflate + 'a>, budget: u64) -> StreamSource<'a> {
        StreamSource {
            inflate,
            buf: vec![0; limits::RECORDS_INFLATE_CHUNK_BYTES],
            at: 0,
            len: 0,
            before: 0,
            budget,
            done: false,
        }
    }

    /// Reads the next chunk; false at the end of the stream.
    fn fill(&mut self) -> Result<bool, RecordsError> {
        if self.done {
            return Ok(false);
        }
        self.before += self.len as u64;
        self.at = 0;
        self.len = 0;
        let room = self.budget - self.before;
        // One byte past the budget is enough to know it is exceeded.
        let want = (self.buf.len() as u64).min(room.saturating_add(1)) as usize;
        let n = self.inflate.read(&mut self.buf[..want])?;
        if n == 0 {
            self.done = true;
            return Ok(false);
        }
        if n as u64 > room {
            return Err(RecordsError::TooLarge);
        }
        self.len = n;
        Ok(true)
    }
}

impl Source for StreamSource<'_> {
    fn byte(&mut self) -> Result<Option<u8>, RecordsError> {
        if self.at == self.len && !self.fill()? {
            return Ok(None);
        }
        let b = self.buf[self.at];
        self.at += 1;
        Ok(Some(b))
    }

    fn skip(&mut self, mut n: usize) -> Result<bool, RecordsError> {
        loop {
            let here = n.min(self.len - self.at);
            self.at += here;
            n -= here;
            if n == 0 {
                return Ok(true);
            }
            if !self.fill()? {
                return Ok(false);
            }
        }
    }

    fn pos(&self) -> u64 {
        self.before + self.at as u64
    }
}

// ---------------------------------------------------------------------------
// The record walk

fn malformed(index: i32, what: &'static str) -> RecordsError {
    RecordsError::Malformed { index, what }
}

/// One record's body: reads never go past its declared length.
struct Body<'s, S: Source> {
    src: &'s mut S,
    left: usize,
    index: i32,
}

impl<S: Source> Body<'_, S> {
    #[inline]
    fn byte(&mut self) -> Result<u8, RecordsError> {
        if self.left == 0 {
            return Err(malformed(self.index, "record fields run past its length"));
        }
        self.left -= 1;
        self.src
            .byte()?
            .ok_or_else(|| malformed(self.index, "record runs past the end of the batch"))
    }

    fn skip(&mut self, n: usize) -> Result<(), RecordsError> {
        if n > self.left {
            return Err(malformed(self.index, "record fields run past its length"));
        }
        self.left -= n;
        if self.src.skip(n)? {
            Ok(())
        } else {
            Err(malformed(
                self.index,
                "record runs past the end of the batch",
            ))
        }
    }

    #[inline]
    fn varint(&mut self) -> Result<i32, RecordsError> {
        let index = self.index;
        let raw = read_unsigned(|| self.byte(), VARINT_BYTES_MAX, index)?;
        let raw = u32::try_from(raw).map_err(|_| malformed(index, "varint overflows 32 bits"))?;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    #[inline]
    fn varlong(&mut self) -> Result<i64, RecordsError> {
        let index = self.index;
        let raw = read_unsigned(|| self.byte(), VARLONG_BYTES_MAX, index)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// A nullable length (key, value, header value): -1 is null.
    fn nullable_len(&mut self, what: &'static str) -> Result<Option<usize>, RecordsError> {
        match self.varint()? {
            -1 => Ok(None),
            n if n < 0 => Err(malformed(self.index, what)),
            n => Ok(Some(n as usize)),
        }
    }
}

/// An unsigned LEB128 value of at most `max_bytes` bytes, refusing bits
/// that do not fit 64.
#[inline]
fn read_unsigned(
    mut next: impl FnMut() -> Result<u8, RecordsError>,
    max_bytes: u32,
    index: i32,
) -> Result<u64, RecordsError> {
    let mut value: u64 = 0;
    for i in 0..max_bytes {
        let b = next()?;
        let bits = u64::from(b & 0x7f);
        let shift = 7 * i;
        if shift == 63 && bits > 1 {
            return Err(malformed(index, "varint overflows 64 bits"));
        }
        value |= bits << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(malformed(index, "varint is too long"))
}

/// Reads a record's length varint straight from the source; None at the
/// end of the section.
fn record_length<S: Source>(src: &mut S, index: i32) -> Result<Option<i32>, RecordsError> {
    let Some(first) = src.byte()? else {
        return Ok(None);
    };
    let mut pending = Some(first);
    let raw = read_unsigned(
        || match pending.take() {
            Some(b) => Ok(b),
            None => src
                .byte()?
                .ok_or_else(|| malformed(index, "record length runs past the end of the batch")),
        },
        VARINT_BYTES_MAX,
        index,
    )?;
    let raw = u32::try_from(raw).map_err(|_| malformed(index, "varint overflows 32 bits"))?;
    Ok(Some(((raw >> 1) as i32) ^ -((raw & 1) as i32)))
}

/// Walks exactly `header.records_count` records of `src`, showing each to
/// `visit`, and checks nothing follows the last.
fn walk_source<S: Source, E: From<RecordsError>>(
    src: &mut S,
    header: &BatchHeader,
    origin: Origin,
    mut visit: impl FnMut(&RecordMeta) -> Result<(), E>,
) -> Result<(), E> {
    let mut previous_delta: i64 = -1;
    for index in 0..header.records_count.max(0) {
        let start = src.pos();
        let len = record_length(src, index)?
            .ok_or_else(|| malformed(index, "the batch holds fewer records than recordsCount"))?;
        if len < RECORD_BODY_BYTES_MIN {
            return Err(malformed(index, "record length is too small").into());
        }
        let mut body = Body {
            src,
            left: len as usize,
            index,
        };
        let _attributes = body.byte()?;
        let timestamp_delta = body.varlong()?;
        let offset_delta = body.varint()?;
        let in_order = match origin {
            Origin::Client => offset_delta == index,
            Origin::Stored => {
                i64::from(offset_delta) > previous_delta && offset_delta <= header.last_offset_delta
            }
        };
        if !in_order {
            return Err(malformed(index, "record offset delta is out of order").into());
        }
        previous_delta = i64::from(offset_delta);
        let key = match body.nullable_len("record key length is negative")? {
            Some(n) => {
                let at = body.src.pos();
                body.skip(n)?;
                Some((at, n))
            }
            None => None,
        };
        let value = match body.nullable_len("record value length is negative")? {
            Some(n) => {
                let at = body.src.pos();
                body.skip(n)?;
                Some((at, n))
            }
            None => None,
        };
        let header_count = body.varint()?;
        if header_count < 0 {
            return Err(malformed(index, "record header count is negative").into());
        }
        let headers_start = body.src.pos();
        for _ in 0..header_count {
            // Kafka: "Invalid negative header key size": a header key is
            // never null.
            let key_len = body.varint()?;
            if key_len < 0 {
                return Err(malformed(index, "record header key is null").into());
            }
            body.skip(key_len as usize)?;
            if let Some(n) = body.nullable_len("record header value length is negative")? {
                body.skip(n)?;
            }
        }
        if body.left != 0 {
            return Err(malformed(index, "record length does not match its fields").into());
        }
        visit(&RecordMeta {
            index,
            start,
            end: src.pos(),
            offset_delta,
            timestamp_delta,
            key,
            value,
            headers_start,
            header_count,
        })?;
    }
    if src.byte()?.is_some() {
        return Err(malformed(
            header.records_count,
            "the batch holds more records than recordsCount",
        )
        .into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The same walk over a slice (uncompressed batches: the produce hot path)
//
// Kept apart from the generic walk because it is the produce path's cost:
// one-byte varints (almost every field) take a fast path, and a record's
// declared length bounds every field read by one position compare.

/// Why a read at `at` ran out of bytes: past the record's declared length,
/// or past the batch.
#[cold]
fn ran_out(end: usize, len: usize, index: i32) -> RecordsError {
    if end < len {
        malformed(index, "record fields run past its length")
    } else {
        malformed(index, "record runs past the end of the batch")
    }
}

/// An unsigned varint of `buf` at `at` of at most `max_bytes` bytes, not
/// reading at or past `end`; bits past 64 are refused.
#[inline(always)]
fn slice_var(
    buf: &[u8],
    at: &mut usize,
    end: usize,
    max_bytes: u32,
    index: i32,
) -> Result<u64, RecordsError> {
    let from = *at;
    let limit = end.min(from + max_bytes as usize);
    let mut value: u64 = 0;
    let mut shift = 0u32;
    let mut i = from;
    while i < limit {
        let b = buf[i];
        i += 1;
        let bits = u64::from(b & 0x7f);
        if shift == 63 && bits > 1 {
            return Err(malformed(index, "varint overflows 64 bits"));
        }
        value |= bits << shift;
        if b < 0x80 {
            *at = i;
            return Ok(value);
        }
        shift += 7;
    }
    if i - from == max_bytes as usize {
        Err(malformed(index, "varint is too long"))
    } else {
        Err(ran_out(end, buf.len(), index))
    }
}

#[inline(always)]
fn slice_i32(buf: &[u8], at: &mut usize, end: usize, index: i32) -> Result<i32, RecordsError> {
    let raw = slice_var(buf, at, end, VARINT_BYTES_MAX, index)?;
    let raw = u32::try_from(raw).map_err(|_| malformed(index, "varint overflows 32 bits"))?;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

#[inline(always)]
fn slice_i64(buf: &[u8], at: &mut usize, end: usize, index: i32) -> Result<i64, RecordsError> {
    let raw = slice_var(buf, at, end, VARLONG_BYTES_MAX, index)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

/// Skips a nullable field of `len` (-1: null) bytes; its (position, length).
#[inline(always)]
fn slice_field(
    buf: &[u8],
    at: &mut usize,
    end: usize,
    index: i32,
    negative: &'static str,
) -> Result<Option<(u64, usize)>, RecordsError> {
    match slice_i32(buf, at, end, index)? {
        -1 => Ok(None),
        n if n < 0 => Err(malformed(index, negative)),
        n => {
            let n = n as usize;
            if end - *at < n {
                return Err(ran_out(end, buf.len(), index));
            }
            let from = *at;
            *at += n;
            Ok(Some((from as u64, n)))
        }
    }
}

/// [`walk_source`] over an uncompressed records section.
fn walk_slice<E: From<RecordsError>>(
    buf: &[u8],
    header: &BatchHeader,
    origin: Origin,
    mut visit: impl FnMut(&RecordMeta) -> Result<(), E>,
) -> Result<(), E> {
    let mut at = 0usize;
    let mut previous_delta: i64 = -1;
    let len = buf.len();
    for index in 0..header.records_count.max(0) {
        let start = at;
        if at >= len {
            return Err(malformed(index, "the batch holds fewer records than recordsCount").into());
        }
        let body = slice_i32(buf, &mut at, len, index)?;
        if body < RECORD_BODY_BYTES_MIN {
            return Err(malformed(index, "record length is too small").into());
        }
        if len - at < body as usize {
            return Err(malformed(index, "record runs past the end of the batch").into());
        }
        let end = at + body as usize;
        at += 1; // attributes
        let timestamp_delta = slice_i64(buf, &mut at, end, index)?;
        let offset_delta = slice_i32(buf, &mut at, end, index)?;
        let in_order = match origin {
            Origin::Client => offset_delta == index,
            Origin::Stored => {
                i64::from(offset_delta) > previous_delta && offset_delta <= header.last_offset_delta
            }
        };
        if !in_order {
            return Err(malformed(index, "record offset delta is out of order").into());
        }
        previous_delta = i64::from(offset_delta);
        let key = slice_field(buf, &mut at, end, index, "record key length is negative")?;
        let value = slice_field(buf, &mut at, end, index, "record value length is negative")?;
        let header_count = slice_i32(buf, &mut at, end, index)?;
        if header_count < 0 {
            return Err(malformed(index, "record header count is negative").into());
        }
        let headers_start = at;
        for _ in 0..header_count {
            let key_len = slice_i32(buf, &mut at, end, index)?;
            if key_len < 0 {
                return Err(malformed(index, "record header key is null").into());
            }
            if end - at < key_len as usize {
                return Err(ran_out(end, len, index).into());
            }
            at += key_len as usize;
            slice_field(
                buf,
                &mut at,
                end,
                index,
                "record header value length is negative",
            )?;
        }
        if at != end {
            return Err(malformed(index, "record length does not match its fields").into());
        }
        visit(&RecordMeta {
            index,
            start: start as u64,
            end: end as u64,
            offset_delta,
            timestamp_delta,
            key,
            value,
            headers_start: headers_start as u64,
            header_count,
        })?;
    }
    if at != len {
        return Err(malformed(
            header.records_count,
            "the batch holds more records than recordsCount",
        )
        .into());
    }
    Ok(())
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
    let mut inflate = inflater(codec, section, budget as u64)?;
    let mut out: Vec<u8> = Vec::new();
    loop {
        let len = out.len();
        let room = budget - len;
        let want = limits::RECORDS_INFLATE_CHUNK_BYTES.min(room.saturating_add(1));
        out.resize(len + want, 0);
        let n = inflate.read(&mut out[len..])?;
        out.truncate(len + n);
        if n == 0 {
            return Ok(Cow::Owned(out));
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

// ---------------------------------------------------------------------------
// Produce validation

/// What a topic (and the request) asks of a produced batch.
#[derive(Clone, Copy, Debug)]
pub struct ProduceRules {
    /// max.message.bytes: the whole batch, as sent.
    pub max_message_bytes: usize,
    /// The broker's clock, for the timestamp bounds.
    pub now_ms: i64,
    /// message.timestamp.type is LogAppendTime: record timestamps are
    /// replaced, so not judged.
    pub log_append_time: bool,
    /// message.timestamp.before.max.ms / after.max.ms (CreateTime only).
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    /// cleanup.policy has compact: every record needs a key.
    pub require_keys: bool,
    /// The request is Produce v7 or later (KIP-110: zstd needs it).
    pub zstd_allowed: bool,
}

/// A batch that passed [`validate_produce`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValidBatch {
    pub header: BatchHeader,
    /// The largest record timestamp (-1 when none has one), which Kafka
    /// makes the batch's maxTimestamp whatever the producer wrote there.
    pub max_timestamp: i64,
}

/// Validates the `records` of one partition in a produce request as
/// Kafka's LogValidator does, before anything is stored: one whole v2
/// batch within max.message.bytes, CRC, attributes (codec, timestamp type,
/// no control batch, no transactional batch), producer id/epoch/sequence,
/// recordsCount equal to the records present and to lastOffsetDelta + 1,
/// offset deltas 0..n-1, every record's length, varints and headers,
/// timestamps within the topic's bounds, keys on compacted topics; a
/// compressed batch is inflated in bounded chunks. One pass over the
/// records; no allocation when uncompressed.
pub fn validate_produce(
    records: &[u8],
    rules: &ProduceRules,
) -> Result<ValidBatch, ProduceBatchError> {
    let header = super::batch::validate_produce_records(records, rules.max_message_bytes)?;
    let codec = header.compression();
    match Codec::from_id(codec) {
        None => return Err(ProduceBatchError::UnknownCodec(codec)),
        Some(Codec::Zstd) if !rules.zstd_allowed => return Err(ProduceBatchError::ZstdNeedsV7),
        Some(_) => {}
    }
    if header.is_control() {
        return Err(ProduceBatchError::ControlBatch);
    }
    if header.is_transactional() {
        return Err(ProduceBatchError::Transactional);
    }
    if header.is_log_append_time() {
        return Err(ProduceBatchError::LogAppendTime);
    }
    if header.has_producer_id() {
        if header.producer_epoch < 0 {
            return Err(ProduceBatchError::InvalidProducer(
                "a batch with a producer id has a negative producer epoch",
            ));
        }
        if header.base_sequence < 0 {
            return Err(ProduceBatchError::InvalidProducer(
                "a batch with a producer id has a negative base sequence",
            ));
        }
    }
    let min_ts = rules.now_ms.saturating_sub(rules.timestamp_before_max_ms);
    let max_ts = rules.now_ms.saturating_add(rules.timestamp_after_max_ms);
    let mut max_timestamp = NO_TIMESTAMP;
    walk(records, &header, Origin::Client, |r| {
        let ts = r.timestamp(&header).ok_or_else(|| {
            ProduceBatchError::Records(malformed(r.index, "record timestamp overflows"))
        })?;
        if !rules.log_append_time && ts != NO_TIMESTAMP && (ts < min_ts || ts > max_ts) {
            return Err(ProduceBatchError::Timestamp {
                index: r.index,
                timestamp: ts,
                min: min_ts,
                max: max_ts,
            });
        }
        if rules.require_keys && r.key.is_none() {
            return Err(ProduceBatchError::NullKey { index: r.index });
        }
        max_timestamp = max_timestamp.max(ts);
        Ok(())
    })?;
    Ok(ValidBatch {
        header,
        max_timestamp,
    })
}

/// The same batch with its records compressed by `codec` instead (a topic's
/// `compression.type`): every record byte-identical once decompressed, and
/// offsets, timestamps, producer id, epoch and sequence unchanged. Pure.
pub fn recompress(batch: &[u8], codec: Codec) -> Result<Vec<u8>, RecordsError> {
    let header = BatchHeader::parse(batch)?;
    if header.total_bytes() != batch.len() {
        return Err(BatchError::Truncated.into());
    }
    let section = records_section(batch, &header)?;
    // Parsing checks the section holds exactly recordsCount records, so a
    // malformed batch is refused rather than re-wrapped.
    parse_records(&section, &header)?;
    build_batch(&header, codec, header.records_count, &section)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::batch::tests::{encode as encode_batch, record as batch_record};
    use crate::protocol::batch::{patch_base_offset, BatchHeader};
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::RecordBatchDecoder;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    const NOW: i64 = 1_700_000_000_000;

    fn record(i: i64, key: Option<&'static [u8]>, value: &[u8]) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: i as i32 - 1,
            timestamp: NOW + i,
            key: key.map(Bytes::from_static),
            value: Some(Bytes::copy_from_slice(value)),
            headers: Default::default(),
        }
    }

    fn encode(records: &[Record], compression: Compression) -> Vec<u8> {
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, records, &options).unwrap();
        buf.to_vec()
    }

    fn batch(n: i64, compression: Compression) -> Vec<u8> {
        let records: Vec<Record> = (0..n).map(|i| record(i, Some(b"k"), b"hello")).collect();
        encode(&records, compression)
    }

    fn rules() -> ProduceRules {
        ProduceRules {
            max_message_bytes: 1 << 20,
            now_ms: NOW,
            log_append_time: false,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: 3_600_000,
            require_keys: false,
            zstd_allowed: true,
        }
    }

    /// Rewrites the CRC after a test edited the batch.
    fn reseal(b: &mut [u8]) {
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
    }

    fn set_i32(b: &mut [u8], at: usize, v: i32) {
        b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }

    fn index_of(e: ProduceBatchError) -> Option<i32> {
        e.record_index()
    }

    #[test]
    fn good_batches_of_every_codec_pass() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let b = batch(5, c);
            let v = validate_produce(&b, &rules()).unwrap_or_else(|e| panic!("{c:?}: {e}"));
            assert_eq!(v.header.records_count, 5);
            assert_eq!(v.max_timestamp, NOW + 4);
            let mut n = 0;
            walk(&b, &v.header, Origin::Stored, |r| {
                assert_eq!(r.offset_delta, n);
                n += 1;
                Ok::<(), RecordsError>(())
            })
            .unwrap();
            assert_eq!(n, 5);
            assert_eq!(check_stored_batch(&b).unwrap(), v.header);
        }
    }

    #[test]
    fn huge_record_count_is_refused_without_allocating() {
        let mut b = batch(1, Compression::None);
        set_i32(&mut b, 57, i32::MAX);
        set_i32(&mut b, 23, i32::MAX - 1);
        reseal(&mut b);
        let e = validate_produce(&b, &rules()).unwrap_err();
        assert!(matches!(e, ProduceBatchError::Records(_)), "{e:?}");
        assert!(check_stored_batch(&b).is_err());
        assert!(find_record(&b, |_| true).is_err());
        // The same claim inside a compressed batch is refused by the walk.
        let mut z = batch(1, Compression::Zstd);
        set_i32(&mut z, 57, i32::MAX);
        set_i32(&mut z, 23, i32::MAX - 1);
        reseal(&mut z);
        let e = validate_produce(&z, &rules()).unwrap_err();
        assert_eq!(index_of(e), Some(1), "{e:?}");
    }

    #[test]
    fn count_lower_than_present_is_refused() {
        let mut b = batch(3, Compression::None);
        set_i32(&mut b, 57, 2);
        set_i32(&mut b, 23, 1);
        reseal(&mut b);
        let e = validate_produce(&b, &rules()).unwrap_err();
        assert_eq!(
            e,
            ProduceBatchError::Records(RecordsError::Malformed {
                index: 2,
                what: "the batch holds more records than recordsCount"
            })
        );
    }

    #[test]
    fn count_and_last_offset_delta_must_agree() {
        let mut b = batch(3, Compression::None);
        set_i32(&mut b, 23, 5);
        reseal(&mut b);
        assert!(matches!(
            validate_produce(&b, &rules()),
            Err(ProduceBatchError::InvalidRecordCount { .. })
        ));
    }

    /// The records section of `b` (uncompressed) with one byte changed.
    fn edit_record_byte(b: &mut [u8], at: usize, v: u8) {
        b[BATCH_HEADER_BYTES + at] = v;
        reseal(b);
    }

    #[test]
    fn bad_varints_lengths_and_offsets_are_refused() {
        // Record 0 layout: len, attributes, ts delta, offset delta, key len...
        let good = batch(2, Compression::None);
        // A varint of six continuation bytes where the length should be.
        let mut b = good.clone();
        for i in 0..6 {
            b[BATCH_HEADER_BYTES + i] = 0xff;
        }
        reseal(&mut b);
        assert_eq!(
            index_of(validate_produce(&b, &rules()).unwrap_err()),
            Some(0)
        );
        // A record length past the batch's end.
        let mut b = good.clone();
        edit_record_byte(&mut b, 0, 0x7e); // zigzag 63
        let e = validate_produce(&b, &rules()).unwrap_err();
        assert!(matches!(e, ProduceBatchError::Records(_)), "{e:?}");
        // A negative record length.
        let mut b = good.clone();
        edit_record_byte(&mut b, 0, 0x01);
        assert!(validate_produce(&b, &rules()).is_err());
        // Offset delta 1 for record 0.
        let mut b = good.clone();
        edit_record_byte(&mut b, 3, 0x02);
        assert_eq!(
            validate_produce(&b, &rules()).unwrap_err(),
            ProduceBatchError::Records(RecordsError::Malformed {
                index: 0,
                what: "record offset delta is out of order"
            })
        );
    }

    #[test]
    fn null_header_key_is_refused() {
        let mut r = record(0, Some(b"k"), b"v");
        r.headers.insert("h".into(), Some(Bytes::from_static(b"x")));
        let mut b = encode(&[r], Compression::None);
        // Headers sit at the record's end: count, key len (1 -> zigzag 2), key, value len, value.
        let at = b.len() - 4;
        assert_eq!(b[at], 2, "header key length");
        b[at] = 1; // zigzag -1: a null key
        reseal(&mut b);
        let e = validate_produce(&b, &rules()).unwrap_err();
        assert_eq!(
            e,
            ProduceBatchError::Records(RecordsError::Malformed {
                index: 0,
                what: "record header key is null"
            })
        );
    }

    #[test]
    fn attributes_and_producer_fields_are_judged() {
        let good = batch(2, Compression::None);
        let with_attr = |bits: i16| {
            let mut b = good.clone();
            let a = i16::from_be_bytes([b[21], b[22]]) | bits;
            b[21..23].copy_from_slice(&a.to_be_bytes());
            reseal(&mut b);
            b
        };
        assert_eq!(
            validate_produce(&with_attr(0x20), &rules()),
            Err(ProduceBatchError::ControlBatch)
        );
        assert_eq!(
            validate_produce(&with_attr(0x10), &rules()),
            Err(ProduceBatchError::Transactional)
        );
        assert_eq!(
            validate_produce(&with_attr(0x08), &rules()),
            Err(ProduceBatchError::LogAppendTime)
        );
        assert_eq!(
            validate_produce(&with_attr(0x06), &rules()),
            Err(ProduceBatchError::UnknownCodec(6))
        );
        let z = batch(2, Compression::Zstd);
        let old = ProduceRules {
            zstd_allowed: false,
            ..rules()
        };
        assert_eq!(
            validate_produce(&z, &old),
            Err(ProduceBatchError::ZstdNeedsV7)
        );
        // Producer id 7, epoch -1.
        let mut b = good.clone();
        b[43..51].copy_from_slice(&7i64.to_be_bytes());
        b[51..53].copy_from_slice(&(-1i16).to_be_bytes());
        b[53..57].copy_from_slice(&0i32.to_be_bytes());
        reseal(&mut b);
        assert!(matches!(
            validate_produce(&b, &rules()),
            Err(ProduceBatchError::InvalidProducer(_))
        ));
        b[51..53].copy_from_slice(&0i16.to_be_bytes());
        b[53..57].copy_from_slice(&(-3i32).to_be_bytes());
        reseal(&mut b);
        assert!(matches!(
            validate_produce(&b, &rules()),
            Err(ProduceBatchError::InvalidProducer(_))
        ));
        b[53..57].copy_from_slice(&0i32.to_be_bytes());
        reseal(&mut b);
        assert!(validate_produce(&b, &rules()).is_ok());
    }

    #[test]
    fn timestamps_and_keys_follow_the_topic() {
        let b = batch(3, Compression::Lz4);
        let strict = ProduceRules {
            now_ms: NOW - 3_600_001,
            ..rules()
        };
        let e = validate_produce(&b, &strict).unwrap_err();
        assert!(
            matches!(e, ProduceBatchError::Timestamp { index: 0, .. }),
            "{e:?}"
        );
        let past = ProduceRules {
            now_ms: NOW + 10_000,
            timestamp_before_max_ms: 9_999,
            ..rules()
        };
        assert!(matches!(
            validate_produce(&b, &past),
            Err(ProduceBatchError::Timestamp { index: 0, .. })
        ));
        let append_time = ProduceRules {
            log_append_time: true,
            ..strict
        };
        assert!(validate_produce(&b, &append_time).is_ok());
        let keyless = encode(
            &[record(0, Some(b"a"), b"1"), record(1, None, b"2")],
            Compression::Gzip,
        );
        let compacted = ProduceRules {
            require_keys: true,
            ..rules()
        };
        assert_eq!(
            validate_produce(&keyless, &compacted),
            Err(ProduceBatchError::NullKey { index: 1 })
        );
        assert!(validate_produce(&keyless, &rules()).is_ok());
    }

    #[test]
    fn a_wrong_max_timestamp_is_reported_for_correction() {
        let mut b = batch(3, Compression::None);
        b[35..43].copy_from_slice(&(NOW + 99).to_be_bytes());
        reseal(&mut b);
        let v = validate_produce(&b, &rules()).unwrap();
        assert_eq!(v.header.max_timestamp, NOW + 99);
        assert_eq!(v.max_timestamp, NOW + 2);
    }

    /// A batch whose records section is `section` compressed with `codec`,
    /// claiming `count` records.
    fn bomb(codec: Codec, section: &[u8], count: i32) -> Vec<u8> {
        let template = BatchHeader::parse(&batch(1, Compression::None)).unwrap();
        let template = BatchHeader {
            last_offset_delta: count - 1,
            ..template
        };
        build_batch(&template, codec, count, section).unwrap()
    }

    /// One uncompressed record (no key) whose value is `value_len` zeros.
    fn zeros_record(value_len: usize) -> Vec<u8> {
        let put = |out: &mut Vec<u8>, v: i64| {
            let mut u = ((v << 1) ^ (v >> 63)) as u64;
            loop {
                let b = (u & 0x7f) as u8;
                u >>= 7;
                if u == 0 {
                    out.push(b);
                    break;
                }
                out.push(b | 0x80);
            }
        };
        let mut body = vec![0u8]; // attributes
        put(&mut body, 0); // timestamp delta
        put(&mut body, 0); // offset delta
        put(&mut body, -1); // null key
        put(&mut body, value_len as i64);
        let mut record = Vec::with_capacity(value_len + 16);
        put(&mut record, (body.len() + value_len + 1) as i64);
        record.extend_from_slice(&body);
        record.resize(record.len() + value_len, 0);
        record.push(0); // no headers
        record
    }

    #[test]
    fn decompression_bombs_are_refused_within_the_budget() {
        // The real budget is 256 MiB; the same code with a 1 MiB budget
        // keeps the test small. tests/bad_batches.rs sends real bombs.
        const BUDGET: usize = 1 << 20;
        let section = zeros_record(BUDGET + 1024);
        for codec in [Codec::Gzip, Codec::Lz4, Codec::Zstd, Codec::Snappy] {
            let b = bomb(codec, &section, 1);
            assert!(b.len() < BUDGET / 8, "{codec:?} bomb is {} bytes", b.len());
            let h = BatchHeader::parse(&b).unwrap();
            let walked = walk_within(&b, &h, Origin::Client, BUDGET as u64, |_| {
                Ok::<(), RecordsError>(())
            });
            assert_eq!(walked, Err(RecordsError::TooLarge), "{codec:?}");
            assert_eq!(
                section_within(&b, &h, BUDGET),
                Err(RecordsError::TooLarge),
                "{codec:?}"
            );
            // Under a budget that fits, the same batch is a valid one.
            let fits = walk_within(&b, &h, Origin::Client, 4 * BUDGET as u64, |_| {
                Ok::<(), RecordsError>(())
            });
            assert_eq!(fits, Ok(()), "{codec:?}");
        }
        // A raw snappy block that claims more than the budget is refused
        // before anything is allocated for it.
        let mut claim = Vec::new();
        let mut n = (BUDGET as u64) * 64;
        while n >= 0x80 {
            claim.push((n as u8) | 0x80);
            n >>= 7;
        }
        claim.push(n as u8);
        claim.extend_from_slice(&[0u8; 8]);
        let b = bomb(Codec::None, &claim, 1);
        let mut b = b;
        b[22] |= Codec::Snappy as u8;
        reseal(&mut b);
        let h = BatchHeader::parse(&b).unwrap();
        assert_eq!(section_within(&b, &h, BUDGET), Err(RecordsError::TooLarge));
        // ... and one that claims more than its bytes can expand to is corrupt.
        assert_eq!(
            section_within(&b, &h, usize::MAX),
            Err(RecordsError::Codec(Codec::Snappy))
        );
    }

    #[test]
    fn corrupt_compressed_streams_are_codec_errors() {
        for (c, codec) in [
            (Compression::Gzip, Codec::Gzip),
            (Compression::Snappy, Codec::Snappy),
            (Compression::Lz4, Codec::Lz4),
            (Compression::Zstd, Codec::Zstd),
        ] {
            let mut b = batch(20, c);
            let mid = BATCH_HEADER_BYTES + (b.len() - BATCH_HEADER_BYTES) / 2;
            for i in 0..4 {
                b[mid + i] ^= 0xa5;
            }
            reseal(&mut b);
            let e = validate_produce(&b, &rules()).unwrap_err();
            assert!(
                matches!(
                    e,
                    ProduceBatchError::Records(RecordsError::Codec(x)) if x == codec
                ) || matches!(
                    e,
                    ProduceBatchError::Records(RecordsError::Malformed { .. })
                ),
                "{c:?}: {e:?}"
            );
        }
    }

    #[test]
    fn stored_rules_accept_cleaned_batches() {
        // A cleaned batch keeps records 1 and 3 of 0..4 (offset gaps).
        let original = batch(5, Compression::None);
        let h = BatchHeader::parse(&original).unwrap();
        let section = records_section(&original, &h).unwrap();
        let records = parse_records(&section, &h).unwrap();
        let mut raw = Vec::new();
        raw.extend_from_slice(records[1].raw);
        raw.extend_from_slice(records[3].raw);
        let cleaned = build_batch(&h, Codec::None, 2, &raw).unwrap();
        let ch = check_stored_batch(&cleaned).unwrap();
        let kept = parse_records(&records_section(&cleaned, &ch).unwrap(), &ch)
            .unwrap()
            .iter()
            .map(|r| r.offset_delta)
            .collect::<Vec<_>>();
        assert_eq!(kept, vec![1, 3]);
        // ... which a client may not send.
        assert!(validate_produce(&cleaned, &rules()).is_err());
        // An empty batch (the cleaner keeps one at a segment's end) is fine stored.
        let empty = build_batch(&h, Codec::None, 0, &[]).unwrap();
        assert_eq!(check_stored_batch(&empty).unwrap().records_count, 0);
    }

    #[test]
    fn find_record_reads_timestamps() {
        let mut b = batch(4, Compression::Snappy);
        patch_base_offset(&mut b, 100);
        assert_eq!(
            find_record(&b, |ts| ts >= NOW + 2).unwrap(),
            Some((102, NOW + 2))
        );
        assert_eq!(find_record(&b, |ts| ts > NOW + 10).unwrap(), None);
        let recompressed = recompress(&b, Codec::Zstd).unwrap();
        assert_eq!(
            find_record(&recompressed, |ts| ts == NOW + 3).unwrap(),
            Some((103, NOW + 3))
        );
    }

    #[test]
    fn header_keys_are_read_back() {
        let mut r = record(0, Some(b"k"), b"v");
        r.headers.insert("a".into(), Some(Bytes::from_static(b"x")));
        r.headers.insert("bb".into(), None);
        let b = encode(&[r], Compression::None);
        let h = BatchHeader::parse(&b).unwrap();
        let section = records_section(&b, &h).unwrap();
        let records = parse_records(&section, &h).unwrap();
        assert_eq!(records[0].header_keys(), vec![&b"a"[..], &b"bb"[..]]);
        assert_eq!(
            records[0].headers(),
            vec![(&b"a"[..], Some(&b"x"[..])), (&b"bb"[..], None)]
        );
        assert_eq!(records[0].key, Some(&b"k"[..]));
        assert_eq!(records[0].value, Some(&b"v"[..]));
    }

    #[test]
    fn recompress_keeps_every_record_and_header_field() {
        use kafka_protocol::records::Compression as C;
        let codecs = [
            (C::None, Codec::None),
            (C::Gzip, Codec::Gzip),
            (C::Snappy, Codec::Snappy),
            (C::Lz4, Codec::Lz4),
            (C::Zstd, Codec::Zstd),
        ];
        for (from, _) in codecs {
            let mut records: Vec<Record> = (0..5)
                .map(|i| batch_record(i, 7_000 + i * 3, b"v"))
                .collect();
            records[1].value = None;
            records[2].key = None;
            records[3]
                .headers
                .insert("h1".into(), Some(Bytes::from_static(b"x")));
            let mut buf = BytesMut::new();
            let options = RecordEncodeOptions {
                version: 2,
                compression: from,
            };
            RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
            let mut original = buf.to_vec();
            patch_base_offset(&mut original, 40);
            let before = BatchHeader::parse(&original).unwrap();
            for (_, to) in codecs {
                let out = recompress(&original, to).unwrap();
                let after =
                    crate::protocol::batch::validate_produce_records(&out, usize::MAX).unwrap();
                assert_eq!(after.compression(), to as u8);
                assert_eq!(
                    (
                        after.base_offset,
                        after.last_offset_delta,
                        after.base_timestamp
                    ),
                    (
                        before.base_offset,
                        before.last_offset_delta,
                        before.base_timestamp
                    )
                );
                assert_eq!(
                    (after.max_timestamp, after.producer_id, after.producer_epoch),
                    (
                        before.max_timestamp,
                        before.producer_id,
                        before.producer_epoch
                    )
                );
                assert_eq!(
                    (after.base_sequence, after.records_count),
                    (before.base_sequence, before.records_count)
                );
                let decoded = RecordBatchDecoder::decode(&mut Bytes::from(out)).unwrap();
                let expected = RecordBatchDecoder::decode(&mut Bytes::from(original.clone()))
                    .unwrap()
                    .records;
                assert_eq!(decoded.records, expected, "{from:?} -> {to:?}");
            }
            let h = BatchHeader::parse(&original).unwrap();
            let section = records_section(&original, &h).unwrap();
            assert!(parse_records(&section, &h).unwrap()[2].key.is_none());
        }
    }

    #[test]
    fn record_view_parses_fields_and_refuses_garbage() {
        let batch = encode_batch(3, Compression::Lz4);
        let h = BatchHeader::parse(&batch).unwrap();
        let section = records_section(&batch, &h).unwrap();
        let records = parse_records(&section, &h).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[2].offset_delta, 2);
        assert_eq!(records[2].timestamp_delta, 2);
        assert_eq!(records[0].key, Some(&b"k"[..]));
        assert_eq!(records[0].value, Some(&b"hello"[..]));
        assert!(records[0].header_keys().is_empty());
        let claims = |n: i32| BatchHeader {
            records_count: n,
            last_offset_delta: 3,
            ..h
        };
        assert!(parse_records(&section, &claims(4)).is_err());
        assert!(parse_records(&section, &claims(2)).is_err());
        assert!(records.iter().all(|r| r.key.is_some()));
        let mut bad = encode_batch(3, Compression::Zstd);
        let last = bad.len() - 2;
        bad[last] ^= 0xff;
        assert!(recompress(&bad, Codec::None).is_err());
    }
}
