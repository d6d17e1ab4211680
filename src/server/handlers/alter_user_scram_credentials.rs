//! AlterUserScramCredentials (v0): create, replace and delete users' SCRAM
//! credentials. The client sends a salt and the salted password (never the
//! password); the broker keeps the stored and server keys derived from it.
//! Checks and errors are Kafka's: an unknown mechanism is
//! UNSUPPORTED_SASL_MECHANISM, an empty name or iterations outside
//! [4096, 16384] UNACCEPTABLE_CREDENTIAL, a user named twice in one request
//! DUPLICATE_RESOURCE, deleting a credential that does not exist
//! RESOURCE_NOT_FOUND. The change goes through shard 0's catalog, which
//! persists it (a single node) or commits it through the controller quorum
//! (a cluster) before it answers, so every shard of every node has it.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use futures::future::LocalBoxFuture;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::authorize::{Access, CLUSTER_DENIED};
use crate::acl::Operation;
use crate::features::{METADATA_VERSION_FEATURE, METADATA_VERSION_SECURITY};
use crate::metadata::ScramCredentials;
use crate::sasl::scram::{self, SALT_BYTES_MAX, SALT_BYTES_MIN};
use crate::sasl::{ScramCredential, ScramMechanism};
use crate::security::Session;
use crate::server::broker::Broker;
use crate::server::catalog::{CatalogError, CatalogOwner};
use crate::server::error_codes::ErrorCodes;
use crate::server::errors;
use crate::server::handlers::api_versions::Finalized;
use crate::shard::mesh::{MeshError, ShardCall};
use crate::shard::ShardId;

impl ErrorCodes for AlterUserScramCredentialsResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        self.results.iter().for_each(|r| out(r.error_code));
    }
}

type Failure = (i16, String);

/// One checked change.
#[derive(Clone, Debug)]
enum Change {
    Upsert(ScramCredential),
    Delete(ScramMechanism),
}

/// To shard 0: apply the checked changes, each user's alone (a user's
/// failure does not stop the others, as Kafka answers per user).
struct AlterScram(Vec<(String, Change)>);

impl ShardCall<Broker> for AlterScram {
    type Reply = Result<Vec<(String, Option<Failure>)>, CatalogError>;
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, Self::Reply> {
        Box::pin(async move {
            CatalogOwner::change_scram_credentials(&broker, |credentials| {
                self.0
                    .into_iter()
                    .map(|(user, change)| {
                        let failure = apply(credentials, &user, change).err();
                        (user, failure)
                    })
                    .collect()
            })
            .await
        })
    }
    fn unreachable(e: MeshError) -> Self::Reply {
        Err(CatalogError::Unavailable(e.to_string()))
    }
}

fn apply(credentials: &mut ScramCredentials, user: &str, change: Change) -> Result<(), Failure> {
    match change {
        Change::Upsert(credential) => {
            if !credentials.contains_key(user)
                && credentials.len() >= crate::metadata::SCRAM_USERS_MAX
            {
                return Err((
                    ResponseError::UnacceptableCredential.code(),
                    "Too many SCRAM users".into(),
                ));
            }
            credentials
                .entry(user.to_string())
                .or_default()
                .insert(credential.mechanism, credential);
            Ok(())
        }
        Change::Delete(mechanism) => {
            let removed = credentials
                .get_mut(user)
                .and_then(|by_mechanism| by_mechanism.remove(&mechanism));
            if credentials.get(user).is_some_and(BTreeMap::is_empty) {
                credentials.remove(user);
            }
            match removed {
                Some(_) => Ok(()),
                None => Err((
                    ResponseError::ResourceNotFound.code(),
                    "Attempt to delete a user credential that does not exist".into(),
                )),
            }
        }
    }
}

