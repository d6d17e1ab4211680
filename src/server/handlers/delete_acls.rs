//! DeleteAcls: removes the ACLs each filter selects and answers them, per
//! filter, as Kafka does. The caller needs Alter on the cluster.

use std::rc::Rc;

use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::StrBytes;

use super::authorize::Access;
use super::create_acls::refusal;
use super::describe_acls::filter;
use crate::acl::{AclFilter, Operation};
use crate::security::Session;
use crate::server::broker::Broker;
use crate::server::catalog::DeleteAcls;
use crate::server::errors;
use crate::shard::ShardId;

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    _version: i16,
    r: DeleteAclsRequest,
) -> DeleteAclsResponse {
    let access = Access::new(broker, session);
    let refused = refusal(broker, &access, Operation::Alter);
    let parsed: Vec<Result<AclFilter, (i16, String)>> = r
        .filters
        .iter()
        .map(|f| match &refused {
            Some(failure) => Err(failure.clone()),
            None => filter(
                f.resource_type_filter,
                f.resource_name_filter.as_deref(),
                f.pattern_type_filter,
                f.principal_filter.as_deref(),
                f.host_filter.as_deref(),
                f.operation,
                f.permission_type,
            ),
        })
        .collect();
    let valid: Vec<AclFilter> = parsed.iter().filter_map(|p| p.clone().ok()).collect();
    let deleted = if valid.is_empty() {
        Ok(Vec::new())
    } else {
        broker
            .call(ShardId(0), DeleteAcls(valid))
            .await
            .map_err(|e| (errors::catalog_error(&e), e.to_string()))
    };
    let mut deleted_per_filter = match &deleted {
        Ok(lists) => lists.clone().into_iter(),
        Err(_) => Vec::new().into_iter(),
    };
    let results = parsed
        .into_iter()
        .map(|p| {
            let failure = match (p, &deleted) {
                (Err(failure), _) => failure,
                (Ok(_), Err(failure)) => failure.clone(),
                (Ok(_), Ok(_)) => {
                    let matching = deleted_per_filter
                        .next()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|acl| {
                            DeleteAclsMatchingAcl::default()
                                .with_resource_type(acl.resource_type.code())
                                .with_resource_name(StrBytes::from_string(acl.name))
                                .with_pattern_type(acl.pattern_type.code())
                                .with_principal(StrBytes::from_string(acl.principal))
                                .with_host(StrBytes::from_string(acl.host))
                                .with_operation(acl.operation.code())
                                .with_permission_type(acl.permission.code())
                        })
                        .collect();
                    return DeleteAclsFilterResult::default().with_matching_acls(matching);
                }
            };
            DeleteAclsFilterResult::default()
                .with_error_code(failure.0)
                .with_error_message(Some(StrBytes::from_string(failure.1)))
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}
