//! What the coordinator reports of its groups for the node's `/metrics`:
//! per group its members, state and rebalances, per committed partition
//! its offset. Read at scrape time from the groups themselves; nothing is
//! recorded for it beyond the groups' rebalance counts.

use super::{Group, GroupCoordinator};

/// One group at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupFigures {
    pub id: String,
    pub members: usize,
    /// Kafka's state name (`Group::state_name`).
    pub state: &'static str,
    pub rebalances: u64,
}

/// One committed offset of one group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedFigures {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

impl Group {
    /// Members of the group, whichever protocol it uses.
    pub fn member_count(&self) -> usize {
        match &self.consumer {
            Some(c) => c.members.len(),
            None => self.classic.members.len(),
        }
    }

    /// Rebalances since this coordinator loaded the group: new classic
    /// generations and consumer group epoch bumps.
    pub fn rebalances(&self) -> u64 {
        self.classic.rebalances + self.consumer.as_ref().map_or(0, |c| c.rebalances)
    }
}

impl GroupCoordinator {
    /// The first `limit` groups by id, and the first `limit` committed
    /// offsets by (group, topic, partition). Groups still being replayed
    /// are left out: what they hold so far is not what they hold.
    pub fn figures(&self, limit: usize) -> (Vec<GroupFigures>, Vec<CommittedFigures>) {
        if self.loading.get() {
            return (Vec::new(), Vec::new());
        }
        let groups = self.groups.borrow();
        let loading = self.loading_partitions.borrow();
        let mut ready: Vec<&Group> = groups
            .values()
            .filter(|g| !loading.contains(&g.partition))
            .collect();
        ready.sort_unstable_by(|a, b| a.id.cmp(&b.id));
        let mut offsets = Vec::new();
        'groups: for g in &ready {
            for ((topic, partition), value) in &g.offsets {
                if offsets.len() >= limit {
                    break 'groups;
                }
                offsets.push(CommittedFigures {
                    group: g.id.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                    offset: value.offset,
                });
            }
        }
        let figures = ready
            .iter()
            .take(limit)
            .map(|g| GroupFigures {
                id: g.id.clone(),
                members: g.member_count(),
                state: g.state_name(),
                rebalances: g.rebalances(),
            })
            .collect();
        (figures, offsets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::records::OffsetValue;

    fn offset(offset: i64) -> OffsetValue {
        OffsetValue {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 0,
            expire_timestamp_ms: None,
        }
    }

    #[test]
    fn figures_are_the_first_groups_and_offsets_by_name() {
        let coordinator = GroupCoordinator::new();
        assert_eq!(coordinator.figures(10), (Vec::new(), Vec::new()));
        coordinator.loading.set(false);
        {
            let mut groups = coordinator.groups.borrow_mut();
            for (id, partition) in [("b", 0), ("a", 1), ("c", 2)] {
                let mut g = Group::new(id, partition);
                for p in 0..2 {
                    g.offsets.insert(("t".into(), p), offset(10 + p as i64));
                }
                g.classic.rebalances = 2;
                groups.insert(id.into(), g);
            }
        }
        // Group c's offsets partition is being replayed: left out.
        coordinator.loading_partitions.borrow_mut().insert(2);
        let (groups, offsets) = coordinator.figures(3);
        let ids: Vec<&str> = groups.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        assert_eq!(
            groups[0],
            GroupFigures {
                id: "a".into(),
                members: 0,
                state: "Empty",
                rebalances: 2
            }
        );
        let keys: Vec<(&str, i32, i64)> = offsets
            .iter()
            .map(|o| (o.group.as_str(), o.partition, o.offset))
            .collect();
        assert_eq!(keys, [("a", 0, 10), ("a", 1, 11), ("b", 0, 10)]);
        assert_eq!(coordinator.figures(0), (Vec::new(), Vec::new()));
    }
}
