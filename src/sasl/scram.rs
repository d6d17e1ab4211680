//! SCRAM (RFC 5802) with SHA-256 and SHA-512 (RFC 7677), as Kafka runs it:
//! the credential the broker stores (salt, iterations, stored key, server
//! key; never the password), the derivations both sides share, and the
//! parsers of the client's two messages.
//!
//! Every parser takes bytes straight from the wire: lengths are bounded
//! before anything is kept, and a message that does not follow the grammar
//! is an error, never a panic.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// Kafka's bounds on a SCRAM credential's iteration count
/// (`ScramMechanism.minIterations` / `maxIterations`).
pub const ITERATIONS_MIN: i32 = 4096;
pub const ITERATIONS_MAX: i32 = 16384;
/// The iteration count the CLI uses when none is given (Kafka's tool's).
pub const ITERATIONS_DEFAULT: i32 = 4096;
/// Bounds on a salt from a client or the metadata: long enough to be a
/// salt, short enough to keep the catalog small.
pub const SALT_BYTES_MIN: usize = 8;
pub const SALT_BYTES_MAX: usize = 256;
/// Random bytes of a salt the broker or the CLI makes.
pub const SALT_BYTES_NEW: usize = 32;
/// A user name's longest form (bytes), in a credential or a message.
pub const USER_NAME_BYTES_MAX: usize = 256;
/// A client message's longest form: far above what any client sends
/// (a name, a nonce, a proof), far below a frame.
pub const MESSAGE_BYTES_MAX: usize = 4096;
/// A nonce's bounds (printable characters, RFC 5802 section 7).
const NONCE_BYTES_MIN: usize = 8;
const NONCE_BYTES_MAX: usize = 512;

/// The SCRAM mechanisms Kafka defines, with their AlterUserScramCredentials
/// codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ScramMechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn parse(name: &str) -> Option<ScramMechanism> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Kafka's `ScramMechanism` type code (0 is UNKNOWN).
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_code(code: i8) -> Option<ScramMechanism> {
        Self::ALL.into_iter().find(|m| m.code() == code)
    }

    /// Bytes of the hash (and so of the stored and server keys).
    pub fn hash_len(self) -> usize {
        match self {
            ScramMechanism::Sha256 => 32,
            ScramMechanism::Sha512 => 64,
        }
    }

    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => {
                let mut mac =
                    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            ScramMechanism::Sha512 => {
                let mut mac =
                    Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes a key of any length");
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
        }
    }

    /// RFC 5802's Hi(): PBKDF2 with HMAC of this hash.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.hash_len()];
        match self {
            ScramMechanism::Sha256 => {
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out)
            }
            ScramMechanism::Sha512 => {
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out)
            }
        }
        out
    }

    pub fn client_key(self, salted_password: &[u8]) -> Vec<u8> {
        self.hmac(salted_password, b"Client Key")
    }

    pub fn server_key(self, salted_password: &[u8]) -> Vec<u8> {
        self.hmac(salted_password, b"Server Key")
    }
}

impl std::fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the broker keeps of one user's password for one mechanism: enough
/// to check a proof, not enough to make one (RFC 5802 section 3).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    pub mechanism: ScramMechanism,
    pub salt: Vec<u8>,
    pub iterations: i32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

/// Keys stay out of debug output (logs, panics).
impl std::fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramCredential")
            .field("mechanism", &self.mechanism)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

/// Why a credential is refused (Kafka's UNACCEPTABLE_CREDENTIAL messages).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("Too few iterations")]
    TooFewIterations,
    #[error("Too many iterations")]
    TooManyIterations,
    #[error("Salt of {0} bytes (expected {SALT_BYTES_MIN} to {SALT_BYTES_MAX})")]
    Salt(usize),
    #[error("Key of {got} bytes for {mechanism} (expected {expected})")]
    KeyLength {
        mechanism: ScramMechanism,
        got: usize,
        expected: usize,
    },
}

