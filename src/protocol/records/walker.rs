//! The record walk: every record's length, varints, fields and headers
//! checked against the bytes that remain, over any [`Source`] or, on the
//! produce hot path, over a slice.

use super::source::Source;
use super::{Origin, RecordMeta};
use crate::protocol::batch::{BatchHeader, RecordsError};

/// Smallest record body (after its length varint).
const RECORD_BODY_BYTES_MIN: i32 = 6;
/// Longest varint (i32) and varlong (i64) encodings, as Kafka's ByteUtils.
const VARINT_BYTES_MAX: u32 = 5;
const VARLONG_BYTES_MAX: u32 = 10;

pub(super) fn malformed(index: i32, what: &'static str) -> RecordsError {
    RecordsError::Malformed { index, what }
}

/// One record's body: reads never go past its declared length.
pub(super) struct Body<'s, S: Source> {
    pub(super) src: &'s mut S,
    pub(super) left: usize,
    pub(super) index: i32,
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

    pub(super) fn skip(&mut self, n: usize) -> Result<(), RecordsError> {
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
    pub(super) fn varint(&mut self) -> Result<i32, RecordsError> {
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
    pub(super) fn nullable_len(
        &mut self,
        what: &'static str,
    ) -> Result<Option<usize>, RecordsError> {
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
pub(super) fn walk_source<S: Source, E: From<RecordsError>>(
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
pub(super) fn walk_slice<E: From<RecordsError>>(
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
