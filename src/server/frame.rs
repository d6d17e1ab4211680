//! An encoded response frame, with the records it carries held by
//! reference.
//!
//! A fetch response is mostly record batches that the log already holds in
//! `Bytes` (a read buffer or the read cache). Encoding it into one buffer
//! copied every byte once more before the socket copied it again; here the
//! encoder's output is split around those batches ([`SplicingBuf`]), and the
//! connection writes the parts in order ([`Frame::parts`]). Small batches
//! are copied: a separate write costs more than copying a few KiB.

use std::ops::Range;

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseHeader};
use kafka_protocol::protocol::buf::ByteBufMut;
use kafka_protocol::protocol::Encodable;

/// Record data at least this long is written by reference, not copied.
pub const SPLICE_MIN_BYTES: usize = 16 * 1024;

/// One response frame (size prefix, header, body) as parts written in
/// order. Every part but the record data is the encoder's own output.
#[derive(Debug, Default)]
pub struct Frame {
    parts: Vec<Bytes>,
    len: usize,
}

impl Frame {
    /// A frame encoded into one buffer.
    pub fn whole(bytes: BytesMut) -> Frame {
        let len = bytes.len();
        Frame {
            parts: vec![bytes.freeze()],
            len,
        }
    }

    /// Bytes in the frame, its size prefix included.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn parts(&self) -> &[Bytes] {
        &self.parts
    }

    /// The frame in one buffer (tests, and callers that need it whole).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for part in &self.parts {
            out.extend_from_slice(part);
        }
        out
    }
}

/// A fetch response's frame (size prefix, header, body), its record sets
/// of [`SPLICE_MIN_BYTES`] or more by reference. The size prefix comes
/// first, so it is computed before encoding, and checked after. Err: why
/// it cannot be encoded (a handler's bug; the connection is closed).
pub fn encode_fetch(
    correlation_id: i32,
    version: i16,
    body: &FetchResponse,
) -> Result<Frame, String> {
    let key = ApiKey::Fetch;
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = key.response_header_version(version);
    let size = header
        .compute_size(header_version)
        .and_then(|h| Ok(h + body.compute_size(version)?))
        .map_err(|e| format!("cannot size {key:?} v{version} response: {e}"))?;
    let records: Vec<Bytes> = body
        .responses
        .iter()
        .flat_map(|topic| &topic.partitions)
        .filter_map(|p| p.records.clone())
        .filter(|r| r.len() >= SPLICE_MIN_BYTES)
        .collect();
    let spliced: usize = records.iter().map(Bytes::len).sum();
    let mut buf = SplicingBuf::new(records, (4 + size).saturating_sub(spliced));
    buf.put_i32(size as i32);
    header
        .encode(&mut buf, header_version)
        .and_then(|_| body.encode(&mut buf, version))
        .map_err(|e| format!("cannot encode {key:?} v{version} response: {e}"))?;
    let frame = buf.finish();
    if frame.len() != 4 + size {
        return Err(format!(
            "{key:?} v{version} response encoded to {} bytes, sized {size}",
            frame.len() - 4
        ));
    }
    Ok(frame)
}

/// An encoder's buffer that takes the record data it was given by
/// reference: when the encoder copies in a slice that is one of `records`
/// (same address and length) and at least [`SPLICE_MIN_BYTES`] long, the
/// bytes written so far become a part, then that record data, and encoding
/// goes on in a fresh buffer.
///
/// Only for encoders that write forward: `seek` and `range` (used by
/// encoders that fill in a length after the fact) reach only the bytes
/// written since the last splice, and panic otherwise (a bug, caught by the
/// request's panic guard, which closes the connection).
pub struct SplicingBuf {
    parts: Vec<Bytes>,
    /// Bytes in `parts`.
    spliced: usize,
    head: BytesMut,
    /// Record data that may be spliced, in the order the encoder writes it.
    records: Vec<Bytes>,
    /// Where in `records` the next splice is expected.
    next: usize,
}

impl SplicingBuf {
    /// `records`: the record data of the value about to be encoded, in
    /// encoding order; `head_capacity`: the bytes expected outside them.
    pub fn new(records: Vec<Bytes>, head_capacity: usize) -> SplicingBuf {
        SplicingBuf {
            parts: Vec::with_capacity(2 * records.len() + 1),
            spliced: 0,
            head: BytesMut::with_capacity(head_capacity),
            records,
            next: 0,
        }
    }

    pub fn finish(mut self) -> Frame {
        if !self.head.is_empty() {
            self.spliced += self.head.len();
            self.parts.push(self.head.freeze());
        }
        Frame {
            parts: self.parts,
            len: self.spliced,
        }
    }

