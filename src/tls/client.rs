//! The client side: a rustls client config from `ssl.*` keys, for the
//! connections corelog makes (a broker to another broker or a controller,
//! the CLI to a broker). The truststore says which servers to trust; the
//! keystore, when there is one, is the client certificate a server that
//! asks for one gets. `ssl.endpoint.identification.algorithm` empty turns
//! the check of the server's name off (its chain is still checked).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use super::{pem, provider, versions, SslSettings, TlsError};

/// A client's TLS config.
#[derive(Clone, Debug)]
pub struct ClientTls {
    pub config: Arc<rustls::ClientConfig>,
}

impl ClientTls {
    /// The name to check the server's certificate against: an IP address
    /// as such, else a DNS name.
    pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
        ServerName::try_from(host.to_string()).map_err(|e| format!("{host}: {e}"))
    }
}

/// The client config of `settings` (a truststore is required).
pub fn client_config(settings: &SslSettings) -> Result<ClientTls, TlsError> {
    let truststore = settings
        .truststore
        .as_ref()
        .ok_or(TlsError::ClientNoTruststore)?;
    let roots = Arc::new(pem::root_store(truststore)?);
    let rustls_error = |message: String| TlsError::Rustls {
        listener: settings.listener.clone(),
        message,
    };
    let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| rustls_error(e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = if settings.verify_hostname {
        webpki
    } else {
        Arc::new(AnyName(webpki))
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&versions(settings))
        .map_err(|e| rustls_error(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let config = match &settings.keystore {
        Some(keystore) => {
            let (chain, key) = pem::keystore(keystore)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| rustls_error(e.to_string()))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(ClientTls {
        config: Arc::new(config),
    })
}

/// Checks the server's chain like webpki, but not its name
/// (`ssl.endpoint.identification.algorithm=`).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