impl ScramCredential {
    /// The credential of `salted_password` (what AlterUserScramCredentials
    /// carries: the client salts and hashes, the password never travels).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: Vec<u8>,
        iterations: i32,
        salted_password: &[u8],
    ) -> ScramCredential {
        let stored_key = mechanism.hash(&mechanism.client_key(salted_password));
        ScramCredential {
            mechanism,
            salt,
            iterations,
            stored_key,
            server_key: mechanism.server_key(salted_password),
        }
    }

    /// The credential of `password` with a fresh random salt.
    pub fn from_password(
        mechanism: ScramMechanism,
        password: &str,
        iterations: i32,
    ) -> Result<ScramCredential, CredentialError> {
        check_iterations(iterations)?;
        let salt = random_bytes(SALT_BYTES_NEW);
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations as u32);
        Ok(Self::from_salted_password(
            mechanism, salt, iterations, &salted,
        ))
    }

    /// Bounds every credential keeps, wherever it comes from (a client, the
    /// metadata log, a snapshot, the catalog file).
    pub fn validate(&self) -> Result<(), CredentialError> {
        check_iterations(self.iterations)?;
        if !(SALT_BYTES_MIN..=SALT_BYTES_MAX).contains(&self.salt.len()) {
            return Err(CredentialError::Salt(self.salt.len()));
        }
        let expected = self.mechanism.hash_len();
        for key in [&self.stored_key, &self.server_key] {
            if key.len() != expected {
                return Err(CredentialError::KeyLength {
                    mechanism: self.mechanism,
                    got: key.len(),
                    expected,
                });
            }
        }
        Ok(())
    }

    /// Whether `password` is the one this credential was made from
    /// (SASL/PLAIN against the SCRAM store), compared in constant time.
    pub fn matches_password(&self, password: &[u8]) -> bool {
        let salted =
            self.mechanism
                .salted_password(password, &self.salt, self.iterations.max(1) as u32);
        let stored = self.mechanism.hash(&self.mechanism.client_key(&salted));
        bool::from(stored.ct_eq(&self.stored_key))
    }
}

pub fn check_iterations(iterations: i32) -> Result<(), CredentialError> {
    if iterations < ITERATIONS_MIN {
        Err(CredentialError::TooFewIterations)
    } else if iterations > ITERATIONS_MAX {
        Err(CredentialError::TooManyIterations)
    } else {
        Ok(())
    }
}

pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    getrandom::getrandom(&mut bytes).expect("the OS random source is available");
    bytes
}

/// A nonce of printable characters (base64 of random bytes has no comma).
pub fn new_nonce() -> String {
    BASE64.encode(random_bytes(24))
}

/// Why a client message is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("a SCRAM message of {0} bytes")]
    TooLong(usize),
    #[error("a SCRAM message that is not UTF-8")]
    NotUtf8,
    #[error("invalid SCRAM message: {0}")]
    Invalid(&'static str),
    #[error("channel binding is not supported")]
    ChannelBinding,
    #[error("the SCRAM extension {0:?} is not supported")]
    Extension(String),
}

/// The client's first message (`n,,n=user,r=nonce[,ext=value...]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientFirst {
    /// The GS2 header as sent (`n,,` or `n,a=authzid,`), echoed base64 in
    /// the final message.
    pub gs2_header: String,
    pub user: String,
    pub nonce: String,
    /// The message after the GS2 header: part of the AuthMessage.
    pub bare: String,
}

impl ClientFirst {
    pub fn parse(bytes: &[u8]) -> Result<ClientFirst, MessageError> {
        let text = message_text(bytes)?;
        let (cbind, rest) = text
            .split_once(',')
            .ok_or(MessageError::Invalid("no GS2 header"))?;
        match cbind {
            "n" | "y" => {}
            _ if cbind.starts_with("p=") => return Err(MessageError::ChannelBinding),
            _ => return Err(MessageError::Invalid("bad channel binding flag")),
        }
        let (authzid, bare) = rest
            .split_once(',')
            .ok_or(MessageError::Invalid("no GS2 header"))?;
        let authzid = match authzid {
            "" => None,
            a => Some(unescape_name(
                a.strip_prefix("a=")
                    .ok_or(MessageError::Invalid("bad authorization id"))?,
            )?),
        };
        let mut fields = bare.split(',');
        let user = fields
            .next()
            .and_then(|f| f.strip_prefix("n="))
            .ok_or(MessageError::Invalid("no user name"))?;
        let user = unescape_name(user)?;
        if user.is_empty() || user.len() > USER_NAME_BYTES_MAX {
            return Err(MessageError::Invalid("bad user name length"));
        }
        if authzid.as_ref().is_some_and(|a| *a != user) {
            return Err(MessageError::Invalid(
                "an authorization id other than the user name",
            ));
        }
        let nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .ok_or(MessageError::Invalid("no nonce"))?;
        check_nonce(nonce)?;
        for extension in fields {
            let (key, _) = extension
                .split_once('=')
                .ok_or(MessageError::Invalid("bad extension"))?;
            // Kafka's only extension marks delegation-token authentication,
            // which corelog does not have.
            if key == "tokenauth" {
                return Err(MessageError::Extension(key.to_string()));
            }
        }
        Ok(ClientFirst {
            gs2_header: text[..text.len() - bare.len()].to_string(),
            user,
            nonce: nonce.to_string(),
            bare: bare.to_string(),
        })
    }
}

