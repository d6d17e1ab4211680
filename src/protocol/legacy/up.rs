//! Produce v0-v2: an old-format message set becomes one v2 record batch.

use super::{
    message_bytes_min, LegacyError, CODEC_MASK, LOG_APPEND_TIME_BIT, LOG_OVERHEAD, MAGIC_AT,
};
use crate::limits;
use crate::protocol::batch::{build_batch, BatchHeader, Codec, MAGIC_V2};
use crate::protocol::records::{inflate, NO_TIMESTAMP};

/// One message of a set, borrowed from the set's bytes.
#[derive(Clone, Copy, Debug)]
pub(super) struct Message<'a> {
    pub magic: i8,
    pub attributes: u8,
    /// NO_TIMESTAMP on magic 0.
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

/// Calls `each` with every message of `set` in order, checking each
/// entry's size against the bytes present, its CRC, its magic (0 or 1) and
/// its key and value lengths against its size. `index_base` numbers the
/// messages in errors. Returns how many there were.
pub(super) fn for_each_message<'a>(
    set: &'a [u8],
    index_base: usize,
    mut each: impl FnMut(usize, Message<'a>) -> Result<(), LegacyError>,
) -> Result<usize, LegacyError> {
    let mut at = 0;
    let mut count = 0;
    while at < set.len() {
        let index = index_base + count;
        let rest = &set[at..];
        if rest.len() < LOG_OVERHEAD {
            return Err(LegacyError::Truncated { index });
        }
        let size = i32::from_be_bytes(rest[8..12].try_into().expect("4 bytes"));
        let message_len = usize::try_from(size)
            .ok()
            .filter(|&n| n >= message_bytes_min(0))
            .ok_or(LegacyError::InvalidSize { index, size })?;
        if rest.len() - LOG_OVERHEAD < message_len {
            return Err(LegacyError::Truncated { index });
        }
        let message = &rest[LOG_OVERHEAD..LOG_OVERHEAD + message_len];
        each(index, parse_message(message, index, size)?)?;
        at += LOG_OVERHEAD + message_len;
        count += 1;
    }
    Ok(count)
}

/// One message (after its size field): crc, magic, attributes, [timestamp],
/// key, value, and nothing after.
fn parse_message(message: &[u8], index: usize, size: i32) -> Result<Message<'_>, LegacyError> {
    let magic = message[MAGIC_AT - LOG_OVERHEAD] as i8;
    if !matches!(magic, 0 | 1) {
        return Err(LegacyError::UnsupportedMagic { index, magic });
    }
    if message.len() < message_bytes_min(magic) {
        return Err(LegacyError::InvalidSize { index, size });
    }
    let crc = u32::from_be_bytes(message[0..4].try_into().expect("4 bytes"));
    if crc32fast::hash(&message[4..]) != crc {
        return Err(LegacyError::Crc { index });
    }
    let attributes = message[5];
    let mut at = 6;
    let timestamp = if magic == 1 {
        at += 8;
        i64::from_be_bytes(message[6..14].try_into().expect("8 bytes"))
    } else {
        NO_TIMESTAMP
    };
    let key = take_bytes(message, &mut at, index)?;
    let value = take_bytes(message, &mut at, index)?;
    if at != message.len() {
        return Err(LegacyError::BadLength { index });
    }
    Ok(Message {
        magic,
        attributes,
        timestamp,
        key,
        value,
    })
}

/// A nullable bytes field (i32 length, -1 for null) at `*at`.
fn take_bytes<'a>(
    message: &'a [u8],
    at: &mut usize,
    index: usize,
) -> Result<Option<&'a [u8]>, LegacyError> {
    let bad = LegacyError::BadLength { index };
    let len_bytes = message.get(*at..*at + 4).ok_or(bad)?;
    let len = i32::from_be_bytes(len_bytes.try_into().expect("4 bytes"));
    *at += 4;
    if len == -1 {
        return Ok(None);
    }
    let len = usize::try_from(len).map_err(|_| bad)?;
    let bytes = message.get(*at..*at + len).ok_or(bad)?;
    *at += len;
    Ok(Some(bytes))
}

