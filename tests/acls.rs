//! ACLs end to end: `corelog acls` adds, lists and removes them; librdkafka
//! clients (and raw requests where the exact error code matters) are
//! allowed or refused as Kafka's StandardAuthorizer would. Clients are
//! `User:ANONYMOUS` (PLAINTEXT), so the ACLs name that principal; other
//! principals' ACLs stand for "an ACL exists, but not for this client".

mod common;

use std::time::Duration;

use common::cluster::{eventually, Cluster};
use common::raw::{str_bytes, topic_name, Conn};
use common::{corelog, Broker, BrokerOptions, Run};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    DeleteTopicsRequest, DescribeConfigsRequest, DescribeConfigsResponse, GroupId,
    OffsetCommitRequest, OffsetCommitResponse,
};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const GROUP_AUTHORIZATION_FAILED: i16 = 30;
const RESOURCE_TOPIC: i8 = 2;

/// A broker with ACL checks on and `extra` configs.
fn secured(extra: &[(&str, &str)]) -> Broker {
    let mut options =
        BrokerOptions::default().override_config("authorizer.class.name", STANDARD_AUTHORIZER);
    for (key, value) in extra {
        options = options.override_config(key, value);
    }
    Broker::start_with(options)
}

/// `corelog acls --bootstrap-server B <args>`.
fn acls(bootstrap: &str, args: &[&str]) -> Run {
    let mut all = vec!["acls", "--bootstrap-server", bootstrap];
    all.extend_from_slice(args);
    corelog(&all, "")
}

fn acls_ok(bootstrap: &str, args: &[&str]) -> Run {
    let run = acls(bootstrap, args);
    assert!(run.success(), "corelog acls {args:?}:\n{run:?}");
    run
}

/// Produces one record with librdkafka: Ok, or the delivery error's text.
fn produce(bootstrap: &str, topic: &str) -> Result<(), String> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("message.timeout.ms", "8000")
        .create()
        .expect("producer");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        producer
            .send(
                FutureRecord::<str, str>::to(topic).payload("v"),
                Timeout::After(Duration::from_secs(10)),
            )
            .await
            .map(|_| ())
            .map_err(|(e, _)| e.to_string())
    })
}

/// Reads `topic` with a librdkafka consumer of a group of its own: Ok once
/// a record arrives, or the first error (an unauthorized subscribed topic
/// is reported as one).
fn consume_one(bootstrap: &str, topic: &str) -> Result<(), String> {
    join_group(bootstrap, &format!("reader-of-{topic}"), topic)
}

/// A raw Fetch of partition 0 of `topic`: the partition's error code (the
/// broker refuses what librdkafka would not even ask for once Metadata
/// refused the topic).
fn fetch_code(broker: &Broker, topic: &str) -> i16 {
    let response = Conn::connect(broker.addr()).fetch(12, topic, 0, 0, 0);
    response.responses[0].partitions[0].error_code
}

fn poll_outcome(consumer: &BaseConsumer) -> Result<(), String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(_)) => return Ok(()),
            Some(Err(e)) => return Err(e.to_string()),
            None => {}
        }
    }
    Err("nothing arrived within 20 s".into())
}

/// Joins group `group` on `topic` with librdkafka: Ok once a record
/// arrives through the subscription, or the first error.
fn join_group(bootstrap: &str, group: &str, topic: &str) -> Result<(), String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    poll_outcome(&consumer)
}

fn is_authorization_error(text: &str) -> bool {
    text.to_ascii_lowercase().contains("authorization failed")
}

/// The topics Metadata lists to this client.
fn listed_topics(bootstrap: &str) -> Vec<String> {
    let run = corelog(&["topics", "--bootstrap-server", bootstrap, "--list"], "");
    assert!(run.success(), "{run:?}");
    run.stdout.lines().map(String::from).collect()
}