/// The client's final message (`c=<gs2 header>,r=<nonce>,p=<proof>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientFinal {
    pub channel_binding: Vec<u8>,
    pub nonce: String,
    pub proof: Vec<u8>,
    /// Everything before `,p=`: part of the AuthMessage.
    pub without_proof: String,
}

impl ClientFinal {
    pub fn parse(bytes: &[u8]) -> Result<ClientFinal, MessageError> {
        let text = message_text(bytes)?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(MessageError::Invalid("no proof"))?;
        let mut fields = without_proof.split(',');
        let channel_binding = fields
            .next()
            .and_then(|f| f.strip_prefix("c="))
            .ok_or(MessageError::Invalid("no channel binding"))?;
        let channel_binding = BASE64
            .decode(channel_binding)
            .map_err(|_| MessageError::Invalid("channel binding is not base64"))?;
        let nonce = fields
            .next()
            .and_then(|f| f.strip_prefix("r="))
            .ok_or(MessageError::Invalid("no nonce"))?;
        check_nonce(nonce)?;
        let proof = BASE64
            .decode(proof)
            .map_err(|_| MessageError::Invalid("proof is not base64"))?;
        Ok(ClientFinal {
            channel_binding,
            nonce: nonce.to_string(),
            proof,
            without_proof: without_proof.to_string(),
        })
    }
}

fn message_text(bytes: &[u8]) -> Result<&str, MessageError> {
    if bytes.len() > MESSAGE_BYTES_MAX {
        return Err(MessageError::TooLong(bytes.len()));
    }
    std::str::from_utf8(bytes).map_err(|_| MessageError::NotUtf8)
}

fn check_nonce(nonce: &str) -> Result<(), MessageError> {
    let printable = nonce
        .bytes()
        .all(|b| (0x21..=0x7e).contains(&b) && b != b',');
    if !(NONCE_BYTES_MIN..=NONCE_BYTES_MAX).contains(&nonce.len()) || !printable {
        return Err(MessageError::Invalid("bad nonce"));
    }
    Ok(())
}

