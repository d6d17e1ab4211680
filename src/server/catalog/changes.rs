//! What a catalog change says in the broker's log, as Kafka's server.log
//! says it: topics created and deleted (name, id, partitions, replication
//! factor), partitions added, config changes, and each partition's leader
//! and ISR changes (topic-partition, leader, leader epoch, ISR), and ACLs
//! created and deleted. Computed
//! from the catalog before and after the change, so a single node's admin
//! change and a cluster's committed image are told alike.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::limits;
use crate::metadata::{Catalog, ReplicaSet, TopicMeta};

/// One line to log.
#[derive(Debug, PartialEq, Eq)]
pub struct Line {
    pub level: log::Level,
    pub text: String,
}

impl Line {
    fn info(text: String) -> Line {
        Line {
            level: log::Level::Info,
            text,
        }
    }
}

/// Logs what changed from `old` to `new`. `node`: this broker's id in a
/// cluster, whose partition lines are those of the partitions it holds a
/// replica of (each broker tells its own, as Kafka's do).
pub fn log_changes(old: &Catalog, new: &Catalog, node: Option<i32>) {
    for line in describe(old, new, node) {
        log::log!(line.level, "{}", line.text);
    }
}

/// The lines [`log_changes`] logs, at most
/// [`limits::CATALOG_CHANGE_LINES_MAX`] about partitions plus one that
/// counts the rest.
pub fn describe(old: &Catalog, new: &Catalog, node: Option<i32>) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut partition_lines = Vec::new();
    for (name, topic) in &new.topics {
        match old.topics.get(name).filter(|t| t.id == topic.id) {
            None => {
                lines.push(Line::info(created(topic)));
                for (p, set) in topic.replicas.iter().enumerate() {
                    partition_lines.push(Line {
                        level: log::Level::Debug,
                        text: format!("Created partition {name}-{p}: {}", set_text(set)),
                    });
                }
            }
            Some(before) => {
                let (was, now) = (before.partition_count(), topic.partition_count());
                if now > was {
                    lines.push(Line::info(format!(
                        "Increased the partitions of topic {name} from {was} to {now}"
                    )));
                }
                if before.configs != topic.configs {
                    lines.push(Line::info(format!(
                        "Topic {name} configs are now {}",
                        configs_text(&topic.configs)
                    )));
                }
                for (p, set) in topic.replicas.iter().enumerate() {
                    let concerns_node =
                        |s: &ReplicaSet| node.is_none_or(|n| s.replicas.contains(&n));
                    match before.replicas.get(p) {
                        Some(prev) if concerns_node(prev) || concerns_node(set) => {
                            if let Some(line) = partition_change(name, p, prev, set) {
                                partition_lines.push(line);
                            }
                        }
                        Some(_) => {}
                        None => partition_lines.push(Line {
                            level: log::Level::Debug,
                            text: format!("Created partition {name}-{p}: {}", set_text(set)),
                        }),
                    }
                }
            }
        }
    }
    for (name, topic) in &old.topics {
        if new.topics.get(name).is_none_or(|t| t.id != topic.id) {
            lines.push(Line::info(format!(
                "Deleted topic {name} with topic id {} ({} partitions)",
                topic.id,
                topic.partition_count()
            )));
        }
    }
    if old.broker_configs != new.broker_configs {
        lines.push(Line::info(format!(
            "Dynamic broker configs are now {}",
            configs_text(&new.broker_configs)
        )));
    }
    for (id, configs) in &new.per_broker_configs {
        if old.per_broker_configs.get(id) != Some(configs) {
            lines.push(Line::info(format!(
                "Dynamic configs of broker {id} are now {}",
                configs_text(configs)
            )));
        }
    }
    for id in old.per_broker_configs.keys() {
        if !new.per_broker_configs.contains_key(id) {
            lines.push(Line::info(format!(
                "Broker {id} has no dynamic configs of its own now"
            )));
        }
    }
    let created: Vec<_> = new.acls.difference(&old.acls).collect();
    let deleted: Vec<_> = old.acls.difference(&new.acls).collect();
    let acl_lines = created
        .iter()
        .map(|acl| format!("Created ACL {acl}"))
        .chain(deleted.iter().map(|acl| format!("Deleted ACL {acl}")));
    let acl_count = created.len() + deleted.len();
    lines.extend(
        acl_lines
            .take(limits::CATALOG_CHANGE_LINES_MAX)
            .map(Line::info),
    );
    if acl_count > limits::CATALOG_CHANGE_LINES_MAX {
        lines.push(Line::info(format!(
            "... and {} more ACL changes",
            acl_count - limits::CATALOG_CHANGE_LINES_MAX
        )));
    }
    let max = limits::CATALOG_CHANGE_LINES_MAX;
    let info_lines = partition_lines
        .iter()
        .filter(|l| l.level <= log::Level::Info)
        .count();
    if info_lines > max {
        // Keep the first `max` lines at INFO or above and count the rest.
        let mut kept = 0;
        partition_lines.retain(|l| {
            if l.level > log::Level::Info {
                return true;
            }
            kept += 1;
            kept <= max
        });
        partition_lines.push(Line::info(format!(
            "... and {} more partition leader or ISR changes",
            info_lines - max
        )));
    }
    lines.extend(partition_lines);
    lines
}

fn created(topic: &TopicMeta) -> String {
    let mut text = format!(
        "Created topic {} with topic id {}: {} partitions, replication factor {}",
        topic.name,
        topic.id,
        topic.partition_count(),
        topic.replication_factor()
    );
    if !topic.configs.is_empty() {
        let _ = write!(text, ", configs {}", configs_text(&topic.configs));
    }
    text
}