fn commit(broker: &Broker, group: &str, topics: &[&str]) -> OffsetCommitResponse {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(str_bytes(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(
            topics
                .iter()
                .map(|t| {
                    OffsetCommitRequestTopic::default()
                        .with_name(topic_name(t))
                        .with_partitions(vec![OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(0)])
                })
                .collect(),
        );
    Conn::connect(broker.addr()).call(8, &request)
}

/// The commit's error code per topic.
fn commit_codes(response: &OffsetCommitResponse) -> Vec<(String, i16)> {
    let mut codes: Vec<(String, i16)> = response
        .topics
        .iter()
        .map(|t| (t.name.0.to_string(), t.partitions[0].error_code))
        .collect();
    codes.sort();
    codes
}

fn describe_topic_configs(broker: &Broker, topic: &str) -> i16 {
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(str_bytes(topic))]);
    let response: DescribeConfigsResponse = Conn::connect(broker.addr()).call(4, &request);
    response.results[0].error_code
}

fn delete_topic(broker: &Broker, topic: &str) -> i16 {
    let request = DeleteTopicsRequest::default()
        .with_topic_names(vec![topic_name(topic)])
        .with_timeout_ms(30_000);
    let response = Conn::connect(broker.addr()).call(5, &request);
    response.responses[0].error_code
}

/// With `allow.everyone.if.no.acl.found=true`, resources no ACL names stay
/// open; an ACL for someone else closes a resource to this client, a DENY
/// closes it whatever allows it.
#[test]
fn acls_allow_and_deny_produce_consume_groups_commits_topics_and_configs() {
    let broker = secured(&[("allow.everyone.if.no.acl.found", "true")]);
    let b = broker.bootstrap();
    for topic in ["open", "orders", "mixed", "team-a", "teamx", "doomed"] {
        broker.create_topic(topic, 1, &[]);
    }
    produce(&b, "open").expect("no ACL: open to everyone");

    // An ACL for someone else: this client may no longer use the topic.
    acls_ok(
        &b,
        &[
            "--add",
            "--allow-principal",
            "User:bob",
            "--topic",
            "orders",
        ],
    );
    let denied = produce(&b, "orders").expect_err("Write needs an ACL now");
    assert!(is_authorization_error(&denied), "{denied}");
    let denied = consume_one(&b, "orders").expect_err("Read needs an ACL now");
    assert!(is_authorization_error(&denied), "{denied}");
    assert_eq!(fetch_code(&broker, "orders"), TOPIC_AUTHORIZATION_FAILED);
    assert_eq!(fetch_code(&broker, "open"), 0);
    let topics = listed_topics(&b);
    assert!(!topics.contains(&"orders".to_string()), "{topics:?}");
    assert!(topics.contains(&"open".to_string()), "{topics:?}");
    assert_eq!(
        describe_topic_configs(&broker, "orders"),
        TOPIC_AUTHORIZATION_FAILED
    );
    assert_eq!(describe_topic_configs(&broker, "open"), 0);
    assert_eq!(delete_topic(&broker, "orders"), TOPIC_AUTHORIZATION_FAILED);

    // Granted to this client: allowed again.
    acls_ok(
        &b,
        &[
            "--add",
            "--allow-principal",
            "User:ANONYMOUS",
            "--producer",
            "--topic",
            "orders",
        ],
    );
    produce(&b, "orders").expect("Write granted");
    // Producer rights do not include Read.
    assert_eq!(
        fetch_code(&broker, "orders"),
        TOPIC_AUTHORIZATION_FAILED,
        "no Read"
    );
    consume_one(&b, "open").expect("open topic is read");

    // Deny wins over allow; a denied Write leaves Describe.
    acls_ok(
        &b,
        &[
            "--add",
            "--allow-principal",
            "User:ANONYMOUS",
            "--operation",
            "All",
            "--topic",
            "mixed",
        ],
    );
    acls_ok(
        &b,
        &[
            "--add",
            "--deny-principal",
            "User:ANONYMOUS",
            "--operation",
            "Write",
            "--topic",
            "mixed",
        ],
    );
    let denied = produce(&b, "mixed").expect_err("deny wins");
    assert!(is_authorization_error(&denied), "{denied}");
    assert!(listed_topics(&b).contains(&"mixed".to_string()));

    // Prefixed patterns close every topic starting with the prefix.
    acls_ok(
        &b,
        &[
            "--add",
            "--allow-principal",
            "User:bob",
            "--resource-pattern-type",
            "prefixed",
            "--topic",
            "team-",
        ],
    );
    let topics = listed_topics(&b);
    assert!(!topics.contains(&"team-a".to_string()), "{topics:?}");
    assert!(topics.contains(&"teamx".to_string()), "{topics:?}");
    assert!(produce(&b, "team-a").is_err());
    produce(&b, "teamx").expect("not under the prefix");

    // Groups: a denied Read refuses JoinGroup and OffsetCommit.
    acls_ok(
        &b,
        &[
            "--add",
            "--deny-principal",
            "User:ANONYMOUS",
            "--operation",
            "Read",
            "--group",
            "blocked",
        ],
    );
    let denied = join_group(&b, "blocked", "open").expect_err("JoinGroup refused");
    assert!(is_authorization_error(&denied), "{denied}");
    join_group(&b, "free", "open").expect("a group with no ACL is open");
    assert_eq!(
        commit_codes(&commit(&broker, "blocked", &["open"])),
        vec![("open".to_string(), GROUP_AUTHORIZATION_FAILED)]
    );
    // An allowed group: each topic needs Read ("orders" has producer rights only).
    assert_eq!(
        commit_codes(&commit(&broker, "free", &["open", "orders"])),
        vec![
            ("open".to_string(), 0),
            ("orders".to_string(), TOPIC_AUTHORIZATION_FAILED)
        ]
    );

    // Deleting a topic needs Delete on it.
    acls_ok(
        &b,
        &[
            "--add",
            "--deny-principal",
            "User:ANONYMOUS",
            "--operation",
            "Delete",
            "--topic",
            "doomed",
        ],
    );
    assert_eq!(delete_topic(&broker, "doomed"), TOPIC_AUTHORIZATION_FAILED);
    acls_ok(
        &b,
        &[
            "--remove",
            "--force",
            "--deny-principal",
            "User:ANONYMOUS",
            "--topic",
            "doomed",
        ],
    );
    assert_eq!(delete_topic(&broker, "doomed"), 0);

    // Creating one needs Create on the cluster or the topic: keep this
    // client's rights on the cluster, deny it Create there and on a prefix.
    acls_ok(
        &b,
        &[
            "--add",
            "--allow-principal",
            "User:ANONYMOUS",
            "--operation",
            "Alter",
            "--operation",
            "Describe",
            "--cluster",
        ],
    );
    acls_ok(
        &b,
        &[
            "--add",
            "--deny-principal",
            "User:ANONYMOUS",
            "--operation",
            "Create",
            "--cluster",
        ],
    );
    acls_ok(
        &b,
        &[
            "--add",
            "--deny-principal",
            "User:ANONYMOUS",
            "--operation",
            "Create",
            "--resource-pattern-type",
            "prefixed",
            "--topic",
            "denied-",
        ],
    );
    let refused = broker
        .try_create_topic("denied-new", 1, &[])
        .expect_err("Create denied on the cluster and the topic");
    assert!(refused.contains("TopicAuthorizationFailed"), "{refused}");
    broker
        .try_create_topic("allowed-new", 1, &[])
        .expect("Create allowed on a topic no ACL names");
}

