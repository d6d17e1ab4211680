//! `cargo bench --bench micro [-- --quick] [-- --only NAME]`
//!
//! Plain timing loops (warm-up, then many iterations; the best of several
//! rounds is reported, as the least disturbed by other work on the machine):
//! memcpy bandwidth as the yardstick, CRC32C, batch validation (the
//! header and CRC alone, and the full LogValidator-style record walk on real
//! batches, uncompressed and compressed), the old message formats'
//! up- and down-conversion, offset
//! assignment, the log's append / durable flush / read / index lookup on the
//! real DMA disk, and the cross-shard mesh round trip. `--quick` runs every
//! case tiny, so `cargo test` (bench/tests/harness.rs) keeps them from rotting.

use std::hint::black_box;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use corelog::log::{LogConfig, PartitionLog};
use corelog::protocol::batch::{patch_base_offset, validate_produce_records, BATCH_HEADER_BYTES};
use corelog::protocol::records::{validate_produce, ProduceRules};
use corelog::shard::mesh::{HostReady, Mesh, MeshError, ShardCall};
use corelog::shard::ShardId;
use glommio::channels::channel_mesh::MeshBuilder;
use glommio::{LocalExecutorBuilder, Placement, Shares};

mod recording;

pub struct Opts {
    pub quick: bool,
    pub only: Option<String>,
}

impl Opts {
    fn scale(&self, n: usize) -> usize {
        if self.quick {
            (n / 1000).max(2)
        } else {
            n
        }
    }
    fn wants(&self, name: &str) -> bool {
        self.only.as_deref().is_none_or(|o| name.contains(o))
    }
}

/// Runs `f` (which processes `bytes` per call, 0 if not a bandwidth case)
/// `iters` times per round, after a warm-up round; prints the best round.
fn bench(name: &str, bytes: usize, iters: usize, rounds: usize, mut f: impl FnMut()) {
    for _ in 0..iters.div_ceil(4) {
        f();
    }
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        best = best.min(t.elapsed());
    }
    let ns_op = best.as_nanos() as f64 / iters as f64;
    if bytes > 0 {
        let mbs = (bytes * iters) as f64 / best.as_secs_f64() / 1e6;
        println!("{name:<44} {ns_op:>12.0} ns/op {mbs:>10.0} MB/s");
    } else {
        println!("{name:<44} {ns_op:>12.1} ns/op");
    }
}

