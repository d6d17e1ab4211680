//! TLS for listeners and for the connections corelog makes (to other
//! brokers, to controllers, from the CLI), configured with Kafka's `ssl.*`
//! keys and done by rustls: `settings` reads the keys, `pem` the PEM
//! keystores and truststores, `server` builds a listener's server config
//! and reloads it when its files change, `client` builds the client side,
//! `principal` turns a client certificate's subject into a principal with
//! `ssl.principal.mapping.rules`.
//!
//! Imports nothing from the crate but `security` (and `limits`): the
//! server, the replication client, the controller transport and the CLI
//! use it, it uses none of them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::security::SecurityProtocol;

mod client;
mod pem;
pub mod principal;
mod server;
mod settings;

pub use client::{client_config, ClientTls};
pub use principal::PrincipalRules;
pub use server::{handshake, Handshaken, ServerTls};
pub use settings::{settings, ClientAuth, Keystore, PemSource, SslSettings};

/// Why TLS cannot be set up as configured; each names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key}={value}: corelog reads PEM only (set {key}=PEM)")]
    NotPem { key: String, value: String },
    #[error("{key}={value}: expected {expected}")]
    BadValue {
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("{0}")]
    Conflict(String),
    #[error(
        "listener {0} uses TLS but has no keystore: set ssl.keystore.location (one PEM file \
         with the unencrypted PKCS#8 key and the certificate chain), or \
         ssl.keystore.certificate.chain and ssl.keystore.key (or their \
         listener.name.<name>. forms)"
    )]
    NoKeystore(String),
    #[error(
        "listener {0}: ssl.client.auth asks for client certificates but no truststore says \
         which to trust: set ssl.truststore.location or ssl.truststore.certificates"
    )]
    NoTruststore(String),
    #[error(
        "no truststore to check the server's certificate with: set ssl.truststore.location \
         (PEM) or ssl.truststore.certificates"
    )]
    ClientNoTruststore,
    #[error("{key}: cannot read {}: {source}", path.display())]
    Read {
        key: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{key}{}: no private key found (expected an unencrypted PKCS#8 key, \
         -----BEGIN PRIVATE KEY-----; encrypted keys are not supported)",
        path.as_ref().map(|p| format!(" ({})", p.display())).unwrap_or_default()
    )]
    NoKey { key: String, path: Option<PathBuf> },
    #[error(
        "{key}{}: no certificate found (expected -----BEGIN CERTIFICATE-----)",
        path.as_ref().map(|p| format!(" ({})", p.display())).unwrap_or_default()
    )]
    NoCertificate { key: String, path: Option<PathBuf> },
    #[error("{key}: {message}")]
    Pem { key: String, message: String },
    #[error("listener {listener}: {message}")]
    Rustls { listener: String, message: String },
    #[error("ssl.principal.mapping.rules: {0}")]
    Rules(String),
}

/// Checks the TLS settings of every listener that uses TLS, so a broker
/// with a bad key or a missing file refuses to start with a message that
/// names the key and the file, before any shard runs.
pub fn check_listeners<'a>(
    keys: &BTreeMap<String, String>,
    listeners: impl IntoIterator<Item = (&'a str, SecurityProtocol)>,
) -> Result<(), TlsError> {
    for (name, protocol) in listeners {
        if protocol.uses_tls() {
            ServerTls::new(keys, name)?;
        }
    }
    Ok(())
}

/// The crypto provider every config of this module uses: ring's (the
/// crate is built without aws-lc-rs, whose provider has the post-quantum
/// key exchange ring's lacks, hence the deprecation this allows), with
/// the AES-128-GCM suites first: as secure for TLS's purposes and about a
/// third cheaper per byte than AES-256-GCM, which clients list first. A
/// listener picks by this order (`ignore_client_order`), as the JDK does.
#[allow(deprecated)]
fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    let aes128 = |suite: &rustls::SupportedCipherSuite| {
        matches!(
            suite.suite(),
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
                | rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    };
    // A stable sort: the rest keep ring's order.
    provider.cipher_suites.sort_by_key(|suite| !aes128(suite));
    std::sync::Arc::new(provider)
}

/// The TLS versions the settings allow.
fn versions(settings: &SslSettings) -> Vec<&'static rustls::SupportedProtocolVersion> {
    let mut versions = Vec::new();
    if settings.tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if settings.tls12 {
        versions.push(&rustls::version::TLS12);
    }
    versions
}