/// The CLI's output is kafka-acls'; what --add adds, --list shows and
/// --remove takes away; the ACLs survive a restart.
#[test]
fn cli_add_list_remove_round_trip_and_acls_survive_restart() {
    let mut broker = secured(&[("super.users", "User:ANONYMOUS")]);
    let b = broker.bootstrap();
    let added = acls_ok(
        &b,
        &[
            "--add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Read",
            "--topic",
            "orders",
            "--group",
            "billing",
        ],
    );
    assert!(
        added.stdout.contains(
            "Adding ACLs for resource `ResourcePattern(resourceType=TOPIC, name=orders, \
             patternType=LITERAL)`: \n \t(principal=User:alice, host=*, operation=READ, \
             permissionType=ALLOW) \n"
        ),
        "{added:?}"
    );
    let listed = acls_ok(&b, &["--list"]);
    let expected = "Current ACLs for resource `ResourcePattern(resourceType=GROUP, name=billing, \
                    patternType=LITERAL)`: \n \t(principal=User:alice, host=*, operation=READ, \
                    permissionType=ALLOW) \n\n\
                    Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name=orders, \
                    patternType=LITERAL)`: \n \t(principal=User:alice, host=*, operation=READ, \
                    permissionType=ALLOW) \n\n";
    assert_eq!(listed.stdout, expected);
    // A list filter by principal and by resource.
    let by_topic = acls_ok(&b, &["--list", "--topic", "orders"]);
    assert!(by_topic.stdout.contains("name=orders"), "{by_topic:?}");
    assert!(!by_topic.stdout.contains("billing"), "{by_topic:?}");
    let by_other = acls_ok(&b, &["--list", "--principal", "User:bob"]);
    assert!(!by_other.stdout.contains("operation="), "{by_other:?}");

    // Kafka's --consumer set.
    acls_ok(
        &b,
        &[
            "--add",
            "--allow-principal",
            "User:carol",
            "--consumer",
            "--topic",
            "payments",
            "--group",
            "pay",
        ],
    );
    let listed = acls_ok(&b, &["--list", "--topic", "payments"]).stdout;
    assert!(
        listed.contains("operation=READ") && listed.contains("operation=DESCRIBE"),
        "{listed}"
    );

    // The super user passes every check whatever denies it.
    broker.create_topic("orders", 1, &[]);
    acls_ok(
        &b,
        &[
            "--add",
            "--deny-principal",
            "User:ANONYMOUS",
            "--topic",
            "orders",
        ],
    );
    produce(&b, "orders").expect("a super user is never denied");

    // Restart without super.users: the ACLs are still there and enforced.
    broker
        .options
        .overrides
        .retain(|(key, _)| key != "super.users");
    broker.restart();
    let b = broker.bootstrap();
    let denied = produce(&b, "orders").expect_err("DENY All for this client");
    assert!(is_authorization_error(&denied), "{denied}");
    // Nothing allows it Describe on the cluster: the ACL APIs refuse it.
    let refused = acls(&b, &["--list"]);
    assert!(!refused.success(), "{refused:?}");
    assert!(
        refused.stderr.contains("authorization failed")
            || refused.stderr.contains("Authorization failed"),
        "{refused:?}"
    );
    // A topic no ACL names: denied by default (allow.everyone.if.no.acl.found=false).
    let denied = produce(&b, "anything").expect_err("no ACL, no access");
    assert!(is_authorization_error(&denied), "{denied}");
    assert!(listed_topics(&b).is_empty());

    // Back with the super user: --remove takes the ACLs away.
    broker
        .options
        .overrides
        .push(("super.users".into(), "User:ANONYMOUS".into()));
    broker.restart();
    let b = broker.bootstrap();
    acls_ok(&b, &["--remove", "--force", "--topic", "orders"]);
    let left = acls_ok(&b, &["--list", "--topic", "orders"]).stdout;
    assert!(!left.contains("operation="), "{left}");
    let left = acls_ok(&b, &["--list"]).stdout;
    assert!(left.contains("name=billing"), "{left}");
}

