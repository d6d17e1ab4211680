//! The broker's side of one SASL exchange: the mechanism chosen by
//! SaslHandshake, then each SaslAuthenticate token through [`Exchange::step`]
//! until the client is authenticated or refused. Pure: the credentials come
//! from a [`CredentialStore`] (the shard's catalog copy), so the state
//! machine is tested without a broker.
//!
//! A wrong password and an unknown user fail alike, with the same message,
//! at the same step: for an unknown user SCRAM goes on with a made-up salt
//! (derived from the name, so it does not change between attempts), so the
//! exchange does not tell which names exist.
//!
//! Repeated failures from one client address are slowed down per shard
//! ([`FailureLimiter`]): past `FAILURES_MAX` failures within
//! `FAILURE_WINDOW`, each further failure from that address is answered
//! only after `FAILURE_DELAY` (as Kafka's
//! `connection.failed.authentication.delay.ms`, but only for an address
//! that keeps failing). The right password is never delayed, and
//! `max.connections.per.ip` bounds how many guesses run at once.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::plain::PlainMessage;
use super::scram::{self, ClientFinal, ClientFirst, ScramCredential, ScramMechanism};

/// The mechanisms corelog serves (`sasl.enabled.mechanisms` picks among them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Scram(ScramMechanism),
}

impl Mechanism {
    pub const ALL: [Mechanism; 3] = [
        Mechanism::Plain,
        Mechanism::Scram(ScramMechanism::Sha256),
        Mechanism::Scram(ScramMechanism::Sha512),
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(m) => m.name(),
        }
    }

    pub fn parse(name: &str) -> Option<Mechanism> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// A `sasl.enabled.mechanisms` value: comma-separated names. An unknown
    /// name is an error naming it.
    pub fn parse_list(value: &str) -> Result<Vec<Mechanism>, String> {
        let mut out = Vec::new();
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let mechanism = Mechanism::parse(name).ok_or_else(|| {
                format!("unsupported SASL mechanism {name} (corelog serves PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)")
            })?;
            if !out.contains(&mechanism) {
                out.push(mechanism);
            }
        }
        Ok(out)
    }
}

/// The credentials an exchange checks against.
pub trait CredentialStore {
    fn credential(&self, user: &str, mechanism: ScramMechanism) -> Option<&ScramCredential>;
    /// Every credential of `user` (PLAIN accepts a password any of them
    /// was made from).
    fn credentials(&self, user: &str) -> Vec<&ScramCredential>;
}

/// The message every credential failure gets: it does not say whether the
/// user or the password was wrong.
pub const INVALID_CREDENTIALS: &str = "Authentication failed: Invalid username or password";

/// Why an exchange failed; the connection is closed after the answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// SASL_AUTHENTICATION_FAILED with this message.
    #[error("{0}")]
    Failed(String),
    /// ILLEGAL_SASL_STATE: a token after the exchange ended.
    #[error("{0}")]
    IllegalState(String),
}

/// What one step gives back.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this token and wait for the client's next one.
    Challenge(Vec<u8>),
    /// The client is `user`; send the last token (may be empty).
    Authenticated { user: String, token: Vec<u8> },
}

enum State {
    Start,
    /// SCRAM's server-first message was sent.
    ScramFirstSent(Box<ScramPending>),
    Done,
}

/// What SCRAM keeps between its two client messages.
struct ScramPending {
    first: ClientFirst,
    server_first: String,
    nonce: String,
    /// None: an unknown user, refused at the final message.
    credential: Option<ScramCredential>,
    stand_in: ScramCredential,
}

/// One exchange of one mechanism.
pub struct Exchange {
    mechanism: Mechanism,
    state: State,
}