/// RFC 5802's saslname: `=2C` is a comma, `=3D` an equals sign, and no
/// other `=` may appear.
fn unescape_name(name: &str) -> Result<String, MessageError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(&rest[..at]);
        match rest.get(at..at + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(MessageError::Invalid("bad escape in a name")),
        }
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The client side's escaping of a user name.
pub fn escape_name(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// RFC 5802's AuthMessage.
pub fn auth_message(
    client_first_bare: &str,
    server_first: &str,
    final_without_proof: &str,
) -> String {
    format!("{client_first_bare},{server_first},{final_without_proof}")
}

/// Checks a client proof against a stored credential (RFC 5802 section 3):
/// ClientKey = proof XOR HMAC(StoredKey, AuthMessage), and H(ClientKey)
/// must be the stored key. On success, the server's signature for the
/// final message.
pub fn verify_proof(
    credential: &ScramCredential,
    auth_message: &str,
    proof: &[u8],
) -> Option<Vec<u8>> {
    let mechanism = credential.mechanism;
    let signature = mechanism.hmac(&credential.stored_key, auth_message.as_bytes());
    if proof.len() != signature.len() {
        return None;
    }
    let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
    let stored = mechanism.hash(&client_key);
    if bool::from(stored.ct_eq(&credential.stored_key)) {
        Some(mechanism.hmac(&credential.server_key, auth_message.as_bytes()))
    } else {
        None
    }
}

/// The client's proof (the client side's computation).
pub fn client_proof(
    mechanism: ScramMechanism,
    salted_password: &[u8],
    auth_message: &str,
) -> Vec<u8> {
    let client_key = mechanism.client_key(salted_password);
    let stored_key = mechanism.hash(&client_key);
    let signature = mechanism.hmac(&stored_key, auth_message.as_bytes());
    client_key
        .iter()
        .zip(&signature)
        .map(|(k, s)| k ^ s)
        .collect()
}

pub fn base64_encode(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    BASE64.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3: user "user", password "pencil", 4096 iterations.
    #[test]
    fn rfc7677_test_vector() {
        let mechanism = ScramMechanism::Sha256;
        let client_first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let server_final = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

        let first = ClientFirst::parse(client_first.as_bytes()).unwrap();
        assert_eq!(first.user, "user");
        assert_eq!(first.gs2_header, "n,,");
        assert_eq!(first.bare, "n=user,r=rOprNGfwEbeRWgbNEkqO");
        let salt = base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = mechanism.salted_password(b"pencil", &salt, 4096);
        let credential = ScramCredential::from_salted_password(mechanism, salt, 4096, &salted);
        credential.validate().unwrap();
        assert!(credential.matches_password(b"pencil"));
        assert!(!credential.matches_password(b"pencil2"));

        let last = ClientFinal::parse(client_final.as_bytes()).unwrap();
        assert_eq!(last.channel_binding, b"n,,");
        let message = auth_message(&first.bare, server_first, &last.without_proof);
        assert_eq!(client_proof(mechanism, &salted, &message), last.proof);
        let signature = verify_proof(&credential, &message, &last.proof).unwrap();
        assert_eq!(format!("v={}", base64_encode(&signature)), server_final);
        let mut wrong = last.proof.clone();
        wrong[0] ^= 1;
        assert!(verify_proof(&credential, &message, &wrong).is_none());
        assert!(verify_proof(&credential, &message, &wrong[1..]).is_none());
    }

    #[test]
    fn sha512_round_trips_and_keys_have_its_length() {
        let c = ScramCredential::from_password(ScramMechanism::Sha512, "secret", 4096).unwrap();
        c.validate().unwrap();
        assert_eq!(c.stored_key.len(), 64);
        assert!(c.matches_password(b"secret"));
        assert!(!c.matches_password(b""));
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("stored") && !debug.contains("salt"),
            "{debug}"
        );
    }

    #[test]
    fn bounds_and_bad_messages_are_refused() {
        assert_eq!(
            check_iterations(4095),
            Err(CredentialError::TooFewIterations)
        );
        assert_eq!(
            check_iterations(16385),
            Err(CredentialError::TooManyIterations)
        );
        let mut c = ScramCredential::from_password(ScramMechanism::Sha256, "x", 4096).unwrap();
        c.stored_key.pop();
        assert!(c.validate().is_err());
        for bad in [
            &b""[..],
            b"n,,",
            b"n,,n=,r=abcdefgh",
            b"n,,n=user",
            b"n,,n=user,r=short",
            b"p=tls-unique,,n=user,r=abcdefghij",
            b"x,,n=user,r=abcdefghij",
            b"n,a=other,n=user,r=abcdefghij",
            b"n,,n=us=er,r=abcdefghij",
            b"n,,n=user,r=abcdefghij,tokenauth=true",
            b"n,,n=user,r=abc\xffdefghij",
        ] {
            assert!(
                ClientFirst::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let ok = ClientFirst::parse(b"n,a=a=2Cb,n=a=2Cb,r=abcdefghij,ext=1").unwrap();
        assert_eq!(ok.user, "a,b");
        assert!(ClientFirst::parse(&vec![b'a'; MESSAGE_BYTES_MAX + 1]).is_err());
        for bad in [
            &b""[..],
            b"c=biws,r=abcdefghij",
            b"c=!!,r=abcdefghij,p=AAAA",
            b"c=biws,p=AAAA",
            b"c=biws,r=abcdefghij,p=!!",
        ] {
            assert!(
                ClientFinal::parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(escape_name("a,b=c"), "a=2Cb=3Dc");
    }
}