/// ACL APIs without an authorizer: SECURITY_DISABLED, as Kafka answers;
/// every request is served as before.
#[test]
fn without_an_authorizer_acl_apis_say_security_is_disabled() {
    let broker = Broker::start();
    let b = broker.bootstrap();
    let run = acls(&b, &["--list"]);
    assert!(!run.success(), "{run:?}");
    assert!(
        run.stderr.contains("No Authorizer is configured"),
        "{run:?}"
    );
    broker.create_topic("t", 1, &[]);
    produce(&b, "t").expect("no checks");
}

/// In a cluster an ACL created through one node is enforced by every node
/// (replication keeps working: no ACL names the cluster, and
/// `allow.everyone.if.no.acl.found` lets the brokers' own fetches through).
#[test]
fn an_acl_created_through_one_node_is_enforced_on_every_node() {
    let cluster = Cluster::start_with(
        3,
        0,
        2,
        &[
            &format!("authorizer.class.name={STANDARD_AUTHORIZER}"),
            "allow.everyone.if.no.acl.found=true",
        ],
    );
    for topic in ["visible", "hidden"] {
        eventually(&format!("create {topic}"), Duration::from_secs(30), || {
            match common::cluster::create_topic(&cluster.bootstrap_all(), topic, 1, 3, &[]) {
                Ok(()) => true,
                Err(e) => e.contains("TopicAlreadyExists"),
            }
        });
    }
    // CreateAcls waits for the cluster to finalize the level that stores ACLs.
    eventually("CreateAcls through node 1", Duration::from_secs(30), || {
        acls(
            &cluster.bootstrap(0),
            &[
                "--add",
                "--deny-principal",
                "User:ANONYMOUS",
                "--topic",
                "hidden",
            ],
        )
        .success()
    });
    for i in 0..3 {
        let b = cluster.bootstrap(i);
        eventually(
            &format!("node {} hides the topic", i + 1),
            Duration::from_secs(30),
            || {
                let topics = listed_topics(&b);
                topics.contains(&"visible".to_string()) && !topics.contains(&"hidden".to_string())
            },
        );
        let listed = acls_ok(&b, &["--list", "--topic", "hidden"]).stdout;
        assert!(
            listed.contains("permissionType=DENY"),
            "node {}: {listed}",
            i + 1
        );
    }
    let denied = produce(&cluster.bootstrap_all(), "hidden").expect_err("denied everywhere");
    assert!(is_authorization_error(&denied), "{denied}");
    produce(&cluster.bootstrap_all(), "visible").expect("replicated to 3 with acks=all");
}

