//! `/ready`: whether this node can take its share of the work, as a load
//! balancer or an orchestrator asks before it sends clients here (Kafka's
//! broker state RUNNING): log recovery at start is done, every shard
//! serves Kafka clients and, in a cluster, the node is registered with the
//! controller quorum and has applied a metadata image. A node asked to
//! stop is not ready.

use super::HttpState;

/// What the node still waits for, in the order start-up meets them;
/// empty when it is ready.
pub fn waiting_for(state: &HttpState) -> Vec<String> {
    let mut waiting = Vec::new();
    if crate::shard::shutdown::asked() || crate::shard::shutdown::requested() {
        waiting.push("the node is stopping".to_string());
        return waiting;
    }
    if let Some((done, expected)) = state.recovery.remaining() {
        waiting.push(format!(
            "log recovery: {done} of {expected} partitions opened"
        ));
    }
    let Some(broker) = state.broker.get() else {
        waiting.push("shard 0 is starting".to_string());
        return waiting;
    };
    if broker.cluster_mode() {
        match broker.cluster() {
            None => waiting.push("registration with the controller quorum".to_string()),
            Some(node) if node.image_offset() == 0 => waiting.push(
                "a metadata image from the controller quorum with this broker in it".to_string(),
            ),
            Some(_) => {}
        }
    }
    if !state.serving.get() {
        waiting.push("every shard serving Kafka clients".to_string());
    }
    waiting
}

/// The JSON body of `/ready`'s answer.
pub fn body(waiting: &[String]) -> String {
    serde_json::json!({
        "ready": waiting.is_empty(),
        "waiting_for": waiting,
    })
    .to_string()
        + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_names_what_is_not_ready() {
        let ready: serde_json::Value = serde_json::from_str(&body(&[])).unwrap();
        assert_eq!(ready, serde_json::json!({"ready": true, "waiting_for": []}));
        let waiting = vec!["log recovery: 1 of 2 partitions opened".to_string()];
        let not: serde_json::Value = serde_json::from_str(&body(&waiting)).unwrap();
        assert_eq!(not["ready"], false);
        assert_eq!(not["waiting_for"][0], waiting[0].as_str());
    }
}
