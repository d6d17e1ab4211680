//! SaslAuthenticate (v0-v2): one token of the exchange SaslHandshake
//! chose, and the gate that keeps every other request away from a SASL
//! connection until it authenticated (and again once its session lifetime,
//! `connections.max.reauth.ms`, ran out: KIP-368).
//!
//! A failure is answered SASL_AUTHENTICATION_FAILED with a message that
//! does not say whether the user or the password was wrong, then the
//! connection is closed, as Kafka does. Failures are counted per client
//! address on the shard (`sasl::server::FailureLimiter`); past the bound,
//! each further failure from that address is answered only after a delay.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, RequestHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::metadata::Catalog;
use crate::sasl::server::{self, AuthError, ConnectionSasl, CredentialStore, Step};
use crate::sasl::{ScramCredential, ScramMechanism};
use crate::security::{Principal, Session};
use crate::server::broker::Broker;
use crate::server::error_codes::ErrorCodes;

impl ErrorCodes for SaslAuthenticateResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}

/// The shard's catalog copy as the exchange's credential store.
struct CatalogStore<'a>(&'a Catalog);

impl CredentialStore for CatalogStore<'_> {
    fn credential(&self, user: &str, mechanism: ScramMechanism) -> Option<&ScramCredential> {
        self.0.scram_credentials.get(user)?.get(&mechanism)
    }

    fn credentials(&self, user: &str) -> Vec<&ScramCredential> {
        self.0
            .scram_credentials
            .get(user)
            .map(|m| m.values().collect())
            .unwrap_or_default()
    }
}

/// Refuses a request the connection may not make yet: before SASL
/// authentication only ApiVersions, SaslHandshake and SaslAuthenticate are
/// answered; the same once the session lifetime ran out. Anything else
/// closes the connection (Kafka's behaviour): the answer is why.
pub fn gate(session: &Session, header: &RequestHeader) -> Option<Refused> {
    let key = header.request_api_key;
    let allowed = [
        ApiKey::ApiVersions as i16,
        ApiKey::SaslHandshake as i16,
        ApiKey::SaslAuthenticate as i16,
    ];
    if allowed.contains(&key) {
        return None;
    }
    if !session.authenticated() {
        return Some(Refused::BeforeAuthentication);
    }
    if session.expired(Instant::now()) {
        return Some(Refused::SessionExpired);
    }
    None
}

/// Why [`gate`] refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    BeforeAuthentication,
    SessionExpired,
}

impl Refused {
    /// What the log says after the request's name.
    pub fn reason(self) -> &'static str {
        match self {
            Refused::BeforeAuthentication => "request before SASL authentication",
            Refused::SessionExpired => {
                "request after the session's lifetime (connections.max.reauth.ms) ended \
                 without re-authentication"
            }
        }
    }
}

/// What SaslAuthenticate answers.
pub struct Answer {
    pub response: SaslAuthenticateResponse,
    /// Why the connection closes after the answer (None: it stays open).
    pub close: Option<String>,
    /// How long the answer waits (an address that keeps failing).
    pub delay: Option<Duration>,
}

fn answer(response: SaslAuthenticateResponse) -> Answer {
    Answer {
        response,
        close: None,
        delay: None,
    }
}

fn refuse(error: ResponseError, message: String) -> Answer {
    let response = SaslAuthenticateResponse::default()
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(message.clone())));
    Answer {
        response,
        close: Some(message),
        delay: None,
    }
}

pub fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    version: i16,
    request: SaslAuthenticateRequest,
) -> Answer {
    if !session.protocol.uses_sasl() {
        // Kafka's answer on a listener without SASL; the connection stays.
        return Answer {
            close: None,
            ..refuse(
                ResponseError::IllegalSaslState,
                format!(
                    "Unexpected SaslAuthenticate on the {} listener, which does not use SASL",
                    session.listener
                ),
            )
        };
    }
    let now = Instant::now();
    let ip = session.client_ip;
    session.with_auth_state(|state: &mut ConnectionSasl| {
        let Some(mut exchange) = state.exchange.take() else {
            return refuse(
                ResponseError::IllegalSaslState,
                "SaslAuthenticate request received before SaslHandshake".into(),
            );
        };
        let catalog = broker.catalog();
        match exchange.step(&request.auth_bytes, &CatalogStore(&catalog)) {
            Ok(Step::Challenge(token)) => {
                state.exchange = Some(exchange);
                answer(SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(token)))
            }
            Ok(Step::Authenticated { user, token }) => {
                if state.user.as_ref().is_some_and(|before| *before != user) {
                    return refuse(
                        ResponseError::SaslAuthenticationFailed,
                        "Cannot change principals during re-authentication".into(),
                    );
                }
                server::with_limiter(|l| l.succeeded(ip));
                let lifetime_ms = broker.config.broker.connections_max_reauth_ms;
                let lifetime = (lifetime_ms > 0).then(|| Duration::from_millis(lifetime_ms as u64));
                session.set_expires_at(lifetime.map(|l| now + l));
                if state.user.is_none() {
                    log::debug!(
                        "{} authenticated as User:{user} with {}",
                        session.client_host,
                        exchange.mechanism().name()
                    );
                }
                session.set_principal(Principal::user(&user));
                session.set_authenticated(true);
                state.user = Some(user);
                state.mechanism = Some(exchange.mechanism());
                let mut response =
                    SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(token));
                if version >= 1 {
                    response.session_lifetime_ms = lifetime_ms.max(0);
                }
                answer(response)
            }
            Err(AuthError::Failed(message)) => {
                let delay = server::with_limiter(|l| l.failed(ip, now));
                // Kafka's line; it names the address and the reason, never
                // the credentials.
                log::info!(
                    "Failed authentication with {} ({message})",
                    session.client_host
                );
                Answer {
                    delay,
                    ..refuse(ResponseError::SaslAuthenticationFailed, message)
                }
            }
            Err(AuthError::IllegalState(message)) => {
                refuse(ResponseError::IllegalSaslState, message)
            }
        }
    })
}