impl Exchange {
    pub fn new(mechanism: Mechanism) -> Exchange {
        Exchange {
            mechanism,
            state: State::Start,
        }
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Takes the client's next token.
    pub fn step(&mut self, token: &[u8], store: &dyn CredentialStore) -> Result<Step, AuthError> {
        let state = std::mem::replace(&mut self.state, State::Done);
        match (self.mechanism, state) {
            (_, State::Done) => Err(AuthError::IllegalState(
                "the SASL exchange already ended".into(),
            )),
            (Mechanism::Plain, State::Start) => plain(token, store),
            (Mechanism::Scram(mechanism), State::Start) => {
                let first = ClientFirst::parse(token).map_err(failed)?;
                let nonce = format!("{}{}", first.nonce, scram::new_nonce());
                let credential = store.credential(&first.user, mechanism).cloned();
                let stand_in = stand_in_credential(mechanism, &first.user);
                let shown = credential.as_ref().unwrap_or(&stand_in);
                let server_first = format!(
                    "r={nonce},s={},i={}",
                    scram::base64_encode(&shown.salt),
                    shown.iterations
                );
                let token = server_first.clone().into_bytes();
                self.state = State::ScramFirstSent(Box::new(ScramPending {
                    first,
                    server_first,
                    nonce,
                    credential,
                    stand_in,
                }));
                Ok(Step::Challenge(token))
            }
            (_, State::ScramFirstSent(pending)) => {
                let ScramPending {
                    first,
                    server_first,
                    nonce,
                    credential,
                    stand_in,
                } = *pending;
                let last = ClientFinal::parse(token).map_err(failed)?;
                if last.nonce != nonce {
                    return Err(AuthError::Failed("Invalid SCRAM nonce".into()));
                }
                if last.channel_binding != first.gs2_header.as_bytes() {
                    return Err(AuthError::Failed("Invalid SCRAM channel binding".into()));
                }
                let message = scram::auth_message(&first.bare, &server_first, &last.without_proof);
                // The stand-in is checked too, so an unknown user costs the
                // same work as a wrong password.
                let checked = scram::verify_proof(
                    credential.as_ref().unwrap_or(&stand_in),
                    &message,
                    &last.proof,
                );
                match (credential, checked) {
                    (Some(_), Some(signature)) => Ok(Step::Authenticated {
                        user: first.user,
                        token: format!("v={}", scram::base64_encode(&signature)).into_bytes(),
                    }),
                    _ => Err(AuthError::Failed(INVALID_CREDENTIALS.into())),
                }
            }
        }
    }
}

fn failed(e: impl std::fmt::Display) -> AuthError {
    AuthError::Failed(format!("Authentication failed: {e}"))
}

fn plain(token: &[u8], store: &dyn CredentialStore) -> Result<Step, AuthError> {
    let message = PlainMessage::parse(token).map_err(|e| AuthError::Failed(e.to_string()))?;
    let credentials = store.credentials(message.user);
    // Every credential is derived, so the work does not say how many
    // mechanisms the user has, and an unknown user costs one derivation.
    let stand_in = stand_in_credential(ScramMechanism::Sha256, message.user);
    let mut matched = false;
    if credentials.is_empty() {
        stand_in.matches_password(message.password);
    }
    for credential in credentials {
        matched |= credential.matches_password(message.password);
    }
    if matched {
        Ok(Step::Authenticated {
            user: message.user.to_string(),
            token: Vec::new(),
        })
    } else {
        Err(AuthError::Failed(INVALID_CREDENTIALS.into()))
    }
}

/// A credential for a user that does not exist: salted from the name and a
/// per-process secret, so repeated attempts see the same salt, as for a
/// real user; no password matches it (its keys are random).
fn stand_in_credential(mechanism: ScramMechanism, user: &str) -> ScramCredential {
    thread_local! {
        static SECRET: Vec<u8> = scram::random_bytes(32);
    }
    let salt = SECRET.with(|secret| mechanism.hmac(secret, user.as_bytes()));
    ScramCredential {
        mechanism,
        salt: salt[..scram::SALT_BYTES_NEW.min(salt.len())].to_vec(),
        iterations: scram::ITERATIONS_DEFAULT,
        stored_key: scram::random_bytes(mechanism.hash_len()),
        server_key: scram::random_bytes(mechanism.hash_len()),
    }
}

/// One connection's SASL state, kept on its `Session` between requests.
#[derive(Default)]
pub struct ConnectionSasl {
    /// The mechanism the last SaslHandshake chose, and its exchange.
    pub exchange: Option<Exchange>,
    /// The user the connection authenticated as (re-authentication must
    /// keep it, as Kafka requires).
    pub user: Option<String>,
    /// The mechanism it authenticated with (re-authentication keeps it).
    pub mechanism: Option<Mechanism>,
}

/// Failures counted per client address within this window.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Failures within the window past which an address's failures are slowed.
pub const FAILURES_MAX: u32 = 10;
/// How long a failure past the bound waits for its answer.
pub const FAILURE_DELAY: Duration = Duration::from_secs(1);
/// Addresses one shard tracks; the oldest is forgotten past this.
pub const FAILURE_ADDRESSES_MAX: usize = 4096;

/// Authentication failures per client address, on one shard.
#[derive(Default)]
pub struct FailureLimiter {
    by_address: HashMap<IpAddr, (u32, Instant)>,
}

impl FailureLimiter {
    /// Counts a failure from `ip`; how long its answer waits (None: at once).
    pub fn failed(&mut self, ip: IpAddr, now: Instant) -> Option<Duration> {
        if !self.by_address.contains_key(&ip) && self.by_address.len() >= FAILURE_ADDRESSES_MAX {
            self.by_address
                .retain(|_, (_, since)| now.duration_since(*since) < FAILURE_WINDOW);
            if self.by_address.len() >= FAILURE_ADDRESSES_MAX {
                let oldest = self
                    .by_address
                    .iter()
                    .min_by_key(|(_, (_, since))| *since)
                    .map(|(ip, _)| *ip);
                if let Some(oldest) = oldest {
                    self.by_address.remove(&oldest);
                }
            }
        }
        let entry = self.by_address.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= FAILURE_WINDOW {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
        (entry.0 > FAILURES_MAX).then_some(FAILURE_DELAY)
    }

    pub fn succeeded(&mut self, ip: IpAddr) {
        self.by_address.remove(&ip);
    }

    pub fn len(&self) -> usize {
        self.by_address.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_address.is_empty()
    }
}

thread_local! {
    /// This shard's limiter: a connection lives on one shard, so no
    /// cross-core state is needed.
    static LIMITER: RefCell<FailureLimiter> = RefCell::new(FailureLimiter::default());
}

/// Runs `f` on this shard's limiter.
pub fn with_limiter<T>(f: impl FnOnce(&mut FailureLimiter) -> T) -> T {
    LIMITER.with(|l| f(&mut l.borrow_mut()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Store(BTreeMap<String, Vec<ScramCredential>>);

    impl CredentialStore for Store {
        fn credential(&self, user: &str, m: ScramMechanism) -> Option<&ScramCredential> {
            self.0.get(user)?.iter().find(|c| c.mechanism == m)
        }
        fn credentials(&self, user: &str) -> Vec<&ScramCredential> {
            self.0
                .get(user)
                .map(|v| v.iter().collect())
                .unwrap_or_default()
        }
    }

    fn store() -> Store {
        let c =
            ScramCredential::from_password(ScramMechanism::Sha512, "alice-secret", 4096).unwrap();
        Store(BTreeMap::from([("alice".to_string(), vec![c])]))
    }

    /// The client side of SCRAM, as `sasl::client` runs it.
    fn scram_login(user: &str, password: &str, store: &Store) -> Result<Step, AuthError> {
        let mut exchange = Exchange::new(Mechanism::Scram(ScramMechanism::Sha512));
        let mut client =
            crate::sasl::client::ScramClient::new(ScramMechanism::Sha512, user, password);
        let first = client.first_message();
        let Step::Challenge(server_first) = exchange.step(&first, store)? else {
            panic!("SCRAM ends after two messages");
        };
        let last = client.final_message(&server_first).unwrap();
        exchange.step(&last, store)
    }

    #[test]
    fn scram_and_plain_accept_the_password_and_nothing_else() {
        let s = store();
        match scram_login("alice", "alice-secret", &s).unwrap() {
            Step::Authenticated { user, token } => {
                assert_eq!(user, "alice");
                assert!(token.starts_with(b"v="));
            }
            other => panic!("{other:?}"),
        }
        let wrong = scram_login("alice", "nope", &s).unwrap_err();
        let unknown = scram_login("mallory", "nope", &s).unwrap_err();
        assert_eq!(wrong, AuthError::Failed(INVALID_CREDENTIALS.into()));
        assert_eq!(wrong, unknown);

        let mut plain = Exchange::new(Mechanism::Plain);
        assert!(matches!(
            plain.step(b"\0alice\0alice-secret", &s),
            Ok(Step::Authenticated { .. })
        ));
        assert!(
            plain.step(b"\0alice\0alice-secret", &s).is_err(),
            "one message only"
        );
        for token in [&b"\0alice\0bad"[..], b"\0bob\0alice-secret"] {
            assert_eq!(
                Exchange::new(Mechanism::Plain).step(token, &s).unwrap_err(),
                AuthError::Failed(INVALID_CREDENTIALS.into())
            );
        }
    }

    #[test]
    fn bad_scram_inputs_fail_without_panicking() {
        let s = store();
        let mechanism = Mechanism::Scram(ScramMechanism::Sha512);
        for first in [&b""[..], b"garbage", b"n,,n=alice", &[0xff; 64]] {
            assert!(Exchange::new(mechanism).step(first, &s).is_err());
        }
        let mut exchange = Exchange::new(mechanism);
        let Ok(Step::Challenge(server_first)) = exchange.step(b"n,,n=alice,r=abcdefghijkl", &s)
        else {
            panic!("first step");
        };
        let text = String::from_utf8(server_first).unwrap();
        assert!(text.starts_with("r=abcdefghijkl") && text.contains(",i=4096"));
        // A final message with another nonce.
        assert!(exchange
            .step(b"c=biws,r=abcdefghijklXXXX,p=AAAA", &s)
            .is_err());
        // The exchange is over after a failure.
        assert!(matches!(
            exchange.step(b"c=biws,r=abcdefghijkl,p=AAAA", &s),
            Err(AuthError::IllegalState(_))
        ));
        // An unknown user sees a stable salt.
        let salt = |user: &str| {
            let mut e = Exchange::new(mechanism);
            let first = format!("n,,n={user},r=abcdefghijkl");
            match e.step(first.as_bytes(), &s) {
                Ok(Step::Challenge(t)) => String::from_utf8(t)
                    .unwrap()
                    .split(",s=")
                    .nth(1)
                    .unwrap()
                    .to_string(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(salt("nobody"), salt("nobody"));
        assert_ne!(salt("nobody"), salt("somebody"));
    }

    #[test]
    fn the_limiter_slows_repeated_failures_and_stays_bounded() {
        let mut limiter = FailureLimiter::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let now = Instant::now();
        for _ in 0..FAILURES_MAX {
            assert_eq!(limiter.failed(ip, now), None);
        }
        assert_eq!(limiter.failed(ip, now), Some(FAILURE_DELAY));
        assert_eq!(
            limiter.failed(ip, now + FAILURE_WINDOW),
            None,
            "a new window"
        );
        limiter.succeeded(ip);
        assert!(limiter.is_empty());
        for i in 0..(FAILURE_ADDRESSES_MAX as u32 + 100) {
            limiter.failed(IpAddr::from(i.to_be_bytes()), now);
        }
        assert!(limiter.len() <= FAILURE_ADDRESSES_MAX);
        assert_eq!(
            Mechanism::parse_list("PLAIN, SCRAM-SHA-512,PLAIN").unwrap(),
            [Mechanism::Plain, Mechanism::Scram(ScramMechanism::Sha512)]
        );
        assert!(Mechanism::parse_list("GSSAPI").is_err());
    }
}