/// CreateAcls, DescribeAcls and DeleteAcls at every version: what is
/// created is described and deleted (deletes answer the ACLs they
/// removed); a bad ACL is refused alone with INVALID_REQUEST.
#[test]
fn acl_apis_round_trip_at_every_version() {
    use kafka_protocol::messages::create_acls_request::AclCreation;
    use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
    use kafka_protocol::messages::{
        CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
        DescribeAclsRequest, DescribeAclsResponse,
    };
    const INVALID_REQUEST: i16 = 42;
    let broker = secured(&[("super.users", "User:ANONYMOUS")]);
    let mut conn = Conn::connect(broker.addr());
    for version in 1..=3i16 {
        let name = format!("topic-v{version}");
        // Literal at v1, prefixed after.
        let pattern = if version == 1 { 3 } else { 4 };
        let creation = |name: &str, host: &str| {
            AclCreation::default()
                .with_resource_type(2)
                .with_resource_name(str_bytes(name))
                .with_resource_pattern_type(pattern)
                .with_principal(str_bytes("User:alice"))
                .with_host(str_bytes(host))
                .with_operation(3)
                .with_permission_type(3)
        };
        let created: CreateAclsResponse = conn.call(
            version,
            &CreateAclsRequest::default()
                .with_creations(vec![creation(&name, "*"), creation(&name, "no-ip")]),
        );
        let codes: Vec<i16> = created.results.iter().map(|r| r.error_code).collect();
        assert_eq!(codes, vec![0, INVALID_REQUEST], "CreateAcls v{version}");

        let described: DescribeAclsResponse = conn.call(
            version,
            &DescribeAclsRequest::default()
                .with_resource_type_filter(2)
                .with_resource_name_filter(Some(str_bytes(&name)))
                .with_pattern_type_filter(pattern)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_operation(1)
                .with_permission_type(1),
        );
        assert_eq!(described.error_code, 0, "DescribeAcls v{version}");
        assert_eq!(described.resources.len(), 1, "DescribeAcls v{version}");
        let resource = &described.resources[0];
        assert_eq!(resource.resource_name.as_str(), name);
        assert_eq!(resource.acls.len(), 1);
        assert_eq!(resource.acls[0].principal.as_str(), "User:alice");
        assert_eq!(resource.acls[0].operation, 3);

        let filter = DeleteAclsFilter::default()
            .with_resource_type_filter(2)
            .with_resource_name_filter(Some(str_bytes(&name)))
            .with_pattern_type_filter(pattern)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_operation(1)
            .with_permission_type(1);
        let deleted: DeleteAclsResponse = conn.call(
            version,
            &DeleteAclsRequest::default().with_filters(vec![filter.clone()]),
        );
        assert_eq!(deleted.filter_results[0].error_code, 0);
        let matching = &deleted.filter_results[0].matching_acls;
        assert_eq!(matching.len(), 1, "DeleteAcls v{version}");
        assert_eq!(matching[0].resource_name.as_str(), name);
        let again: DeleteAclsResponse = conn.call(
            version,
            &DeleteAclsRequest::default().with_filters(vec![filter]),
        );
        assert!(again.filter_results[0].matching_acls.is_empty());
    }
}
