//! Kafka's `ssl.*` keys for one listener (or one client): where the
//! keystore and truststore are, client authentication, TLS versions and
//! the principal mapping rules. A listener's own
//! `listener.name.<name>.ssl.<key>` goes over `ssl.<key>`, as in Kafka.
//!
//! Pure: reading the PEM files is `pem`'s; this only says what is asked,
//! and refuses what corelog cannot do (keystore types other than PEM)
//! with the key that asked for it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::tls::TlsError;

/// Where PEM text comes from, with the key that said so (for errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PemSource {
    File { key: String, path: PathBuf },
    Inline { key: String, text: String },
}

impl PemSource {
    /// The key that named it.
    pub fn key(&self) -> &str {
        match self {
            PemSource::File { key, .. } | PemSource::Inline { key, .. } => key,
        }
    }

    /// The file to watch for a reload, if it is one.
    pub fn path(&self) -> Option<&PathBuf> {
        match self {
            PemSource::File { path, .. } => Some(path),
            PemSource::Inline { .. } => None,
        }
    }
}

/// The keystore: one PEM file with the key and the certificate chain, or
/// the chain and the key inline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keystore {
    File(PemSource),
    Inline { chain: PemSource, key: PemSource },
}

/// `ssl.client.auth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

/// The `ssl.*` settings of one listener or client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SslSettings {
    /// The listener they are for (`-` for a client's own properties).
    pub listener: String,
    pub keystore: Option<Keystore>,
    pub truststore: Option<PemSource>,
    pub client_auth: ClientAuth,
    pub tls12: bool,
    pub tls13: bool,
    /// `ssl.principal.mapping.rules` as written.
    pub principal_rules: String,
    /// `ssl.endpoint.identification.algorithm`: `https` (the default)
    /// checks the peer's name against its certificate; empty does not.
    pub verify_hostname: bool,
}

/// The keys of one listener: `listener.name.<name>.ssl.<key>` over
/// `ssl.<key>`.
pub struct ListenerKeys<'a> {
    keys: &'a BTreeMap<String, String>,
    prefix: String,
}

