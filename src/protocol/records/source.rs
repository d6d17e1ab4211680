//! Where a record walk reads its bytes: a records section in place, or a
//! codec's output inflated in bounded chunks against a budget.

use std::io::Read;

use crate::limits;
use crate::protocol::batch::{Codec, RecordsError};

/// The most one snappy input byte can expand to: a 3-byte copy element
/// writes at most 64 bytes. A block claiming more than this times its
/// compressed length cannot be valid, so its claim is refused before
/// anything is allocated for it.
const SNAPPY_EXPANSION_MAX: usize = 22;
/// xerial's snappy-java framing, which Kafka's Java client writes: an
/// 8-byte magic, two i32 versions, then (i32 length, raw block) pairs.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_BYTES: usize = 16;

pub(super) trait Source {
    /// The next byte; None at the end of the records section.
    fn byte(&mut self) -> Result<Option<u8>, RecordsError>;
    /// Skips `n` bytes; false when the section ends first.
    fn skip(&mut self, n: usize) -> Result<bool, RecordsError>;
    /// Bytes consumed so far.
    fn pos(&self) -> u64;
}

pub(super) struct SliceSource<'a> {
    pub(super) buf: &'a [u8],
    pub(super) at: usize,
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
pub(super) trait Inflate {
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
pub(super) fn inflater<'a>(
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
pub(super) struct StreamSource<'a> {
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
    pub(super) fn new(inflate: Box<dyn Inflate + 'a>, budget: u64) -> StreamSource<'a> {
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
