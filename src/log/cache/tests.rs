//! Tests of the tail cache, the read-ahead window and the shard budget.

use super::*;
use crate::protocol::batch::BATCH_HEADER_BYTES;

fn batch(base: i64, count: i32, payload: usize) -> Vec<u8> {
    let total = BATCH_HEADER_BYTES + payload;
    let mut b = vec![0u8; total];
    b[0..8].copy_from_slice(&base.to_be_bytes());
    b[8..12].copy_from_slice(&((total - 12) as i32).to_be_bytes());
    b[16] = 2;
    b[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    b[57..61].copy_from_slice(&count.to_be_bytes());
    b
}

fn append(cache: &mut ReadCache<()>, base: i64, count: i32, payload: usize) -> Vec<u8> {
    let b = batch(base, count, payload);
    cache.on_append(
        base,
        base + i64::from(count),
        &b[..BATCH_HEADER_BYTES],
        &b[BATCH_HEADER_BYTES..],
    );
    b
}

fn view(next: i64) -> SegmentView<'static, ()> {
    SegmentView {
        base_offset: 0,
        file: None,
        next_offset: next,
    }
}

fn hit(served: Served) -> Bytes {
    match served {
        Served::Hit(b) => b,
        Served::Miss { .. } => panic!("expected a cache hit"),
    }
}

#[test]
fn tail_starts_when_a_reader_is_caught_up_and_serves_below_upper() {
    let budget = CacheBudget::new(1 << 20, 0);
    let mut cache: ReadCache<()> = ReadCache::new(budget.clone());
    append(&mut cache, 0, 2, 100);
    assert!(matches!(
        cache.serve(0, 1000, 2, view(2)),
        Served::Miss { .. }
    ));
    assert_eq!(budget.used_bytes(), 0, "no tail without a caught-up reader");
    cache.note_caught_up();
    let a = append(&mut cache, 2, 3, 100);
    let b = append(&mut cache, 5, 1, 100);
    cache.check(6, 0);
    assert!(budget.used_bytes() > 0);
    // Unflushed batches are never served: upper 5 stops before `b`.
    assert_eq!(hit(cache.serve(3, 10_000, 5, view(6))), a);
    let both = hit(cache.serve(2, 10_000, 6, view(6)));
    assert_eq!(both, [a.clone(), b.clone()].concat());
    // max_bytes: the first batch always, then only what fits.
    assert_eq!(hit(cache.serve(2, 1, 6, view(6))), a);
    assert!(matches!(
        cache.serve(6, 100, 6, view(6)),
        Served::Miss { .. }
    ));
    assert!(matches!(
        cache.serve(1, 100, 6, view(6)),
        Served::Miss { .. }
    ));
    cache.on_roll();
    assert_eq!(budget.used_bytes(), 0, "a roll restarts the tail");
    append(&mut cache, 6, 1, 10);
    cache.check(7, 6);
    cache.drop_tail();
    assert_eq!(budget.used_bytes(), 0);
}

#[test]
fn tail_is_bounded_and_stops_when_nobody_reads_it() {
    let budget = CacheBudget::new(8 * 64 * 1024, 0);
    let max = budget.tail_bytes_max();
    let mut cache: ReadCache<()> = ReadCache::new(budget.clone());
    cache.note_caught_up();
    let mut next = 0;
    let mut read = 0;
    for _ in 0..1000 {
        append(&mut cache, next, 1, 1000);
        next += 1;
        assert!(cache.charged_bytes() <= max + 64 * TAIL_BATCH_ENTRY_BYTES);
        assert_eq!(budget.used_bytes(), cache.charged_bytes());
        // A reader that keeps up.
        let got = hit(cache.serve(read, 1 << 20, next, view(next)));
        read += BatchIter::new(&got, false).count() as i64;
    }
    assert_eq!(read, next);
    // Nobody reads: once a whole tail goes by, the copy stops.
    for _ in 0..1000 {
        append(&mut cache, next, 1, 1000);
        next += 1;
    }
    assert_eq!(budget.used_bytes(), 0);
    assert!(matches!(
        cache.serve(next - 1, 100, next, view(next)),
        Served::Miss { .. }
    ));
}

#[test]
fn budget_refuses_past_its_limit_and_balances() {
    let budget = CacheBudget::new(4096, 1024);
    let a = budget.charge(3000).unwrap();
    assert!(budget.charge(2000).is_none());
    let b = budget.charge(1096).unwrap();
    assert_eq!(budget.used_bytes(), 4096);
    drop(a);
    drop(b);
    assert_eq!(budget.used_bytes(), 0);
    let mut cache: ReadCache<()> = ReadCache::new(CacheBudget::disabled());
    cache.note_caught_up();
    append(&mut cache, 0, 1, 10);
    assert_eq!(cache.charged_bytes(), 0, "no budget, no tail");
}

