//! PEM keystores and truststores: certificates and the private key, read
//! from a file or inline text, bounded in size.

use std::io::Read;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::{Keystore, PemSource, TlsError};

/// A PEM file larger than this is refused (a certificate chain with a key
/// is a few KB; a CA bundle a few hundred).
const PEM_BYTES_MAX: u64 = 4 << 20;

/// The bytes of a PEM source.
pub fn read(source: &PemSource) -> Result<Vec<u8>, TlsError> {
    match source {
        PemSource::Inline { text, .. } => Ok(text.as_bytes().to_vec()),
        PemSource::File { key, path } => {
            let cannot = |source| TlsError::Read {
                key: key.clone(),
                path: path.clone(),
                source,
            };
            let mut bytes = Vec::new();
            std::fs::File::open(path)
                .map_err(cannot)?
                .take(PEM_BYTES_MAX + 1)
                .read_to_end(&mut bytes)
                .map_err(cannot)?;
            if bytes.len() as u64 > PEM_BYTES_MAX {
                return Err(TlsError::Pem {
                    key: key.clone(),
                    message: format!("{} is over {PEM_BYTES_MAX} bytes", path.display()),
                });
            }
            Ok(bytes)
        }
    }
}

/// Every certificate in a PEM source, at least one.
pub fn certificates(source: &PemSource) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    certificates_in(&read(source)?, source)
}

fn certificates_in(
    bytes: &[u8],
    source: &PemSource,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            key: source.key().to_string(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            key: source.key().to_string(),
            path: source.path().cloned(),
        });
    }
    Ok(certs)
}

fn private_key_in(bytes: &[u8], source: &PemSource) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(bytes).map_err(|_| TlsError::NoKey {
        key: source.key().to_string(),
        path: source.path().cloned(),
    })
}

/// The certificate chain and the key of a keystore.
pub fn keystore(
    keystore: &Keystore,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    match keystore {
        Keystore::File(source) => {
            let bytes = read(source)?;
            Ok((
                certificates_in(&bytes, source)?,
                private_key_in(&bytes, source)?,
            ))
        }
        Keystore::Inline { chain, key } => Ok((
            certificates_in(&read(chain)?, chain)?,
            private_key_in(&read(key)?, key)?,
        )),
    }
}

/// A root store of the truststore's certificates.
pub fn root_store(source: &PemSource) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(source)? {
        roots.add(cert).map_err(|e| TlsError::Pem {
            key: source.key().to_string(),
            message: format!("a certificate cannot be trusted: {e}"),
        })?;
    }
    Ok(roots)
}
