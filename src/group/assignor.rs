//! Server-side assignors for KIP-848 groups, as Kafka's group coordinator
//! names them: `uniform` (the default) and `range`.
//!
//! - `uniform` balances the partitions of the subscribed topics so member
//!   loads differ by at most one, keeping each partition with its previous
//!   target owner wherever balance allows (sticky), so a change moves as
//!   few partitions as it can.
//! - `range` gives each member contiguous ranges per topic: members sorted
//!   (static members by instance id first, then by member id), the first
//!   `partitions % members` get one extra, as Kafka's RangeAssignor.
//!
//! Pure functions of the group's members, their subscriptions and the
//! previous target: no I/O, no shard state. Work is bounded by the group's
//! members and partitions (both bounded in `limits`). `range` is generic
//! over how a topic is named, so the console consumer, which leads classic
//! groups by topic name, runs the same one.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::records::Partitions;

pub const UNIFORM: &str = "uniform";
pub const RANGE: &str = "range";
/// Every assignor the broker offers, the default first (Kafka's
/// `group.consumer.assignors`).
pub const ASSIGNORS: &[&str] = &[UNIFORM, RANGE];

/// One member as an assignor sees it; topics are named by `K` (their ids
/// on the broker).
pub struct MemberSpec<'a, K = Uuid> {
    pub id: &'a str,
    pub instance_id: Option<&'a str>,
    /// The subscribed topics that exist.
    pub topics: BTreeSet<K>,
}

/// The target assignment of every member. `partitions` gives each
/// subscribed topic's partition count; `previous` is the last target.
pub fn assign(
    name: &str,
    members: &[MemberSpec],
    partitions: &BTreeMap<Uuid, i32>,
    previous: &BTreeMap<String, Partitions>,
) -> BTreeMap<String, Partitions> {
    if name == RANGE {
        range(members, partitions)
    } else {
        uniform(members, partitions, previous)
    }
}

/// Kafka's `RangeAssignor`: per topic, its subscribers in order (static
/// members by instance id first, then by member id) each get a contiguous
/// range, the first `partitions % subscribers` one partition more. Every
/// member gets an entry, maybe empty; topics missing from `partitions`
/// are not assigned.
pub fn range<K: Ord + Clone>(
    members: &[MemberSpec<K>],
    partitions: &BTreeMap<K, i32>,
) -> BTreeMap<String, BTreeMap<K, BTreeSet<i32>>> {
    let mut sorted: Vec<&MemberSpec<K>> = members.iter().collect();
    sorted.sort_by(|a, b| match (a.instance_id, b.instance_id) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.id.cmp(b.id),
    });
    let mut out: BTreeMap<String, BTreeMap<K, BTreeSet<i32>>> = members
        .iter()
        .map(|m| (m.id.to_string(), BTreeMap::new()))
        .collect();
    for (topic, &count) in partitions {
        let subscribers: Vec<&&MemberSpec<K>> =
            sorted.iter().filter(|m| m.topics.contains(topic)).collect();
        let n = subscribers.len() as i32;
        if n == 0 || count <= 0 {
            continue;
        }
        let (quota, extra) = (count / n, count % n);
        for (i, m) in subscribers.iter().enumerate() {
            let i = i as i32;
            let start = i * quota + i.min(extra);
            let len = quota + i32::from(i < extra);
            if len > 0 {
                let set = (start..start + len).collect();
                out.get_mut(m.id)
                    .expect("every member")
                    .insert(topic.clone(), set);
            }
        }
    }
    out
}

fn uniform(
    members: &[MemberSpec],
    partitions: &BTreeMap<Uuid, i32>,
    previous: &BTreeMap<String, Partitions>,
) -> BTreeMap<String, Partitions> {
    let mut out: BTreeMap<String, Partitions> = members
        .iter()
        .map(|m| (m.id.to_string(), Partitions::new()))
        .collect();
    let Some(first) = members.first() else {
        return out;
    };
    if members.iter().all(|m| m.topics == first.topics) {
        uniform_homogeneous(members, &first.topics, partitions, previous, &mut out);
    } else {
        uniform_heterogeneous(members, partitions, previous, &mut out);
    }
    out.retain(|_, p| {
        p.retain(|_, set| !set.is_empty());
        true
    });
    out
}