/// The v2 records being built: encoded relative to the first record's
/// timestamp, numbered from 0.
struct Builder {
    raw: Vec<u8>,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl Builder {
    fn push(&mut self, message: &Message<'_>) -> Result<(), LegacyError> {
        if self.count == 0 {
            self.base_timestamp = message.timestamp;
        }
        let delta = message
            .timestamp
            .checked_sub(self.base_timestamp)
            .ok_or(LegacyError::TimestampRange)?;
        self.max_timestamp = self.max_timestamp.max(message.timestamp);
        let mut body = Vec::with_capacity(
            16 + message.key.map_or(0, <[u8]>::len) + message.value.map_or(0, <[u8]>::len),
        );
        body.push(0); // record attributes: unused
        put_varlong(&mut body, delta);
        put_varlong(&mut body, i64::from(self.count));
        put_nullable(&mut body, message.key);
        put_nullable(&mut body, message.value);
        put_varlong(&mut body, 0); // no headers
        put_varlong(&mut self.raw, body.len() as i64);
        self.raw.extend_from_slice(&body);
        self.count = self
            .count
            .checked_add(1)
            .ok_or(LegacyError::TooManyMessages)?;
        Ok(())
    }
}

fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varlong(out, -1),
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

/// A zigzag varint, as v2 records encode every integer.
fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn codec_of(index: usize, attributes: u8) -> Result<Codec, LegacyError> {
    let id = attributes & CODEC_MASK;
    match Codec::from_id(id) {
        Some(Codec::Zstd) => Err(LegacyError::Zstd),
        Some(codec) => Ok(codec),
        None => Err(LegacyError::UnknownCodec { index, codec: id }),
    }
}

/// Converts a Produce v0-v2 message set (magic 0 or 1) to one v2 batch of
/// the same records, in order, numbered from offset 0, compressed with the
/// codec of its compressed messages (none when there are none). The batch
/// then goes through the same validation as any produced batch.
pub fn up_convert(set: &[u8]) -> Result<Vec<u8>, LegacyError> {
    let mut builder = Builder {
        raw: Vec::with_capacity(set.len()),
        count: 0,
        base_timestamp: NO_TIMESTAMP,
        max_timestamp: NO_TIMESTAMP,
    };
    let mut first_magic = None;
    let mut batch_codec = Codec::None;
    let mut inflate_budget = limits::RECORDS_DECOMPRESSED_BYTES_MAX;
    for_each_message(set, 0, |index, message| {
        let first = *first_magic.get_or_insert(message.magic);
        if message.magic != first {
            return Err(LegacyError::MixedMagic {
                index,
                magic: message.magic,
                first,
            });
        }
        if message.magic == 1 && message.attributes & LOG_APPEND_TIME_BIT != 0 {
            return Err(LegacyError::LogAppendTime);
        }
        let codec = codec_of(index, message.attributes)?;
        if codec == Codec::None {
            return builder.push(&message);
        }
        if batch_codec == Codec::None {
            batch_codec = codec;
        }
        let compressed = message.value.ok_or(LegacyError::EmptyWrapper { index })?;
        let inner = inflate(codec, compressed, inflate_budget)?;
        inflate_budget -= inner.len();
        let inner_count = for_each_message(&inner, 0, |inner_index, m| {
            if m.magic != message.magic {
                return Err(LegacyError::MixedMagic {
                    index: inner_index,
                    magic: m.magic,
                    first: message.magic,
                });
            }
            if m.attributes & CODEC_MASK != 0 {
                return Err(LegacyError::NestedCompression { index });
            }
            if m.magic == 1 && m.attributes & LOG_APPEND_TIME_BIT != 0 {
                return Err(LegacyError::LogAppendTime);
            }
            builder.push(&m)
        })?;
        if inner_count == 0 {
            return Err(LegacyError::EmptyWrapper { index });
        }
        Ok(())
    })?;
    if builder.count == 0 {
        return Err(LegacyError::Empty);
    }
    let template = BatchHeader {
        base_offset: 0,
        batch_length: 0,
        partition_leader_epoch: -1,
        magic: MAGIC_V2,
        crc: 0,
        attributes: 0,
        last_offset_delta: builder.count - 1,
        base_timestamp: builder.base_timestamp,
        max_timestamp: builder.max_timestamp,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        records_count: builder.count,
    };
    Ok(build_batch(
        &template,
        batch_codec,
        builder.count,
        &builder.raw,
    )?)
}
