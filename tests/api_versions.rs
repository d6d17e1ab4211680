//! The broker advertises exactly what it implements: every advertised API is
//! one this suite knows how to exercise, and every advertised version of
//! every API answers a well-formed request with a response that decodes at
//! that version, with nothing left over and no error.

mod common;

use std::collections::BTreeSet;
use std::panic::{self, AssertUnwindSafe};

use bytes::Bytes;
use common::raw::{code, now_ms, simple_batch, str_bytes, topic_name, ApiVersions, Conn};
use common::{Broker, BrokerOptions};
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, CreatePartitionsRequest, CreatePartitionsResponse,
    DeleteGroupsRequest, DeleteGroupsResponse, DeleteRecordsRequest, DeleteRecordsResponse,
    DescribeClusterRequest, DescribeClusterResponse, DescribeConfigsRequest,
    DescribeConfigsResponse, DescribeGroupsRequest, DescribeGroupsResponse, DescribeLogDirsRequest,
    DescribeLogDirsResponse, DescribeQuorumRequest, DescribeQuorumResponse, GroupId,
    HeartbeatRequest, HeartbeatResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest,
    OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, CreateTopicsRequest,
    CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse, FetchRequest, FetchResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, InitProducerIdRequest, InitProducerIdResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse, ProducerId, TopicName,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;

const TOPIC: &str = "api-versions";

/// The APIs the broker serves (DESIGN: ApiVersions advertises exactly these).
const SERVED: [ApiKey; 38] = [
    ApiKey::ApiVersions,
    ApiKey::Metadata,
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::InitProducerId,
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::SyncGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::ListGroups,
    ApiKey::DescribeGroups,
    ApiKey::OffsetDelete,
    ApiKey::DeleteGroups,
    ApiKey::DescribeConfigs,
    ApiKey::AlterConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::CreatePartitions,
    ApiKey::DeleteRecords,
    ApiKey::DescribeLogDirs,
    ApiKey::DescribeCluster,
    ApiKey::DescribeQuorum,
    ApiKey::OffsetForLeaderEpoch,
    ApiKey::ElectLeaders,
    ApiKey::ConsumerGroupHeartbeat,
    ApiKey::ConsumerGroupDescribe,
    ApiKey::CreateAcls,
    ApiKey::DescribeAcls,
    ApiKey::DeleteAcls,
    ApiKey::AlterUserScramCredentials,
    ApiKey::DescribeUserScramCredentials,
    ApiKey::SaslHandshake,
    ApiKey::SaslAuthenticate,
];

struct Probe {
    conn: Conn,
    advertised: ApiVersions,
    topic_id: uuid::Uuid,
    /// Records produced so far to partition 0 of `TOPIC` (one per request).
    produced: i64,
    port: i32,
}

