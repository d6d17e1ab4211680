use super::*;
use crate::clock::Simulated;

const EVICTION: Duration = Duration::from_millis(limits::FETCH_SESSION_EVICTION_MS);

fn key(topic: &str, partition: i32) -> PartitionKey {
    PartitionKey {
        topic: TopicKey::Name(Rc::from(topic)),
        partition,
    }
}

fn params(fetch_offset: i64) -> FetchParams {
    FetchParams {
        fetch_offset,
        max_bytes: 1 << 20,
        log_start_offset: -1,
        current_leader_epoch: -1,
    }
}

fn partitions(topic: &str, count: i32) -> Vec<(PartitionKey, FetchParams)> {
    (0..count).map(|p| (key(topic, p), params(0))).collect()
}

fn quiet(high_watermark: i64) -> ReadSummary {
    ReadSummary {
        has_records: false,
        error_code: 0,
        high_watermark,
        log_start_offset: 0,
    }
}

fn with_records(high_watermark: i64) -> ReadSummary {
    ReadSummary {
        has_records: true,
        ..quiet(high_watermark)
    }
}

fn request(session_id: i32, epoch: i32) -> SessionRequest {
    SessionRequest {
        session_id,
        epoch,
        uses_topic_ids: false,
        follower: false,
    }
}

fn cache(slots: usize) -> FetchSessionCache {
    FetchSessionCache::new(slots, 0, 1, 42)
}

/// Opens a session over `count` partitions of `topic`, as a full fetch at
/// epoch 0 followed by its response does.
fn open_session(cache: &mut FetchSessionCache, follower: bool, topic: &str, count: i32) -> i32 {
    let full = SessionRequest {
        follower,
        ..request(0, INITIAL_EPOCH)
    };
    let opened = cache.open(&full, partitions(topic, count), &[]).unwrap();
    assert_eq!(
        opened.context,
        Context::Full {
            follower,
            uses_topic_ids: false
        }
    );
    let reads = vec![quiet(0); opened.partitions.len()];
    cache.create(follower, false, &opened.partitions, &reads)
}

#[test]
fn next_epoch_counts_up_wraps_to_one_and_keeps_final() {
    assert_eq!(next_epoch(INITIAL_EPOCH), 1);
    assert_eq!(next_epoch(1), 2);
    assert_eq!(next_epoch(i32::MAX - 1), i32::MAX);
    assert_eq!(next_epoch(i32::MAX), 1, "wraps past INITIAL");
    assert_eq!(next_epoch(FINAL_EPOCH), FINAL_EPOCH);
    assert_eq!(next_epoch(-7), FINAL_EPOCH);
}

#[test]
fn a_session_advances_its_epoch_with_every_incremental_fetch() {
    let _time = Simulated::start(1_000_000);
    let mut cache = cache(10);
    let id = open_session(&mut cache, false, "t", 4);
    assert_ne!(id, INVALID_SESSION_ID);
    for epoch in 1..5 {
        let opened = cache.open(&request(id, epoch), Vec::new(), &[]).unwrap();
        assert_eq!(opened.context, Context::Incremental { session_id: id });
        assert_eq!(
            opened.partitions,
            partitions("t", 4),
            "reads the whole session"
        );
    }
    // Repeating an epoch (a retried request) is refused, and so is skipping one.
    assert_eq!(
        cache.open(&request(id, 4), Vec::new(), &[]).unwrap_err(),
        SessionError::InvalidEpoch
    );
    assert_eq!(
        cache.open(&request(id, 6), Vec::new(), &[]).unwrap_err(),
        SessionError::InvalidEpoch
    );
    assert!(cache.open(&request(id, 5), Vec::new(), &[]).is_ok());
}

#[test]
fn session_errors_are_kafkas() {
    let _time = Simulated::start(1_000_000);
    let mut cache = cache(10);
    let id = open_session(&mut cache, false, "t", 2);
    assert_eq!(
        cache
            .open(&request(id + 1, 1), Vec::new(), &[])
            .unwrap_err(),
        SessionError::IdNotFound
    );
    assert_eq!(
        cache.open(&request(0, 1), Vec::new(), &[]).unwrap_err(),
        SessionError::IdNotFound,
        "an incremental epoch without a session id"
    );
    let by_id = SessionRequest {
        uses_topic_ids: true,
        ..request(id, 1)
    };
    assert_eq!(
        cache.open(&by_id, Vec::new(), &[]).unwrap_err(),
        SessionError::TopicIdMismatch
    );
    // Errors leave the session as it was.
    assert!(cache.open(&request(id, 1), Vec::new(), &[]).is_ok());
}

