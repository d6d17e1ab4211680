//! `corelog configs --entity-type users`: SCRAM credentials, as Kafka's
//! `kafka-configs.sh` manages them:
//!
//! ```text
//! corelog configs --alter --entity-type users --entity-name alice \
//!     --add-config 'SCRAM-SHA-256=[iterations=8192,password=alice-secret]'
//! corelog configs --alter --entity-type users --entity-name alice --delete-config SCRAM-SHA-256
//! corelog configs --describe --entity-type users [--entity-name alice]
//! ```
//!
//! The password is salted and hashed here (PBKDF2, as SCRAM's Hi()): only
//! the salt and the salted password reach the broker
//! (AlterUserScramCredentials), which keeps keys derived from them.

use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, ApiKey, DescribeUserScramCredentialsRequest,
};

use super::client::{fail, CliResult, KafkaClient};
use super::output::{error_text, str_bytes};
use crate::sasl::scram::{self, ITERATIONS_DEFAULT, SALT_BYTES_NEW};
use crate::sasl::ScramMechanism;

/// `--describe`: one line per user, as Kafka's tool prints them.
pub fn describe(client: &mut KafkaClient, user: Option<&str>) -> CliResult<()> {
    let version = client.version(ApiKey::DescribeUserScramCredentials, 0)?;
    let request = DescribeUserScramCredentialsRequest::default()
        .with_users(user.map(|u| vec![UserName::default().with_name(str_bytes(u))]));
    let response = client.call(version, &request)?;
    if response.error_code != 0 {
        return fail(error_text(
            response.error_code,
            response.error_message.as_ref(),
        ));
    }
    for result in response.results {
        if result.error_code != 0 {
            return fail(error_text(result.error_code, result.error_message.as_ref()));
        }
        let credentials: Vec<String> = result
            .credential_infos
            .iter()
            .map(|c| {
                let name = ScramMechanism::from_code(c.mechanism)
                    .map_or_else(|| format!("mechanism {}", c.mechanism), |m| m.name().into());
                format!("{name}=iterations={}", c.iterations)
            })
            .collect();
        println!(
            "SCRAM credential configs for user-principal '{}' are {}",
            result.user.as_str(),
            credentials.join(", ")
        );
    }
    Ok(())
}

/// `--alter`: `adds` are `MECHANISM -> iterations=N,password=P` (the
/// brackets already taken off), `deletes` are mechanism names.
pub fn alter(
    client: &mut KafkaClient,
    user: &str,
    adds: &std::collections::BTreeMap<String, String>,
    deletes: &[String],
) -> CliResult<()> {
    let mut request = AlterUserScramCredentialsRequest::default();
    for (name, value) in adds {
        let mechanism = mechanism(name)?;
        let (iterations, password) = credential_spec(name, value)?;
        let salt = scram::random_bytes(SALT_BYTES_NEW);
        let salted =
            mechanism.salted_password(password.as_bytes(), &salt, iterations.max(1) as u32);
        request.upsertions.push(
            ScramCredentialUpsertion::default()
                .with_name(str_bytes(user))
                .with_mechanism(mechanism.code())
                .with_iterations(iterations)
                .with_salt(salt.into())
                .with_salted_password(salted.into()),
        );
    }
    for name in deletes {
        request.deletions.push(
            ScramCredentialDeletion::default()
                .with_name(str_bytes(user))
                .with_mechanism(mechanism(name)?.code()),
        );
    }
    if request.upsertions.len() + request.deletions.len() > 1 {
        // Kafka refuses a user named twice in one request: one call each.
        let (upsertions, deletions) = (request.upsertions, request.deletions);
        for upsertion in upsertions {
            send(
                client,
                AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion]),
            )?;
        }
        for deletion in deletions {
            send(
                client,
                AlterUserScramCredentialsRequest::default().with_deletions(vec![deletion]),
            )?;
        }
    } else {
        send(client, request)?;
    }
    println!("Completed updating config for user {user}.");
    Ok(())
}

fn send(client: &mut KafkaClient, request: AlterUserScramCredentialsRequest) -> CliResult<()> {
    let version = client.version(ApiKey::AlterUserScramCredentials, 0)?;
    let response = client.call(version, &request)?;
    for result in response.results {
        if result.error_code != 0 {
            return fail(error_text(result.error_code, result.error_message.as_ref()));
        }
    }
    Ok(())
}

fn mechanism(name: &str) -> CliResult<ScramMechanism> {
    ScramMechanism::parse(name.trim()).map_or_else(
        || {
            fail(format!(
                "Invalid config {name}: users take SCRAM-SHA-256 and SCRAM-SHA-512 only"
            ))
        },
        Ok,
    )
}

/// `iterations=N,password=P` (iterations optional: 4096, Kafka's tool's).
fn credential_spec(name: &str, value: &str) -> CliResult<(i32, String)> {
    let mut iterations = ITERATIONS_DEFAULT;
    let mut password = None;
    for part in value.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some(("iterations", n)) => {
                iterations = n.trim().parse().map_or_else(
                    |_| fail(format!("{name}: iterations={n} is not a number")),
                    Ok,
                )?
            }
            Some(("password", p)) => password = Some(p.to_string()),
            _ => {
                return fail(format!(
                "{name}: expected [iterations=N,password=P] (the password must not hold a comma)"
            ))
            }
        }
    }
    match password {
        Some(p) if !p.is_empty() => Ok((iterations, p)),
        _ => fail(format!("{name}: password=... is missing")),
    }
}
