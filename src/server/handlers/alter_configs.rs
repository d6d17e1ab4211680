//! AlterConfigs (replace a resource's whole set of dynamic configs) and
//! IncrementalAlterConfigs (set, delete, append, subtract one config at a
//! time). Topic configs and the dynamic broker configs are validated, then
//! changed through shard 0's catalog, which persists them before every shard
//! applies them. An internal topic's `cleanup.policy` must stay `compact`
//! (INVALID_CONFIG otherwise): with `delete` its commits would age out.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse as FullResponse;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse as IncrementalResponse;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::authorize::Access;
use super::describe_configs::config_access_denied;
use crate::acl::Operation;
use crate::config::{keys, validate_topic_config, BrokerDefaults};
use crate::protocol::internal::{is_internal, INTERNAL_CLEANUP_POLICY};
use crate::security::Session;
use crate::server::broker::Broker;
use crate::server::catalog::CatalogError;
use crate::server::configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::server::errors;
use crate::server::routing::SetConfigs;
use crate::shard::ShardId;

/// Kafka's IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

type Failure = (i16, String);

pub async fn handle_full(
    broker: &Rc<Broker>,
    session: &Session,
    _version: i16,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let access = Access::new(broker, session);
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        if let Some(code) = config_access_denied(
            &access,
            Operation::AlterConfigs,
            resource.resource_type,
            resource.resource_name.as_str(),
        ) {
            responses.push(
                FullResponse::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name)
                    .with_error_code(code)
                    .with_error_message(Some(StrBytes::from_static_str("Authorization failed."))),
            );
            continue;
        }
        let configs: Result<BTreeMap<String, String>, Failure> = resource
            .configs
            .iter()
            .map(|c| match &c.value {
                Some(v) => Ok((c.name.to_string(), v.to_string())),
                None => Err(invalid(format!(
                    "Null value not supported for {}",
                    c.name.as_str()
                ))),
            })
            .collect();
        let outcome = match configs {
            Ok(configs) => {
                apply(
                    broker,
                    resource.resource_type,
                    resource.resource_name.as_str(),
                    configs,
                    request.validate_only,
                )
                .await
            }
            Err(e) => Err(e),
        };
        let response = FullResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name);
        responses.push(match outcome {
            Ok(()) => response,
            Err((code, message)) => response
                .with_error_code(code)
                .with_error_message(Some(StrBytes::from_string(message))),
        });
    }
    AlterConfigsResponse::default().with_responses(responses)
}