    /// The record data `src` is, if it may be spliced.
    fn spliceable(&mut self, src: &[u8]) -> Option<Bytes> {
        if src.len() < SPLICE_MIN_BYTES {
            return None;
        }
        let same = |r: &Bytes| r.as_ptr() == src.as_ptr() && r.len() == src.len();
        let at = if self.records.get(self.next).is_some_and(same) {
            self.next
        } else {
            self.records.iter().position(same)?
        };
        self.next = at + 1;
        Some(self.records[at].clone())
    }
}

// SAFETY: every method forwards to `head`, a `BytesMut`, whose `BufMut`
// implementation upholds the trait's contract; `put_slice` only adds whole
// parts beside it.
#[allow(unsafe_code)]
unsafe impl BufMut for SplicingBuf {
    fn remaining_mut(&self) -> usize {
        self.head.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller's promise (cnt bytes of `chunk_mut` were
        // initialised) is passed on unchanged to the same buffer.
        unsafe { self.head.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.head.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        match self.spliceable(src) {
            Some(records) => {
                if !self.head.is_empty() {
                    let head = self.head.split();
                    self.spliced += head.len();
                    self.parts.push(head.freeze());
                }
                self.spliced += records.len();
                self.parts.push(records);
            }
            None => self.head.put_slice(src),
        }
    }
}

impl ByteBufMut for SplicingBuf {
    fn offset(&self) -> usize {
        self.spliced + self.head.len()
    }

    fn seek(&mut self, offset: usize) {
        let at = offset
            .checked_sub(self.spliced)
            .expect("SplicingBuf: seek before a splice");
        self.head.resize(at, 0);
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        assert!(
            r.start >= self.spliced,
            "SplicingBuf: range before a splice"
        );
        &mut self.head[r.start - self.spliced..r.end - self.spliced]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_record_data_is_taken_by_reference_and_the_rest_copied() {
        let big = Bytes::from(vec![7u8; SPLICE_MIN_BYTES]);
        let small = Bytes::from(vec![9u8; 100]);
        let other = Bytes::from(vec![7u8; SPLICE_MIN_BYTES]); // equal, not the same
        let mut buf = SplicingBuf::new(vec![big.clone(), small.clone()], 64);
        buf.put_i32(1);
        buf.put_slice(&big);
        buf.put_i32(2);
        buf.put_slice(&small);
        buf.put_slice(&other);
        let frame = buf.finish();
        assert_eq!(frame.parts().len(), 3);
        assert_eq!(frame.parts()[1].as_ptr(), big.as_ptr());
        assert_eq!(frame.len(), 4 + big.len() + 4 + small.len() + other.len());
        let mut want = Vec::new();
        want.put_i32(1);
        want.extend_from_slice(&big);
        want.put_i32(2);
        want.extend_from_slice(&small);
        want.extend_from_slice(&other);
        assert_eq!(frame.to_vec(), want);
    }

    #[test]
    fn a_fetch_frame_is_byte_for_byte_the_plain_encoding() {
        use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
        let big = Bytes::from(vec![3u8; 3 * SPLICE_MIN_BYTES]);
        let small = Bytes::from(vec![4u8; 10]);
        let body = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
            .with_partitions(vec![
                PartitionData::default()
                    .with_partition_index(0)
                    .with_records(Some(big.clone())),
                PartitionData::default()
                    .with_partition_index(1)
                    .with_records(Some(small)),
            ])]);
        for version in [4i16, 12, 16] {
            let frame = encode_fetch(7, version, &body).expect("encodes");
            assert!(
                frame.parts().iter().any(|p| p.as_ptr() == big.as_ptr()),
                "v{version}: the large record set is a part of its own"
            );
            let header = ResponseHeader::default().with_correlation_id(7);
            let mut plain = BytesMut::new();
            plain.put_i32(0);
            header
                .encode(&mut plain, ApiKey::Fetch.response_header_version(version))
                .expect("header");
            body.encode(&mut plain, version).expect("body");
            let size = (plain.len() - 4) as i32;
            plain[..4].copy_from_slice(&size.to_be_bytes());
            assert_eq!(frame.to_vec(), plain.to_vec(), "v{version}");
        }
    }

    #[test]
    fn offsets_count_spliced_bytes_and_seek_reaches_the_head() {
        let big = Bytes::from(vec![1u8; SPLICE_MIN_BYTES * 2]);
        let mut buf = SplicingBuf::new(vec![big.clone()], 0);
        buf.put_u8(5);
        buf.put_slice(&big);
        assert_eq!(buf.offset(), 1 + big.len());
        let gap = buf.put_gap(4);
        buf.put_u8(6);
        buf.gap_buf(gap).copy_from_slice(&[1, 2, 3, 4]);
        let frame = buf.finish();
        assert_eq!(frame.parts()[2].as_ref(), &[1, 2, 3, 4, 6]);
    }
}