/// Every member subscribes to the same topics: quotas are known up front,
/// `total / members` each and one more for `total % members` of them.
fn uniform_homogeneous(
    members: &[MemberSpec],
    topics: &BTreeSet<Uuid>,
    partitions: &BTreeMap<Uuid, i32>,
    previous: &BTreeMap<String, Partitions>,
    out: &mut BTreeMap<String, Partitions>,
) {
    let all: Vec<(Uuid, i32)> = topics
        .iter()
        .filter_map(|t| partitions.get(t).map(|count| (*t, *count)))
        .flat_map(|(t, count)| (0..count).map(move |p| (t, p)))
        .collect();
    let n = members.len();
    let (quota, mut extra) = (all.len() / n, all.len() % n);
    let mut taken: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    let mut load: BTreeMap<&str, usize> = BTreeMap::new();
    // Keep what each member had, up to its quota; members that had the
    // most keep the extra partitions first.
    let mut by_previous: Vec<(&MemberSpec, Vec<(Uuid, i32)>)> = members
        .iter()
        .map(|m| (m, still_valid(previous.get(m.id), topics, partitions)))
        .collect();
    by_previous.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.id.cmp(b.0.id)));
    for (m, kept) in by_previous {
        let mut cap = quota;
        if kept.len() > quota && extra > 0 {
            cap += 1;
            extra -= 1;
        }
        let mine = out.get_mut(m.id).expect("every member");
        let mut count = 0;
        for tp in kept {
            if count == cap || !taken.insert(tp) {
                continue;
            }
            mine.entry(tp.0).or_default().insert(tp.1);
            count += 1;
        }
        load.insert(m.id, count);
    }
    // Fill: the least loaded member first (ties by member id), up to its cap.
    let mut free = all.into_iter().filter(|tp| !taken.contains(tp));
    for m in members {
        let have = load[m.id];
        for _ in have..quota {
            let Some(tp) = free.next() else { break };
            out.get_mut(m.id)
                .expect("every member")
                .entry(tp.0)
                .or_default()
                .insert(tp.1);
        }
    }
    for m in members {
        if extra == 0 {
            break;
        }
        let mine = out.get_mut(m.id).expect("every member");
        let have: usize = mine.values().map(BTreeSet::len).sum();
        if have > quota {
            continue;
        }
        let Some(tp) = free.next() else { break };
        mine.entry(tp.0).or_default().insert(tp.1);
        extra -= 1;
    }
}

/// Members subscribe to different topics: keep the previous owners, give
/// each free partition to its least loaded subscriber, then move partitions
/// from the most to the least loaded subscribers while that narrows the gap.
fn uniform_heterogeneous(
    members: &[MemberSpec],
    partitions: &BTreeMap<Uuid, i32>,
    previous: &BTreeMap<String, Partitions>,
    out: &mut BTreeMap<String, Partitions>,
) {
    let mut owner: BTreeMap<(Uuid, i32), usize> = BTreeMap::new();
    let mut load = vec![0usize; members.len()];
    for (i, m) in members.iter().enumerate() {
        for tp in still_valid(previous.get(m.id), &m.topics, partitions) {
            if let std::collections::btree_map::Entry::Vacant(e) = owner.entry(tp) {
                e.insert(i);
                load[i] += 1;
            }
        }
    }
    for (topic, count) in partitions {
        let subscribers: Vec<usize> = (0..members.len())
            .filter(|i| members[*i].topics.contains(topic))
            .collect();
        for p in 0..*count {
            if owner.contains_key(&(*topic, p)) {
                continue;
            }
            if let Some(&i) = subscribers.iter().min_by_key(|i| (load[**i], **i)) {
                owner.insert((*topic, p), i);
                load[i] += 1;
            }
        }
    }
    // Each move lowers the sum of squared loads, so this ends; the bound
    // on moves is a guard, not the expected path.
    let moves_max = owner.len();
    for _ in 0..moves_max {
        let mut moved = false;
        let candidates: Vec<((Uuid, i32), usize)> = owner.iter().map(|(k, v)| (*k, *v)).collect();
        for (tp, from) in candidates {
            let best = (0..members.len())
                .filter(|i| members[*i].topics.contains(&tp.0))
                .min_by_key(|i| (load[*i], *i));
            if let Some(to) = best {
                if load[from] >= load[to] + 2 {
                    owner.insert(tp, to);
                    load[from] -= 1;
                    load[to] += 1;
                    moved = true;
                    break;
                }
            }
        }
        if !moved {
            break;
        }
    }
    for ((topic, p), i) in owner {
        out.get_mut(members[i].id)
            .expect("every member")
            .entry(topic)
            .or_default()
            .insert(p);
    }
}

