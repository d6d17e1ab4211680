//! `corelog configs`: Kafka's `kafka-configs.sh` for topics and brokers.
//! `--describe` prints DescribeConfigs in Kafka's shape; `--alter` sends
//! IncrementalAlterConfigs (SET and DELETE operations), or, against a broker
//! that lacks it, AlterConfigs with the whole merged set of dynamic configs
//! (what Kafka's tool did before incremental alters existed).

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_configs_request::{
    AlterConfigsResource as FullResource, AlterableConfig as FullConfig,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, ApiKey, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};

use super::client::{fail, CliError, CliResult, KafkaClient};
use super::output::{error_text, str_bytes, Cluster};

/// Kafka's `ConfigResource.Type` codes.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// Kafka's `ConfigEntry.ConfigSource` codes the tools filter on.
pub const SOURCE_DYNAMIC_TOPIC: i8 = 1;
pub const SOURCE_DYNAMIC_BROKER: i8 = 2;
pub const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
pub const SOURCE_DEFAULT: i8 = 5;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("action").required(true).args(["describe", "alter"])))]
pub struct ConfigsArgs {
    /// The broker(s) to connect to: host:port[,host:port...].
    #[arg(long, value_name = "SERVER")]
    bootstrap_server: String,
    /// The entity's type: topics, brokers or users (SCRAM credentials).
    #[arg(long, value_name = "TYPE", value_parser = ["topics", "brokers", "users"])]
    entity_type: String,
    /// The topic name or broker id (all of them when omitted with --describe).
    #[arg(long, value_name = "NAME")]
    entity_name: Option<String>,
    /// The cluster-wide default for brokers (dynamic default broker configs).
    #[arg(long, conflicts_with = "entity_name")]
    entity_default: bool,
    /// List the entity's configs.
    #[arg(long)]
    describe: bool,
    /// Change the entity's configs with --add-config and --delete-config.
    #[arg(long)]
    alter: bool,
    /// With --describe: every config, not only the dynamic ones.
    #[arg(long, requires = "describe")]
    all: bool,
    /// Configs to set: k1=v1,k2=[v1,v2,v2],k3=v3 (brackets hold a list value).
    #[arg(long, value_name = "K=V,...")]
    add_config: Vec<String>,
    /// Config keys to remove (back to their defaults): k1,k2.
    #[arg(long, value_name = "K,...")]
    delete_config: Vec<String>,
}

impl ConfigsArgs {
    fn resource_type(&self) -> i8 {
        if self.entity_type == "brokers" {
            RESOURCE_BROKER
        } else {
            RESOURCE_TOPIC
        }
    }
}

pub fn run(args: ConfigsArgs) -> CliResult<()> {
    if args.alter && args.entity_name.is_none() && !args.entity_default {
        return fail("--alter needs --entity-name (or --entity-default for brokers)");
    }
    if args.entity_default && args.entity_type != "brokers" {
        return fail("--entity-default applies to --entity-type brokers only");
    }
    if args.entity_type == "users" {
        if args.entity_default {
            return fail("--entity-default does not apply to users");
        }
        let mut client = KafkaClient::connect(&args.bootstrap_server)?;
        let user = args.entity_name.as_deref();
        return if args.describe {
            super::configs_users::describe(&mut client, user)
        } else {
            let adds = parse_add_config(&args.add_config)?;
            let deletes = parse_delete_config(&args.delete_config);
            if adds.is_empty() && deletes.is_empty() {
                return fail("--alter needs --add-config or --delete-config");
            }
            super::configs_users::alter(&mut client, user.unwrap_or(""), &adds, &deletes)
        };
    }
    let mut cluster = Cluster::connect(&args.bootstrap_server)?;
    if args.describe {
        describe(&mut cluster, &args)
    } else {
        alter(&mut cluster, &args)
    }
}

/// DescribeConfigs for one resource, with synonyms; an error code in the
/// result becomes an error.
pub fn describe_resource(
    client: &mut KafkaClient,
    resource_type: i8,
    name: &str,
) -> CliResult<DescribeConfigsResult> {
    let version = client.version(ApiKey::DescribeConfigs, 4)?;
    let request = DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(str_bytes(name))
            .with_configuration_keys(None)])
        .with_include_synonyms(true);
    let response = client.call(version, &request)?;
    let Some(result) = response.results.into_iter().next() else {
        return fail(format!("DescribeConfigs for {name:?} returned no result"));
    };
    if result.error_code != 0 {
        return fail(error_text(result.error_code, result.error_message.as_ref()));
    }
    Ok(result)
}

fn value_text(value: Option<&kafka_protocol::protocol::StrBytes>) -> &str {
    value.map_or("null", |v| v.as_str())
}

