//! DescribeConfigs for topics and this broker: values, sources and (when
//! asked) synonyms and documentation (v3+), from `server::configs`.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::authorize::{Access, CLUSTER_DENIED, TOPIC_DENIED};
use crate::acl::Operation;
use crate::security::Session;
use crate::server::broker::Broker;
use crate::server::configs::{self, BrokerScope, ConfigEntry, RESOURCE_BROKER, RESOURCE_TOPIC};

pub fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    version: i16,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let catalog = broker.catalog();
    let access = Access::new(broker, session);
    let asked = Asked {
        synonyms: request.include_synonyms,
        documentation: request.include_documentation,
    };
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let keys: Option<Vec<String>> = resource
                .configuration_keys
                .as_ref()
                .map(|k| k.iter().map(|s| s.to_string()).collect());
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            if let Some(code) = config_access_denied(
                &access,
                Operation::DescribeConfigs,
                resource.resource_type,
                resource.resource_name.as_str(),
            ) {
                return result
                    .with_error_code(code)
                    .with_error_message(Some(StrBytes::from_static_str("Authorization failed.")));
            }
            let entries = match resource.resource_type {
                RESOURCE_TOPIC => match catalog.topics.get(resource.resource_name.as_str()) {
                    Some(topic) => Ok(configs::topic_entries(
                        &broker.static_configs(),
                        &catalog,
                        topic,
                        keys.as_deref(),
                    )),
                    None => Err((
                        ResponseError::UnknownTopicOrPartition,
                        format!(
                            "Topic '{}' does not exist.",
                            resource.resource_name.as_str()
                        ),
                    )),
                },
                RESOURCE_BROKER => {
                    let name = resource.resource_name.as_str();
                    let node = broker.config.broker.node_id;
                    let scope = if name.is_empty() {
                        Some(BrokerScope::ClusterDefault)
                    } else {
                        (name == node.to_string()).then_some(BrokerScope::Node(node))
                    };
                    if let Some(scope) = scope {
                        Ok(configs::broker_entries(
                            &broker.static_configs(),
                            &catalog,
                            scope,
                            keys.as_deref(),
                        ))
                    } else {
                        Err((
                            ResponseError::InvalidRequest,
                            format!(
                                "Unexpected broker id, expected {} but received {name}",
                                broker.config.broker.node_id
                            ),
                        ))
                    }
                }
                other => Err((
                    ResponseError::InvalidRequest,
                    format!("Unsupported resource type {other}"),
                )),
            };
            match entries {
                Ok(entries) => result.with_configs(
                    entries
                        .into_iter()
                        .map(|e| encode(e, version, asked))
                        .collect(),
                ),
                Err((code, message)) => result
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// As Kafka: DescribeConfigs or AlterConfigs (`operation`) on the topic,
/// or on the cluster for a broker resource; the code when refused.
pub fn config_access_denied(
    access: &Access,
    operation: Operation,
    resource_type: i8,
    name: &str,
) -> Option<i16> {
    match resource_type {
        RESOURCE_TOPIC => (!access.topic(operation, name)).then_some(TOPIC_DENIED),
        RESOURCE_BROKER => (!access.cluster(operation)).then_some(CLUSTER_DENIED),
        _ => None,
    }
}

/// What the request asks to include beside each config's value.
#[derive(Clone, Copy)]
struct Asked {
    synonyms: bool,
    documentation: bool,
}

/// Kafka's `ConfigSource.DEFAULT_CONFIG`.
const DEFAULT_CONFIG_SOURCE: i8 = 5;

fn encode(entry: ConfigEntry, version: i16, asked: Asked) -> DescribeConfigsResourceResult {
    let result = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(entry.name))
        .with_value(entry.value.map(StrBytes::from_string))
        .with_read_only(entry.read_only)
        .with_is_sensitive(false);
    // v0 says only whether a value is the default; v1 names its source.
    let result = if version == 0 {
        result.with_is_default(entry.source == DEFAULT_CONFIG_SOURCE)
    } else {
        result.with_config_source(entry.source)
    };
    let result = if asked.synonyms {
        result.with_synonyms(
            entry
                .synonyms
                .into_iter()
                .map(|s| {
                    DescribeConfigsSynonym::default()
                        .with_name(StrBytes::from_string(s.name))
                        .with_value(s.value.map(StrBytes::from_string))
                        .with_source(s.source)
                })
                .collect(),
        )
    } else {
        result
    };
    if version >= 3 {
        let documentation = asked
            .documentation
            .then(|| StrBytes::from_static_str(entry.documentation));
        result
            .with_config_type(entry.config_type)
            .with_documentation(documentation)
    } else {
        result
    }
}
