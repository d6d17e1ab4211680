//! The client side of SASL over a Kafka connection, for the CLI and for
//! brokers reaching each other: SaslHandshake v1, then SaslAuthenticate
//! with PLAIN's one message or SCRAM's two (checking the server's
//! signature, so a server that does not know the password is not trusted).
//! Works over any blocking `Read + Write` stream (TCP or TLS).

use std::io::{Read, Write};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

use super::client_config::ClientSasl;
use super::scram::{self, ScramMechanism};
use super::server::Mechanism;

/// The largest answer read during authentication (a few tokens).
const RESPONSE_BYTES_MAX: usize = 64 * 1024;
/// Correlation ids the exchange uses (far from the ones a client starts at).
const CORRELATION_BASE: i32 = 0x5a51_0000;

/// The client's half of one SCRAM exchange.
pub struct ScramClient {
    mechanism: ScramMechanism,
    password: String,
    nonce: String,
    first_bare: String,
    /// Set by `final_message`: the server's signature to expect.
    expected_signature: Option<Vec<u8>>,
}

impl ScramClient {
    pub fn new(mechanism: ScramMechanism, user: &str, password: &str) -> ScramClient {
        let nonce = scram::new_nonce();
        ScramClient {
            mechanism,
            password: password.to_string(),
            first_bare: format!("n={},r={nonce}", scram::escape_name(user)),
            nonce,
            expected_signature: None,
        }
    }

    pub fn first_message(&self) -> Vec<u8> {
        format!("n,,{}", self.first_bare).into_bytes()
    }

    /// The final message for the server's first one.
    pub fn final_message(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let text = std::str::from_utf8(server_first).map_err(|_| "server-first is not UTF-8")?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for field in text.split(',') {
            if let Some(v) = field.strip_prefix("r=") {
                nonce = Some(v);
            } else if let Some(v) = field.strip_prefix("s=") {
                salt = scram::base64_decode(v);
            } else if let Some(v) = field.strip_prefix("i=") {
                iterations = v.parse::<i32>().ok();
            }
        }
        let (Some(nonce), Some(salt), Some(iterations)) = (nonce, salt, iterations) else {
            return Err(format!("malformed SCRAM server-first message {text:?}"));
        };
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("the server's SCRAM nonce does not extend ours".into());
        }
        scram::check_iterations(iterations).map_err(|e| format!("server's SCRAM: {e}"))?;
        let salted =
            self.mechanism
                .salted_password(self.password.as_bytes(), &salt, iterations as u32);
        let without_proof = format!("c=biws,r={nonce}");
        let message = scram::auth_message(&self.first_bare, text, &without_proof);
        let proof = scram::client_proof(self.mechanism, &salted, &message);
        let server_key = self.mechanism.server_key(&salted);
        self.expected_signature = Some(self.mechanism.hmac(&server_key, message.as_bytes()));
        Ok(format!("{without_proof},p={}", scram::base64_encode(&proof)).into_bytes())
    }

    /// Checks the server's final message (`v=<signature>`).
    pub fn check_server_final(&self, server_final: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(server_final).unwrap_or("");
        if let Some(error) = text.strip_prefix("e=") {
            return Err(format!("SCRAM error from the server: {error}"));
        }
        let signature = text.strip_prefix("v=").and_then(scram::base64_decode);
        match (&self.expected_signature, signature) {
            (Some(expected), Some(got)) if *expected == got => Ok(()),
            _ => Err("the server's SCRAM signature is wrong: it does not know the password".into()),
        }
    }
}

/// Authenticates an open connection (ApiVersions may or may not have been
/// exchanged) as `sasl` says. On success the connection is authenticated;
/// an error is the broker's message (SASL_AUTHENTICATION_FAILED) or an I/O
/// failure, and the connection should be dropped.
pub fn authenticate<S: Read + Write>(stream: &mut S, sasl: &ClientSasl) -> Result<(), String> {
    let handshake = SaslHandshakeRequest::default()
        .with_mechanism(StrBytes::from_string(sasl.mechanism.name().to_string()));
    let response = exchange(stream, 1, &handshake, CORRELATION_BASE)?;
    if response.error_code != 0 {
        let offered: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
        return Err(format!(
            "the broker does not accept SASL mechanism {} (error {}; it offers {})",
            sasl.mechanism.name(),
            response.error_code,
            offered.join(", ")
        ));
    }
    match sasl.mechanism {
        Mechanism::Plain => {
            let token = super::plain::message(&sasl.username, &sasl.password);
            authenticate_step(stream, token, CORRELATION_BASE + 1)?;
            Ok(())
        }
        Mechanism::Scram(mechanism) => {
            let mut client = ScramClient::new(mechanism, &sasl.username, &sasl.password);
            let server_first =
                authenticate_step(stream, client.first_message(), CORRELATION_BASE + 1)?;
            let last = client.final_message(&server_first)?;
            let server_final = authenticate_step(stream, last, CORRELATION_BASE + 2)?;
            client.check_server_final(&server_final)
        }
    }
}

fn authenticate_step<S: Read + Write>(
    stream: &mut S,
    token: Vec<u8>,
    correlation_id: i32,
) -> Result<Vec<u8>, String> {
    let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
    let response = exchange(stream, 1, &request, correlation_id)?;
    if response.error_code != 0 {
        return Err(format!(
            "SASL authentication failed (error {}): {}",
            response.error_code,
            response.error_message.as_deref().unwrap_or("")
        ));
    }
    Ok(response.auth_bytes.to_vec())
}

/// One request and its answer.
fn exchange<S: Read + Write, R: Request>(
    stream: &mut S,
    version: i16,
    request: &R,
    correlation_id: i32,
) -> Result<R::Response, String> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("corelog-sasl")));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, R::header_version(version))
        .and_then(|_| request.encode(&mut buf, version))
        .map_err(|e| format!("cannot encode a SASL request: {e}"))?;
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    stream
        .write_all(&buf)
        .and_then(|_| stream.flush())
        .map_err(|e| format!("SASL: cannot send: {e}"))?;
    let mut size = [0u8; 4];
    stream
        .read_exact(&mut size)
        .map_err(|e| format!("SASL: the broker closed the connection or did not answer: {e}"))?;
    let size = i32::from_be_bytes(size);
    if size < 0 || size as usize > RESPONSE_BYTES_MAX {
        return Err(format!("SASL: the broker sent a frame of {size} bytes"));
    }
    let mut body = vec![0u8; size as usize];
    stream
        .read_exact(&mut body)
        .map_err(|e| format!("SASL: cannot read the answer: {e}"))?;
    let mut body = Bytes::from(body);
    let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
        .map_err(|e| format!("SASL: malformed response header: {e:#}"))?;
    if header.correlation_id != correlation_id {
        return Err("SASL: the answer does not match the request".into());
    }
    R::Response::decode(&mut body, version).map_err(|e| format!("SASL: malformed response: {e:#}"))
}
