//! DescribeAcls: the ACLs a filter selects, grouped by resource pattern,
//! from this shard's catalog copy. The caller needs Describe on the
//! cluster.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::StrBytes;

use super::authorize::Access;
use super::create_acls::{refusal, Failure};
use crate::acl::{AclFilter, Operation, PatternType, Permission, ResourceType};
use crate::security::Session;
use crate::server::broker::Broker;

pub fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    _version: i16,
    r: DescribeAclsRequest,
) -> DescribeAclsResponse {
    let access = Access::new(broker, session);
    let filter = match refusal(broker, &access, Operation::Describe) {
        Some(failure) => Err(failure),
        None => filter(
            r.resource_type_filter,
            r.resource_name_filter.as_deref(),
            r.pattern_type_filter,
            r.principal_filter.as_deref(),
            r.host_filter.as_deref(),
            r.operation,
            r.permission_type,
        ),
    };
    let filter = match filter {
        Ok(filter) => filter,
        Err((code, message)) => {
            return DescribeAclsResponse::default()
                .with_error_code(code)
                .with_error_message(Some(StrBytes::from_string(message)))
        }
    };
    let catalog = broker.catalog();
    let mut by_pattern: BTreeMap<(ResourceType, &str, PatternType), Vec<AclDescription>> =
        BTreeMap::new();
    for acl in catalog.acls.iter().filter(|a| filter.matches(a)) {
        by_pattern
            .entry((acl.resource_type, acl.name.as_str(), acl.pattern_type))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(StrBytes::from_string(acl.principal.clone()))
                    .with_host(StrBytes::from_string(acl.host.clone()))
                    .with_operation(acl.operation.code())
                    .with_permission_type(acl.permission.code()),
            );
    }
    let resources = by_pattern
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(resource_type.code())
                .with_resource_name(StrBytes::from_string(name.to_string()))
                .with_pattern_type(pattern_type.code())
                .with_acls(acls)
        })
        .collect();
    DescribeAclsResponse::default().with_resources(resources)
}

/// A filter from DescribeAcls' or DeleteAcls' fields (Kafka's codes; a
/// null string matches any value).
pub fn filter(
    resource_type: i8,
    name: Option<&str>,
    pattern_type: i8,
    principal: Option<&str>,
    host: Option<&str>,
    operation: i8,
    permission: i8,
) -> Result<AclFilter, Failure> {
    let invalid = |what: &str, code: i8| {
        (
            ResponseError::InvalidRequest.code(),
            format!("Unknown {what} {code} in the ACL filter"),
        )
    };
    Ok(AclFilter {
        resource_type: ResourceType::from_code(resource_type)
            .ok_or_else(|| invalid("resource type", resource_type))?,
        name: name.map(String::from),
        pattern_type: PatternType::from_code(pattern_type)
            .ok_or_else(|| invalid("pattern type", pattern_type))?,
        principal: principal.map(String::from),
        host: host.map(String::from),
        operation: Operation::from_code(operation)
            .ok_or_else(|| invalid("operation", operation))?,
        permission: Permission::from_code(permission)
            .ok_or_else(|| invalid("permission type", permission))?,
    })
}