#[test]
fn a_full_fetch_closes_the_session_it_names() {
    let _time = Simulated::start(1_000_000);
    let mut cache = cache(10);
    let id = open_session(&mut cache, false, "t", 3);
    let opened = cache
        .open(&request(id, FINAL_EPOCH), partitions("t", 1), &[])
        .unwrap();
    assert_eq!(opened.context, Context::Sessionless);
    assert_eq!(opened.partitions, partitions("t", 1));
    assert!(cache.is_empty());
    assert_eq!(cache.partitions_cached(), 0);
    assert_eq!(
        cache.open(&request(id, 1), Vec::new(), &[]).unwrap_err(),
        SessionError::IdNotFound
    );
    // An INITIAL fetch naming a session closes it too, and opens a new one.
    let id = open_session(&mut cache, false, "t", 3);
    let opened = cache
        .open(&request(id, INITIAL_EPOCH), partitions("t", 2), &[])
        .unwrap();
    assert!(matches!(opened.context, Context::Full { .. }));
    assert!(cache.is_empty());
}

#[test]
fn requests_add_and_update_partitions_and_forget_them() {
    let _time = Simulated::start(1_000_000);
    let mut cache = cache(10);
    let id = open_session(&mut cache, false, "t", 3);
    let changes = vec![(key("t", 1), params(50)), (key("u", 0), params(7))];
    let opened = cache
        .open(&request(id, 1), changes, &[key("t", 0)])
        .unwrap();
    assert_eq!(
        opened.partitions,
        vec![
            (key("t", 1), params(50)),
            (key("t", 2), params(0)),
            (key("u", 0), params(7)),
        ]
    );
    assert_eq!(cache.partitions_cached(), 3);
    // Forgetting every partition closes the session; the fetch is sessionless.
    let all = [key("t", 1), key("t", 2), key("u", 0)];
    let opened = cache.open(&request(id, 2), Vec::new(), &all).unwrap();
    assert_eq!(opened.context, Context::Sessionless);
    assert!(opened.partitions.is_empty());
    assert!(cache.is_empty());
    assert_eq!(cache.partitions_cached(), 0);
}

#[test]
fn responses_carry_only_what_changed() {
    let _time = Simulated::start(1_000_000);
    let mut cache = cache(10);
    let id = open_session(&mut cache, false, "t", 4);
    let opened = cache.open(&request(id, 1), Vec::new(), &[]).unwrap();
    let reads = [
        quiet(0),
        quiet(5),
        ReadSummary {
            error_code: 6,
            high_watermark: -1,
            log_start_offset: -1,
            has_records: false,
        },
        ReadSummary {
            log_start_offset: 3,
            ..quiet(0)
        },
    ];
    let carried = cache.select(id, &opened.partitions, &reads);
    assert_eq!(carried, [false, true, true, true]);
    // Nothing changed since: nothing is carried but the error, every time.
    let opened = cache.open(&request(id, 2), Vec::new(), &[]).unwrap();
    assert_eq!(
        cache.select(id, &opened.partitions, &reads),
        [false, false, true, false]
    );
    // The error cleared: the partition comes back even at its old watermark.
    let opened = cache.open(&request(id, 3), Vec::new(), &[]).unwrap();
    let cleared = [quiet(0), quiet(5), quiet(0), reads[3]];
    assert_eq!(
        cache.select(id, &opened.partitions, &cleared),
        [false, false, true, false]
    );
    // A partition added to the session is carried the first time.
    let opened = cache
        .open(&request(id, 4), vec![(key("u", 0), params(0))], &[])
        .unwrap();
    let mut reads = cleared.to_vec();
    reads.push(quiet(0));
    assert_eq!(
        cache.select(id, &opened.partitions, &reads),
        [false, false, false, false, true]
    );
}

