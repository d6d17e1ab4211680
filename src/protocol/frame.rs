//! Splits a byte stream into Kafka frames: a 4-byte big-endian size prefix,
//! then that many bytes. Sizes are bounded so a hostile prefix cannot make the
//! broker allocate.

use bytes::{Buf, Bytes, BytesMut};

use crate::limits;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The size prefix is negative or larger than the allowed maximum.
    #[error("frame size {size} is outside [8, {max}] (socket.request.max.bytes)")]
    BadSize { size: i64, max: usize },
    /// A request other than Produce is larger than
    /// `limits::REQUEST_WITHOUT_RECORDS_BYTES_MAX`.
    #[error(
        "a request of api key {api_key} is {size} bytes; only Produce requests may be larger \
         than {} bytes",
        limits::REQUEST_WITHOUT_RECORDS_BYTES_MAX
    )]
    TooLargeForApi { api_key: i16, size: usize },
}

/// Smallest valid request: api key, api version and correlation id.
const REQUEST_BYTES_MIN: usize = 8;

/// The size announced by the prefix at the front of `buf`, if 4 bytes are there.
pub fn announced_size(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as i64;
    if size < REQUEST_BYTES_MIN as i64 || size as u64 > max as u64 {
        return Err(FrameError::BadSize { size, max });
    }
    Ok(Some(size as usize))
}

/// Produce's api key: the one request that carries records.
const PRODUCE_API_KEY: i16 = 0;

/// A request frame whose size and api key are known.
#[derive(Debug, PartialEq, Eq)]
pub struct Announced {
    /// Bytes after the size prefix.
    pub size: usize,
    /// Request memory the frame may take once decoded: its size for
    /// Produce (record bytes stay one zero-copy slice of the frame),
    /// `REQUEST_DECODED_BYTES_PER_WIRE_BYTE_MAX` times its size for the
    /// others, whose arrays decode into structs larger than their wire
    /// form.
    pub memory: u64,
}

/// The size and api key of the request frame at the front of `buf`, once
/// its first 6 bytes (prefix and api key) are there. Requests other than
/// Produce are refused past `REQUEST_WITHOUT_RECORDS_BYTES_MAX`: nothing
/// else a client sends needs megabytes, and decoding multiplies their
/// size (see `REQUEST_DECODED_BYTES_PER_WIRE_BYTE_MAX`).
pub fn announced_request(buf: &[u8], max: usize) -> Result<Option<Announced>, FrameError> {
    let Some(size) = announced_size(buf, max)? else {
        return Ok(None);
    };
    if buf.len() < 6 {
        return Ok(None);
    }
    let api_key = i16::from_be_bytes([buf[4], buf[5]]);
    if api_key == PRODUCE_API_KEY {
        return Ok(Some(Announced {
            size,
            memory: size as u64,
        }));
    }
    if size > limits::REQUEST_WITHOUT_RECORDS_BYTES_MAX {
        return Err(FrameError::TooLargeForApi { api_key, size });
    }
    Ok(Some(Announced {
        size,
        memory: (size * limits::REQUEST_DECODED_BYTES_PER_WIRE_BYTE_MAX) as u64,
    }))
}

/// Takes one whole frame (without its prefix) off the front of `buf`, or
/// `None` when more bytes are needed.
pub fn split_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, FrameError> {
    let Some(size) = announced_size(buf, max)? else {
        return Ok(None);
    };
    if buf.len() < 4 + size {
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(size).freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_whole_frames_and_waits_for_partial_ones() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&10i32.to_be_bytes());
        buf.extend_from_slice(&[1; 6]);
        assert_eq!(split_frame(&mut buf, 100).unwrap(), None);
        buf.extend_from_slice(&[1; 4]);
        buf.extend_from_slice(&8i32.to_be_bytes());
        assert_eq!(split_frame(&mut buf, 100).unwrap().unwrap().len(), 10);
        assert_eq!(split_frame(&mut buf, 100).unwrap(), None);
        assert_eq!(buf.len(), 4);
    }

    #[test]
    fn rejects_oversized_and_negative_sizes() {
        let mut buf = BytesMut::from(&(101i32).to_be_bytes()[..]);
        assert!(split_frame(&mut buf, 100).is_err());
        let mut buf = BytesMut::from(&(-1i32).to_be_bytes()[..]);
        assert!(split_frame(&mut buf, 100).is_err());
        let mut buf = BytesMut::from(&(3i32).to_be_bytes()[..]);
        assert!(split_frame(&mut buf, 100).is_err());
    }

    fn prefix(size: usize, api_key: i16) -> Vec<u8> {
        let mut buf = (size as i32).to_be_bytes().to_vec();
        buf.extend_from_slice(&api_key.to_be_bytes());
        buf
    }

    #[test]
    fn only_produce_requests_may_be_large() {
        let big = limits::REQUEST_WITHOUT_RECORDS_BYTES_MAX + 1;
        let max = limits::FRAME_BYTES_MAX;
        // The api key is needed before the size is accepted.
        assert_eq!(announced_request(&prefix(big, 3)[..5], max), Ok(None));
        assert_eq!(
            announced_request(&prefix(big, 3), max),
            Err(FrameError::TooLargeForApi {
                api_key: 3,
                size: big
            })
        );
        let produce = announced_request(&prefix(big, 0), max).unwrap().unwrap();
        assert_eq!((produce.size, produce.memory), (big, big as u64));
        let metadata = announced_request(&prefix(100, 3), max).unwrap().unwrap();
        assert_eq!(
            metadata.memory,
            100 * limits::REQUEST_DECODED_BYTES_PER_WIRE_BYTE_MAX as u64
        );
    }
}
