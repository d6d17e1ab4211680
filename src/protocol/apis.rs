//! The one table of served APIs and versions. ApiVersions answers from it,
//! dispatch refuses what it lacks, and the tests walk it.

use kafka_protocol::messages::ApiKey;

#[derive(Clone, Copy, Debug)]
pub struct ServedApi {
    pub key: ApiKey,
    pub min_version: i16,
    pub max_version: i16,
}

const fn served(key: ApiKey, min_version: i16, max_version: i16) -> ServedApi {
    ServedApi {
        key,
        min_version,
        max_version,
    }
}

/// Every API a client may call, with the versions implemented and tested:
/// from the oldest version Kafka 3.9 served (Kafka 4 dropped some of them,
/// KIP-896, and with them the clients that still send them). Produce v0-v2
/// and Fetch v0-v3 carry old message sets, converted at the edge
/// (`protocol::legacy`); the log holds v2 record batches only.
pub const SERVED_APIS: &[ServedApi] = &[
    served(ApiKey::Produce, 0, 11),
    served(ApiKey::Fetch, 0, 16),
    served(ApiKey::ListOffsets, 0, 7),
    served(ApiKey::Metadata, 0, 12),
    served(ApiKey::FindCoordinator, 0, 4),
    served(ApiKey::JoinGroup, 0, 9),
    served(ApiKey::SyncGroup, 0, 5),
    served(ApiKey::Heartbeat, 0, 4),
    served(ApiKey::LeaveGroup, 0, 5),
    served(ApiKey::OffsetCommit, 0, 9),
    served(ApiKey::OffsetFetch, 0, 9),
    served(ApiKey::ListGroups, 0, 5),
    served(ApiKey::DescribeGroups, 0, 5),
    served(ApiKey::DeleteGroups, 0, 2),
    served(ApiKey::OffsetDelete, 0, 0),
    served(ApiKey::ApiVersions, 0, 3),
    served(ApiKey::CreateTopics, 0, 7),
    served(ApiKey::DeleteTopics, 0, 6),
    served(ApiKey::InitProducerId, 0, 4),
    served(ApiKey::DescribeConfigs, 0, 4),
    served(ApiKey::AlterConfigs, 0, 2),
    served(ApiKey::IncrementalAlterConfigs, 0, 1),
    served(ApiKey::CreatePartitions, 0, 3),
    served(ApiKey::DeleteRecords, 0, 2),
    served(ApiKey::DescribeLogDirs, 0, 4),
    served(ApiKey::DescribeCluster, 0, 1),
    served(ApiKey::DescribeQuorum, 0, 2),
    served(ApiKey::OffsetForLeaderEpoch, 0, 4),
    served(ApiKey::ElectLeaders, 0, 2),
    served(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    served(ApiKey::ConsumerGroupDescribe, 0, 1),
    // ACLs (docs/security/acls.md); v1 on, as Kafka 4 (KIP-896).
    served(ApiKey::DescribeAcls, 1, 3),
    served(ApiKey::CreateAcls, 1, 3),
    served(ApiKey::DeleteAcls, 1, 3),
    // SASL (server/handlers/sasl_*.rs). SaslHandshake v0 (raw tokens
    // after the handshake, pre-1.0 Java clients) is not served.
    served(ApiKey::SaslHandshake, 1, 1),
    served(ApiKey::SaslAuthenticate, 0, 2),
    served(ApiKey::AlterUserScramCredentials, 0, 0),
    served(ApiKey::DescribeUserScramCredentials, 0, 0),
];

pub fn served_api(key: ApiKey) -> Option<&'static ServedApi> {
    SERVED_APIS.iter().find(|api| api.key == key)
}

pub fn is_served(key: ApiKey, version: i16) -> bool {
    served_api(key).is_some_and(|api| (api.min_version..=api.max_version).contains(&version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_range_is_one_the_codec_knows() {
        for api in SERVED_APIS {
            let codec = api.key.valid_versions();
            assert!(
                api.min_version >= codec.min && api.max_version <= codec.max,
                "{:?}",
                api.key
            );
            assert!(api.min_version <= api.max_version);
        }
    }
}
