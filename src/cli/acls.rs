//! `corelog acls`: Kafka's `kafka-acls.sh`. Adds (CreateAcls), lists
//! (DescribeAcls) and removes (DeleteAcls) ACLs with the tool's options and
//! output: a block per resource pattern, "Current ACLs for resource" and
//! the pattern between backquotes
//! (`ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)`),
//! then one line per ACL, a space and a tab before
//! `(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)`.
//!
//! `--producer` and `--consumer` are Kafka's sets: a producer gets Write,
//! Describe and Create on its topics (Write and Describe on its
//! transactional ids, IdempotentWrite on the cluster with `--idempotent`);
//! a consumer Read and Describe on its topics and Read on its group.
//! `--remove` asks before it deletes when stdin is a terminal, unless
//! `--force`.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{ApiKey, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};

use super::client::{fail, CliResult, KafkaClient};
use super::output::{error_text, str_bytes};
use crate::acl::{
    AclBinding, AclFilter, Operation, PatternType, Permission, ResourceType, CLUSTER_NAME,
    WILDCARD_HOST,
};
use crate::security::Principal;

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("action").required(true).args(["add", "remove", "list"])))]
pub struct AclsArgs {
    /// The broker(s) to connect to: host:port[,host:port...].
    #[arg(long, value_name = "SERVER")]
    bootstrap_server: String,
    /// Add ACLs.
    #[arg(long)]
    add: bool,
    /// Remove ACLs.
    #[arg(long)]
    remove: bool,
    /// List ACLs (of the resources named, or all).
    #[arg(long)]
    list: bool,
    /// A principal the ACLs allow (User:alice). Repeatable.
    #[arg(long, value_name = "PRINCIPAL")]
    allow_principal: Vec<String>,
    /// A principal the ACLs deny. Repeatable.
    #[arg(long, value_name = "PRINCIPAL")]
    deny_principal: Vec<String>,
    /// A host the allow ACLs apply to (* when omitted). Repeatable.
    #[arg(long, value_name = "HOST")]
    allow_host: Vec<String>,
    /// A host the deny ACLs apply to (* when omitted). Repeatable.
    #[arg(long, value_name = "HOST")]
    deny_host: Vec<String>,
    /// An operation (Read, Write, Create, Delete, Alter, Describe, ClusterAction,
    /// DescribeConfigs, AlterConfigs, IdempotentWrite, CreateTokens, DescribeTokens, All).
    /// Repeatable; All when omitted.
    #[arg(long, value_name = "OPERATION")]
    operation: Vec<String>,
    /// A topic (* for every topic). Repeatable.
    #[arg(long, value_name = "TOPIC")]
    topic: Vec<String>,
    /// A consumer group (* for every group). Repeatable.
    #[arg(long, value_name = "GROUP")]
    group: Vec<String>,
    /// The cluster.
    #[arg(long)]
    cluster: bool,
    /// A transactional id (* for every one). Repeatable.
    #[arg(long, value_name = "ID")]
    transactional_id: Vec<String>,
    /// A delegation token id. Repeatable.
    #[arg(long, value_name = "TOKEN")]
    delegation_token: Vec<String>,
    /// literal or prefixed (to add); also any or match (to list or remove).
    #[arg(long, value_name = "TYPE", default_value = "literal")]
    resource_pattern_type: String,
    /// With --list: only the ACLs of this principal. Repeatable.
    #[arg(long, value_name = "PRINCIPAL")]
    principal: Vec<String>,
    /// Kafka's producer set: Write, Describe, Create on the topics.
    #[arg(long, conflicts_with = "consumer")]
    producer: bool,
    /// With --producer: IdempotentWrite on the cluster too.
    #[arg(long, requires = "producer")]
    idempotent: bool,
    /// Kafka's consumer set: Read, Describe on the topics, Read on the group.
    #[arg(long)]
    consumer: bool,
    /// Remove without asking.
    #[arg(long)]
    force: bool,
}

/// The resources the options name: (type, name), in the order given.
fn resources(args: &AclsArgs) -> Vec<(ResourceType, String)> {
    let mut out = Vec::new();
    out.extend(args.topic.iter().map(|t| (ResourceType::Topic, t.clone())));
    out.extend(args.group.iter().map(|g| (ResourceType::Group, g.clone())));
    if args.cluster {
        out.push((ResourceType::Cluster, CLUSTER_NAME.to_string()));
    }
    out.extend(
        args.transactional_id
            .iter()
            .map(|t| (ResourceType::TransactionalId, t.clone())),
    );
    out.extend(
        args.delegation_token
            .iter()
            .map(|t| (ResourceType::DelegationToken, t.clone())),
    );
    out
}