pub async fn handle_incremental(
    broker: &Rc<Broker>,
    session: &Session,
    _version: i16,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let access = Access::new(broker, session);
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let name = resource.resource_name.as_str();
        if let Some(code) = config_access_denied(
            &access,
            Operation::AlterConfigs,
            resource.resource_type,
            name,
        ) {
            responses.push(
                IncrementalResponse::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name.clone())
                    .with_error_code(code)
                    .with_error_message(Some(StrBytes::from_static_str("Authorization failed."))),
            );
            continue;
        }
        let outcome = match current(broker, resource.resource_type, name) {
            Ok(mut configs) => {
                let mut result = Ok(());
                for c in &resource.configs {
                    if let Err(e) = edit(
                        &mut configs,
                        c.name.as_str(),
                        c.config_operation,
                        c.value.as_ref().map(|v| v.as_str()),
                    ) {
                        result = Err(e);
                        break;
                    }
                }
                match result {
                    Ok(()) => {
                        apply(
                            broker,
                            resource.resource_type,
                            name,
                            configs,
                            request.validate_only,
                        )
                        .await
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        let response = IncrementalResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        responses.push(match outcome {
            Ok(()) => response,
            Err((code, message)) => response
                .with_error_code(code)
                .with_error_message(Some(StrBytes::from_string(message))),
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

fn invalid(message: String) -> Failure {
    (ResponseError::InvalidConfig.code(), message)
}

/// The resource's dynamic configs as they are now.
fn current(
    broker: &Rc<Broker>,
    resource_type: i8,
    name: &str,
) -> Result<BTreeMap<String, String>, Failure> {
    let catalog = broker.catalog();
    match resource_type {
        RESOURCE_TOPIC => catalog
            .topics
            .get(name)
            .map(|t| t.configs.clone())
            .ok_or_else(|| {
                (
                    ResponseError::UnknownTopicOrPartition.code(),
                    format!("Topic '{name}' does not exist."),
                )
            }),
        RESOURCE_BROKER => Ok(match check_broker_name(broker, name)? {
            None => catalog.broker_configs.clone(),
            Some(node) => catalog
                .per_broker_configs
                .get(&node)
                .cloned()
                .unwrap_or_default(),
        }),
        other => Err((
            ResponseError::InvalidRequest.code(),
            format!("Unsupported resource type {other}"),
        )),
    }
}

fn edit(
    configs: &mut BTreeMap<String, String>,
    key: &str,
    operation: i8,
    value: Option<&str>,
) -> Result<(), Failure> {
    let list = |v: &str| {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    match operation {
        OP_SET => {
            let value =
                value.ok_or_else(|| invalid(format!("Null value not supported for {key}")))?;
            configs.insert(key.to_string(), value.to_string());
        }
        OP_DELETE => {
            configs.remove(key);
        }
        OP_APPEND | OP_SUBTRACT => {
            if key != "cleanup.policy" {
                return Err(invalid(format!(
                    "Config value append/subtract is not allowed for config key {key}"
                )));
            }
            let mut items = list(configs.get(key).map(String::as_str).unwrap_or("delete"));
            for item in list(value.unwrap_or("")) {
                if operation == OP_APPEND && !items.contains(&item) {
                    items.push(item);
                } else if operation == OP_SUBTRACT {
                    items.retain(|i| *i != item);
                }
            }
            configs.insert(key.to_string(), items.join(","));
        }
        other => {
            return Err((
                ResponseError::InvalidRequest.code(),
                format!("Unknown config operation {other}"),
            ))
        }
    }
    Ok(())
}

/// A broker resource's name: empty for the cluster-wide defaults (None),
/// or this broker's id (a broker-specific change is sent to that broker,
/// as Kafka's admin client does).
fn check_broker_name(broker: &Rc<Broker>, name: &str) -> Result<Option<i32>, Failure> {
    let node = broker.config.broker.node_id;
    if name.is_empty() {
        Ok(None)
    } else if name == node.to_string() {
        Ok(Some(node))
    } else {
        Err((
            ResponseError::InvalidRequest.code(),
            format!(
                "Unexpected broker id, expected {} but received {name}",
                broker.config.broker.node_id
            ),
        ))
    }
}

/// Validates the resource's new dynamic configs and stores them.
async fn apply(
    broker: &Rc<Broker>,
    resource_type: i8,
    name: &str,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), Failure> {
    let request = match resource_type {
        RESOURCE_TOPIC => {
            for (key, value) in &configs {
                validate_topic_config(key, value)
                    .map_err(|e| invalid(format!("Invalid config {key}={value}: {e}")))?;
            }
            if is_internal(name) {
                check_internal_policy(name, &configs)?;
            }
            SetConfigs::Topic {
                topic: name.to_string(),
                configs,
                validate_only,
            }
        }
        RESOURCE_BROKER => {
            let node = check_broker_name(broker, name)?;
            let mut probe = BrokerDefaults::default();
            for (key, value) in &configs {
                if !keys::broker_key(key).is_some_and(|k| k.is_dynamic_broker()) {
                    return Err(invalid(format!(
                        "Cannot update these configs dynamically: Set({key})"
                    )));
                }
                probe.set(key, value).map_err(|e| invalid(e.to_string()))?;
            }
            SetConfigs::Broker {
                node,
                configs,
                validate_only,
            }
        }
        other => {
            return Err((
                ResponseError::InvalidRequest.code(),
                format!("Unsupported resource type {other}"),
            ))
        }
    };
    broker
        .call(ShardId(0), request)
        .await
        .map_err(|e| catalog_failure(&e))
}

/// An internal topic keeps `cleanup.policy=compact` (a missing override
/// would mean the default, `delete`).
fn check_internal_policy(name: &str, configs: &BTreeMap<String, String>) -> Result<(), Failure> {
    let policy = configs.get("cleanup.policy").map(String::as_str);
    let items: Vec<&str> = policy
        .unwrap_or("delete")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if items == [INTERNAL_CLEANUP_POLICY] {
        Ok(())
    } else {
        Err(invalid(format!(
            "cleanup.policy of internal topic {name} must be {INTERNAL_CLEANUP_POLICY}, not {}",
            policy.unwrap_or("the default (delete)")
        )))
    }
}

fn catalog_failure(e: &CatalogError) -> Failure {
    (errors::catalog_error(e), e.to_string())
}
