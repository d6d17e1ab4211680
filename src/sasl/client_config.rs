//! The SASL part of a Kafka client's properties (`--command-config`, and a
//! broker's own `listener.name.<l>.<mechanism>.sasl.jaas.config`):
//! `security.protocol`, `sasl.mechanism` and `sasl.jaas.config` with Kafka's
//! `PlainLoginModule` / `ScramLoginModule` syntax:
//!
//! ```text
//! org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="alice-secret";
//! ```

use std::collections::BTreeMap;

use super::server::Mechanism;

/// What a client needs to authenticate. The password stays out of debug
/// output.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSasl {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for ClientSasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSasl")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

const PLAIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const SCRAM_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";
/// Longest `sasl.jaas.config` read.
const JAAS_BYTES_MAX: usize = 4096;

/// The SASL settings of a client's properties: None when
/// `security.protocol` does not use SASL.
pub fn from_properties(props: &BTreeMap<String, String>) -> Result<Option<ClientSasl>, String> {
    let protocol = props
        .get("security.protocol")
        .map(|p| p.trim().to_ascii_uppercase())
        .unwrap_or_else(|| "PLAINTEXT".into());
    if !matches!(protocol.as_str(), "SASL_PLAINTEXT" | "SASL_SSL") {
        return Ok(None);
    }
    let mechanism_name = props
        .get("sasl.mechanism")
        .map(|m| m.trim())
        .unwrap_or("GSSAPI");
    let mechanism = Mechanism::parse(mechanism_name).ok_or_else(|| {
        format!(
            "sasl.mechanism={mechanism_name} is not supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"
        )
    })?;
    let jaas = props
        .get("sasl.jaas.config")
        .ok_or("security.protocol uses SASL but sasl.jaas.config is not set")?;
    let (username, password) = parse_jaas(jaas, mechanism)?;
    Ok(Some(ClientSasl {
        mechanism,
        username,
        password,
    }))
}

/// The user name and password of a JAAS line for `mechanism`'s login module.
pub fn parse_jaas(jaas: &str, mechanism: Mechanism) -> Result<(String, String), String> {
    if jaas.len() > JAAS_BYTES_MAX {
        return Err(format!("sasl.jaas.config of {} bytes", jaas.len()));
    }
    let text = jaas.trim();
    let text = text.strip_suffix(';').unwrap_or(text).trim();
    let (module, rest) = text.split_once(char::is_whitespace).ok_or(
        "sasl.jaas.config: expected `<LoginModule> required username=\"...\" password=\"...\";`",
    )?;
    let wanted = match mechanism {
        Mechanism::Plain => PLAIN_MODULE,
        Mechanism::Scram(_) => SCRAM_MODULE,
    };
    if module != wanted {
        return Err(format!(
            "sasl.jaas.config: {} needs {wanted}, not {module}",
            mechanism.name()
        ));
    }
    let rest = rest.trim_start();
    let rest = ["required", "requisite", "sufficient", "optional"]
        .iter()
        .find_map(|flag| rest.strip_prefix(flag))
        .ok_or("sasl.jaas.config: the login module's flag (required) is missing")?;
    let options = parse_options(rest)?;
    let get = |key: &str| {
        options
            .get(key)
            .cloned()
            .ok_or_else(|| format!("sasl.jaas.config: {key}=\"...\" is missing"))
    };
    Ok((get("username")?, get("password")?))
}

/// `key="value" key2=value2` pairs; quoted values may hold spaces and
/// `\"` or `\\`.
fn parse_options(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut options = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(options);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') || key.is_empty() {
            return Err("sasl.jaas.config: expected key=\"value\"".into());
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err("sasl.jaas.config: unterminated value".into()),
                    },
                    Some(c) => value.push(c),
                    None => return Err("sasl.jaas.config: unterminated value".into()),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        options.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sasl::scram::ScramMechanism;

    #[test]
    fn kafka_client_properties_read_as_kafka_writes_them() {
        let props = BTreeMap::from([
            (
                "security.protocol".to_string(),
                "SASL_PLAINTEXT".to_string(),
            ),
            ("sasl.mechanism".to_string(), "SCRAM-SHA-256".to_string()),
            (
                "sasl.jaas.config".to_string(),
                format!(r#"{SCRAM_MODULE} required username="alice" password="a \"b\" c";"#),
            ),
        ]);
        let sasl = from_properties(&props).unwrap().unwrap();
        assert_eq!(sasl.mechanism, Mechanism::Scram(ScramMechanism::Sha256));
        assert_eq!(sasl.username, "alice");
        assert_eq!(sasl.password, r#"a "b" c"#);
        assert!(!format!("{sasl:?}").contains("a \\\"b"));
        assert_eq!(from_properties(&BTreeMap::new()).unwrap(), None);
        let plain = format!("{PLAIN_MODULE} required username=bob password=pw;");
        assert_eq!(
            parse_jaas(&plain, Mechanism::Plain).unwrap(),
            ("bob".into(), "pw".into())
        );
        assert!(parse_jaas(&plain, Mechanism::Scram(ScramMechanism::Sha256)).is_err());
        assert!(parse_jaas(
            &format!("{PLAIN_MODULE} required username=\"x"),
            Mechanism::Plain
        )
        .is_err());
        assert!(parse_jaas(
            &format!("{PLAIN_MODULE} required username=x"),
            Mechanism::Plain
        )
        .is_err());
    }
}
