//! CreateAcls: adds ACLs to the cluster metadata (shard 0 persists them on
//! a single node, or commits them through the controller quorum). The
//! caller needs Alter on the cluster; with no authorizer configured Kafka
//! answers SECURITY_DISABLED, and so does corelog.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::StrBytes;

use super::authorize::{Access, CLUSTER_DENIED};
use crate::acl::{AclBinding, Operation, PatternType, Permission, ResourceType};
use crate::security::Session;
use crate::server::broker::Broker;
use crate::server::catalog::CreateAcls;
use crate::server::errors;
use crate::shard::ShardId;

pub type Failure = (i16, String);

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    _version: i16,
    request: CreateAclsRequest,
) -> CreateAclsResponse {
    let access = Access::new(broker, session);
    let refusal = refusal(broker, &access, Operation::Alter);
    let parsed: Vec<Result<AclBinding, Failure>> = request
        .creations
        .iter()
        .map(|c| match &refusal {
            Some(failure) => Err(failure.clone()),
            None => binding(c),
        })
        .collect();
    let valid: Vec<AclBinding> = parsed.iter().filter_map(|p| p.clone().ok()).collect();
    let stored = if valid.is_empty() {
        Ok(())
    } else {
        broker
            .call(ShardId(0), CreateAcls(valid))
            .await
            .map_err(|e| (errors::catalog_error(&e), e.to_string()))
    };
    let results = parsed
        .into_iter()
        .map(|p| {
            let outcome = p.and_then(|_| stored.clone());
            match outcome {
                Ok(()) => AclCreationResult::default(),
                Err((code, message)) => AclCreationResult::default()
                    .with_error_code(code)
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

/// Why an ACL API is refused as a whole, if it is: no authorizer
/// (SECURITY_DISABLED), the caller lacks `operation` on the cluster, or a
/// cluster not yet finalized at the level that stores ACLs.
pub fn refusal(broker: &Rc<Broker>, access: &Access, operation: Operation) -> Option<Failure> {
    if !access.enabled() {
        return Some((
            ResponseError::SecurityDisabled.code(),
            "No Authorizer is configured.".into(),
        ));
    }
    if !access.cluster(operation) {
        return Some((CLUSTER_DENIED, "Cluster authorization failed.".to_string()));
    }
    let level = broker.catalog().metadata_version;
    if broker.cluster_mode() && level < crate::features::METADATA_VERSION_SECURITY {
        return Some((
            ResponseError::UnsupportedVersion.code(),
            format!(
                "the cluster is not finalized at {} level {} yet (it is at {level}): ACLs are \
                 stored once every broker runs a binary that reads them",
                crate::features::METADATA_VERSION_FEATURE,
                crate::features::METADATA_VERSION_SECURITY
            ),
        ));
    }
    None
}

/// The ACL a creation asks for, if it is one Kafka would store.
fn binding(c: &AclCreation) -> Result<AclBinding, Failure> {
    let invalid = |message: String| (ResponseError::InvalidRequest.code(), message);
    let acl = AclBinding {
        resource_type: ResourceType::from_code(c.resource_type)
            .ok_or_else(|| invalid(format!("Unknown resource type {}", c.resource_type)))?,
        name: c.resource_name.to_string(),
        pattern_type: PatternType::from_code(c.resource_pattern_type)
            .ok_or_else(|| invalid(format!("Unknown pattern type {}", c.resource_pattern_type)))?,
        principal: c.principal.to_string(),
        host: c.host.to_string(),
        operation: Operation::from_code(c.operation)
            .ok_or_else(|| invalid(format!("Unknown operation {}", c.operation)))?,
        permission: Permission::from_code(c.permission_type)
            .ok_or_else(|| invalid(format!("Unknown permission type {}", c.permission_type)))?,
    };
    acl.validate().map_err(|e| invalid(e.to_string()))?;
    Ok(acl)
}
