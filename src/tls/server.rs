//! A TLS listener's server side: its rustls config built from the
//! listener's `ssl.*` keys, rebuilt when the keystore or truststore files
//! change (new handshakes use the new certificate; connections already up
//! keep theirs), and the handshake of one connection with its deadline and
//! the client certificate's principal.
//!
//! One [`ServerTls`] per listener per shard (single threaded, no locks).
//! The files are looked at on accept, at most once per
//! `RELOAD_CHECK_INTERVAL`: a `stat` per file, and a read only when one
//! changed, which bounds what a reload costs the shard.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures_lite::{AsyncRead, AsyncWrite};
use rustls::server::WebPkiClientVerifier;

use super::principal::{subject_name, PrincipalRules};
use super::{pem, provider, settings, versions, ClientAuth, SslSettings, TlsError};
use crate::security::Principal;

/// How often a listener looks at its files for a new certificate.
const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// A file's identity for the reload check: its modification time and size.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &PathBuf) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// A TLS listener's server side.
pub struct ServerTls {
    settings: SslSettings,
    rules: PrincipalRules,
    config: RefCell<Arc<rustls::ServerConfig>>,
    files: Vec<PathBuf>,
    stamps: RefCell<Vec<Stamp>>,
    checked: Cell<Instant>,
}

impl ServerTls {
    /// The server side of `listener` from the `ssl.*` keys; an error names
    /// the key (and file) at fault.
    pub fn new(keys: &BTreeMap<String, String>, listener: &str) -> Result<ServerTls, TlsError> {
        let settings = settings(keys, Some(listener))?;
        let rules = PrincipalRules::parse(&settings.principal_rules)?;
        let mut files = Vec::new();
        match &settings.keystore {
            Some(super::Keystore::File(source)) => files.extend(source.path().cloned()),
            Some(super::Keystore::Inline { .. }) => {}
            None => return Err(TlsError::NoKeystore(listener.to_string())),
        }
        files.extend(settings.truststore.as_ref().and_then(|t| t.path().cloned()));
        let stamps = files.iter().map(stamp).collect();
        let config = server_config(&settings)?;
        Ok(ServerTls {
            settings,
            rules,
            config: RefCell::new(config),
            files,
            stamps: RefCell::new(stamps),
            checked: Cell::new(Instant::now()),
        })
    }

    /// The config for a new handshake: rebuilt first if a file changed
    /// since the last look. A file that changed into something unusable
    /// (half written, a wrong key) keeps the previous config, logged.
    pub fn current(&self) -> Arc<rustls::ServerConfig> {
        if self.checked.get().elapsed() >= RELOAD_CHECK_INTERVAL {
            self.checked.set(Instant::now());
            let now: Vec<Stamp> = self.files.iter().map(stamp).collect();
            if now != *self.stamps.borrow() {
                match server_config(&self.settings) {
                    Ok(config) => {
                        log::info!(
                            "listener {}: keystore or truststore changed; new connections use \
                             the new certificates",
                            self.settings.listener
                        );
                        *self.config.borrow_mut() = config;
                    }
                    Err(e) => log::warn!(
                        "listener {}: keystore or truststore changed but cannot be used, \
                         keeping the previous one: {e}",
                        self.settings.listener
                    ),
                }
                *self.stamps.borrow_mut() = now;
            }
        }
        self.config.borrow().clone()
    }

    /// The principal of a verified client certificate chain (its first
    /// certificate's subject, mapped by the rules); anonymous without one.
    pub fn principal(
        &self,
        chain: Option<&[rustls::pki_types::CertificateDer<'_>]>,
    ) -> Result<Principal, String> {
        let Some(cert) = chain.and_then(|c| c.first()) else {
            return Ok(Principal::anonymous());
        };
        let subject = subject_name(cert)?;
        let name = self
            .rules
            .apply(&subject)
            .ok_or_else(|| format!("no ssl.principal.mapping.rules rule applies to {subject}"))?;
        Ok(Principal::user(&name))
    }
}

/// A listener's rustls server config.
fn server_config(settings: &SslSettings) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let rustls_error = |e: rustls::Error| TlsError::Rustls {
        listener: settings.listener.clone(),
        message: e.to_string(),
    };
    let keystore = settings
        .keystore
        .as_ref()
        .ok_or_else(|| TlsError::NoKeystore(settings.listener.clone()))?;
    let (chain, key) = pem::keystore(keystore)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&versions(settings))
        .map_err(rustls_error)?;
    let builder = match settings.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let truststore = settings
                .truststore
                .as_ref()
                .ok_or_else(|| TlsError::NoTruststore(settings.listener.clone()))?;
            let roots = Arc::new(pem::root_store(truststore)?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider());
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().map_err(|e| TlsError::Rustls {
                listener: settings.listener.clone(),
                message: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(rustls_error)?;
    // The provider's order (AES-128-GCM first), not the client's.
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

/// A connection after its handshake: the TLS stream and the client's
/// principal.
pub struct Handshaken<IO> {
    pub stream: futures_rustls::server::TlsStream<IO>,
    pub principal: Principal,
}

/// The server handshake of one connection, within `deadline`. An error
/// (plaintext bytes, an untrusted or expired certificate, a client too
/// slow) says why, for the log; the caller closes the connection.
pub async fn handshake<IO: AsyncRead + AsyncWrite + Unpin>(
    tls: &ServerTls,
    io: IO,
    deadline: Duration,
) -> Result<Handshaken<IO>, String> {
    let acceptor = futures_rustls::TlsAcceptor::from(tls.current());
    let accept = async { acceptor.accept(io).await.map_err(|e| e.to_string()) };
    let late = async {
        glommio::timer::sleep(deadline).await;
        Err(format!("no TLS handshake within {deadline:?}"))
    };
    let stream = futures_lite::future::or(accept, late).await?;
    let principal = tls.principal(stream.get_ref().1.peer_certificates())?;
    Ok(Handshaken { stream, principal })
}