impl<'a> ListenerKeys<'a> {
    /// `listener` is None for a client's own properties (no prefixes).
    pub fn new(keys: &'a BTreeMap<String, String>, listener: Option<&str>) -> ListenerKeys<'a> {
        ListenerKeys {
            keys,
            prefix: listener
                .map(|l| format!("listener.name.{}.", l.to_ascii_lowercase()))
                .unwrap_or_default(),
        }
    }

    /// The value of `key` (an `ssl.` key) and the key as written.
    pub fn get(&self, key: &str) -> Option<(String, &'a str)> {
        if !self.prefix.is_empty() {
            let own = format!("{}{key}", self.prefix);
            if let Some((written, value)) =
                self.keys.iter().find(|(k, _)| k.eq_ignore_ascii_case(&own))
            {
                return Some((written.clone(), value.as_str()));
            }
        }
        self.keys
            .get_key_value(key)
            .map(|(k, v)| (k.clone(), v.as_str()))
    }

    /// The value, unless unset or empty.
    fn value(&self, key: &str) -> Option<(String, &'a str)> {
        self.get(key).filter(|(_, v)| !v.trim().is_empty())
    }
}

/// Reads the settings of `listener` (None: a client's properties).
pub fn settings(
    keys: &BTreeMap<String, String>,
    listener: Option<&str>,
) -> Result<SslSettings, TlsError> {
    let keys = ListenerKeys::new(keys, listener);
    for type_key in ["ssl.keystore.type", "ssl.truststore.type"] {
        if let Some((key, value)) = keys.value(type_key) {
            if !value.trim().eq_ignore_ascii_case("PEM") {
                return Err(TlsError::NotPem {
                    key,
                    value: value.to_string(),
                });
            }
        }
    }
    let file = |key: &str| {
        keys.value(key).map(|(key, value)| PemSource::File {
            key,
            path: PathBuf::from(value.trim()),
        })
    };
    let inline = |key: &str| {
        keys.value(key).map(|(key, value)| PemSource::Inline {
            key,
            text: value.to_string(),
        })
    };
    let keystore = match (
        file("ssl.keystore.location"),
        inline("ssl.keystore.certificate.chain"),
        inline("ssl.keystore.key"),
    ) {
        (Some(file), None, None) => Some(Keystore::File(file)),
        (None, Some(chain), Some(key)) => Some(Keystore::Inline { chain, key }),
        (None, None, None) => None,
        (Some(file), _, _) => {
            return Err(TlsError::Conflict(format!(
                "{} and ssl.keystore.certificate.chain / ssl.keystore.key both name a keystore; \
                 set one",
                file.key()
            )))
        }
        (None, Some(one), None) | (None, None, Some(one)) => {
            return Err(TlsError::Conflict(format!(
                "{} is set without its pair: an inline keystore needs both \
                 ssl.keystore.certificate.chain and ssl.keystore.key",
                one.key()
            )))
        }
    };
    let truststore =
        match (
            file("ssl.truststore.location"),
            inline("ssl.truststore.certificates"),
        ) {
            (Some(_), Some(_)) => return Err(TlsError::Conflict(
                "ssl.truststore.location and ssl.truststore.certificates both name a truststore; \
                 set one"
                    .into(),
            )),
            (file, inline) => file.or(inline),
        };
    let client_auth = match keys.value("ssl.client.auth") {
        None => ClientAuth::None,
        Some((key, value)) => match value.trim().to_ascii_lowercase().as_str() {
            "none" => ClientAuth::None,
            "requested" => ClientAuth::Requested,
            "required" => ClientAuth::Required,
            _ => {
                return Err(TlsError::BadValue {
                    key,
                    value: value.to_string(),
                    expected: "none, requested or required",
                })
            }
        },
    };
    let (mut tls12, mut tls13) = (true, true);
    if let Some((key, value)) = keys.value("ssl.enabled.protocols") {
        (tls12, tls13) = (false, false);
        for protocol in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match protocol {
                "TLSv1.2" => tls12 = true,
                "TLSv1.3" => tls13 = true,
                _ => {
                    return Err(TlsError::BadValue {
                        key,
                        value: value.to_string(),
                        expected: "TLSv1.2 and/or TLSv1.3",
                    })
                }
            }
        }
        if !tls12 && !tls13 {
            return Err(TlsError::BadValue {
                key,
                value: value.to_string(),
                expected: "TLSv1.2 and/or TLSv1.3",
            });
        }
    }
    let principal_rules = keys
        .value("ssl.principal.mapping.rules")
        .map(|(_, v)| v.to_string())
        .unwrap_or_else(|| "DEFAULT".into());
    // Present but empty turns it off, as in Kafka.
    let verify_hostname = match keys.get("ssl.endpoint.identification.algorithm") {
        None => true,
        Some((key, value)) => match value.trim().to_ascii_lowercase().as_str() {
            "" => false,
            "https" => true,
            _ => {
                return Err(TlsError::BadValue {
                    key,
                    value: value.to_string(),
                    expected: "https or empty",
                })
            }
        },
    };
    Ok(SslSettings {
        listener: listener.unwrap_or("-").to_string(),
        keystore,
        truststore,
        client_auth,
        tls12,
        tls13,
        principal_rules,
        verify_hostname,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_listener_prefix_goes_over_the_plain_key() {
        let k = keys(&[
            ("ssl.keystore.location", "/a.pem"),
            ("listener.name.internal.ssl.keystore.location", "/b.pem"),
            ("ssl.client.auth", "required"),
            ("ssl.truststore.location", "/ca.pem"),
        ]);
        let internal = settings(&k, Some("INTERNAL")).unwrap();
        assert_eq!(
            internal.keystore,
            Some(Keystore::File(PemSource::File {
                key: "listener.name.internal.ssl.keystore.location".into(),
                path: "/b.pem".into()
            }))
        );
        assert_eq!(internal.client_auth, ClientAuth::Required);
        let other = settings(&k, Some("SSL")).unwrap();
        assert_eq!(other.keystore.unwrap().clone(), {
            Keystore::File(PemSource::File {
                key: "ssl.keystore.location".into(),
                path: "/a.pem".into(),
            })
        });
        assert!(other.tls12 && other.tls13 && other.verify_hostname);
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("ssl.keystore.type", "JKS")], "ssl.keystore.type"),
            (&[("ssl.client.auth", "maybe")], "ssl.client.auth"),
            (
                &[("ssl.enabled.protocols", "TLSv1.1")],
                "ssl.enabled.protocols",
            ),
            (&[("ssl.keystore.key", "x")], "ssl.keystore.key"),
            (
                &[("ssl.endpoint.identification.algorithm", "dns")],
                "ssl.endpoint.identification.algorithm",
            ),
        ];
        for (pairs, key) in cases {
            let err = settings(&keys(pairs), Some("SSL")).unwrap_err().to_string();
            assert!(err.contains(key), "{pairs:?}: {err}");
        }
        let only13 = settings(&keys(&[("ssl.enabled.protocols", "TLSv1.3")]), None).unwrap();
        assert!(!only13.tls12 && only13.tls13);
        let no_check = settings(
            &keys(&[("ssl.endpoint.identification.algorithm", "")]),
            None,
        )
        .unwrap();
        assert!(!no_check.verify_hostname);
    }
}