#[test]
fn window_serves_sequential_reads_and_knows_when_it_is_short() {
    let budget = CacheBudget::new(1 << 20, 4096);
    let mut cache: ReadCache<()> = ReadCache::new(budget.clone());
    let file = Rc::new(());
    let batches: Vec<Vec<u8>> = (0..10).map(|i| batch(i * 2, 2, 100)).collect();
    let all = Bytes::from(batches.concat());
    cache.install_window(WindowFill {
        file: file.clone(),
        segment_base: 0,
        position: 4096,
        bytes: all.clone(),
        allocated_bytes: all.len(),
        cursor: (0, 0),
    });
    assert_eq!(budget.used_bytes(), all.len());
    let seg = |next| SegmentView {
        base_offset: 0,
        file: Some(&file),
        next_offset: next,
    };
    let len = batches[0].len();
    // Sequential reads of two batches each.
    for i in 0..4 {
        let got = hit(cache.serve(i * 4, 2 * len, 100, seg(100)));
        assert_eq!(
            got,
            all.slice(i as usize * 2 * len..(i as usize + 1) * 2 * len)
        );
    }
    // Asking more than twice what the window holds while the disk has
    // more: miss, with the batch's position.
    match cache.serve(17, 10 * len, 100, seg(100)) {
        Served::Miss { position } => {
            assert_eq!(position, Some(4096 + 8 * len as u64))
        }
        Served::Hit(_) => panic!("short window must not serve"),
    }
    // Half of what was asked is there: served.
    let got = hit(cache.serve(17, 4 * len, 100, seg(100)));
    assert_eq!(got, all.slice(8 * len..));
    // Used up, it stays for readers that trail (the budget is far from
    // half used).
    assert_eq!(budget.used_bytes(), all.len());
    let got = hit(cache.serve(0, 2 * len, 100, seg(100)));
    assert_eq!(got, all.slice(..2 * len));
    cache.drop_window();
    assert_eq!(budget.used_bytes(), 0, "dropped windows free their memory");
    // A window reaching upper serves whatever it holds.
    cache.install_window(WindowFill {
        file: file.clone(),
        segment_base: 0,
        position: 4096,
        bytes: all.clone(),
        allocated_bytes: all.len(),
        cursor: (0, 0),
    });
    let got = hit(cache.serve(17, 10 * len, 20, seg(100)));
    assert_eq!(got, all.slice(8 * len..));
    cache.release_idle();
    cache.release_idle();
    assert_eq!(budget.used_bytes(), 0, "idle windows are released");
}

#[test]
fn windows_reads_moved_past_serve_trailing_readers_within_half_the_budget() {
    let file = Rc::new(());
    // Window k holds offsets 8k..8k+8 in four batches.
    let window = |k: i64| -> Bytes {
        let batches: Vec<Vec<u8>> = (0..4).map(|i| batch(8 * k + 2 * i, 2, 100)).collect();
        Bytes::from(batches.concat())
    };
    let size = window(0).len();
    let fill = |k: i64| WindowFill {
        file: file.clone(),
        segment_base: 0,
        position: k as u64 * size as u64,
        bytes: window(k),
        allocated_bytes: size,
        cursor: (8 * k, 0),
    };
    let seg = SegmentView {
        base_offset: 0,
        file: Some(&file),
        next_offset: 1000,
    };
    let budget = CacheBudget::new(4 * size, 0);
    let mut cache: ReadCache<()> = ReadCache::new(budget.clone());
    // The first reader reads window 0 to its end, then window 1.
    cache.install_window(fill(0));
    hit(cache.serve(0, size, 1000, SegmentView { ..seg }));
    cache.install_window(fill(1));
    hit(cache.serve(8, size, 1000, SegmentView { ..seg }));
    // Window 0 was kept (a quarter of the budget was in use); window 1
    // was not (half was): a reader that trails is served from window 0
    // only.
    assert_eq!(budget.used_bytes(), size);
    let got = hit(cache.serve(2, size, 1000, SegmentView { ..seg }));
    assert_eq!(got, window(0).slice(size / 4..));
    assert!(matches!(
        cache.serve(10, size, 1000, SegmentView { ..seg }),
        Served::Miss { .. }
    ));
    // Windows being read come first: with the budget full of another
    // log's windows, a new window takes the room of a recent one.
    let _others: Vec<ReadCache<()>> = (10..13)
        .map(|k| {
            let mut other = ReadCache::new(budget.clone());
            other.install_window(fill(k));
            other
        })
        .collect();
    assert_eq!(budget.used_bytes(), 4 * size);
    cache.install_window(fill(2));
    assert_eq!(cache.charged_bytes(), size, "window 2 in place of window 0");
    assert!(matches!(
        cache.serve(2, size, 1000, SegmentView { ..seg }),
        Served::Miss { .. }
    ));
    hit(cache.serve(16, size, 1000, SegmentView { ..seg }));
}

