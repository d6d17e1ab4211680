//! DescribeUserScramCredentials (v0): each user's mechanisms and iteration
//! counts, from this shard's catalog copy; never a salt or a key. No users
//! named (null or empty): every user. A user named twice is
//! DUPLICATE_RESOURCE, an unknown one RESOURCE_NOT_FOUND, as Kafka answers.

use std::collections::HashMap;
use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::authorize::{Access, CLUSTER_DENIED};
use crate::acl::Operation;
use crate::security::Session;
use crate::server::broker::Broker;
use crate::server::error_codes::ErrorCodes;

impl ErrorCodes for DescribeUserScramCredentialsResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
        self.results.iter().for_each(|r| out(r.error_code));
    }
}

pub fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    _version: i16,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    // As Kafka: Describe on the cluster.
    if !Access::new(broker, session).cluster(Operation::Describe) {
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(CLUSTER_DENIED)
            .with_error_message(Some(StrBytes::from_static_str(
                "Cluster authorization failed.",
            )));
    }
    let catalog = broker.catalog();
    let credentials = &catalog.scram_credentials;
    let wanted: Vec<String> = match request.users {
        Some(users) if !users.is_empty() => users.iter().map(|u| u.name.to_string()).collect(),
        _ => credentials.keys().cloned().collect(),
    };
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for user in &wanted {
        *counts.entry(user.as_str()).or_default() += 1;
    }
    let mut results = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for user in &wanted {
        if !seen.insert(user.as_str()) {
            continue;
        }
        let result = DescribeUserScramCredentialsResult::default()
            .with_user(StrBytes::from_string(user.clone()));
        let result = if counts[user.as_str()] > 1 {
            result
                .with_error_code(ResponseError::DuplicateResource.code())
                .with_error_message(Some(StrBytes::from_string(format!(
                    "Cannot describe SCRAM credentials for the same user twice in a single \
                     request: {user}"
                ))))
        } else {
            match credentials.get(user) {
                Some(by_mechanism) => result.with_credential_infos(
                    by_mechanism
                        .values()
                        .map(|c| {
                            CredentialInfo::default()
                                .with_mechanism(c.mechanism.code())
                                .with_iterations(c.iterations)
                        })
                        .collect(),
                ),
                None => result
                    .with_error_code(ResponseError::ResourceNotFound.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Attempt to describe a user credential that does not exist: {user}"
                    )))),
            }
        };
        results.push(result);
    }
    DescribeUserScramCredentialsResponse::default().with_results(results)
}