#[test]
fn partitions_that_returned_records_go_to_the_back() {
    let _time = Simulated::start(1_000_000);
    let mut cache = cache(10);
    let id = open_session(&mut cache, false, "t", 4);
    let opened = cache.open(&request(id, 1), Vec::new(), &[]).unwrap();
    let reads = [quiet(0), with_records(9), quiet(0), with_records(4)];
    assert_eq!(
        cache.select(id, &opened.partitions, &reads),
        [false, true, false, true]
    );
    let opened = cache.open(&request(id, 2), Vec::new(), &[]).unwrap();
    let order: Vec<i32> = opened.partitions.iter().map(|(k, _)| k.partition).collect();
    assert_eq!(order, [0, 2, 1, 3]);
}

#[test]
fn a_closed_session_answers_everything() {
    let _time = Simulated::start(1_000_000);
    let mut cache = cache(10);
    let id = open_session(&mut cache, false, "t", 2);
    let opened = cache.open(&request(id, 1), Vec::new(), &[]).unwrap();
    cache
        .open(&request(id, FINAL_EPOCH), Vec::new(), &[])
        .unwrap();
    assert_eq!(
        cache.select(id, &opened.partitions, &[quiet(0), quiet(0)]),
        [true, true]
    );
}

#[test]
fn a_full_cache_answers_without_a_session_until_one_can_be_evicted() {
    let time = Simulated::start(1_000_000);
    let mut cache = cache(2);
    let a = open_session(&mut cache, false, "a", 3);
    let b = open_session(&mut cache, false, "b", 3);
    assert!(a != 0 && b != 0 && a != b);
    // Young sessions are never evicted for a consumer.
    assert_eq!(
        open_session(&mut cache, false, "c", 100),
        INVALID_SESSION_ID
    );
    // Once both are older than the eviction time, a session with more
    // partitions takes the place of the smaller one; an equal one does not.
    time.advance(EVICTION / 2);
    cache.open(&request(b, 1), Vec::new(), &[]).unwrap();
    cache
        .open(&request(a, 1), vec![(key("a", 3), params(0))], &[])
        .unwrap();
    time.advance(EVICTION / 2 + Duration::from_millis(1));
    assert_eq!(open_session(&mut cache, false, "c", 3), INVALID_SESSION_ID);
    let c = open_session(&mut cache, false, "c", 4);
    assert_ne!(c, INVALID_SESSION_ID);
    assert_eq!(
        cache.open(&request(b, 2), Vec::new(), &[]).unwrap_err(),
        SessionError::IdNotFound,
        "b had fewer partitions than a"
    );
    assert!(cache.open(&request(a, 2), Vec::new(), &[]).is_ok());
    assert_eq!(cache.len(), 2);
    assert_eq!(cache.partitions_cached(), 8);
    assert_eq!(cache.evictions(), 1);
}

#[test]
fn an_idle_session_is_evicted_first_least_recently_used() {
    let time = Simulated::start(1_000_000);
    let mut cache = cache(3);
    let a = open_session(&mut cache, false, "a", 50);
    time.advance(Duration::from_millis(10));
    let b = open_session(&mut cache, false, "b", 50);
    time.advance(Duration::from_millis(10));
    let c = open_session(&mut cache, false, "c", 50);
    time.advance(Duration::from_millis(10));
    cache.open(&request(a, 1), Vec::new(), &[]).unwrap();
    time.advance(EVICTION);
    // b is the least recently used of the idle ones; even a single
    // partition's session may take its place.
    assert_ne!(open_session(&mut cache, false, "d", 1), INVALID_SESSION_ID);
    assert_eq!(
        cache.open(&request(b, 1), Vec::new(), &[]).unwrap_err(),
        SessionError::IdNotFound
    );
    assert_ne!(open_session(&mut cache, false, "e", 1), INVALID_SESSION_ID);
    assert_eq!(
        cache.open(&request(c, 1), Vec::new(), &[]).unwrap_err(),
        SessionError::IdNotFound
    );
    assert!(cache.open(&request(a, 2), Vec::new(), &[]).is_ok());
}