#[test]
fn every_advertised_version_answers() {
    // No initial rebalance delay, so a lone member's join completes at once.
    let broker = Broker::start_with(
        BrokerOptions::default().override_config("group.initial.rebalance.delay.ms", "0"),
    );
    broker.create_topic(TOPIC, 1, &[]);
    let mut conn = Conn::connect(broker.addr());
    let advertised = conn.api_versions();

    let served: BTreeSet<i16> = SERVED.iter().map(|k| *k as i16).collect();
    let listed: BTreeSet<i16> = advertised.0.keys().copied().collect();
    assert_eq!(
        listed, served,
        "advertised API keys differ from the served set (add a check here for any new API)"
    );
    for (&key, &(min, max)) in &advertised.0 {
        let api = ApiKey::try_from(key).expect("known api key");
        let known = api.valid_versions();
        assert!(min <= max, "{api:?}: advertised {min}..{max}");
        assert!(
            known.min <= min && max <= known.max,
            "{api:?}: advertised {min}..{max}, the Kafka protocol defines {known}"
        );
    }
    // What librdkafka needs to send v2 record batches, and Kafka's own floor.
    assert!(advertised.range(ApiKey::Produce).1 >= 3);
    assert!(advertised.range(ApiKey::Fetch).1 >= 4);
    assert_eq!(advertised.range(ApiKey::ApiVersions).0, 0);
    assert!(advertised.range(ApiKey::ApiVersions).1 >= 3);

    let mut probe = Probe {
        conn,
        advertised: advertised.clone(),
        topic_id: uuid::Uuid::nil(),
        produced: 0,
        port: i32::from(broker.port),
    };
    // Metadata first (it learns the topic id), then Produce before Fetch.
    // Group APIs after FindCoordinator, which creates the offsets topic.
    let order = SERVED;
    // Every version is checked even after one fails, so one run lists all
    // the mismatches; a failed check may have closed the connection.
    let mut failures = Vec::new();
    for api in order {
        let (min, max) = advertised.range(api);
        for version in min..=max {
            let result = panic::catch_unwind(AssertUnwindSafe(|| probe.check(api, version)));
            if let Err(cause) = result {
                let text = cause
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| cause.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("{api:?} v{version}: {text}"));
                probe.conn = Conn::connect(broker.addr());
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} advertised versions failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

impl Probe {
    fn check(&mut self, api: ApiKey, version: i16) {
        match api {
            ApiKey::ApiVersions => self.api_versions(version),
            ApiKey::Metadata => self.metadata(version),
            ApiKey::Produce => self.produce(version),
            ApiKey::Fetch => self.fetch(version),
            ApiKey::ListOffsets => self.list_offsets(version),
            ApiKey::CreateTopics => {
                self.create_topic(version, &format!("av-create-v{version}"));
            }
            ApiKey::DeleteTopics => self.delete_topics(version),
            ApiKey::InitProducerId => self.init_producer_id(version),
            ApiKey::FindCoordinator => self.find_coordinator(version),
            ApiKey::JoinGroup => {
                let group = format!("av-join-v{version}");
                self.join(version, &group);
            }
            ApiKey::SyncGroup => self.sync_group(version),
            ApiKey::Heartbeat => self.heartbeat(version),
            ApiKey::LeaveGroup => self.leave_group(version),
            ApiKey::OffsetCommit => {
                let group = format!("av-commit-v{version}");
                self.commit(version, &group);
            }
            ApiKey::OffsetFetch => self.offset_fetch(version),
            ApiKey::ListGroups => self.list_groups(version),
            ApiKey::DescribeGroups => self.describe_groups(version),
            ApiKey::OffsetDelete => self.offset_delete(version),
            ApiKey::DeleteGroups => self.delete_groups(version),
            ApiKey::DescribeConfigs => self.describe_configs(version),
            ApiKey::AlterConfigs => self.alter_configs(version),
            ApiKey::IncrementalAlterConfigs => self.incremental_alter_configs(version),
            ApiKey::CreatePartitions => self.create_partitions(version),
            ApiKey::DeleteRecords => self.delete_records(version),
            ApiKey::DescribeLogDirs => self.describe_log_dirs(version),
            ApiKey::DescribeCluster => self.describe_cluster(version),
            ApiKey::DescribeQuorum => self.describe_quorum(version),
            ApiKey::OffsetForLeaderEpoch => self.offset_for_leader_epoch(version),
            ApiKey::ElectLeaders => self.elect_leaders(version),
            ApiKey::ConsumerGroupHeartbeat => {
                self.consumer_join(version, &format!("av-cgh-v{version}"));
            }
            ApiKey::ConsumerGroupDescribe => self.consumer_group_describe(version),
            ApiKey::CreateAcls | ApiKey::DescribeAcls | ApiKey::DeleteAcls => {
                self.acls_without_authorizer(api, version)
            }
            ApiKey::AlterUserScramCredentials => self.alter_user_scram_credentials(version),
            ApiKey::DescribeUserScramCredentials => self.describe_user_scram_credentials(version),
            ApiKey::SaslHandshake => self.sasl_handshake(version),
            ApiKey::SaslAuthenticate => self.sasl_authenticate(version),
            other => panic!("no check for {other:?}"),
        }
    }

    fn api_versions(&mut self, version: i16) {
        let mut request = ApiVersionsRequest::default();
        if version >= 3 {
            request = request
                .with_client_software_name(str_bytes("corelog-tests"))
                .with_client_software_version(str_bytes("0.1"));
        }
        let response: ApiVersionsResponse = self.conn.call(version, &request);
        assert_eq!(response.error_code, code::NONE, "ApiVersions v{version}");
        let listed: ApiVersions = ApiVersions(
            response
                .api_keys
                .iter()
                .map(|k| (k.api_key, (k.min_version, k.max_version)))
                .collect(),
        );
        assert_eq!(
            listed.0, self.advertised.0,
            "ApiVersions v{version} lists different versions than v3"
        );
    }

    fn metadata(&mut self, version: i16) {
        let mut request = MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(TOPIC))),
        ]));
        if version >= 4 {
            request = request.with_allow_auto_topic_creation(false);
        }
        let response: MetadataResponse = self.conn.call(version, &request);
        let what = format!("Metadata v{version}");
        if version >= 13 {
            assert_eq!(response.error_code, code::NONE, "{what}: error");
        }
        assert_eq!(response.brokers.len(), 1, "{what}: brokers");
        let broker = &response.brokers[0];
        assert_eq!(broker.host.as_str(), "127.0.0.1", "{what}: broker host");
        assert_eq!(broker.port, self.port, "{what}: broker port");
        assert_eq!(response.topics.len(), 1, "{what}: topics");
        let topic = &response.topics[0];
        assert_eq!(topic.error_code, code::NONE, "{what}: topic error");
        assert_eq!(topic.name.as_ref().map(|n| n.0.as_str()), Some(TOPIC));
        assert_eq!(topic.partitions.len(), 1, "{what}: partitions");
        let partition = &topic.partitions[0];
        assert_eq!(partition.error_code, code::NONE, "{what}: partition error");
        assert_eq!(partition.leader_id, broker.node_id, "{what}: leader");
        if version >= 10 {
            assert!(!topic.topic_id.is_nil(), "{what}: nil topic id");
            if !self.topic_id.is_nil() {
                assert_eq!(topic.topic_id, self.topic_id, "{what}: topic id changed");
            }
            self.topic_id = topic.topic_id;
        }
    }

    fn produce(&mut self, version: i16) {
        let prefix = format!("produce-v{version}");
        // v0-v2 carry the old message sets their clients send (magic 0,
        // magic 1 from v2), up-converted by the broker.
        let batch = match version {
            0 | 1 => common::raw::legacy_message_set(0, &prefix, 1, 50, now_ms()),
            2 => common::raw::legacy_message_set(1, &prefix, 1, 50, now_ms()),
            _ => simple_batch(&prefix, 1, 50, now_ms()),
        };
        let mut topic =
            TopicProduceData::default().with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch))]);
        if version >= 13 {
            assert!(
                !self.topic_id.is_nil(),
                "Produce v{version} needs a topic id"
            );
            topic = topic.with_topic_id(self.topic_id);
        } else {
            topic = topic.with_name(topic_name(TOPIC));
        }
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(10_000)
            .with_topic_data(vec![topic]);
        let response: ProduceResponse = self.conn.call(version, &request);
        let what = format!("Produce v{version}");
        assert_eq!(response.responses.len(), 1, "{what}: topics");
        let topic = &response.responses[0];
        if version >= 13 {
            assert_eq!(topic.topic_id, self.topic_id, "{what}: topic id");
        } else {
            assert_eq!(topic.name.0.as_str(), TOPIC, "{what}: topic name");
        }
        let partition = &topic.partition_responses[0];
        assert_eq!(partition.error_code, code::NONE, "{what}: error");
        assert_eq!(partition.base_offset, self.produced, "{what}: base offset");
        self.produced += 1;
    }

    fn fetch(&mut self, version: i16) {
        assert!(self.produced > 0, "Fetch checks need produced data");
        let mut topic = FetchTopic::default().with_partitions(vec![FetchPartition::default()
            .with_partition(0)
            .with_fetch_offset(0)
            .with_partition_max_bytes(1 << 20)]);
        if version >= 13 {
            topic = topic.with_topic_id(self.topic_id);
        } else {
            topic = topic.with_topic(topic_name(TOPIC));
        }
        let mut request = FetchRequest::default()
            .with_max_wait_ms(100)
            .with_min_bytes(1)
            .with_topics(vec![topic]);
        if version >= 3 {
            request = request.with_max_bytes(4 << 20);
        }
        if version <= 14 {
            request = request.with_replica_id(BrokerId(-1));
        }
        let response: FetchResponse = self.conn.call(version, &request);
        let what = format!("Fetch v{version}");
        if version >= 7 {
            assert_eq!(response.error_code, code::NONE, "{what}: error");
        }
        assert_eq!(response.responses.len(), 1, "{what}: topics");
        let topic = &response.responses[0];
        if version >= 13 {
            assert_eq!(topic.topic_id, self.topic_id, "{what}: topic id");
        } else {
            assert_eq!(topic.topic.0.as_str(), TOPIC, "{what}: topic name");
        }
        let partition = &topic.partitions[0];
        assert_eq!(partition.error_code, code::NONE, "{what}: partition error");
        assert_eq!(
            partition.high_watermark, self.produced,
            "{what}: high watermark"
        );
        let mut records = partition.records.clone().unwrap_or_default();
        assert!(!records.is_empty(), "{what}: no records");
        let first_version = self.advertised.range(ApiKey::Produce).0;
        let expected = common::raw::padded_value(&format!("produce-v{first_version}"), 0, 50);
        if version <= 3 {
            // Old message sets: magic 0 before v2, magic 1 for v2-v3, every
            // record produced so far, in order.
            let messages = common::raw::decode_legacy(&records);
            let magic = if version < 2 { 0 } else { 1 };
            assert_eq!(messages.len() as i64, self.produced, "{what}: messages");
            for (i, m) in messages.iter().enumerate() {
                assert_eq!(
                    (m.offset, m.magic),
                    (i as i64, magic),
                    "{what}: message {i}"
                );
                assert_eq!(m.timestamp.is_some(), magic == 1, "{what}: timestamp");
            }
            assert_eq!(messages[0].value.as_deref(), Some(&expected[..]), "{what}");
            return;
        }
        let first = RecordBatchDecoder::decode(&mut records)
            .unwrap_or_else(|e| panic!("{what}: decode fetched batch: {e}"));
        assert_eq!(first.records[0].offset, 0, "{what}: first offset");
        assert_eq!(
            first.records[0].value.as_deref(),
            Some(&expected[..]),
            "{what}: first record"
        );
    }

    fn list_offsets(&mut self, version: i16) {
        let what = format!("ListOffsets v{version}");
        assert_eq!(
            self.conn.list_offset(version, TOPIC, 0, -1),
            (code::NONE, self.produced),
            "{what}: latest"
        );
        assert_eq!(
            self.conn.list_offset(version, TOPIC, 0, -2),
            (code::NONE, 0),
            "{what}: earliest"
        );
        // A partition named twice (here in one topic entry and again in a
        // second entry of the same topic) is refused at every place, as
        // Kafka does from v1 on; the other partitions are answered.
        let entry = |partitions: &[i32]| {
            ListOffsetsTopic::default()
                .with_name(topic_name(TOPIC))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|&p| {
                            ListOffsetsPartition::default()
                                .with_partition_index(p)
                                .with_timestamp(-1)
                        })
                        .collect(),
                )
        };
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![entry(&[0, 7, 0]), entry(&[0])]);
        let response: ListOffsetsResponse = self.conn.call(version, &request);
        let codes: Vec<Vec<(i32, i16)>> = response
            .topics
            .iter()
            .map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (p.partition_index, p.error_code))
                    .collect()
            })
            .collect();
        let repeated = if version >= 1 {
            code::INVALID_REQUEST
        } else {
            code::NONE
        };
        assert_eq!(
            codes,
            vec![
                vec![
                    (0, repeated),
                    (7, code::UNKNOWN_TOPIC_OR_PARTITION),
                    (0, repeated)
                ],
                vec![(0, repeated)],
            ],
            "{what}: a partition named twice"
        );
    }

    fn create_topic(&mut self, version: i16, name: &str) {
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(topic_name(name))
                .with_num_partitions(2)
                .with_replication_factor(1)]);
        let response: CreateTopicsResponse = self.conn.call(version, &request);
        let what = format!("CreateTopics v{version}");
        assert_eq!(response.topics.len(), 1, "{what}: topics");
        let topic = &response.topics[0];
        assert_eq!(
            topic.error_code,
            code::NONE,
            "{what}: error {:?}",
            topic.error_message
        );
        assert_eq!(topic.name.0.as_str(), name, "{what}: name");
        if version >= 5 {
            assert_eq!(topic.num_partitions, 2, "{what}: partitions");
        }
        if version >= 7 {
            assert!(!topic.topic_id.is_nil(), "{what}: nil topic id");
        }
    }

    fn delete_topics(&mut self, version: i16) {
        let name = format!("av-delete-v{version}");
        let create_version = self.advertised.range(ApiKey::CreateTopics).1;
        self.create_topic(create_version, &name);
        let mut request = DeleteTopicsRequest::default().with_timeout_ms(10_000);
        if version >= 6 {
            request = request.with_topics(vec![
                DeleteTopicState::default().with_name(Some(topic_name(&name)))
            ]);
        } else {
            request = request.with_topic_names(vec![topic_name(&name)]);
        }
        let response: DeleteTopicsResponse = self.conn.call(version, &request);
        let what = format!("DeleteTopics v{version}");
        assert_eq!(response.responses.len(), 1, "{what}: topics");
        assert_eq!(
            response.responses[0].error_code,
            code::NONE,
            "{what}: error"
        );

        // Gone: Metadata (without auto-creation) no longer knows it.
        let metadata_version = self.advertised.range(ApiKey::Metadata).1.max(4);
        let request = MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic_name(&name)))
            ]))
            .with_allow_auto_topic_creation(false);
        let metadata: MetadataResponse = self.conn.call(metadata_version, &request);
        assert_eq!(
            metadata.topics[0].error_code,
            code::UNKNOWN_TOPIC_OR_PARTITION,
            "{what}: topic still listed after deletion"
        );
    }

    fn init_producer_id(&mut self, version: i16) {
        let mut request = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(60_000);
        if version >= 3 {
            request = request
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
        }
        let response: InitProducerIdResponse = self.conn.call(version, &request);
        let what = format!("InitProducerId v{version}");
        assert_eq!(response.error_code, code::NONE, "{what}: error");
        assert!(response.producer_id.0 >= 0, "{what}: producer id");
        assert!(response.producer_epoch >= 0, "{what}: epoch");
    }

    fn find_coordinator(&mut self, version: i16) {
        let mut request = FindCoordinatorRequest::default();
        if version >= 4 {
            request = request.with_coordinator_keys(vec![str_bytes("some-group")]);
        } else {
            request = request.with_key(str_bytes("some-group"));
        }
        let response: FindCoordinatorResponse = self.conn.call(version, &request);
        let what = format!("FindCoordinator v{version}");
        let error = if version >= 4 {
            assert_eq!(response.coordinators.len(), 1, "{what}: coordinators");
            response.coordinators[0].error_code
        } else {
            response.error_code
        };
        // Consumer groups are not served yet: COORDINATOR_NOT_AVAILABLE.
        assert!(
            error == code::COORDINATOR_NOT_AVAILABLE || error == code::NONE,
            "{what}: error {error}"
        );
    }

    fn max(&self, api: ApiKey) -> i16 {
        self.advertised.range(api).1
    }

    /// A KIP-848 member joins `group` alone (v0: the broker names it) and
    /// gets every partition of `TOPIC`; returns (member id, epoch).
    fn consumer_join(&mut self, version: i16, group: &str) -> (String, i32) {
        let member = if version == 0 { "" } else { "av-member" };
        let request = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(str_bytes(group)))
            .with_member_id(str_bytes(member))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(vec![topic_name(TOPIC)]))
            .with_topic_partitions(Some(vec![]));
        let response: ConsumerGroupHeartbeatResponse = self.conn.call(version, &request);
        let what = format!("ConsumerGroupHeartbeat v{version}");
        assert_eq!(
            response.error_code,
            code::NONE,
            "{what}: {:?}",
            response.error_message
        );
        let member_id = response.member_id.expect("a member id").to_string();
        assert!(!member_id.is_empty(), "{what}: member id");
        assert!(response.member_epoch >= 1, "{what}: epoch");
        let assignment = response.assignment.expect("an assignment when joining");
        assert_eq!(assignment.topic_partitions.len(), 1, "{what}: assignment");
        assert_eq!(assignment.topic_partitions[0].topic_id, self.topic_id);
        (member_id, response.member_epoch)
    }

    /// The ACL APIs of a broker with no authorizer answer
    /// SECURITY_DISABLED, as Kafka's (tests/acls.rs checks them with one).
    fn acls_without_authorizer(&mut self, api: ApiKey, version: i16) {
        const SECURITY_DISABLED: i16 = 54;
        let what = format!("{api:?} v{version}");
        let code = match api {
            ApiKey::CreateAcls => {
                let request =
                    CreateAclsRequest::default().with_creations(vec![AclCreation::default()
                        .with_resource_type(2)
                        .with_resource_name(str_bytes("t"))
                        .with_principal(str_bytes("User:alice"))
                        .with_host(str_bytes("*"))
                        .with_operation(3)
                        .with_permission_type(3)]);
                let response: CreateAclsResponse = self.conn.call(version, &request);
                response.results[0].error_code
            }
            ApiKey::DescribeAcls => {
                let request = DescribeAclsRequest::default()
                    .with_resource_type_filter(1)
                    .with_operation(1)
                    .with_permission_type(1);
                let response: DescribeAclsResponse = self.conn.call(version, &request);
                response.error_code
            }
            _ => {
                let request =
                    DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
                        .with_resource_type_filter(1)
                        .with_operation(1)
                        .with_permission_type(1)]);
                let response: DeleteAclsResponse = self.conn.call(version, &request);
                response.filter_results[0].error_code
            }
        };
        assert_eq!(code, SECURITY_DISABLED, "{what}");
    }

    fn consumer_group_describe(&mut self, version: i16) {
        let group = format!("av-cgd-v{version}");
        let (member, epoch) = self.consumer_join(self.max(ApiKey::ConsumerGroupHeartbeat), &group);
        let request = ConsumerGroupDescribeRequest::default()
            .with_group_ids(vec![GroupId(str_bytes(&group))]);
        let response: ConsumerGroupDescribeResponse = self.conn.call(version, &request);
        let what = format!("ConsumerGroupDescribe v{version}");
        let g = &response.groups[0];
        assert_eq!(g.error_code, code::NONE, "{what}: error");
        assert_eq!(g.group_state.as_str(), "Stable", "{what}: state");
        assert_eq!(g.members.len(), 1, "{what}: members");
        assert_eq!(g.members[0].member_id.as_str(), member, "{what}: member");
        assert_eq!(g.members[0].member_epoch, epoch, "{what}: epoch");
    }

    fn alter_user_scram_credentials(&mut self, version: i16) {
        use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
        let request = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
            ScramCredentialUpsertion::default()
                .with_name(str_bytes("av-user"))
                .with_mechanism(1)
                .with_iterations(4096)
                .with_salt(Bytes::from_static(b"0123456789abcdef"))
                .with_salted_password(Bytes::from(vec![7u8; 32])),
        ]);
        let response: AlterUserScramCredentialsResponse = self.conn.call(version, &request);
        let what = format!("AlterUserScramCredentials v{version}");
        assert_eq!(response.results.len(), 1, "{what}");
        assert_eq!(
            response.results[0].error_code,
            code::NONE,
            "{what}: {:?}",
            response.results[0].error_message
        );
    }

    fn describe_user_scram_credentials(&mut self, version: i16) {
        let request = DescribeUserScramCredentialsRequest::default().with_users(None);
        let response: DescribeUserScramCredentialsResponse = self.conn.call(version, &request);
        let what = format!("DescribeUserScramCredentials v{version}");
        assert_eq!(response.error_code, code::NONE, "{what}");
        let user = response
            .results
            .iter()
            .find(|r| r.user.as_str() == "av-user")
            .unwrap_or_else(|| panic!("{what}: av-user not listed"));
        assert_eq!(user.credential_infos.len(), 1, "{what}");
        assert_eq!(user.credential_infos[0].iterations, 4096, "{what}");
    }

    /// On this PLAINTEXT listener, Kafka's answer: ILLEGAL_SASL_STATE (34),
    /// and the connection stays open.
    fn sasl_handshake(&mut self, version: i16) {
        let request = SaslHandshakeRequest::default().with_mechanism(str_bytes("PLAIN"));
        let response: SaslHandshakeResponse = self.conn.call(version, &request);
        assert_eq!(response.error_code, 34, "SaslHandshake v{version}");
    }

    fn sasl_authenticate(&mut self, version: i16) {
        let request = SaslAuthenticateRequest::default()
            .with_auth_bytes(Bytes::from_static(b"\0user\0password"));
        let response: SaslAuthenticateResponse = self.conn.call(version, &request);
        assert_eq!(response.error_code, 34, "SaslAuthenticate v{version}");
    }

    /// Joins `group` alone at `version` (with the MEMBER_ID_REQUIRED round
    /// trip from v4) and syncs; returns (member id, generation).
    fn join(&mut self, version: i16, group: &str) -> (StrBytes, i32) {
        let what = format!("JoinGroup v{version}");
        let protocol = JoinGroupRequestProtocol::default()
            .with_name(str_bytes("range"))
            .with_metadata(Bytes::from_static(b"\x00\x00\x00\x00\x00\x00\x00\x00"));
        let mut request = JoinGroupRequest::default()
            .with_group_id(GroupId(str_bytes(group)))
            .with_session_timeout_ms(30_000)
            .with_member_id(str_bytes(""))
            .with_protocol_type(str_bytes("consumer"))
            .with_protocols(vec![protocol]);
        if version >= 1 {
            request = request.with_rebalance_timeout_ms(30_000);
        }
        let mut response: JoinGroupResponse = self.conn.call(version, &request);
        if version >= 4 && response.error_code == code::MEMBER_ID_REQUIRED {
            request = request.with_member_id(response.member_id.clone());
            response = self.conn.call(version, &request);
        }
        assert_eq!(response.error_code, code::NONE, "{what}: error");
        assert!(!response.member_id.is_empty(), "{what}: member id");
        assert_eq!(
            response.leader, response.member_id,
            "{what}: a lone member leads"
        );
        let member = response.member_id.clone();
        let generation = response.generation_id;
        let sync_version = self.max(ApiKey::SyncGroup);
        self.sync(sync_version, group, &member, generation);
        (member, generation)
    }

    fn sync(&mut self, version: i16, group: &str, member: &StrBytes, generation: i32) {
        let what = format!("SyncGroup v{version}");
        let mut request = SyncGroupRequest::default()
            .with_group_id(GroupId(str_bytes(group)))
            .with_generation_id(generation)
            .with_member_id(member.clone())
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(member.clone())
                .with_assignment(Bytes::from_static(b"assignment"))]);
        if version >= 5 {
            request = request
                .with_protocol_type(Some(str_bytes("consumer")))
                .with_protocol_name(Some(str_bytes("range")));
        }
        let response: SyncGroupResponse = self.conn.call(version, &request);
        assert_eq!(response.error_code, code::NONE, "{what}: error");
        assert_eq!(
            &response.assignment[..],
            b"assignment",
            "{what}: assignment"
        );
    }

    fn sync_group(&mut self, version: i16) {
        let group = format!("av-sync-v{version}");
        let (member, generation) = self.join(self.max(ApiKey::JoinGroup), &group);
        self.sync(version, &group, &member, generation);
    }

    fn heartbeat(&mut self, version: i16) {
        let group = format!("av-heartbeat-v{version}");
        let (member, generation) = self.join(self.max(ApiKey::JoinGroup), &group);
        let request = HeartbeatRequest::default()
            .with_group_id(GroupId(str_bytes(&group)))
            .with_generation_id(generation)
            .with_member_id(member);
        let response: HeartbeatResponse = self.conn.call(version, &request);
        assert_eq!(
            response.error_code,
            code::NONE,
            "Heartbeat v{version}: error"
        );
    }

    fn leave_group(&mut self, version: i16) {
        let group = format!("av-leave-v{version}");
        let (member, _) = self.join(self.max(ApiKey::JoinGroup), &group);
        let mut request = LeaveGroupRequest::default().with_group_id(GroupId(str_bytes(&group)));
        request = if version >= 3 {
            request.with_members(vec![MemberIdentity::default().with_member_id(member)])
        } else {
            request.with_member_id(member)
        };
        let response: LeaveGroupResponse = self.conn.call(version, &request);
        let what = format!("LeaveGroup v{version}");
        assert_eq!(response.error_code, code::NONE, "{what}: error");
        if version >= 3 {
            assert_eq!(response.members.len(), 1, "{what}: members");
            assert_eq!(
                response.members[0].error_code,
                code::NONE,
                "{what}: member error"
            );
        }
    }

    /// Commits offset 0 of TOPIC-0 for `group` as a simple (non-member) consumer.
    fn commit(&mut self, version: i16, group: &str) {
        let partition = OffsetCommitRequestPartition::default()
            .with_partition_index(0)
            .with_committed_offset(0);
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(str_bytes(group)))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(str_bytes(""))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(topic_name(TOPIC))
                .with_partitions(vec![partition])]);
        let response: OffsetCommitResponse = self.conn.call(version, &request);
        let what = format!("OffsetCommit v{version}");
        assert_eq!(response.topics.len(), 1, "{what}: topics");
        assert_eq!(
            response.topics[0].partitions[0].error_code,
            code::NONE,
            "{what}: error"
        );
    }

    fn offset_fetch(&mut self, version: i16) {
        let group = format!("av-fetch-v{version}");
        self.commit(self.max(ApiKey::OffsetCommit), &group);
        let what = format!("OffsetFetch v{version}");
        if version >= 8 {
            let request =
                OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                    .with_group_id(GroupId(str_bytes(&group)))
                    .with_topics(None)]);
            let response: OffsetFetchResponse = self.conn.call(version, &request);
            assert_eq!(response.groups.len(), 1, "{what}: groups");
            assert_eq!(response.groups[0].error_code, code::NONE, "{what}: error");
            assert_eq!(
                response.groups[0].topics[0].partitions[0].committed_offset, 0,
                "{what}: offset"
            );
        } else {
            let request = OffsetFetchRequest::default()
                .with_group_id(GroupId(str_bytes(&group)))
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(topic_name(TOPIC))
                    .with_partition_indexes(vec![0])]));
            let response: OffsetFetchResponse = self.conn.call(version, &request);
            assert_eq!(response.error_code, code::NONE, "{what}: error");
            assert_eq!(
                response.topics[0].partitions[0].committed_offset, 0,
                "{what}: offset"
            );
        }
    }

    fn list_groups(&mut self, version: i16) {
        let response: ListGroupsResponse = self.conn.call(version, &ListGroupsRequest::default());
        assert_eq!(
            response.error_code,
            code::NONE,
            "ListGroups v{version}: error"
        );
    }

    fn describe_groups(&mut self, version: i16) {
        let group = format!("av-describe-v{version}");
        self.join(self.max(ApiKey::JoinGroup), &group);
        let request =
            DescribeGroupsRequest::default().with_groups(vec![GroupId(str_bytes(&group))]);
        let response: DescribeGroupsResponse = self.conn.call(version, &request);
        let what = format!("DescribeGroups v{version}");
        assert_eq!(response.groups[0].error_code, code::NONE, "{what}: error");
        assert_eq!(response.groups[0].members.len(), 1, "{what}: members");
    }

    fn offset_delete(&mut self, version: i16) {
        let group = format!("av-offset-delete-v{version}");
        self.commit(self.max(ApiKey::OffsetCommit), &group);
        let request = OffsetDeleteRequest::default()
            .with_group_id(GroupId(str_bytes(&group)))
            .with_topics(vec![OffsetDeleteRequestTopic::default()
                .with_name(topic_name(TOPIC))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(0)
                ])]);
        let response: OffsetDeleteResponse = self.conn.call(version, &request);
        let what = format!("OffsetDelete v{version}");
        assert_eq!(response.error_code, code::NONE, "{what}: error");
        assert_eq!(
            response.topics[0].partitions[0].error_code,
            code::NONE,
            "{what}: partition error"
        );
    }

    fn delete_groups(&mut self, version: i16) {
        let group = format!("av-delete-group-v{version}");
        self.commit(self.max(ApiKey::OffsetCommit), &group);
        let request =
            DeleteGroupsRequest::default().with_groups_names(vec![GroupId(str_bytes(&group))]);
        let response: DeleteGroupsResponse = self.conn.call(version, &request);
        assert_eq!(
            response.results[0].error_code,
            code::NONE,
            "DeleteGroups v{version}: error"
        );
    }

    fn describe_configs(&mut self, version: i16) {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(str_bytes(TOPIC))
                .with_configuration_keys(None),
        ]);
        let response: DescribeConfigsResponse = self.conn.call(version, &request);
        let what = format!("DescribeConfigs v{version}");
        assert_eq!(response.results[0].error_code, code::NONE, "{what}: error");
        assert!(
            response.results[0]
                .configs
                .iter()
                .any(|c| c.name.as_str() == "retention.ms"),
            "{what}: retention.ms listed"
        );
    }

    fn alter_configs(&mut self, version: i16) {
        let request =
            AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(str_bytes(TOPIC))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(str_bytes("retention.ms"))
                    .with_value(Some(str_bytes("604800000")))])]);
        let response: AlterConfigsResponse = self.conn.call(version, &request);
        assert_eq!(
            response.responses[0].error_code,
            code::NONE,
            "AlterConfigs v{version}: error"
        );
    }

    fn incremental_alter_configs(&mut self, version: i16) {
        use kafka_protocol::messages::incremental_alter_configs_request::{
            AlterConfigsResource as Resource, AlterableConfig as Config,
        };
        let request =
            IncrementalAlterConfigsRequest::default().with_resources(vec![Resource::default()
                .with_resource_type(2)
                .with_resource_name(str_bytes(TOPIC))
                .with_configs(vec![Config::default()
                    .with_name(str_bytes("retention.ms"))
                    .with_config_operation(0)
                    .with_value(Some(str_bytes("604800001")))])]);
        let response: IncrementalAlterConfigsResponse = self.conn.call(version, &request);
        assert_eq!(
            response.responses[0].error_code,
            code::NONE,
            "IncrementalAlterConfigs v{version}: error"
        );
    }

    fn create_partitions(&mut self, version: i16) {
        // create_topic makes 2 partitions; grow to 3.
        let name = format!("av-partitions-v{version}");
        self.create_topic(self.max(ApiKey::CreateTopics), &name);
        let request = CreatePartitionsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic_name(&name))
                .with_count(3)
                .with_assignments(None)]);
        let response: CreatePartitionsResponse = self.conn.call(version, &request);
        assert_eq!(
            response.results[0].error_code,
            code::NONE,
            "CreatePartitions v{version}: error"
        );
    }

    fn delete_records(&mut self, version: i16) {
        let request = DeleteRecordsRequest::default()
            .with_timeout_ms(10_000)
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(topic_name(TOPIC))
                .with_partitions(vec![DeleteRecordsPartition::default()
                    .with_partition_index(0)
                    .with_offset(0)])]);
        let response: DeleteRecordsResponse = self.conn.call(version, &request);
        let what = format!("DeleteRecords v{version}");
        let partition = &response.topics[0].partitions[0];
        assert_eq!(partition.error_code, code::NONE, "{what}: error");
        assert_eq!(partition.low_watermark, 0, "{what}: low watermark");
    }

    fn describe_log_dirs(&mut self, version: i16) {
        let response: DescribeLogDirsResponse = self.conn.call(
            version,
            &DescribeLogDirsRequest::default().with_topics(None),
        );
        let what = format!("DescribeLogDirs v{version}");
        assert_eq!(response.error_code, code::NONE, "{what}: error");
        assert_eq!(response.results.len(), 1, "{what}: one log dir");
        assert!(
            response.results[0]
                .topics
                .iter()
                .any(|t| t.name.0.as_str() == TOPIC),
            "{what}: lists {TOPIC}"
        );
    }

    fn describe_cluster(&mut self, version: i16) {
        let response: DescribeClusterResponse =
            self.conn.call(version, &DescribeClusterRequest::default());
        let what = format!("DescribeCluster v{version}");
        assert_eq!(response.error_code, code::NONE, "{what}: error");
        assert_eq!(response.brokers.len(), 1, "{what}: brokers");
        assert_eq!(response.brokers[0].port, self.port, "{what}: port");
    }

    fn describe_quorum(&mut self, version: i16) {
        use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
        let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
            .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
        let response: DescribeQuorumResponse = self.conn.call(version, &request);
        let what = format!("DescribeQuorum v{version}");
        assert_eq!(response.error_code, code::NONE, "{what}: error");
        let partition = &response.topics[0].partitions[0];
        assert_eq!(
            partition.leader_id.0, 1,
            "{what}: a single node leads itself"
        );
        assert_eq!(partition.current_voters.len(), 1, "{what}: voters");
        assert!(partition.high_watermark > 0, "{what}: high watermark");
    }

    fn offset_for_leader_epoch(&mut self, version: i16) {
        use kafka_protocol::messages::offset_for_leader_epoch_request::{
            OffsetForLeaderPartition, OffsetForLeaderTopic,
        };
        use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
        let mut request = OffsetForLeaderEpochRequest::default();
        if version >= 3 {
            request = request.with_replica_id(kafka_protocol::messages::BrokerId(-1));
        }
        let request = request.with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(vec![
                OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(-1)
                    .with_leader_epoch(0),
                OffsetForLeaderPartition::default()
                    .with_partition(99)
                    .with_leader_epoch(0),
            ])]);
        let response: OffsetForLeaderEpochResponse = self.conn.call(version, &request);
        let what = format!("OffsetForLeaderEpoch v{version}");
        let parts = &response.topics[0].partitions;
        assert_eq!(parts[0].error_code, code::NONE, "{what}: error");
        if version >= 1 {
            assert_eq!(parts[0].leader_epoch, 0, "{what}: epoch");
        }
        assert_eq!(parts[0].end_offset, self.produced, "{what}: end of the log");
        assert_eq!(parts[1].error_code, 3, "{what}: unknown partition");
    }

    fn elect_leaders(&mut self, version: i16) {
        use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
        use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
        let request = ElectLeadersRequest::default()
            .with_election_type(0)
            .with_topic_partitions(Some(vec![TopicPartitions::default()
                .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
                .with_partitions(vec![0])]))
            .with_timeout_ms(10_000);
        let response: ElectLeadersResponse = self.conn.call(version, &request);
        let what = format!("ElectLeaders v{version}");
        assert_eq!(response.error_code, code::NONE, "{what}: error");
        let result = &response.replica_election_results[0].partition_result[0];
        assert_eq!(result.partition_id, 0, "{what}: partition");
        // The only replica already leads: ELECTION_NOT_NEEDED.
        assert_eq!(result.error_code, 84, "{what}: election not needed");
    }
}