/// A partition's leader or ISR change, if it had one: WARN when it is left
/// without a leader (offline), INFO otherwise.
fn partition_change(topic: &str, p: usize, prev: &ReplicaSet, set: &ReplicaSet) -> Option<Line> {
    if prev.leader == set.leader && prev.isr == set.isr && prev.leader_epoch == set.leader_epoch {
        return None;
    }
    if set.leader == -1 {
        return Some(Line {
            level: log::Level::Warn,
            text: format!(
                "Partition {topic}-{p} is offline: no leader at leader epoch {}, ISR {} (was \
                 led by {})",
                set.leader_epoch,
                ids(&set.isr),
                prev.leader
            ),
        });
    }
    let text = if prev.leader != set.leader || prev.leader_epoch != set.leader_epoch {
        format!(
            "Partition {topic}-{p}: leader {} at leader epoch {}, ISR {} (was leader {} at \
             epoch {}, ISR {})",
            set.leader,
            set.leader_epoch,
            ids(&set.isr),
            prev.leader,
            prev.leader_epoch,
            ids(&prev.isr)
        )
    } else {
        format!(
            "Partition {topic}-{p}: ISR {} -> {} (leader {} at leader epoch {})",
            ids(&prev.isr),
            ids(&set.isr),
            set.leader,
            set.leader_epoch
        )
    };
    Some(Line::info(text))
}

fn set_text(set: &ReplicaSet) -> String {
    format!(
        "replicas {}, leader {} at leader epoch {}, ISR {}",
        ids(&set.replicas),
        set.leader,
        set.leader_epoch,
        ids(&set.isr)
    )
}

fn ids(ids: &[i32]) -> String {
    let list: Vec<String> = ids.iter().map(i32::to_string).collect();
    format!("[{}]", list.join(","))
}

fn configs_text(configs: &BTreeMap<String, String>) -> String {
    if configs.is_empty() {
        return "{}".to_string();
    }
    let pairs: Vec<String> = configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(replicas: &[i32], leader: i32, epoch: i32, isr: &[i32]) -> ReplicaSet {
        ReplicaSet {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch: epoch,
            partition_epoch: 0,
        }
    }

    fn with_topic(
        catalog: &Catalog,
        name: &str,
        partitions: i32,
        sets: Vec<ReplicaSet>,
    ) -> Catalog {
        let mut next = catalog.clone();
        let topic = next.add_topic(name, partitions, BTreeMap::new(), 1);
        topic.replicas = sets;
        next
    }

    fn texts(lines: &[Line], level: log::Level) -> Vec<&str> {
        lines
            .iter()
            .filter(|l| l.level == level)
            .map(|l| l.text.as_str())
            .collect()
    }

    #[test]
    fn topics_created_and_deleted_are_told_with_their_shape() {
        let empty = Catalog::new("c");
        let one = with_topic(&empty, "orders", 3, vec![set(&[1, 2], 1, 0, &[1, 2]); 3]);
        let id = one.topics["orders"].id;
        let lines = describe(&empty, &one, Some(1));
        assert_eq!(
            texts(&lines, log::Level::Info),
            vec![format!(
                "Created topic orders with topic id {id}: 3 partitions, replication factor 2"
            )]
        );
        assert_eq!(texts(&lines, log::Level::Debug).len(), 3, "{lines:?}");
        let lines = describe(&one, &empty, Some(1));
        assert_eq!(
            texts(&lines, log::Level::Info),
            vec![format!(
                "Deleted topic orders with topic id {id} (3 partitions)"
            )]
        );
        assert!(describe(&one, &one, Some(1)).is_empty());
    }

    #[test]
    fn leader_and_isr_changes_name_partition_leader_epoch_and_isr() {
        let empty = Catalog::new("c");
        let before = with_topic(&empty, "t", 2, vec![set(&[1, 2, 3], 1, 4, &[1, 2, 3]); 2]);
        let mut after = before.clone();
        after.topics.get_mut("t").unwrap().replicas[0] = set(&[1, 2, 3], 2, 5, &[2, 3]);
        after.topics.get_mut("t").unwrap().replicas[1] = set(&[1, 2, 3], 1, 4, &[1, 2]);
        let lines = describe(&before, &after, Some(2));
        assert_eq!(
            texts(&lines, log::Level::Info),
            vec![
                "Partition t-0: leader 2 at leader epoch 5, ISR [2,3] (was leader 1 at epoch 4, \
                 ISR [1,2,3])",
                "Partition t-1: ISR [1,2,3] -> [1,2] (leader 1 at leader epoch 4)",
            ]
        );
        // A broker that holds no replica of a partition does not tell it.
        assert!(describe(&before, &after, Some(7)).is_empty());
        after.topics.get_mut("t").unwrap().replicas[0] = set(&[1, 2, 3], -1, 5, &[3]);
        let lines = describe(&before, &after, Some(2));
        assert_eq!(texts(&lines, log::Level::Warn).len(), 1, "{lines:?}");
    }

    #[test]
    fn many_partition_changes_are_bounded() {
        let empty = Catalog::new("c");
        let n = limits::CATALOG_CHANGE_LINES_MAX + 50;
        let before = with_topic(&empty, "t", n as i32, vec![set(&[1, 2], 1, 0, &[1, 2]); n]);
        let mut after = before.clone();
        for s in &mut after.topics.get_mut("t").unwrap().replicas {
            *s = set(&[1, 2], 2, 1, &[2]);
        }
        let lines = describe(&before, &after, Some(1));
        let info = texts(&lines, log::Level::Info);
        assert_eq!(info.len(), limits::CATALOG_CHANGE_LINES_MAX + 1);
        assert_eq!(
            info.last().unwrap(),
            &"... and 50 more partition leader or ISR changes"
        );
    }
}
