//! What this voter tells about the quorum: its Raft figures for the
//! node's `/metrics` (term, leader, commit and applied index, the leader
//! elections its controller made) and the log line of each change of
//! the active controller.

use super::Quorum;
use crate::cluster::records::PartitionChange;
use crate::metadata::Catalog;

/// This voter's view of the quorum at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaftFigures {
    pub term: u64,
    /// The active controller's node id; -1 while none is known.
    pub leader: i32,
    pub commit_index: u64,
    pub applied_index: u64,
    /// Partition leader elections this node committed as the active
    /// controller, since it started.
    pub elections: u64,
}

impl Quorum {
    pub fn figures(&self) -> RaftFigures {
        let core = self.core.borrow();
        let raft = &core.raft().raft;
        RaftFigures {
            term: raft.term,
            leader: core.leader().unwrap_or(-1),
            commit_index: raft.raft_log.committed,
            applied_index: raft.raft_log.applied,
            elections: self.elections.get(),
        }
    }

    /// Counts the elections among `changes`, computed from `image`, once
    /// they are committed.
    pub(super) fn count_elections(&self, image: &Catalog, changes: &[PartitionChange]) {
        let elected = changes.iter().filter(|c| is_election(image, c)).count();
        self.elections.set(self.elections.get() + elected as u64);
    }

    /// Logs a change of the active controller (Kafka's controller
    /// elections) once, as this voter learns it.
    pub(super) fn log_leader_change(&self) {
        let (leader, term) = {
            let core = self.core.borrow();
            (core.leader(), core.raft().raft.term)
        };
        let (logged, logged_term) = self.logged_leader.get();
        if leader == logged && (leader.is_none() || term == logged_term) {
            return;
        }
        self.logged_leader.set((leader, term));
        let me = self.settings.node_id;
        // Under the quorum's own target, where these lines always were.
        let target = "corelog::cluster::quorum";
        match leader {
            Some(id) if id == me => {
                log::info!(target: target, "controller: this node ({me}) is the active controller at epoch {term}")
            }
            Some(id) => {
                log::info!(target: target, "controller: node {id} is the active controller at epoch {term}")
            }
            None => {
                log::info!(target: target, "controller: no active controller at epoch {term}; electing one")
            }
        }
    }
}

/// Whether `change` gives its partition a new live leader (an ISR-only
/// change, or a partition left without a leader, is no election).
fn is_election(image: &Catalog, change: &PartitionChange) -> bool {
    let before = image
        .topics
        .get(&change.topic)
        .and_then(|t| t.replicas.get(change.partition))
        .map(|set| set.leader);
    change.set.leader >= 0 && before != Some(change.set.leader)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{ReplicaSet, TopicMeta};

    fn change(leader: i32, isr: &[i32]) -> PartitionChange {
        PartitionChange {
            topic: "t".into(),
            topic_id: uuid::Uuid::nil(),
            partition: 0,
            set: ReplicaSet {
                replicas: vec![1, 2, 3],
                isr: isr.to_vec(),
                leader,
                leader_epoch: 1,
                partition_epoch: 1,
            },
            expect_partition_epoch: Some(0),
            proposer: None,
        }
    }

    #[test]
    fn an_election_gives_a_partition_a_new_live_leader() {
        let mut image = Catalog::new("test");
        image.topics.insert(
            "t".into(),
            TopicMeta {
                name: "t".into(),
                id: uuid::Uuid::nil(),
                shards: vec![0],
                configs: Default::default(),
                replicas: vec![change(1, &[1, 2, 3]).set],
            },
        );
        assert!(is_election(&image, &change(2, &[2, 3])));
        assert!(!is_election(&image, &change(1, &[1, 3])), "ISR only");
        assert!(!is_election(&image, &change(-1, &[1])), "left leaderless");
    }
}
