//! Partition leader elections the active controller makes, as pure
//! functions of the metadata image: new leaders and ISRs when brokers are
//! fenced or come back, and preferred-leader election (ElectLeaders). The
//! quorum (`quorum.rs`) proposes the changes they compute.

use serde::{Deserialize, Serialize};

use super::records::PartitionChange;
use crate::metadata::{Catalog, ReplicaSet};

/// New leaders and ISRs for the partitions `affected` selects, from the
/// image's unfenced brokers: the first replica (in preference order) that is
/// alive and in the ISR leads; fenced brokers leave the ISR, but the last
/// member stays, so it can lead again when it returns. Only when no ISR
/// member is alive and the topic allows unclean election (topic config,
/// else `unclean_default`) does another live replica lead, alone in its ISR:
/// what the ISR had beyond its log is lost. The leader epoch moves only
/// when the leader does.
/// How many times an election refused as conflicting (another change took
/// the partition epoch first) is recomputed from the newer image and
/// proposed again.
pub const ELECTION_ATTEMPTS: u32 = 5;

pub fn elections(
    image: &Catalog,
    unclean_default: bool,
    affected: impl Fn(&ReplicaSet) -> bool,
) -> Vec<PartitionChange> {
    let alive = |id: &i32| image.brokers.get(id).is_some_and(|b| !b.fenced);
    let mut changes = Vec::new();
    for topic in image.topics.values() {
        let unclean = topic
            .configs
            .get("unclean.leader.election.enable")
            .map_or(unclean_default, |v| v == "true");
        for (partition, set) in topic.replicas.iter().enumerate() {
            if !affected(set) {
                continue;
            }
            let mut isr: Vec<i32> = set.isr.iter().copied().filter(alive).collect();
            let mut leader = set
                .replicas
                .iter()
                .copied()
                .find(|r| isr.contains(r))
                .unwrap_or(-1);
            if isr.is_empty() {
                match set.replicas.iter().copied().find(alive).filter(|_| unclean) {
                    Some(replica) => {
                        log::warn!(
                            "controller: unclean election of broker {replica} for {}-{partition}",
                            topic.name
                        );
                        leader = replica;
                        isr = vec![replica];
                    }
                    None => isr = set.isr.clone(),
                }
            }
            if leader == set.leader && isr == set.isr {
                continue;
            }
            changes.push(PartitionChange {
                topic: topic.name.clone(),
                topic_id: topic.id,
                partition,
                set: ReplicaSet {
                    replicas: set.replicas.clone(),
                    isr,
                    leader,
                    leader_epoch: set.leader_epoch + i32::from(leader != set.leader),
                    partition_epoch: set.partition_epoch,
                },
                // Computed from this image: applied only if nothing changed
                // the partition meanwhile. Two elections computed from the
                // same image (concurrent heartbeats of two brokers) would
                // otherwise give one leader epoch to two leaders (found by
                // the simulation, seed 6516); the loser recomputes.
                expect_partition_epoch: Some(set.partition_epoch),
                proposer: None,
            });
        }
    }
    changes
}

/// Why a preferred-leader election did not move a partition (ElectLeaders).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElectionOutcome {
    Elected,
    /// The preferred replica already leads (ELECTION_NOT_NEEDED).
    NotNeeded,
    /// The preferred replica is fenced or out of the ISR.
    PreferredNotAvailable,
    UnknownPartition,
}

/// Preferred-leader election: partitions (all when `wanted` is None) whose
/// first replica is alive and in the ISR but does not lead get it back.
pub fn preferred_elections(
    image: &Catalog,
    wanted: Option<&[(String, i32)]>,
) -> (Vec<PartitionChange>, Vec<(String, i32, ElectionOutcome)>) {
    let alive = |id: &i32| image.brokers.get(id).is_some_and(|b| !b.fenced);
    let mut all = Vec::new();
    let targets: Vec<(String, i32)> = match wanted {
        Some(list) => list.to_vec(),
        None => image
            .topics
            .values()
            .flat_map(|t| (0..t.replicas.len() as i32).map(|p| (t.name.clone(), p)))
            .collect(),
    };
    let mut changes = Vec::new();
    for (name, partition) in targets {
        let found = image.topics.get(&name).and_then(|t| {
            let set = t.replicas.get(usize::try_from(partition).ok()?)?;
            Some((t, set))
        });
        let outcome = match found {
            None => ElectionOutcome::UnknownPartition,
            Some((topic, set)) => {
                let preferred = set.replicas[0];
                if set.leader == preferred {
                    ElectionOutcome::NotNeeded
                } else if !alive(&preferred) || !set.isr.contains(&preferred) {
                    ElectionOutcome::PreferredNotAvailable
                } else {
                    changes.push(PartitionChange {
                        topic: topic.name.clone(),
                        topic_id: topic.id,
                        partition: partition as usize,
                        set: ReplicaSet {
                            leader: preferred,
                            leader_epoch: set.leader_epoch + 1,
                            ..set.clone()
                        },
                        expect_partition_epoch: Some(set.partition_epoch),
                        proposer: None,
                    });
                    ElectionOutcome::Elected
                }
            }
        };
        if wanted.is_some() || outcome == ElectionOutcome::Elected {
            all.push((name, partition, outcome));
        }
    }
    (changes, all)
}
