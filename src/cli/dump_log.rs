//! `corelog dump-log`: Kafka's `kafka-dump-log.sh`. Reads segment files
//! offline (no broker: plain file reads, safe while a broker runs) and prints
//! what they hold in Kafka's shapes:
//!
//! - `.log`: `Dumping <file>`, `Log starting offset: <base>`, then one line
//!   per batch (`baseOffset: .. lastOffset: .. count: .. ... isvalid: true`)
//!   and, with `--print-data-log`, one `| offset: ..` line per record.
//! - `.index`: `offset: <absolute> position: <bytes>` per entry.
//! - `.timeindex`: `timestamp: <ms> offset: <absolute>` per entry.
//!
//! The zero padding after the data of a segment that is still active (the
//! broker writes whole 4 KiB blocks) is not reported; any other bytes that
//! do not parse are (`Found N invalid bytes at the end of <file>`).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::protocol::batch::{self, BatchHeader, Codec, BATCH_LENGTH_PREFIX_BYTES};

use super::client::{fail, CliError, CliResult};

#[derive(clap::Args)]
pub struct DumpLogArgs {
    /// Segment files to dump: <base>.log, .index or .timeindex, comma separated.
    #[arg(long, value_name = "FILES", required = true)]
    files: String,
    /// Also print every record (offset, timestamp, key and payload).
    #[arg(long)]
    print_data_log: bool,
}

pub fn run(args: DumpLogArgs) -> CliResult<()> {
    let files: Vec<&str> = args
        .files
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    if files.is_empty() {
        return fail("--files names no file");
    }
    for name in files {
        let path = Path::new(name);
        if !path.is_file() {
            return fail(format!("{name}: no such file"));
        }
        println!("Dumping {name}");
        let base = base_offset(path)?;
        let dumped = match path.extension().and_then(|e| e.to_str()) {
            Some("log") => dump_segment(path, base, args.print_data_log),
            Some("index") => dump_index(path, base),
            Some("timeindex") => dump_time_index(path, base),
            _ => fail(format!(
                "{name}: not a segment file (.log, .index or .timeindex)"
            )),
        };
        dumped.map_err(|e| CliError(format!("{name}: {e}")))?;
    }
    Ok(())
}

/// The base offset in a `<20 digits>.<ext>` file name.
fn base_offset(path: &Path) -> CliResult<i64> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    match stem.parse::<i64>() {
        Ok(base) if stem.len() == 20 => Ok(base),
        _ => fail(format!(
            "{}: the file name is not a segment base offset (20 digits)",
            path.display()
        )),
    }
}

/// Reads up to `buf.len()` bytes; fewer only at end of file.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

fn dump_segment(path: &Path, base: i64, print_data: bool) -> CliResult<()> {
    let len = std::fs::metadata(path)?.len();
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    println!("Log starting offset: {base}");
    let mut position: u64 = 0;
    let mut batch_bytes = Vec::new();
    loop {
        let mut prefix = [0u8; BATCH_LENGTH_PREFIX_BYTES + 5];
        let got = read_full(&mut reader, &mut prefix)?;
        if got == 0 {
            return Ok(());
        }
        let header_len = i32::from_be_bytes([prefix[8], prefix[9], prefix[10], prefix[11]]);
        let total = BATCH_LENGTH_PREFIX_BYTES as i64 + i64::from(header_len);
        let fits = got == prefix.len()
            && header_len >= batch::BATCH_LENGTH_MIN
            && position + total as u64 <= len;
        if !fits {
            return report_tail(&mut reader, &prefix[..got], position, len, path);
        }
        batch_bytes.clear();
        batch_bytes.extend_from_slice(&prefix);
        batch_bytes.resize(total as usize, 0);
        read_full(&mut reader, &mut batch_bytes[prefix.len()..])?;
        match BatchHeader::parse(&batch_bytes) {
            Ok(h) => print_batch(&h, &batch_bytes, position, print_data),
            Err(_) => {
                return report_tail(&mut reader, &batch_bytes, position, len, path);
            }
        }
        position += total as u64;
    }
}

