//! Kafka's internal topics: the ones the broker writes itself and clients
//! may only read. One predicate, [`is_internal`], for every check (produce,
//! DeleteTopics, DeleteRecords, CreatePartitions, config changes).

#![forbid(unsafe_code)]

/// Committed offsets and group metadata (the group coordinator's log).
pub const CONSUMER_OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Transaction coordinator state; corelog has no transactions yet, but
/// Kafka reserves the name, so clients cannot take it over meanwhile.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Kafka's `Topic.INTERNAL_TOPICS`.
pub const INTERNAL_TOPICS: &[&str] = &[CONSUMER_OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC];

/// True for a topic only the broker may write to (Kafka's `Topic.isInternal`).
pub fn is_internal(topic: &str) -> bool {
    INTERNAL_TOPICS.contains(&topic)
}

/// The `cleanup.policy` an internal topic must keep: its log is a table
/// keyed by group (or transactional id) that compaction keeps small;
/// `delete` would drop live commits by age.
pub const INTERNAL_CLEANUP_POLICY: &str = "compact";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_topics_are_kafkas() {
        assert!(is_internal("__consumer_offsets"));
        assert!(is_internal("__transaction_state"));
        assert!(!is_internal("__consumer_offsets2"));
        assert!(!is_internal("orders"));
        assert_eq!(crate::group::OFFSETS_TOPIC, CONSUMER_OFFSETS_TOPIC);
    }
}