/// One config as Kafka's tool prints it:
/// `  k=v sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:k=v, DEFAULT_CONFIG:k=d}`.
pub fn config_line(config: &DescribeConfigsResourceResult) -> String {
    let synonyms: Vec<String> = config
        .synonyms
        .iter()
        .map(|s| {
            format!(
                "{}:{}={}",
                crate::protocol::config_source_name(s.source),
                s.name.as_str(),
                value_text(s.value.as_ref())
            )
        })
        .collect();
    // Kafka hides a sensitive value even if a broker sent one.
    let value = if config.is_sensitive {
        "null"
    } else {
        value_text(config.value.as_ref())
    };
    format!(
        "  {}={} sensitive={} synonyms={{{}}}",
        config.name.as_str(),
        value,
        config.is_sensitive,
        synonyms.join(", ")
    )
}

/// The entities `--describe` covers: the one named, or every topic, or
/// every broker plus the cluster default.
fn entities(cluster: &mut Cluster, args: &ConfigsArgs) -> CliResult<Vec<String>> {
    if args.entity_default {
        return Ok(vec![String::new()]);
    }
    if let Some(name) = &args.entity_name {
        return Ok(vec![name.clone()]);
    }
    let metadata = cluster.metadata(None)?;
    if args.entity_type == "topics" {
        let mut names: Vec<String> = metadata
            .topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
            .collect();
        names.sort();
        return Ok(names);
    }
    let mut ids: Vec<String> = cluster.nodes().map(|(id, _, _)| id.to_string()).collect();
    ids.push(String::new());
    Ok(ids)
}

/// Broker resources go to the broker they name (the default to any), as
/// Kafka's admin client routes them; topic resources to the bootstrap broker.
fn client_for<'a>(
    cluster: &'a mut Cluster,
    resource_type: i8,
    name: &str,
) -> CliResult<&'a mut KafkaClient> {
    if resource_type != RESOURCE_BROKER || name.is_empty() {
        return Ok(&mut cluster.bootstrap);
    }
    let Ok(id) = name.parse::<i32>() else {
        return fail(format!(
            "the broker entity name must be a broker id, not {name:?}"
        ));
    };
    if cluster.nodes().next().is_none() {
        cluster.metadata(Some(&[]))?;
    }
    cluster.node(id)
}

/// The source a plain `--describe` (without `--all`) shows.
fn dynamic_source(resource_type: i8, name: &str) -> i8 {
    match (resource_type, name.is_empty()) {
        (RESOURCE_TOPIC, _) => SOURCE_DYNAMIC_TOPIC,
        (_, true) => SOURCE_DYNAMIC_DEFAULT_BROKER,
        (_, false) => SOURCE_DYNAMIC_BROKER,
    }
}

fn describe(cluster: &mut Cluster, args: &ConfigsArgs) -> CliResult<()> {
    let resource_type = args.resource_type();
    let singular = args.entity_type.trim_end_matches('s');
    for entity in entities(cluster, args)? {
        // Asked before the header is printed, so a failure is one line.
        let client = client_for(cluster, resource_type, &entity)?;
        let result = describe_resource(client, resource_type, &entity)?;
        if entity.is_empty() {
            println!(
                "Default configs for {} in the cluster are:",
                args.entity_type
            );
        } else {
            let which = if args.all { "All" } else { "Dynamic" };
            println!("{which} configs for {singular} {entity} are:");
        }
        let wanted = dynamic_source(resource_type, &entity);
        let mut configs: Vec<&DescribeConfigsResourceResult> = result
            .configs
            .iter()
            .filter(|c| args.all || c.config_source == wanted)
            .collect();
        configs.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        for config in configs {
            println!("{}", config_line(config));
        }
    }
    Ok(())
}