/// The operations kafka-acls accepts for each resource type.
fn valid_operations(resource_type: ResourceType) -> &'static [Operation] {
    use Operation::*;
    match resource_type {
        ResourceType::Topic => &[
            Read,
            Write,
            Create,
            Describe,
            Delete,
            Alter,
            DescribeConfigs,
            AlterConfigs,
            All,
        ],
        ResourceType::Group => &[Read, Describe, Delete, All],
        ResourceType::Cluster => &[
            Create,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
            Alter,
            Describe,
            All,
        ],
        ResourceType::TransactionalId => &[Describe, Write, All],
        ResourceType::DelegationToken => &[Describe, All],
        ResourceType::Any => &[],
    }
}

fn pattern_type(args: &AclsArgs) -> CliResult<PatternType> {
    PatternType::parse(&args.resource_pattern_type).map_or_else(
        || {
            fail(format!(
                "--resource-pattern-type {} is not one of literal, prefixed, match, any",
                args.resource_pattern_type
            ))
        },
        Ok,
    )
}

fn principals(list: &[String]) -> CliResult<Vec<String>> {
    list.iter()
        .map(|p| match Principal::parse(p) {
            Some(principal) => Ok(principal.to_string()),
            None => fail(format!(
                "Could not parse principal from `{p}` (no colon is present separating the \
                 principal type from the principal name)"
            )),
        })
        .collect()
}

fn operations(args: &AclsArgs) -> CliResult<Vec<Operation>> {
    if args.operation.is_empty() {
        return Ok(vec![Operation::All]);
    }
    args.operation
        .iter()
        .map(|o| match Operation::parse(o) {
            Some(op) => Ok(op),
            None => fail(format!("Unknown operation {o}")),
        })
        .collect()
}

/// The ACLs `--add` creates, by resource pattern.
fn bindings(args: &AclsArgs) -> CliResult<Vec<AclBinding>> {
    let pattern = pattern_type(args)?;
    if !matches!(pattern, PatternType::Literal | PatternType::Prefixed) {
        return fail(
            "A '--resource-pattern-type' value of 'any' or 'match' is not valid when adding acls.",
        );
    }
    let allow = principals(&args.allow_principal)?;
    let deny = principals(&args.deny_principal)?;
    if allow.is_empty() && deny.is_empty() {
        return fail(
            "You must specify one of: --allow-principal, --deny-principal when trying to add ACLs.",
        );
    }
    let hosts = |given: &[String]| -> Vec<String> {
        if given.is_empty() {
            vec![WILDCARD_HOST.to_string()]
        } else {
            given.to_vec()
        }
    };
    // (resource, operations) from --producer / --consumer or --operation.
    let mut wanted: Vec<((ResourceType, String), Vec<Operation>)> = Vec::new();
    if args.producer {
        if args.topic.is_empty() && args.transactional_id.is_empty() {
            return fail("With --producer you must specify a --topic or a --transactional-id");
        }
        for t in &args.topic {
            let ops = vec![Operation::Write, Operation::Describe, Operation::Create];
            wanted.push(((ResourceType::Topic, t.clone()), ops));
        }
        for t in &args.transactional_id {
            let ops = vec![Operation::Write, Operation::Describe];
            wanted.push(((ResourceType::TransactionalId, t.clone()), ops));
        }
        if args.idempotent {
            let cluster = (ResourceType::Cluster, CLUSTER_NAME.to_string());
            wanted.push((cluster, vec![Operation::IdempotentWrite]));
        }
    } else if args.consumer {
        if args.topic.is_empty() || args.group.is_empty() {
            return fail("With --consumer you must specify a --topic and a --group");
        }
        for t in &args.topic {
            let ops = vec![Operation::Read, Operation::Describe];
            wanted.push(((ResourceType::Topic, t.clone()), ops));
        }
        for g in &args.group {
            wanted.push(((ResourceType::Group, g.clone()), vec![Operation::Read]));
        }
    } else {
        let ops = operations(args)?;
        let named = resources(args);
        if named.is_empty() {
            return fail("You must provide at least one resource: --topic <topic> or --cluster or --group <group> or --transactional-id <id> or --delegation-token <token>");
        }
        for resource in named {
            let valid = valid_operations(resource.0);
            if let Some(op) = ops.iter().find(|op| !valid.contains(op)) {
                let names: Vec<&str> = valid.iter().map(|o| o.name()).collect();
                return fail(format!(
                    "ResourceType {} only supports operations {} (not {})",
                    resource.0.name(),
                    names.join(","),
                    op.name()
                ));
            }
            wanted.push((resource, ops.clone()));
        }
    }
    let mut out = Vec::new();
    for ((resource_type, name), ops) in wanted {
        for (permission, who, hosts) in [
            (Permission::Allow, &allow, hosts(&args.allow_host)),
            (Permission::Deny, &deny, hosts(&args.deny_host)),
        ] {
            for principal in who {
                for host in &hosts {
                    for &operation in &ops {
                        out.push(AclBinding {
                            resource_type,
                            name: name.clone(),
                            pattern_type: pattern,
                            principal: principal.clone(),
                            host: host.clone(),
                            operation,
                            permission,
                        });
                    }
                }
            }
        }
    }
    for acl in &out {
        if let Err(e) = acl.validate() {
            return fail(format!("{acl}: {e}"));
        }
    }
    Ok(out)
}