/// A valid v2 batch of `count` records of opaque payload (the broker never
/// decodes records on the produce path, so the contents do not matter).
fn make_batch(count: i32, payload: usize) -> Vec<u8> {
    let total = BATCH_HEADER_BYTES + payload;
    let mut b: Vec<u8> = (0..total).map(|i| (i * 31 % 251) as u8).collect();
    b[..BATCH_HEADER_BYTES].fill(0);
    b[8..12].copy_from_slice(&((total - 12) as i32).to_be_bytes());
    b[16] = 2;
    b[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    b[43..51].copy_from_slice(&(-1i64).to_be_bytes());
    b[51..53].copy_from_slice(&(-1i16).to_be_bytes());
    b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    b[57..61].copy_from_slice(&count.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// A real v2 batch (kafka-protocol's encoder, as clients write them) of
/// `count` keyed records of `value_bytes` each.
fn real_batch(
    count: usize,
    value_bytes: usize,
    compression: kafka_protocol::records::Compression,
) -> Vec<u8> {
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let now = corelog::partition::now_ms();
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: now,
            key: Some(bytes::Bytes::from(format!("key-{i}"))),
            value: Some(bytes::Bytes::from(
                (0..value_bytes)
                    .map(|j| b'a' + ((i * 7 + j * 13) % 26) as u8)
                    .collect::<Vec<u8>>(),
            )),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode");
    buf.to_vec()
}

/// Produce validation on real batches: the header and CRC alone (what the
/// broker checked before the full validator) and the full walk, per
/// uncompressed (or decompressed) byte.
fn validation_cases(o: &Opts, rounds: usize) {
    use kafka_protocol::records::Compression;
    let rules = ProduceRules {
        max_message_bytes: usize::MAX,
        now_ms: corelog::partition::now_ms(),
        log_append_time: false,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: 3_600_000,
        require_keys: false,
        zstd_allowed: true,
    };
    for (label, count, value) in [("1 KiB records", 1000, 1000), ("100 B records", 9000, 100)] {
        let batch = real_batch(count, value, Compression::None);
        let bytes = batch.len();
        bench(
            &format!("crc only, 1 MiB of {label}"),
            bytes,
            o.scale(5_000),
            rounds,
            || {
                black_box(validate_produce_records(black_box(&batch), usize::MAX).is_ok());
            },
        );
        bench(
            &format!("validate_produce, 1 MiB of {label}"),
            bytes,
            o.scale(5_000),
            rounds,
            || {
                assert!(validate_produce(black_box(&batch), &rules).is_ok());
            },
        );
        for (name, c) in [("lz4", Compression::Lz4), ("zstd", Compression::Zstd)] {
            let compressed = real_batch(count, value, c);
            // Bandwidth counts the records' uncompressed bytes.
            bench(
                &format!("validate_produce {name}, 1 MiB of {label}"),
                bytes,
                o.scale(500),
                rounds,
                || {
                    assert!(validate_produce(black_box(&compressed), &rules).is_ok());
                },
            );
        }
    }
}

/// The old message formats (`protocol::legacy`): a Produce v0-v2 message
/// set of magic 1 up-converted to a v2 batch, and a v2 batch down-converted
/// for Fetch v2-v3, per byte of the stored batch; beside the memcpy and
/// validate_produce figures of the same run, that is what an old client
/// costs over a current one.
fn legacy_cases(o: &Opts, rounds: usize) {
    use corelog::protocol::legacy::{down_convert, up_convert};
    use kafka_protocol::records::Compression;
    for (label, count, value) in [("1 KiB records", 1000, 1000), ("100 B records", 9000, 100)] {
        let batch = real_batch(count, value, Compression::None);
        let mut set = Vec::with_capacity(batch.len() * 2);
        down_convert(&batch, 1, 0, usize::MAX, &mut set).expect("down-convert");
        let bytes = batch.len();
        bench(
            &format!("up_convert magic 1, 1 MiB of {label}"),
            bytes,
            o.scale(2_000),
            rounds,
            || {
                black_box(up_convert(black_box(&set)).expect("up-convert"));
            },
        );
        let mut out = Vec::with_capacity(set.len());
        bench(
            &format!("down_convert magic 1, 1 MiB of {label}"),
            bytes,
            o.scale(2_000),
            rounds,
            || {
                out.clear();
                down_convert(black_box(&batch), 1, 0, usize::MAX, &mut out).expect("down");
                black_box(&out);
            },
        );
        let lz4 = real_batch(count, value, Compression::Lz4);
        bench(
            &format!("down_convert magic 1 lz4, 1 MiB of {label}"),
            bytes,
            o.scale(500),
            rounds,
            || {
                out.clear();
                down_convert(black_box(&lz4), 1, 0, usize::MAX, &mut out).expect("down");
                black_box(&out);
            },
        );
    }
}

pub fn cpu_cases(o: &Opts) {
    let rounds = if o.quick { 1 } else { 5 };
    if o.wants("convert") {
        legacy_cases(o, rounds);
    }
    if o.wants("recording") {
        recording::recording_case(o, rounds);
    }
    for size in [16 << 10, 1 << 20] {
        let src = make_batch(16, size - BATCH_HEADER_BYTES);
        let mut dst = vec![0u8; size];
        let label = if size >= 1 << 20 { "1 MiB" } else { "16 KiB" };
        if o.wants("memcpy") {
            bench(
                &format!("memcpy {label}"),
                size,
                o.scale(20_000),
                rounds,
                || {
                    dst.copy_from_slice(black_box(&src));
                    black_box(&dst);
                },
            );
        }
        if o.wants("crc32c") {
            bench(
                &format!("crc32c {label}"),
                size,
                o.scale(20_000),
                rounds,
                || {
                    black_box(crc32c::crc32c(black_box(&src)));
                },
            );
        }
        if o.wants("validate") {
            bench(
                &format!("validate_produce_records {label}"),
                size,
                o.scale(20_000),
                rounds,
                || {
                    black_box(validate_produce_records(black_box(&src), usize::MAX).is_ok());
                },
            );
        }
    }
    if o.wants("validate") {
        validation_cases(o, rounds);
    }
    if o.wants("offset") {
        let mut b = make_batch(16, 1024);
        let mut off = 0i64;
        bench(
            "offset assignment (patch baseOffset)",
            0,
            o.scale(10_000_000),
            rounds,
            || {
                off += 16;
                patch_base_offset(black_box(&mut b), off);
            },
        );
    }
}

/// Log paths on the real DMA disk (a temp dir on the same filesystem as /tmp).
pub fn log_cases(o: &Opts) {
    if !["log", "append", "flush", "read", "index"]
        .iter()
        .any(|n| o.wants(n))
    {
        return;
    }
    let quick = o.quick;
    let dir = tempfile::Builder::new()
        .prefix("corelog-micro-")
        .tempdir()
        .expect("temp dir");
    let path = dir.path().join("bench-0");
    LocalExecutorBuilder::new(Placement::Unbound)
        .name("micro-log")
        .spawn(move || async move {
            let mut log = PartitionLog::open(&path, LogConfig::default()).await.expect("open log");
            let batch = make_batch(16, 16 * 1024);
            let batches: usize = if quick { 64 } else { 32 * 1024 }; // 512 MiB
            // Append without flushing: the in-memory copy into DMA buffers.
            let t = Instant::now();
            let mut since_flush = 0usize;
            let mut flushes = Vec::new();
            for i in 0..batches {
                log.append(&batch, None).expect("append");
                since_flush += batch.len();
                // Flush (write + fdatasync) every 1 MiB, timing each.
                if since_flush >= 1 << 20 || i + 1 == batches {
                    since_flush = 0;
                    let f = Instant::now();
                    if let Some(job) = log.take_flush() {
                        let outcome = job.run(true).await;
                        log.complete_flush(outcome).expect("flush");
                    }
                    flushes.push(f.elapsed());
                }
            }
            let total = t.elapsed();
            let bytes = batches * batch.len();
            let flush_time: Duration = flushes.iter().sum();
            let append_time = total.saturating_sub(flush_time);
            println!(
                "{:<44} {:>12.0} ns/op {:>10.0} MB/s",
                "log append 16 KiB batch (copy, no I/O)",
                append_time.as_nanos() as f64 / batches as f64,
                bytes as f64 / append_time.as_secs_f64() / 1e6
            );
            flushes.sort();
            let p = |q: f64| flushes[((flushes.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
            println!(
                "{:<44} {:>12.0} ns/op {:>10.0} MB/s  (1 MiB flush+fdatasync p50 {:.2} ms, p99 {:.2} ms)",
                "log append + durable flush every 1 MiB",
                total.as_nanos() as f64 / batches as f64,
                bytes as f64 / total.as_secs_f64() / 1e6,
                p(0.5),
                p(0.99)
            );
            // Sequential read of everything, 1 MiB per read.
            let end = log.flushed_offset();
            let t = Instant::now();
            let mut offset = 0i64;
            let mut read = 0usize;
            while offset < end {
                let bytes = log.plan_read(offset, 1 << 20, end).expect("plan").run().await.expect("read");
                assert!(!bytes.is_empty());
                read += bytes.len();
                let mut it = corelog::protocol::batch::BatchIter::new(&bytes, false);
                for (_, h) in it.by_ref() {
                    offset = h.last_offset() + 1;
                }
            }
            let el = t.elapsed();
            println!(
                "{:<44} {:>12.0} ns/op {:>10.0} MB/s",
                "log read 1 MiB sequential (DMA, cold tail)",
                el.as_nanos() as f64 / (read as f64 / (1 << 20) as f64),
                read as f64 / el.as_secs_f64() / 1e6
            );
            // Index lookup: plan a read at pseudo-random offsets (segment + sparse index search).
            let lookups = if quick { 100 } else { 1_000_000 };
            let mut x = 0x9E37_79B9u64;
            let t = Instant::now();
            for _ in 0..lookups {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let off = (x % end as u64) as i64;
                black_box(log.plan_read(off, 1, end).expect("plan"));
            }
            println!(
                "{:<44} {:>12.1} ns/op",
                "log index lookup (plan_read at random offset)",
                t.elapsed().as_nanos() as f64 / lookups as f64
            );
            log.close().await.expect("close");
        })
        .expect("spawn executor")
        .join()
        .expect("log bench");
}

/// The call the mesh case makes: the peer adds one.
struct Increment(u64);

impl ShardCall<()> for Increment {
    type Reply = u64;
    fn serve(self, _: Rc<()>) -> futures::future::LocalBoxFuture<'static, u64> {
        Box::pin(async move { self.0 + 1 })
    }
    fn unreachable(e: MeshError) -> u64 {
        panic!("the peer shard serves until the bench is done: {e}")
    }
}

/// Sequential calls from shard 0 to shard 1 through the mesh; latency percentiles.
pub fn mesh_case(o: &Opts) {
    if !o.wants("mesh") {
        return;
    }
    let calls = o.scale(200_000);
    let builder = MeshBuilder::full(2, 64);
    let done = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..2)
        .map(|i| {
            let builder = builder.clone();
            let done = done.clone();
            LocalExecutorBuilder::new(Placement::Fixed(i % 2))
                .name(&format!("micro-mesh-{i}"))
                .spawn(move || async move {
                    let queue = glommio::executor().create_task_queue(
                        Shares::Static(1000),
                        glommio::Latency::Matters(Duration::from_millis(1)),
                        "mesh",
                    );
                    let host: HostReady<()> = Rc::new(|| Box::pin(async { Some(Rc::new(())) }));
                    let mesh = Mesh::join(builder, queue, host).await;
                    let mut lat = Vec::new();
                    if mesh.shard().0 == 0 {
                        for i in 0..calls as u64 {
                            let t = Instant::now();
                            let r = mesh.call(ShardId(1), Increment(i)).await.expect("call");
                            lat.push(t.elapsed());
                            assert_eq!(r, i + 1);
                        }
                        done.store(true, Ordering::Release);
                    } else {
                        // Keep serving (the drain task answers) until shard 0 is done.
                        while !done.load(Ordering::Acquire) {
                            glommio::timer::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    lat
                })
                .expect("spawn executor")
        })
        .collect();
    let mut lat = Vec::new();
    for h in handles {
        lat.extend(h.join().expect("mesh bench"));
    }
    lat.sort();
    let p = |q: f64| lat[((lat.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    println!(
        "{:<44} {:>12.1} ns/op  (p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us; shards on cores 0 and 1)",
        "cross-shard round trip (mesh call)",
        lat.iter().sum::<Duration>().as_nanos() as f64 / lat.len() as f64,
        p(0.5),
        p(0.99),
        p(0.999),
        p(1.0)
    );
}

/// Every case, tiny: what `cargo test` runs so the benchmarks cannot rot.
pub fn run_quick() {
    let o = Opts {
        quick: true,
        only: None,
    };
    cpu_cases(&o);
    log_cases(&o);
    mesh_case(&o);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let o = Opts {
        quick: args.iter().any(|a| a == "--quick"),
        only: args
            .iter()
            .position(|a| a == "--only")
            .and_then(|i| args.get(i + 1).cloned()),
    };
    println!("{:<44} {:>18} {:>15}", "case", "time", "bandwidth");
    cpu_cases(&o);
    log_cases(&o);
    mesh_case(&o);
}