/// The partitions of `previous` that still exist and are still subscribed.
fn still_valid(
    previous: Option<&Partitions>,
    topics: &BTreeSet<Uuid>,
    partitions: &BTreeMap<Uuid, i32>,
) -> Vec<(Uuid, i32)> {
    let Some(previous) = previous else {
        return Vec::new();
    };
    previous
        .iter()
        .filter(|(t, _)| topics.contains(*t))
        .filter_map(|(t, set)| partitions.get(t).map(|count| (t, set, *count)))
        .flat_map(|(t, set, count)| set.iter().filter(move |p| **p < count).map(|p| (*t, *p)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec<'a>(id: &'a str, topics: &[Uuid]) -> MemberSpec<'a> {
        MemberSpec {
            id,
            instance_id: None,
            topics: topics.iter().copied().collect(),
        }
    }

    fn count(p: &Partitions) -> usize {
        p.values().map(BTreeSet::len).sum()
    }

    #[test]
    fn uniform_balances_and_sticks() {
        let t = Uuid::from_u128(1);
        let parts = BTreeMap::from([(t, 6)]);
        let one = assign(UNIFORM, &[spec("a", &[t])], &parts, &BTreeMap::new());
        assert_eq!(count(&one["a"]), 6);
        let two = assign(UNIFORM, &[spec("a", &[t]), spec("b", &[t])], &parts, &one);
        assert_eq!(count(&two["a"]), 3);
        assert_eq!(count(&two["b"]), 3);
        // Sticky: a keeps what it had (a subset of its old six).
        assert!(two["a"][&t].is_subset(&one["a"][&t]));
        let three = assign(
            UNIFORM,
            &[spec("a", &[t]), spec("b", &[t]), spec("c", &[t])],
            &parts,
            &two,
        );
        for m in ["a", "b", "c"] {
            assert_eq!(count(&three[m]), 2, "{m}");
        }
        assert!(three["a"][&t].is_subset(&two["a"][&t]));
        assert!(three["b"][&t].is_subset(&two["b"][&t]));
        // Every partition exactly once.
        let mut all: Vec<i32> = three.values().flat_map(|p| p[&t].iter().copied()).collect();
        all.sort();
        assert_eq!(all, (0..6).collect::<Vec<_>>());
    }

    #[test]
    fn uniform_with_different_subscriptions_covers_each_topic() {
        let (t1, t2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let parts = BTreeMap::from([(t1, 4), (t2, 2)]);
        let out = assign(
            UNIFORM,
            &[spec("a", &[t1, t2]), spec("b", &[t1])],
            &parts,
            &BTreeMap::new(),
        );
        assert_eq!(count(&out["a"]), 3);
        assert_eq!(count(&out["b"]), 3);
        assert!(!out["b"].contains_key(&t2));
    }

    fn named<'a>(
        id: &'a str,
        instance: Option<&'a str>,
        topics: &[&str],
    ) -> MemberSpec<'a, String> {
        MemberSpec {
            id,
            instance_id: instance,
            topics: topics.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn range_by_name_puts_static_members_first_and_skips_unsubscribed_topics() {
        let members = [
            named("a", None, &["t", "u"]),
            named("z", Some("i1"), &["t"]),
            named("c", None, &["t"]),
        ];
        let counts = BTreeMap::from([("t".to_string(), 4), ("u".to_string(), 2)]);
        let plan = range(&members, &counts);
        assert_eq!(plan["z"]["t"], BTreeSet::from([0, 1]));
        assert_eq!(plan["a"]["t"], BTreeSet::from([2]));
        assert_eq!(plan["c"]["t"], BTreeSet::from([3]));
        assert_eq!(plan["a"]["u"], BTreeSet::from([0, 1]));
        assert!(!plan["c"].contains_key("u"));
    }

    #[test]
    fn range_with_more_members_than_partitions_leaves_some_with_nothing() {
        let members = [
            named("a", None, &["t"]),
            named("b", None, &["t"]),
            named("c", None, &["t"]),
        ];
        let plan = range(&members, &BTreeMap::from([("t".to_string(), 2)]));
        assert_eq!(plan["a"]["t"], BTreeSet::from([0]));
        assert_eq!(plan["b"]["t"], BTreeSet::from([1]));
        assert!(plan["c"].is_empty());
    }

    #[test]
    fn range_gives_contiguous_ranges() {
        let t = Uuid::from_u128(7);
        let parts = BTreeMap::from([(t, 7)]);
        let out = assign(
            RANGE,
            &[spec("b", &[t]), spec("a", &[t])],
            &parts,
            &BTreeMap::new(),
        );
        assert_eq!(out["a"][&t], (0..4).collect());
        assert_eq!(out["b"][&t], (4..7).collect());
    }
}
