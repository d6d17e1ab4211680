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