pub fn run(args: AclsArgs) -> CliResult<()> {
    let mut client = KafkaClient::connect(&args.bootstrap_server)?;
    if args.add {
        add(&mut client, &args)
    } else if args.remove {
        remove(&mut client, &args)
    } else {
        list(&mut client, &args)
    }
}

/// Kafka's block for one resource pattern and its ACLs.
fn print_block(heading: &str, pattern: &str, entries: &[String]) {
    println!("{heading} `{pattern}`: \n \t{} \n", entries.join("\n\t"));
}

fn add(client: &mut KafkaClient, args: &AclsArgs) -> CliResult<()> {
    let acls = bindings(args)?;
    let mut by_pattern: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for acl in &acls {
        by_pattern
            .entry(acl.pattern_text())
            .or_default()
            .push(acl.entry_text());
    }
    for (pattern, entries) in &by_pattern {
        print_block("Adding ACLs for resource", pattern, entries);
    }
    let version = client.version(ApiKey::CreateAcls, 3)?;
    let creations = acls
        .iter()
        .map(|a| {
            AclCreation::default()
                .with_resource_type(a.resource_type.code())
                .with_resource_name(str_bytes(&a.name))
                .with_resource_pattern_type(a.pattern_type.code())
                .with_principal(str_bytes(&a.principal))
                .with_host(str_bytes(&a.host))
                .with_operation(a.operation.code())
                .with_permission_type(a.permission.code())
        })
        .collect();
    let response = client.call(
        version,
        &CreateAclsRequest::default().with_creations(creations),
    )?;
    for (acl, result) in acls.iter().zip(&response.results) {
        if result.error_code != 0 {
            return fail(format!(
                "Error while adding ACLs: {acl}: {}",
                error_text(result.error_code, result.error_message.as_ref())
            ));
        }
    }
    // As Kafka's tool: what each resource holds now.
    let patterns: Vec<(ResourceType, String, PatternType)> = {
        let mut seen = Vec::new();
        for a in &acls {
            let key = (a.resource_type, a.name.clone(), a.pattern_type);
            if !seen.contains(&key) {
                seen.push(key);
            }
        }
        seen
    };
    for (resource_type, name, pattern_type) in patterns {
        let filter = AclFilter {
            resource_type,
            name: Some(name),
            pattern_type,
            ..AclFilter::any()
        };
        print_current(client, &filter)?;
    }
    Ok(())
}

/// The filters `--list` and `--remove` select with: one per resource named
/// (every ACL when none is), with the pattern type given.
fn filters(args: &AclsArgs) -> CliResult<Vec<AclFilter>> {
    let pattern = pattern_type(args)?;
    let named = resources(args);
    if named.is_empty() {
        return Ok(vec![AclFilter {
            pattern_type: if args.resource_pattern_type == "literal" {
                PatternType::Any
            } else {
                pattern
            },
            ..AclFilter::any()
        }]);
    }
    Ok(named
        .into_iter()
        .map(|(resource_type, name)| AclFilter {
            resource_type,
            name: Some(name),
            pattern_type: pattern,
            ..AclFilter::any()
        })
        .collect())
}

fn describe(client: &mut KafkaClient, filter: &AclFilter) -> CliResult<Vec<AclBinding>> {
    let version = client.version(ApiKey::DescribeAcls, 3)?;
    let request = DescribeAclsRequest::default()
        .with_resource_type_filter(filter.resource_type.code())
        .with_resource_name_filter(filter.name.as_deref().map(str_bytes))
        .with_pattern_type_filter(filter.pattern_type.code())
        .with_principal_filter(filter.principal.as_deref().map(str_bytes))
        .with_host_filter(filter.host.as_deref().map(str_bytes))
        .with_operation(filter.operation.code())
        .with_permission_type(filter.permission.code());
    let response = client.call(version, &request)?;
    if response.error_code != 0 {
        return fail(error_text(
            response.error_code,
            response.error_message.as_ref(),
        ));
    }
    let mut out = Vec::new();
    for resource in response.resources {
        for acl in resource.acls {
            let (Some(resource_type), Some(pattern_type), Some(operation), Some(permission)) = (
                ResourceType::from_code(resource.resource_type),
                PatternType::from_code(resource.pattern_type),
                Operation::from_code(acl.operation),
                Permission::from_code(acl.permission_type),
            ) else {
                return fail("the broker answered an ACL with unknown codes");
            };
            out.push(AclBinding {
                resource_type,
                name: resource.resource_name.to_string(),
                pattern_type,
                principal: acl.principal.to_string(),
                host: acl.host.to_string(),
                operation,
                permission,
            });
        }
    }
    Ok(out)
}

