//! Configs through the wire, driven by the key table (`config/keys.rs`):
//! every dynamic broker config is set with IncrementalAlterConfigs and
//! described back (value, source, type, documentation); static, unknown and
//! out-of-bounds configs are refused with INVALID_CONFIG; topic configs are
//! described with the table's types and documentation.

mod common;

use common::raw::{code, str_bytes, Conn};
use common::Broker;
use corelog::config::keys::{self, ConfigKey, ConfigType, Valid};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};

const INVALID_CONFIG: i16 = 40;
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_DEFAULT: i8 = 5;
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

/// A value of `key` that is valid and not its default.
fn other_value(key: &ConfigKey) -> String {
    match (key.config_type, key.valid) {
        (ConfigType::Boolean, _) => "true".into(),
        (ConfigType::String, Valid::OneOf(words)) => words[1].into(),
        (_, Valid::Range(min, _)) => (min.max(0) + 7).to_string(),
        other => panic!("{}: no test value for {other:?}", key.name),
    }
}

fn alter(
    conn: &mut Conn,
    kind: i8,
    name: &str,
    key: &str,
    op: i8,
    value: Option<&str>,
) -> (i16, String) {
    let version = conn.api_versions().pick(ApiKey::IncrementalAlterConfigs, 1);
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(kind)
            .with_resource_name(str_bytes(name))
            .with_configs(vec![AlterableConfig::default()
                .with_name(str_bytes(key))
                .with_config_operation(op)
                .with_value(value.map(str_bytes))]),
    ]);
    let response: IncrementalAlterConfigsResponse = conn.call(version, &request);
    let result = &response.responses[0];
    let message = result.error_message.as_ref().map(|m| m.to_string());
    (result.error_code, message.unwrap_or_default())
}

fn describe(conn: &mut Conn, kind: i8, name: &str, key: Option<&str>) -> DescribeConfigsResult {
    let version = conn.api_versions().pick(ApiKey::DescribeConfigs, 4);
    assert!(version >= 3, "DescribeConfigs v3+ carries documentation");
    let request = DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(kind)
            .with_resource_name(str_bytes(name))
            .with_configuration_keys(key.map(|k| vec![str_bytes(k)]))])
        .with_include_synonyms(true)
        .with_include_documentation(true);
    let response: DescribeConfigsResponse = conn.call(version, &request);
    let result = response.results.into_iter().next().expect("one result");
    assert_eq!(result.error_code, code::NONE, "describe {name}");
    result
}

#[test]
fn every_dynamic_broker_config_round_trips_through_alter_and_describe() {
    let broker = Broker::start();
    let mut conn = Conn::connect(broker.addr());
    let dynamic: Vec<&ConfigKey> = keys::KEYS
        .iter()
        .filter(|k| k.is_dynamic_broker())
        .collect();
    assert!(!dynamic.is_empty());
    for key in dynamic {
        let value = other_value(key);
        let (error, message) = alter(
            &mut conn,
            RESOURCE_BROKER,
            "",
            key.name,
            OP_SET,
            Some(&value),
        );
        assert_eq!(error, code::NONE, "{}={value}: {message}", key.name);
        let described = describe(&mut conn, RESOURCE_BROKER, "1", Some(key.name));
        let [config] = &described.configs[..] else {
            panic!("{}: {:?}", key.name, described.configs);
        };
        assert_eq!(
            config.value.as_deref(),
            Some(value.as_str()),
            "{}",
            key.name
        );
        // Written for the whole cluster: a cluster-wide default, as Kafka
        // labels it when a broker describes itself.
        assert_eq!(
            config.config_source, SOURCE_DYNAMIC_DEFAULT_BROKER,
            "{}",
            key.name
        );
        assert!(!config.read_only, "{}", key.name);
        assert_eq!(config.config_type, key.config_type.code(), "{}", key.name);
        assert_eq!(
            config.documentation.as_deref(),
            Some(key.doc),
            "{}",
            key.name
        );
        // Back to the default.
        let (error, message) = alter(&mut conn, RESOURCE_BROKER, "", key.name, OP_DELETE, None);
        assert_eq!(error, code::NONE, "delete {}: {message}", key.name);
        let described = describe(&mut conn, RESOURCE_BROKER, "1", Some(key.name));
        assert_eq!(
            described.configs[0].config_source, SOURCE_DEFAULT,
            "{}",
            key.name
        );
    }
}

#[test]
fn static_unknown_and_bad_configs_are_refused() {
    let broker = Broker::start();
    broker.create_topic("tuned", 1, &[]);
    let mut conn = Conn::connect(broker.addr());
    let cases = [
        (
            RESOURCE_BROKER,
            "",
            "num.partitions",
            "3",
            "Cannot update these configs dynamically",
        ),
        (
            RESOURCE_BROKER,
            "",
            "no.such.config",
            "1",
            "Cannot update these configs dynamically",
        ),
        (
            RESOURCE_BROKER,
            "",
            "min.insync.replicas",
            "0",
            "min.insync.replicas",
        ),
        (
            RESOURCE_BROKER,
            "",
            "log.message.timestamp.type",
            "Wallclock",
            "log.message.timestamp.type",
        ),
        (
            RESOURCE_TOPIC,
            "tuned",
            "no.such.config",
            "1",
            "no.such.config",
        ),
        (
            RESOURCE_TOPIC,
            "tuned",
            "segment.bytes",
            "13",
            "segment.bytes",
        ),
        (
            RESOURCE_TOPIC,
            "tuned",
            "cleanup.policy",
            "shred",
            "cleanup.policy",
        ),
    ];
    for (kind, name, key, value, says) in cases {
        let (error, message) = alter(&mut conn, kind, name, key, OP_SET, Some(value));
        assert_eq!(error, INVALID_CONFIG, "{key}={value}: {message}");
        assert!(message.contains(says), "{key}={value}: {message}");
    }
    // The cluster default ("") holds only the dynamic defaults written,
    // none here, as Kafka describes it.
    assert!(describe(&mut conn, RESOURCE_BROKER, "", None)
        .configs
        .is_empty());
    // Static broker configs are described read-only, dynamic ones not.
    let described = describe(&mut conn, RESOURCE_BROKER, "1", None);
    for config in &described.configs {
        let key = keys::broker_key(config.name.as_str()).expect("a broker config of the table");
        assert_eq!(config.read_only, !key.is_dynamic_broker(), "{}", key.name);
        assert_eq!(
            config.documentation.as_deref(),
            Some(key.doc),
            "{}",
            key.name
        );
    }
    assert_eq!(
        described.configs.len(),
        keys::reported_broker_keys().count()
    );
    // Every topic config, with the table's type and documentation.
    let described = describe(&mut conn, RESOURCE_TOPIC, "tuned", None);
    assert_eq!(described.configs.len(), keys::topic_keys().count());
    for config in &described.configs {
        let key = keys::topic_key(config.name.as_str()).expect("a topic config of the table");
        assert_eq!(config.config_type, key.config_type.code(), "{}", key.name);
        assert_eq!(
            config.documentation.as_deref(),
            Some(key.doc),
            "{}",
            key.name
        );
        assert!(!config.read_only, "{}", key.name);
    }
}
