//! Who is on the other end of a connection: the listener's security
//! protocol, the client's address and its principal (`User:ANONYMOUS`
//! until TLS or SASL says otherwise), as Kafka's `KafkaPrincipal` and
//! `RequestContext` carry them. One [`Session`] per client connection,
//! shared by its requests; handlers read it to authorize and to name the
//! client (group members' `client_host`).
//!
//! Authentication (TLS client certificates, SASL) sets the principal; the
//! authorizer reads it. Neither lives here: this module only holds the
//! identity they share, so both depend on it and not on each other.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Instant;

/// Kafka's security protocols (`listener.security.protocol.map` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    /// Kafka's name for it (`SASL_SSL`).
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// The protocol Kafka names `name` (exact, upper case), if any.
    pub fn parse(name: &str) -> Option<SecurityProtocol> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The connection is wrapped in TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// The client must authenticate with SASL before anything but
    /// ApiVersions and SaslHandshake is answered.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Kafka's principal: a type (`User`) and a name, written `User:alice`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal {
    pub kind: String,
    pub name: String,
}

impl Principal {
    pub const USER: &'static str = "User";

    /// `User:ANONYMOUS`: a PLAINTEXT connection, or TLS without a client
    /// certificate, as Kafka names it.
    pub fn anonymous() -> Principal {
        Principal::user("ANONYMOUS")
    }

    pub fn user(name: &str) -> Principal {
        Principal {
            kind: Principal::USER.to_string(),
            name: name.to_string(),
        }
    }

    /// `Type:name` as Kafka writes it (ACLs, `super.users`); the type must
    /// not be empty, the name may hold further colons.
    pub fn parse(text: &str) -> Option<Principal> {
        let (kind, name) = text.split_once(':')?;
        (!kind.is_empty()).then(|| Principal {
            kind: kind.to_string(),
            name: name.to_string(),
        })
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

/// One client connection's identity, shared by its requests (single
/// threaded: a connection lives on one shard).
pub struct Session {
    /// The listener the connection came in on (`PLAINTEXT`, `SASL_SSL`,
    /// or an operator's own name such as `INTERNAL`).
    pub listener: Rc<str>,
    pub protocol: SecurityProtocol,
    pub client_ip: IpAddr,
    /// `/<ip>`, as Kafka shows a client's host (DescribeGroups, the CLI).
    pub client_host: Rc<str>,
    principal: RefCell<Principal>,
    /// TLS and SASL are done (a PLAINTEXT or SSL listener starts so; a
    /// SASL listener's connection becomes so when SaslAuthenticate
    /// succeeds).
    authenticated: Cell<bool>,
    /// The authentication exchange's state between its requests (SASL:
    /// the mechanism chosen, the step reached, the user). Type-erased: the
    /// code that authenticates owns the type, and this module depends on
    /// nothing.
    auth_state: RefCell<Option<Box<dyn Any>>>,
    /// When the authenticated session ends (`connections.max.reauth.ms`,
    /// KIP-368): past it, only re-authentication is answered. None: never.
    expires_at: Cell<Option<Instant>>,
}

impl Session {
    /// A new connection on `listener` from `client_ip`: anonymous, and
    /// authenticated unless the protocol needs SASL.
    pub fn new(listener: &str, protocol: SecurityProtocol, client_ip: IpAddr) -> Session {
        Session {
            listener: listener.into(),
            protocol,
            client_ip,
            client_host: format!("/{client_ip}").into(),
            principal: RefCell::new(Principal::anonymous()),
            authenticated: Cell::new(!protocol.uses_sasl()),
            auth_state: RefCell::new(None),
            expires_at: Cell::new(None),
        }
    }

    pub fn principal(&self) -> Principal {
        self.principal.borrow().clone()
    }

    /// Reads the principal without copying it.
    pub fn with_principal<T>(&self, f: impl FnOnce(&Principal) -> T) -> T {
        f(&self.principal.borrow())
    }

    /// Set by the TLS handshake (the client certificate's subject, mapped)
    /// or by a successful SASL exchange.
    pub fn set_principal(&self, principal: Principal) {
        *self.principal.borrow_mut() = principal;
    }

    pub fn authenticated(&self) -> bool {
        self.authenticated.get()
    }

    pub fn set_authenticated(&self, authenticated: bool) {
        self.authenticated.set(authenticated);
    }

    /// Runs `f` on the authentication state of type `T` (a default one
    /// the first time, or if another type was kept).
    pub fn with_auth_state<T: Default + 'static, R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let mut slot = self.auth_state.borrow_mut();
        if !slot.as_ref().is_some_and(|s| s.is::<T>()) {
            *slot = Some(Box::new(T::default()));
        }
        let state = slot
            .as_mut()
            .and_then(|s| s.downcast_mut::<T>())
            .expect("the slot holds a T");
        f(state)
    }

    pub fn expires_at(&self) -> Option<Instant> {
        self.expires_at.get()
    }

    pub fn set_expires_at(&self, at: Option<Instant>) {
        self.expires_at.set(at);
    }

    /// The authenticated session's lifetime ended (re-authentication is due).
    pub fn expired(&self, now: Instant) -> bool {
        self.expires_at.get().is_some_and(|at| now >= at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_parse_by_kafka_name_only() {
        for p in SecurityProtocol::ALL {
            assert_eq!(SecurityProtocol::parse(p.name()), Some(p));
        }
        assert_eq!(SecurityProtocol::parse("sasl_ssl"), None);
        assert!(SecurityProtocol::SaslSsl.uses_tls() && SecurityProtocol::SaslSsl.uses_sasl());
        assert!(!SecurityProtocol::Plaintext.uses_tls());
    }

    #[test]
    fn principals_read_and_write_as_kafka_does() {
        let p = Principal::parse("User:CN=alice,O=corp:x").unwrap();
        assert_eq!(p.kind, "User");
        assert_eq!(p.name, "CN=alice,O=corp:x");
        assert_eq!(p.to_string(), "User:CN=alice,O=corp:x");
        assert_eq!(Principal::parse(":alice"), None);
        assert_eq!(Principal::parse("alice"), None);
        assert_eq!(Principal::anonymous().to_string(), "User:ANONYMOUS");
    }

    #[test]
    fn a_sasl_session_starts_unauthenticated_and_anonymous() {
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let s = Session::new("SASL_PLAINTEXT", SecurityProtocol::SaslPlaintext, ip);
        assert!(!s.authenticated());
        assert_eq!(&*s.client_host, "/10.0.0.1");
        s.set_principal(Principal::user("alice"));
        s.set_authenticated(true);
        assert_eq!(s.principal(), Principal::user("alice"));
        assert!(Session::new("PLAINTEXT", SecurityProtocol::Plaintext, ip).authenticated());
    }
}