#[test]
fn a_nearly_used_window_plans_one_prefetch_and_stale_ones_are_ignored() {
    let budget = CacheBudget::new(1 << 20, 4096);
    let mut cache: ReadCache<()> = ReadCache::new(budget.clone());
    let file = Rc::new(());
    let batches: Vec<Vec<u8>> = (0..8).map(|i| batch(i * 2, 2, 100)).collect();
    let len = batches[0].len();
    let all = Bytes::from(batches.concat());
    let fill = |bytes: Bytes, position: u64, offset: i64| WindowFill {
        file: file.clone(),
        segment_base: 0,
        position,
        allocated_bytes: bytes.len(),
        bytes,
        cursor: (offset, 0),
    };
    cache.install_window(fill(all.slice(..4 * len), 0, 0));
    let seg = |next| SegmentView {
        base_offset: 0,
        file: Some(&file),
        next_offset: next,
    };
    // Two batches served, two left: fewer than two more fetches. The
    // prefetch reads from the window's end: nothing it holds is read again.
    hit(cache.serve(0, 2 * len, 100, seg(100)));
    let plan = cache.take_prefetch().expect("a prefetch is due");
    assert_eq!((plan.position, plan.offset), (4 * len as u64, 8));
    assert_eq!(plan.len, 4096 + 2 * len);
    // One at a time.
    hit(cache.serve(4, len, 100, seg(100)));
    assert!(cache.take_prefetch().is_none());
    // It lands as the next window: the current one serves to its end,
    // then the next one serves on.
    cache.prefetch_done();
    cache.install_prefetched(
        plan.generation,
        fill(all.slice(4 * len..), 4 * len as u64, 8),
    );
    assert!(cache.take_prefetch().is_none(), "the next window is there");
    let got = hit(cache.serve(6, 10 * len, 100, seg(100)));
    assert_eq!(got, all.slice(3 * len..4 * len));
    let got = hit(cache.serve(8, 4 * len, 100, seg(100)));
    assert_eq!(got, all.slice(4 * len..));
    // A prefetch planned before the segments changed is dropped.
    cache.install_window(fill(all.slice(..2 * len), 0, 0));
    let before = budget.used_bytes();
    cache.drop_window();
    cache.install_prefetched(plan.generation, fill(all.clone(), 0, 0));
    assert_eq!(budget.used_bytes(), 0, "was {before}");
}

#[test]
fn window_of_another_file_is_dropped() {
    let budget = CacheBudget::new(1 << 20, 4096);
    let mut cache: ReadCache<()> = ReadCache::new(budget.clone());
    let bytes = Bytes::from(batch(0, 2, 100));
    cache.install_window(WindowFill {
        file: Rc::new(()),
        segment_base: 0,
        position: 0,
        allocated_bytes: bytes.len(),
        bytes,
        cursor: (0, 0),
    });
    let swapped = Rc::new(());
    let seg = SegmentView {
        base_offset: 0,
        file: Some(&swapped),
        next_offset: 2,
    };
    assert!(matches!(cache.serve(0, 1000, 2, seg), Served::Miss { .. }));
    assert_eq!(budget.used_bytes(), 0);
}

#[test]
fn a_window_serving_one_reader_is_not_read_over_by_another() {
    let budget = CacheBudget::new(1 << 20, 4096);
    let mut cache: ReadCache<()> = ReadCache::new(budget.clone());
    let file = Rc::new(());
    let batches: Vec<Vec<u8>> = (0..10).map(|i| batch(100 + i * 2, 2, 100)).collect();
    let all = Bytes::from(batches.concat());
    let len = batches[0].len();
    // A reader at 100 read two batches from disk and kept the rest.
    cache.install_window(WindowFill {
        file: file.clone(),
        segment_base: 0,
        position: 4096,
        bytes: all.clone(),
        allocated_bytes: all.len(),
        cursor: (104, 2 * len),
    });
    assert!(
        !cache.serves_another_reader(104),
        "its own reader reads on (and may replace it)"
    );
    assert!(
        cache.serves_another_reader(0),
        "a reader elsewhere must not replace it"
    );
    assert!(
        cache.serves_another_reader(110),
        "nor one inside it but past where its reader is"
    );
    // Its reader goes on from it; once used up, anyone may read ahead.
    let got = hit(cache.serve(104, 16 * len, 200, view_of(&file, 200)));
    assert_eq!(got, all.slice(2 * len..));
    assert!(!cache.serves_another_reader(0), "a used-up window is gone");
}

fn view_of(file: &Rc<()>, next: i64) -> SegmentView<'_, ()> {
    SegmentView {
        base_offset: 0,
        file: Some(file),
        next_offset: next,
    }
}

/// One window fill at a time per log: reads planned while one is in flight
/// read only their own bytes, and the next may read ahead once it ends.
#[test]
fn one_read_ahead_at_a_time_per_log() {
    let budget = CacheBudget::new(1 << 20, 4096);
    let cache: ReadCache<()> = ReadCache::new(budget.clone());
    let other: ReadCache<()> = ReadCache::new(budget.clone());
    let first = cache.reserve_read_ahead().expect("room for a window");
    assert_eq!(first.bytes(), 4096);
    assert!(cache.reserve_read_ahead().is_none(), "a fill is in flight");
    // Another partition's log is not held back.
    let elsewhere = other.reserve_read_ahead().expect("another log reads ahead");
    assert_eq!(budget.used_bytes.get(), 8192);
    drop(first);
    assert_eq!(budget.used_bytes.get(), 4096);
    assert!(cache.reserve_read_ahead().is_some());
    drop(elsewhere);
}
