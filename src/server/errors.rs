//! The single mapping from corelog's internal errors to Kafka error codes.
//! Handlers never pick a code by hand for these; storage and partitions
//! return their own error enums and this edge translates them.
//!
//! One mapping lives with its service instead: how the group coordinator
//! answers a failed append to `__consumer_offsets` (Kafka's coordinator
//! semantics, in `group`).

use kafka_protocol::error::ResponseError;

use super::catalog::CatalogError;
use super::fetch_session::SessionError;
use crate::partition::PartitionError;
use crate::protocol::batch::{BatchFault, ProduceBatchError};

pub const NONE: i16 = 0;

pub fn code(e: ResponseError) -> i16 {
    e.code()
}

/// The top-level error of a Fetch refused by its session (KIP-227).
pub fn fetch_session_error(e: SessionError) -> i16 {
    code(match e {
        SessionError::IdNotFound => ResponseError::FetchSessionIdNotFound,
        SessionError::InvalidEpoch => ResponseError::InvalidFetchSessionEpoch,
        SessionError::TopicIdMismatch => ResponseError::FetchSessionTopicIdError,
    })
}

pub fn partition_error(e: &PartitionError) -> i16 {
    code(match e {
        PartitionError::Batch(e) => return batch_error(e),
        PartitionError::InvalidRecord(_) => ResponseError::InvalidRecord,
        PartitionError::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
        PartitionError::StaleProducerEpoch => ResponseError::InvalidProducerEpoch,
        PartitionError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        PartitionError::Storage(_) => ResponseError::KafkaStorageError,
        PartitionError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        PartitionError::Gone => ResponseError::UnknownTopicOrPartition,
        PartitionError::NotLeader => ResponseError::NotLeaderOrFollower,
        PartitionError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas,
        PartitionError::NotEnoughReplicasAfterAppend { .. } => {
            ResponseError::NotEnoughReplicasAfterAppend
        }
        PartitionError::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
        PartitionError::UnknownLeaderEpoch { .. } => ResponseError::UnknownLeaderEpoch,
        PartitionError::TimedOut => ResponseError::RequestTimedOut,
        PartitionError::OffsetNotAvailable { .. } => ResponseError::OffsetNotAvailable,
    })
}

/// A produced batch refused by validation, as Kafka's LogValidator answers.
pub fn batch_error(e: &ProduceBatchError) -> i16 {
    fault_code(e.fault())
}

/// The Kafka code of a class of refused batch.
pub fn fault_code(fault: BatchFault) -> i16 {
    code(match fault {
        BatchFault::Corrupt => ResponseError::CorruptMessage,
        BatchFault::InvalidRecord => ResponseError::InvalidRecord,
        BatchFault::TooLarge => ResponseError::MessageTooLarge,
        BatchFault::UnsupportedFormat => ResponseError::UnsupportedForMessageFormat,
        BatchFault::UnsupportedCompression => ResponseError::UnsupportedCompressionType,
        BatchFault::InvalidTimestamp => ResponseError::InvalidTimestamp,
        BatchFault::InvalidTxnState => ResponseError::InvalidTxnState,
    })
}

pub fn catalog_error(e: &CatalogError) -> i16 {
    code(match e {
        CatalogError::TopicAlreadyExists(_) => ResponseError::TopicAlreadyExists,
        CatalogError::InvalidTopic(_) => ResponseError::InvalidTopicException,
        CatalogError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        CatalogError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
        CatalogError::InvalidConfig(_) => ResponseError::InvalidConfig,
        CatalogError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
        CatalogError::Storage(_) => ResponseError::KafkaStorageError,
        // Retriable: the client refreshes metadata and asks again.
        CatalogError::Unavailable(_) => ResponseError::NotController,
    })
}