pub async fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    _version: i16,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    // As Kafka: Alter on the cluster, or every user's answer is
    // CLUSTER_AUTHORIZATION_FAILED and nothing changes.
    if !Access::new(broker, session).cluster(Operation::Alter) {
        let users = request
            .deletions
            .iter()
            .map(|d| d.name.clone())
            .chain(request.upsertions.iter().map(|u| u.name.clone()));
        return AlterUserScramCredentialsResponse::default().with_results(
            users
                .map(|user| {
                    AlterUserScramCredentialsResult::default()
                        .with_user(user)
                        .with_error_code(CLUSTER_DENIED)
                })
                .collect(),
        );
    }
    let mut named: HashMap<String, usize> = HashMap::new();
    let users = request
        .deletions
        .iter()
        .map(|d| &d.name)
        .chain(request.upsertions.iter().map(|u| &u.name));
    for user in users {
        *named.entry(user.to_string()).or_default() += 1;
    }
    let mut results: Vec<(String, Option<Failure>)> = Vec::new();
    let mut changes = Vec::new();
    let finalized = Finalized::of(&broker.catalog(), broker.cluster_mode()).metadata_version;
    let mut check = |user: &str, change: Result<Change, Failure>| {
        let outcome = if named.get(user).copied().unwrap_or(0) > 1 {
            Err((
                ResponseError::DuplicateResource.code(),
                "A user credential cannot be altered twice in the same request".to_string(),
            ))
        } else if finalized < METADATA_VERSION_SECURITY {
            Err((
                ResponseError::UnsupportedVersion.code(),
                format!(
                    "The cluster is not finalized at {METADATA_VERSION_FEATURE} level \
                     {METADATA_VERSION_SECURITY} yet (it runs at {finalized}): SCRAM credentials \
                     need every node upgraded"
                ),
            ))
        } else if user.is_empty() {
            Err((
                ResponseError::UnacceptableCredential.code(),
                "Username must not be empty".to_string(),
            ))
        } else if user.len() > scram::USER_NAME_BYTES_MAX {
            Err((
                ResponseError::UnacceptableCredential.code(),
                format!(
                    "Username must be at most {} bytes",
                    scram::USER_NAME_BYTES_MAX
                ),
            ))
        } else {
            change
        };
        match outcome {
            Ok(change) => changes.push((user.to_string(), change)),
            Err(failure) => results.push((user.to_string(), Some(failure))),
        }
    };
    for deletion in &request.deletions {
        let change = mechanism(deletion.mechanism).map(Change::Delete);
        check(deletion.name.as_str(), change);
    }
    for upsertion in &request.upsertions {
        let change = mechanism(upsertion.mechanism).and_then(|m| {
            credential(
                m,
                upsertion.iterations,
                &upsertion.salt,
                &upsertion.salted_password,
            )
            .map(Change::Upsert)
        });
        check(upsertion.name.as_str(), change);
    }
    if !changes.is_empty() {
        let users: Vec<String> = changes.iter().map(|(u, _)| u.clone()).collect();
        match broker.call(ShardId(0), AlterScram(changes)).await {
            Ok(applied) => {
                for (user, failure) in &applied {
                    match failure {
                        None => log::info!("SCRAM credentials of user {user:?} changed"),
                        Some((_, why)) => log::info!("SCRAM credentials of {user:?}: {why}"),
                    }
                }
                results.extend(applied);
            }
            Err(e) => {
                let failure = (errors::catalog_error(&e), e.to_string());
                results.extend(users.into_iter().map(|u| (u, Some(failure.clone()))));
            }
        }
    }
    AlterUserScramCredentialsResponse::default().with_results(
        results
            .into_iter()
            .map(|(user, failure)| {
                let (code, message) = match failure {
                    Some((code, message)) => (code, Some(StrBytes::from_string(message))),
                    None => (0, None),
                };
                AlterUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(user))
                    .with_error_code(code)
                    .with_error_message(message)
            })
            .collect(),
    )
}

fn mechanism(code: i8) -> Result<ScramMechanism, Failure> {
    ScramMechanism::from_code(code).ok_or_else(|| {
        (
            ResponseError::UnsupportedSaslMechanism.code(),
            "Unknown SCRAM mechanism".to_string(),
        )
    })
}

fn credential(
    mechanism: ScramMechanism,
    iterations: i32,
    salt: &[u8],
    salted_password: &[u8],
) -> Result<ScramCredential, Failure> {
    let unacceptable = |message: String| (ResponseError::UnacceptableCredential.code(), message);
    scram::check_iterations(iterations).map_err(|e| unacceptable(e.to_string()))?;
    if !(SALT_BYTES_MIN..=SALT_BYTES_MAX).contains(&salt.len()) {
        return Err(unacceptable(format!(
            "Salt must be {SALT_BYTES_MIN} to {SALT_BYTES_MAX} bytes"
        )));
    }
    if salted_password.len() != mechanism.hash_len() {
        return Err(unacceptable(format!(
            "The salted password must be {} bytes for {mechanism}",
            mechanism.hash_len()
        )));
    }
    Ok(ScramCredential::from_salted_password(
        mechanism,
        salt.to_vec(),
        iterations,
        salted_password,
    ))
}