/// Bytes from `position` on do not parse as a batch: silent when they are
/// block padding (all zeros), else one line as Kafka prints.
fn report_tail(
    reader: &mut impl Read,
    head: &[u8],
    position: u64,
    len: u64,
    path: &Path,
) -> CliResult<()> {
    let mut zeros = head.iter().all(|&b| b == 0);
    let mut buf = vec![0u8; 64 * 1024];
    while zeros {
        let n = read_full(reader, &mut buf)?;
        if n == 0 {
            break;
        }
        zeros = buf[..n].iter().all(|&b| b == 0);
    }
    if !zeros {
        println!(
            "Found {} invalid bytes at the end of {}",
            len - position,
            path.file_name().and_then(|n| n.to_str()).unwrap_or("?")
        );
    }
    Ok(())
}

fn time_kind(h: &BatchHeader) -> &'static str {
    if h.is_log_append_time() {
        "LogAppendTime"
    } else {
        "CreateTime"
    }
}

fn print_batch(h: &BatchHeader, bytes: &[u8], position: u64, print_data: bool) {
    let valid = batch::verify_crc(bytes, h).is_ok();
    let last_sequence = if h.base_sequence < 0 {
        -1
    } else {
        h.last_sequence()
    };
    let codec = Codec::from_id(h.compression()).map_or("unknown", Codec::dump_name);
    println!(
        "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} \
         producerId: {} producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} \
         isControl: {} position: {position} {}: {} size: {} magic: {} compresscodec: {codec} \
         crc: {} isvalid: {valid}",
        h.base_offset,
        h.last_offset(),
        h.records_count,
        h.base_sequence,
        last_sequence,
        h.producer_id,
        h.producer_epoch,
        h.partition_leader_epoch,
        h.is_transactional(),
        h.is_control(),
        time_kind(h),
        h.max_timestamp,
        h.total_bytes(),
        h.magic,
        h.crc,
    );
    if print_data {
        print_records(h, bytes);
    }
}

fn print_records(h: &BatchHeader, bytes: &[u8]) {
    let section = match crate::protocol::records::records_section(bytes, h) {
        Ok(s) => s,
        Err(e) => {
            println!("| records could not be read: {e}");
            return;
        }
    };
    let records = match crate::protocol::records::parse_records(&section, h) {
        Ok(r) => r,
        Err(e) => {
            println!("| records could not be read: {e}");
            return;
        }
    };
    let size = |b: Option<&[u8]>| b.map_or(-1, |b| b.len() as i64);
    for r in records {
        let timestamp = if h.is_log_append_time() {
            h.max_timestamp
        } else {
            h.base_timestamp + r.timestamp_delta
        };
        let sequence = if h.base_sequence < 0 {
            -1
        } else {
            batch::increment_sequence(h.base_sequence, r.offset_delta)
        };
        let header_keys: Vec<String> = r
            .header_keys()
            .iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        let mut line = format!(
            "| offset: {} {}: {timestamp} keySize: {} valueSize: {} sequence: {sequence} \
             headerKeys: [{}]",
            h.base_offset + i64::from(r.offset_delta),
            time_kind(h),
            size(r.key),
            size(r.value),
            header_keys.join(","),
        );
        if let Some(key) = r.key {
            line.push_str(&format!(" key: {}", String::from_utf8_lossy(key)));
        }
        match r.value {
            Some(v) => line.push_str(&format!(" payload: {}", String::from_utf8_lossy(v))),
            None => line.push_str(" payload: null"),
        }
        println!("{line}");
    }
}

fn dump_index(path: &Path, base: i64) -> CliResult<()> {
    let bytes = std::fs::read(path)?;
    for entry in bytes.chunks_exact(8) {
        let rel = u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]);
        let pos = u32::from_be_bytes([entry[4], entry[5], entry[6], entry[7]]);
        println!("offset: {} position: {pos}", base + i64::from(rel));
    }
    if !bytes.len().is_multiple_of(8) {
        println!(
            "Found {} invalid bytes at the end of the index",
            bytes.len() % 8
        );
    }
    Ok(())
}

fn dump_time_index(path: &Path, base: i64) -> CliResult<()> {
    let bytes = std::fs::read(path)?;
    for entry in bytes.chunks_exact(12) {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&entry[..8]);
        let rel = u32::from_be_bytes([entry[8], entry[9], entry[10], entry[11]]);
        println!(
            "timestamp: {} offset: {}",
            i64::from_be_bytes(ts),
            base + i64::from(rel)
        );
    }
    if !bytes.len().is_multiple_of(12) {
        println!(
            "Found {} invalid bytes at the end of the time index",
            bytes.len() % 12
        );
    }
    Ok(())
}
