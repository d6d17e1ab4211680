//! The Kafka wire, free of I/O: frame splitting, the table of served APIs,
//! request/response envelope helpers and the record-batch view.
//!
//! Nothing here touches sockets, files or glommio.

pub mod apis;
pub mod batch;
pub mod frame;
pub mod internal;
pub mod legacy;
pub mod records;

use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

/// A topic's name as the Kafka messages carry it.
pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}
