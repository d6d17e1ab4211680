//! The principal of a client certificate: its subject as an RFC 2253
//! distinguished name, written as Kafka (Java's `X500Principal.getName()`)
//! writes it (most specific attribute first: `CN=alice,OU=eng,O=corp`),
//! then mapped by `ssl.principal.mapping.rules`.
//!
//! The rules are Kafka's: a list (commas or new lines) of
//! `RULE:pattern/replacement/[LU]` and `DEFAULT`, tried in order; the
//! first rule whose pattern matches the whole name gives the principal's
//! name (the replacement, with `$1`-style groups, lower- or upper-cased
//! with `L`/`U`); `DEFAULT` gives the whole name. When no rule applies the
//! client is refused, as Kafka refuses it.

use regex::Regex;
use rustls::pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::TlsError;

/// The subject of a DER certificate as Kafka writes it.
pub fn subject_name(cert: &CertificateDer<'_>) -> Result<String, String> {
    let (_, cert) = X509Certificate::from_der(cert.as_ref())
        .map_err(|e| format!("the client certificate cannot be read: {e}"))?;
    let mut rdns: Vec<String> = Vec::new();
    for rdn in cert.subject().iter_rdn() {
        let parts: Vec<String> = rdn
            .iter()
            .map(|attr| {
                let oid = attr.attr_type().to_id_string();
                let keyword = keyword(&oid);
                match (keyword, attr.as_str()) {
                    (Some(keyword), Ok(text)) => format!("{keyword}={}", escape(text)),
                    _ => format!("{oid}=#{}", hex_der(attr.attr_value())),
                }
            })
            .collect();
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

/// The keywords RFC 2253 (and Java) print by name.
fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// RFC 2253 section 2.4: `,+"\<>;` escaped, and a leading `#` or space
/// and a trailing space.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The DER encoding of an attribute value in hex (`#0c05616c696365`), as
/// RFC 2253 writes values of types it has no keyword for.
fn hex_der(value: &x509_parser::der_parser::asn1_rs::Any<'_>) -> String {
    let header = &value.header;
    let mut der = vec![
        (header.class() as u8) << 6
            | if header.is_constructed() { 0x20 } else { 0 }
            | (header.tag().0 as u8 & 0x1f),
    ];
    let len = value.data.len();
    if len < 0x80 {
        der.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        der.push(0x80 | bytes.len() as u8);
        der.extend(bytes);
    }
    der.extend_from_slice(value.data);
    der.iter().map(|b| format!("{b:02x}")).collect()
}

/// `ssl.principal.mapping.rules`, parsed.
#[derive(Debug)]
pub struct PrincipalRules(Vec<Rule>);

#[derive(Debug)]
enum Rule {
    Default,
    Map {
        /// The pattern, anchored at both ends (Java's `matches()`).
        pattern: Regex,
        /// In the regex crate's syntax (`${1}`).
        replacement: String,
        case: Option<char>,
    },
}

impl PrincipalRules {
    pub fn parse(text: &str) -> Result<PrincipalRules, TlsError> {
        let mut rules = Vec::new();
        let mut rest = text.trim_start();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = until_slash(after).ok_or_else(|| {
                    TlsError::Rules(format!("{rest:?}: expected RULE:pattern/replacement/[LU]"))
                })?;
                let (replacement, after) = until_slash(after).ok_or_else(|| {
                    TlsError::Rules(format!("{rest:?}: expected RULE:pattern/replacement/[LU]"))
                })?;
                let (case, after) = match after.chars().next() {
                    Some(c @ ('L' | 'U')) => (Some(c), &after[1..]),
                    _ => (None, after),
                };
                let pattern = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| TlsError::Rules(format!("pattern {pattern:?}: {e}")))?;
                rules.push(Rule::Map {
                    pattern,
                    replacement: java_replacement(replacement),
                    case,
                });
                rest = after;
            } else {
                return Err(TlsError::Rules(format!(
                    "{rest:?}: expected DEFAULT or RULE:pattern/replacement/[LU]"
                )));
            }
            // Whatever follows a rule up to the next separator is skipped,
            // as Kafka's parser skips it.
            rest = match rest.find([',', '\n']) {
                Some(i) => rest[i + 1..].trim_start(),
                None => "",
            };
        }
        if rules.is_empty() {
            rules.push(Rule::Default);
        }
        Ok(PrincipalRules(rules))
    }

    /// The principal name for a distinguished name, if a rule applies.
    pub fn apply(&self, name: &str) -> Option<String> {
        self.0.iter().find_map(|rule| match rule {
            Rule::Default => Some(name.to_string()),
            Rule::Map {
                pattern,
                replacement,
                case,
            } => pattern.is_match(name).then(|| {
                let mapped = pattern.replace(name, replacement.as_str()).into_owned();
                match case {
                    Some('L') => mapped.to_lowercase(),
                    Some('U') => mapped.to_uppercase(),
                    _ => mapped,
                }
            }),
        })
    }
}