/// Splits `k1=v1,k2=[a,b],k3=v3` on the commas outside brackets; a bracketed
/// value loses its brackets, as in Kafka's ConfigCommand.
pub fn parse_add_config(specs: &[String]) -> CliResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let mut depth = 0usize;
        let mut start = 0;
        let mut pieces = Vec::new();
        for (i, c) in spec.char_indices() {
            match c {
                '[' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                ',' if depth == 0 => {
                    pieces.push(&spec[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        pieces.push(&spec[start..]);
        for piece in pieces.into_iter().filter(|p| !p.trim().is_empty()) {
            let Some((key, value)) = piece.split_once('=') else {
                return fail(
                    "Invalid entity config: all configs to be added must be in the format \"key=val\".",
                );
            };
            let value = value.trim();
            let value = value
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .unwrap_or(value);
            out.insert(key.trim().to_string(), value.to_string());
        }
    }
    Ok(out)
}

fn parse_delete_config(specs: &[String]) -> Vec<String> {
    specs
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect()
}

fn alter(cluster: &mut Cluster, args: &ConfigsArgs) -> CliResult<()> {
    let to_add = parse_add_config(&args.add_config)?;
    let to_delete = parse_delete_config(&args.delete_config);
    if to_add.is_empty() && to_delete.is_empty() {
        return fail("--alter needs --add-config or --delete-config");
    }
    if let Some(both) = to_delete.iter().find(|k| to_add.contains_key(*k)) {
        return fail(format!("config {both} is both added and deleted"));
    }
    let resource_type = args.resource_type();
    let name = args.entity_name.clone().unwrap_or_default();
    let client = client_for(cluster, resource_type, &name)?;
    let current = describe_resource(client, resource_type, &name)?;
    let wanted = dynamic_source(resource_type, &name);
    let dynamic: BTreeMap<String, Option<String>> = current
        .configs
        .iter()
        .filter(|c| c.config_source == wanted)
        .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
        .collect();
    // Kafka refuses to delete a topic config that is not set on the topic.
    let missing: Vec<&str> = to_delete
        .iter()
        .filter(|k| resource_type == RESOURCE_TOPIC && !dynamic.contains_key(*k))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return fail(format!("Invalid config(s): {}", missing.join(",")));
    }
    if client.served(ApiKey::IncrementalAlterConfigs).is_some() {
        alter_incremental(client, resource_type, &name, &to_add, &to_delete)?;
    } else {
        let mut merged = dynamic;
        for key in &to_delete {
            merged.remove(key);
        }
        for (key, value) in &to_add {
            merged.insert(key.clone(), Some(value.clone()));
        }
        alter_whole(client, resource_type, &name, &merged)?;
    }
    if name.is_empty() {
        println!(
            "Completed updating default config for {} in the cluster.",
            args.entity_type
        );
    } else {
        let singular = args.entity_type.trim_end_matches('s');
        println!("Completed updating config for {singular} {name}.");
    }
    Ok(())
}

fn alter_incremental(
    client: &mut KafkaClient,
    resource_type: i8,
    name: &str,
    to_add: &BTreeMap<String, String>,
    to_delete: &[String],
) -> CliResult<()> {
    let version = client.version(ApiKey::IncrementalAlterConfigs, 1)?;
    let mut configs: Vec<AlterableConfig> = to_add
        .iter()
        .map(|(k, v)| {
            AlterableConfig::default()
                .with_name(str_bytes(k))
                .with_config_operation(OP_SET)
                .with_value(Some(str_bytes(v)))
        })
        .collect();
    configs.extend(to_delete.iter().map(|k| {
        AlterableConfig::default()
            .with_name(str_bytes(k))
            .with_config_operation(OP_DELETE)
            .with_value(None)
    }));
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(str_bytes(name))
            .with_configs(configs),
    ]);
    let response = client.call(version, &request)?;
    check_alter_results(
        response
            .responses
            .iter()
            .map(|r| (r.error_code, r.error_message.as_ref())),
    )
}

/// AlterConfigs replaces every dynamic config of the resource, so it is sent
/// the current set with the changes applied.
fn alter_whole(
    client: &mut KafkaClient,
    resource_type: i8,
    name: &str,
    configs: &BTreeMap<String, Option<String>>,
) -> CliResult<()> {
    let version = client.version(ApiKey::AlterConfigs, 2)?;
    let configs = configs
        .iter()
        .map(|(k, v)| {
            FullConfig::default()
                .with_name(str_bytes(k))
                .with_value(v.as_deref().map(str_bytes))
        })
        .collect();
    let request = AlterConfigsRequest::default().with_resources(vec![FullResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(str_bytes(name))
        .with_configs(configs)]);
    let response = client.call(version, &request)?;
    check_alter_results(
        response
            .responses
            .iter()
            .map(|r| (r.error_code, r.error_message.as_ref())),
    )
}

fn check_alter_results<'a>(
    results: impl Iterator<Item = (i16, Option<&'a kafka_protocol::protocol::StrBytes>)>,
) -> CliResult<()> {
    for (code, message) in results {
        if code != 0 {
            return Err(CliError(error_text(code, message)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_config_splits_outside_brackets() {
        let parsed = parse_add_config(&["a=1,b=[x,y],c = 3".to_string()]).unwrap();
        assert_eq!(parsed["a"], "1");
        assert_eq!(parsed["b"], "x,y");
        assert_eq!(parsed["c"], "3");
        assert!(parse_add_config(&["novalue".to_string()]).is_err());
    }
}
