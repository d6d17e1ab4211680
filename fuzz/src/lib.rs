//! Helpers shared by corelog's fuzz targets (`fuzz_targets/`): reading a
//! fuzz input as a few fields, repairing checksums so mutations reach the
//! code behind them, a per-process scratch directory for decoders that read
//! files, and the encode-decode round trips of the Kafka codec.
//!
//! Nothing here decides what is a finding: targets panic (through `assert!`
//! or the code under test) and libFuzzer records the input.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;

/// Reads a fuzz input front to back. Every read succeeds: past the end it
/// yields zeros or an empty slice, so any mutation is a valid input and the
/// fuzzer does not waste its time on inputs the harness refuses.
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Up to `n` bytes (fewer at the end).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        head
    }

    pub fn u8(&mut self) -> u8 {
        self.bytes(1).first().copied().unwrap_or(0)
    }

    pub fn u16(&mut self) -> u16 {
        let mut b = [0u8; 2];
        let got = self.bytes(2);
        b[..got.len()].copy_from_slice(got);
        u16::from_le_bytes(b)
    }

    pub fn u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        let got = self.bytes(4);
        b[..got.len()].copy_from_slice(got);
        u32::from_le_bytes(b)
    }

    pub fn i64(&mut self) -> i64 {
        let mut b = [0u8; 8];
        let got = self.bytes(8);
        b[..got.len()].copy_from_slice(got);
        i64::from_le_bytes(b)
    }

    /// A length-prefixed (u32 LE) field, cut at the end of the input.
    pub fn field(&mut self) -> &'a [u8] {
        let n = self.u32() as usize;
        self.bytes(n)
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        self.bytes(self.data.len())
    }
}

/// Writes a length-prefixed field as [`Reader::field`] reads it (seed tools).
pub fn put_field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Bytes of a v2 record-batch header, up to the first record.
const BATCH_HEADER_BYTES: usize = 61;
/// batchLength counts the bytes after baseOffset and itself.
const BATCH_LENGTH_PREFIX_BYTES: usize = 12;
/// The CRC32C covers attributes (at 21) to the end of the batch.
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;

/// Recomputes the CRC32C of every whole batch at the front of `buf`
/// (back to back, as a segment or a produce request holds them), so that
/// mutations of a batch's fields and records reach the code behind the
/// checksum instead of stopping at it. Stops at the first batch whose
/// length does not fit.
pub fn fix_batch_crcs(buf: &mut [u8]) {
    let mut pos = 0;
    while buf.len() - pos >= BATCH_HEADER_BYTES {
        let length = i32::from_be_bytes(buf[pos + 8..pos + 12].try_into().unwrap());
        let Ok(length) = usize::try_from(length) else {
            break;
        };
        let total = BATCH_LENGTH_PREFIX_BYTES + length;
        if total < BATCH_HEADER_BYTES || total > buf.len() - pos {
            break;
        }
        let crc = crc32c::crc32c(&buf[pos + ATTRIBUTES_AT..pos + total]);
        buf[pos + CRC_AT..pos + CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        pos += total;
    }
}

/// Sets the batchLength of the single batch `buf` holds to its real length.
pub fn fix_batch_length(buf: &mut [u8]) {
    if buf.len() >= BATCH_HEADER_BYTES {
        let length = (buf.len() - BATCH_LENGTH_PREFIX_BYTES) as i32;
        buf[8..12].copy_from_slice(&length.to_be_bytes());
    }
}

/// Recomputes the CRC32C of every frame `[len u32 BE][crc32c u32 BE][body]`
/// at the front of `buf` (the controller's `raft.log`, `hardstate` and
/// `snapshot` files).
pub fn fix_frame_crcs(buf: &mut [u8]) {
    let mut pos = 0;
    while buf.len() - pos >= 8 {
        let len = u32::from_be_bytes(buf[pos..pos + 4].try_into().unwrap()) as usize;
        if len > buf.len() - pos - 8 {
            break;
        }
        let crc = crc32c::crc32c(&buf[pos + 8..pos + 8 + len]);
        buf[pos + 4..pos + 8].copy_from_slice(&crc.to_be_bytes());
        pos += 8 + len;
    }
}

/// A directory of this process for decoders that read files (on tmpfs when
/// there is one, so an execution costs no disk I/O). `run.sh` points
/// `CORELOG_FUZZ_SCRATCH` at a directory it removes afterwards. Each call
/// empties it.
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let root = std::env::var_os("CORELOG_FUZZ_SCRATCH")
            .map(PathBuf::from)
            .or_else(|| {
                let shm = Path::new("/dev/shm");
                shm.is_dir().then(|| shm.to_path_buf())
            })
            .unwrap_or_else(std::env::temp_dir);
        root.join(format!("corelog-fuzz-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create the fuzz scratch directory");
    dir
}

/// Runs a future of the memory disk (which never waits) to completion.
pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    futures_lite::future::block_on(f)
}

