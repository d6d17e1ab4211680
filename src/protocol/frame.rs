//! Splits a byte stream into Kafka frames: a 4-byte big-endian size prefix,
//! then that many bytes. Sizes are bounded so a hostile prefix cannot make the
//! broker allocate.

use bytes::{Buf, Bytes, BytesMut};

#[derive(Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The size prefix is negative or larger than the allowed maximum.
    BadSize { size: i64, max: usize },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::BadSize { size, max } => {
                write!(
                    f,
                    "frame size {size} is outside [8, {max}] (socket.request.max.bytes)"
                )
            }
        }
    }
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
}