#[test]
fn a_follower_may_evict_a_young_consumer_session_not_a_follower_one() {
    let _time = Simulated::start(1_000_000);
    let mut cache = cache(2);
    let consumer = open_session(&mut cache, false, "c", 500);
    let follower = open_session(&mut cache, true, "f", 1);
    assert_ne!(open_session(&mut cache, true, "g", 1), INVALID_SESSION_ID);
    assert_eq!(
        cache
            .open(&request(consumer, 1), Vec::new(), &[])
            .unwrap_err(),
        SessionError::IdNotFound
    );
    assert_eq!(open_session(&mut cache, true, "h", 5), INVALID_SESSION_ID);
    let as_follower = SessionRequest {
        follower: true,
        ..request(follower, 1)
    };
    assert!(cache.open(&as_follower, Vec::new(), &[]).is_ok());
}

#[test]
fn no_slots_no_sessions() {
    let _time = Simulated::start(1_000_000);
    let mut cache = cache(0);
    assert_eq!(open_session(&mut cache, false, "t", 1), INVALID_SESSION_ID);
    assert_eq!(open_session(&mut cache, true, "t", 1), INVALID_SESSION_ID);
}

#[test]
fn sessions_are_bounded_in_partitions() {
    let _time = Simulated::start(1_000_000);
    let mut cache = cache(10);
    let too_many = limits::FETCH_SESSION_PARTITIONS_MAX as i32 + 1;
    assert_eq!(
        open_session(&mut cache, false, "t", too_many),
        INVALID_SESSION_ID
    );
    assert!(cache.is_empty());
    // Growing a session past the bound closes it.
    let id = open_session(&mut cache, false, "t", too_many - 1);
    let opened = cache
        .open(&request(id, 1), vec![(key("u", 0), params(0))], &[])
        .unwrap();
    assert_eq!(opened.context, Context::Sessionless);
    assert_eq!(opened.partitions, vec![(key("u", 0), params(0))]);
    assert!(cache.is_empty());
    assert_eq!(cache.partitions_cached(), 0);
}

#[test]
fn each_shard_hands_out_ids_of_its_own_range() {
    let _time = Simulated::start(1_000_000);
    let shards = 4;
    let range = i32::MAX / shards as i32;
    for shard in 0..shards {
        // One node slot: each shard gets one (rounded up).
        let mut cache = FetchSessionCache::new(1, shard, shards, 7 + shard as u64);
        let id = open_session(&mut cache, false, "t", 1);
        let base = shard as i32 * range;
        assert!(id > base && id < base + range, "shard {shard}: id {id}");
    }
    let mut cache = FetchSessionCache::new(1000, 0, 1, 1);
    let ids: BTreeSet<i32> = (0..200)
        .map(|i| open_session(&mut cache, false, &format!("t{i}"), 1))
        .collect();
    assert_eq!(ids.len(), 200);
    assert!(!ids.contains(&INVALID_SESSION_ID));
}

#[test]
fn a_shard_caches_a_bounded_number_of_partitions() {
    let _time = Simulated::start(1_000_000);
    let mut cache = cache(limits::FETCH_SESSION_CACHE_SLOTS_MAX);
    let per_session = limits::FETCH_SESSION_PARTITIONS_MAX;
    let fit = limits::FETCH_SESSION_PARTITIONS_PER_SHARD_MAX / per_session;
    for i in 0..fit {
        let id = open_session(&mut cache, false, &format!("t{i}"), per_session as i32);
        assert_ne!(id, INVALID_SESSION_ID, "session {i}");
    }
    assert_eq!(cache.partitions_cached(), fit * per_session);
    let room = limits::FETCH_SESSION_PARTITIONS_PER_SHARD_MAX - fit * per_session;
    assert_eq!(
        open_session(&mut cache, false, "over", room as i32 + 1),
        INVALID_SESSION_ID
    );
    assert_ne!(
        open_session(&mut cache, false, "last", room as i32),
        INVALID_SESSION_ID
    );
    assert_eq!(
        cache.partitions_cached(),
        limits::FETCH_SESSION_PARTITIONS_PER_SHARD_MAX
    );
    assert_eq!(cache.len(), fit + 1);
}