/// Prints the ACLs a filter selects, one block per resource pattern.
fn print_acls(acls: &[AclBinding], heading: &str) {
    let mut by_pattern: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for acl in acls {
        by_pattern
            .entry(acl.pattern_text())
            .or_default()
            .push(acl.entry_text());
    }
    for (pattern, entries) in &by_pattern {
        print_block(heading, pattern, entries);
    }
}

fn print_current(client: &mut KafkaClient, filter: &AclFilter) -> CliResult<()> {
    let acls = describe(client, filter)?;
    print_acls(&acls, "Current ACLs for resource");
    Ok(())
}

fn list(client: &mut KafkaClient, args: &AclsArgs) -> CliResult<()> {
    let principals = principals(&args.principal)?;
    for filter in filters(args)? {
        let mut acls = describe(client, &filter)?;
        if principals.is_empty() {
            print_acls(&acls, "Current ACLs for resource");
            continue;
        }
        acls.retain(|a| principals.contains(&a.principal));
        for principal in &principals {
            let own: Vec<AclBinding> = acls
                .iter()
                .filter(|a| a.principal == *principal)
                .cloned()
                .collect();
            println!("ACLs for principal `{principal}`");
            print_acls(&own, "Current ACLs for resource");
        }
    }
    Ok(())
}

fn remove(client: &mut KafkaClient, args: &AclsArgs) -> CliResult<()> {
    if resources(args).is_empty() {
        return fail("You must provide at least one resource: --topic <topic> or --cluster or --group <group> or --transactional-id <id> or --delegation-token <token>");
    }
    let allow = principals(&args.allow_principal)?;
    let deny = principals(&args.deny_principal)?;
    let base = filters(args)?;
    let mut wanted: Vec<AclFilter> = Vec::new();
    if allow.is_empty() && deny.is_empty() {
        wanted = base.clone();
    } else {
        let ops = operations(args)?;
        let explicit_ops = !args.operation.is_empty();
        for f in &base {
            for (permission, who, hosts) in [
                (Permission::Allow, &allow, &args.allow_host),
                (Permission::Deny, &deny, &args.deny_host),
            ] {
                for principal in who {
                    let host_list: Vec<Option<String>> = if hosts.is_empty() {
                        vec![Some(WILDCARD_HOST.to_string())]
                    } else {
                        hosts.iter().cloned().map(Some).collect()
                    };
                    for host in host_list {
                        for &op in &ops {
                            wanted.push(AclFilter {
                                principal: Some(principal.clone()),
                                host: host.clone(),
                                operation: if explicit_ops { op } else { Operation::Any },
                                permission,
                                ..f.clone()
                            });
                        }
                    }
                }
            }
        }
    }
    if !args.force && std::io::stdin().is_terminal() {
        for f in &base {
            let pattern = format!(
                "ResourcePattern(resourceType={}, name={}, patternType={})",
                f.resource_type.name(),
                f.name.as_deref().unwrap_or("*"),
                f.pattern_type.name()
            );
            print!("Are you sure you want to remove ACLs from resource filter `{pattern}`? (y/n) ");
            let _ = std::io::stdout().flush();
            let mut answer = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut answer)
                .map_err(|e| super::client::CliError(e.to_string()))?;
            if !answer.trim().eq_ignore_ascii_case("y") {
                return Ok(());
            }
        }
    }
    let version = client.version(ApiKey::DeleteAcls, 3)?;
    let request = DeleteAclsRequest::default().with_filters(
        wanted
            .iter()
            .map(|f| {
                DeleteAclsFilter::default()
                    .with_resource_type_filter(f.resource_type.code())
                    .with_resource_name_filter(f.name.as_deref().map(str_bytes))
                    .with_pattern_type_filter(f.pattern_type.code())
                    .with_principal_filter(f.principal.as_deref().map(str_bytes))
                    .with_host_filter(f.host.as_deref().map(str_bytes))
                    .with_operation(f.operation.code())
                    .with_permission_type(f.permission.code())
            })
            .collect(),
    );
    let response = client.call(version, &request)?;
    for result in &response.filter_results {
        if result.error_code != 0 {
            return fail(format!(
                "Error while removing ACLs: {}",
                error_text(result.error_code, result.error_message.as_ref())
            ));
        }
    }
    for f in &base {
        print_current(client, f)?;
    }
    Ok(())
}
