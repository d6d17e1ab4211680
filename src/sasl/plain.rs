//! SASL/PLAIN's one message (RFC 4616): `[authzid] NUL authcid NUL passwd`.
//! Kafka's PlainSaslServer rules: the user name and password must not be
//! empty, and an authorization id, when given, must be the user name.

/// The longest PLAIN message taken (a name and a password).
pub const MESSAGE_BYTES_MAX: usize = 4096;

/// A parsed PLAIN message. The password stays out of debug output.
pub struct PlainMessage<'a> {
    pub user: &'a str,
    pub password: &'a [u8],
}

impl std::fmt::Debug for PlainMessage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainMessage")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlainError {
    #[error("a PLAIN message of {0} bytes")]
    TooLong(usize),
    #[error("Invalid SASL/PLAIN response: expected 3 tokens, got {0}")]
    Tokens(usize),
    #[error("Authentication failed: username not specified")]
    NoUser,
    #[error("Authentication failed: password not specified")]
    NoPassword,
    #[error("Authentication failed: the username is not UTF-8")]
    NotUtf8,
    #[error(
        "Authentication failed: Client requested an authorization id that is different from \
         username"
    )]
    OtherAuthorizationId,
}

impl<'a> PlainMessage<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<PlainMessage<'a>, PlainError> {
        if bytes.len() > MESSAGE_BYTES_MAX {
            return Err(PlainError::TooLong(bytes.len()));
        }
        let parts: Vec<&[u8]> = bytes.splitn(4, |b| *b == 0).collect();
        if parts.len() != 3 {
            return Err(PlainError::Tokens(parts.len()));
        }
        let user = std::str::from_utf8(parts[1]).map_err(|_| PlainError::NotUtf8)?;
        if user.is_empty() {
            return Err(PlainError::NoUser);
        }
        if parts[2].is_empty() {
            return Err(PlainError::NoPassword);
        }
        if !parts[0].is_empty() && parts[0] != parts[1] {
            return Err(PlainError::OtherAuthorizationId);
        }
        Ok(PlainMessage {
            user,
            password: parts[2],
        })
    }
}

/// The client's message for `user` and `password`.
pub fn message(user: &str, password: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(user.len() + password.len() + 2);
    out.push(0);
    out.extend_from_slice(user.as_bytes());
    out.push(0);
    out.extend_from_slice(password.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_messages_parse_as_kafka_reads_them() {
        let m = PlainMessage::parse(b"\0alice\0secret").unwrap();
        assert_eq!((m.user, m.password), ("alice", &b"secret"[..]));
        let m = PlainMessage::parse(b"alice\0alice\0pw\0with-nul").unwrap_err();
        assert_eq!(m, PlainError::Tokens(4));
        assert!(PlainMessage::parse(b"alice\0alice\0pw").is_ok());
        assert_eq!(
            PlainMessage::parse(b"bob\0alice\0pw").err(),
            Some(PlainError::OtherAuthorizationId)
        );
        assert_eq!(
            PlainMessage::parse(b"\0\0pw").err(),
            Some(PlainError::NoUser)
        );
        assert_eq!(
            PlainMessage::parse(b"\0a\0").err(),
            Some(PlainError::NoPassword)
        );
        assert_eq!(PlainMessage::parse(b"").err(), Some(PlainError::Tokens(1)));
        assert_eq!(
            PlainMessage::parse(b"\0\xff\0pw").err(),
            Some(PlainError::NotUtf8)
        );
        assert!(PlainMessage::parse(&vec![0; MESSAGE_BYTES_MAX + 1]).is_err());
        assert_eq!(message("a", "b"), b"\0a\0b");
    }
}