/// Handler-independent invariants of a request the broker decoded: it
/// encodes again at the same version, and that encoding decodes to the same
/// request (what the broker understood is what the client sent).
pub fn request_round_trip(header: &RequestHeader, body: &RequestKind) {
    let key = ApiKey::try_from(header.request_api_key).expect("a decoded request has a known key");
    let version = header.request_api_version;
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .expect("a decoded request header encodes");
    body.encode(&mut buf, version)
        .expect("a decoded request encodes at its version");
    match corelog::server::dispatch::parse(buf.freeze()) {
        Ok(corelog::server::dispatch::Parsed::Request {
            header: again,
            body: again_body,
        }) => {
            assert_eq!(&again, header, "request header changed in a round trip");
            assert_eq!(&*again_body, body, "request changed in a round trip");
        }
        Ok(_) => panic!("a re-encoded {key:?} v{version} request parses differently"),
        Err(e) => panic!("a re-encoded {key:?} v{version} request does not parse: {e}"),
    }
}

/// The same for a response a corelog client decoded.
pub fn response_round_trip(
    key: ApiKey,
    version: i16,
    header: &ResponseHeader,
    body: &ResponseKind,
) {
    let header_version = key.response_header_version(version);
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, header_version)
        .expect("a decoded response header encodes");
    body.encode(&mut buf, version)
        .expect("a decoded response encodes at its version");
    let mut bytes: Bytes = buf.freeze();
    let again =
        <ResponseHeader as kafka_protocol::protocol::Decodable>::decode(&mut bytes, header_version)
            .expect("a re-encoded response header decodes");
    assert_eq!(&again, header, "response header changed in a round trip");
    let again_body =
        ResponseKind::decode(key, &mut bytes, version).expect("a re-encoded response decodes");
    assert_eq!(
        &again_body, body,
        "{key:?} v{version} response changed in a round trip"
    );
}

fn put_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// A valid, uncompressed v2 batch of `count` records (key `k<i>`, value
/// `v<i>`, no headers) at base offset 0, every timestamp `ts`: what a
/// well-behaved producer sends.
pub fn valid_batch(count: i32, ts: i64) -> Vec<u8> {
    let mut records = Vec::new();
    for i in 0..count {
        let mut body = vec![0u8]; // attributes
        put_varlong(&mut body, 0); // timestamp delta
        put_varlong(&mut body, i64::from(i)); // offset delta
        let key = format!("k{i}");
        put_varlong(&mut body, key.len() as i64);
        body.extend_from_slice(key.as_bytes());
        let value = format!("v{i}");
        put_varlong(&mut body, value.len() as i64);
        body.extend_from_slice(value.as_bytes());
        put_varlong(&mut body, 0); // header count
        put_varlong(&mut records, body.len() as i64);
        records.extend_from_slice(&body);
    }
    let mut b = vec![0u8; BATCH_HEADER_BYTES];
    b.extend_from_slice(&records);
    let length = (b.len() - BATCH_LENGTH_PREFIX_BYTES) as i32;
    b[8..12].copy_from_slice(&length.to_be_bytes());
    b[16] = 2; // magic
    b[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    b[27..35].copy_from_slice(&ts.to_be_bytes());
    b[35..43].copy_from_slice(&ts.to_be_bytes());
    b[43..51].copy_from_slice(&(-1i64).to_be_bytes());
    b[51..53].copy_from_slice(&(-1i16).to_be_bytes());
    b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    b[57..61].copy_from_slice(&count.to_be_bytes());
    fix_batch_crcs(&mut b);
    b
}

/// The in-memory partition directory the log targets use.
pub const MEM_DIR: &str = "/mem/topic-0";

/// Reads what a consumer, ListOffsets and producer-state recovery would
/// read from an opened log, ignoring errors (a damaged log may refuse a
/// read; it must not panic). Returns the batches read, in order, as
/// (base offset, last offset).
pub async fn read_like_clients<D: corelog::io::Disk>(
    log: &corelog::log::PartitionLog<D>,
    max_bytes: usize,
) -> Vec<(i64, i64)> {
    use corelog::protocol::batch::BatchIter;
    let mut seen = Vec::new();
    let upper = log.flushed_offset();
    let mut offset = log.start_offset();
    // A bounded number of reads: a damaged log may not make progress.
    for _ in 0..256 {
        if offset >= upper {
            break;
        }
        let Ok(job) = log.plan_read(offset, max_bytes, upper) else {
            break;
        };
        let Ok(bytes) = job.run().await else {
            break;
        };
        let mut next = offset;
        for (_, h) in BatchIter::new(&bytes, false) {
            seen.push((h.base_offset, h.last_offset()));
            next = next.max(h.last_offset().saturating_add(1));
        }
        if next <= offset {
            break;
        }
        offset = next;
    }
    for ts in [-1, 0, 1_700_000_000_000, i64::MAX] {
        let _ = log.plan_offset_for_timestamp(ts, upper).run().await;
    }
    let _ = log.max_timestamp();
    let _ = log.plan_scan_headers(log.start_offset()).run().await;
    seen
}

/// Runs the log's pending flush, if any, to completion.
pub async fn flush<D: corelog::io::Disk>(
    log: &mut corelog::log::PartitionLog<D>,
) -> Result<i64, corelog::log::LogError> {
    match log.take_flush() {
        Some(job) => {
            let outcome = job.run(true).await;
            log.complete_flush(outcome)
        }
        None => Ok(log.flushed_offset()),
    }
}