/// The text up to the next `/` not escaped with `\` (escapes kept), and
/// what follows that `/`.
fn until_slash(text: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '/' => return Some((&text[..i], &text[i + 1..])),
            _ => {}
        }
    }
    None
}

/// A Java replacement (`$1`, `\x` for a literal x) in the regex crate's
/// syntax (`${1}`, `$$` for a literal `$`).
fn java_replacement(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            '$' if chars.peek().is_some_and(|d| d.is_ascii_digit()) => {
                let mut group = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    group.push(*d);
                    chars.next();
                }
                out.push_str(&format!("${{{group}}}"));
            }
            '$' => out.push_str("$$"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_rule_examples_map_names() {
        // The examples of Kafka's documentation.
        let rules = PrincipalRules::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,\n\
             RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,\n\
             RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,\n\
             DEFAULT",
        )
        .unwrap();
        assert_eq!(
            rules
                .apply("CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .as_deref(),
            Some("serviceuser")
        );
        assert_eq!(
            rules
                .apply("CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .as_deref(),
            Some("adminuser@admin")
        );
        assert_eq!(
            rules.apply("OU=x,CN=Bob.Smith,O=y").as_deref(),
            Some("bob.smith")
        );
        assert_eq!(rules.apply("O=only").as_deref(), Some("O=only"));
        let upper = PrincipalRules::parse("RULE:^CN=([^,]*).*$/$1/U").unwrap();
        assert_eq!(upper.apply("CN=alice,O=corp").as_deref(), Some("ALICE"));
        assert_eq!(upper.apply("O=corp"), None, "no rule applies: refused");
        let default = PrincipalRules::parse("DEFAULT").unwrap();
        assert_eq!(
            default.apply("CN=a\\,b,O=c").as_deref(),
            Some("CN=a\\,b,O=c")
        );
        let slash = PrincipalRules::parse("RULE:^CN=([^,]*)\\/x.*$/a\\/$1/").unwrap();
        assert_eq!(slash.apply("CN=q/x,O=c").as_deref(), Some("a/q"));
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in ["RULE:^CN=(.*$/$1/", "RULE:abc", "SOMETHING", "RULE:(/x/"] {
            let err = PrincipalRules::parse(bad).unwrap_err().to_string();
            assert!(err.contains("ssl.principal.mapping.rules"), "{bad}: {err}");
        }
    }

    #[test]
    fn subjects_print_most_specific_first_with_escapes() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "US");
        dn.push(rcgen::DnType::OrganizationName, "Corp, Inc.");
        dn.push(rcgen::DnType::OrganizationalUnitName, "eng");
        dn.push(rcgen::DnType::CommonName, "alice");
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let name = subject_name(cert.der()).unwrap();
        assert_eq!(name, "CN=alice,OU=eng,O=Corp\\, Inc.,C=US");
    }
}
