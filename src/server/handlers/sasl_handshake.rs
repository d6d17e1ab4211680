//! SaslHandshake (v1): the client names its mechanism; a SASL listener
//! answers with the mechanisms it enables (`sasl.enabled.mechanisms`) and
//! readies the exchange that SaslAuthenticate carries. v0 (raw tokens
//! after the handshake) is not served: every client since Kafka 1.0 sends
//! v1 when the broker lists it.

use std::rc::Rc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::protocol::StrBytes;

use crate::sasl::server::{ConnectionSasl, Exchange, Mechanism};
use crate::security::Session;
use crate::server::broker::Broker;
use crate::server::error_codes::ErrorCodes;

impl ErrorCodes for SaslHandshakeResponse {
    fn error_codes(&self, out: &mut dyn FnMut(i16)) {
        out(self.error_code);
    }
}

/// The mechanisms this broker's SASL listener accepts.
pub fn enabled_mechanisms(broker: &Broker) -> Vec<Mechanism> {
    // Checked when the config was read (`sasl.enabled.mechanisms`).
    Mechanism::parse_list(&broker.config.broker.sasl_enabled_mechanisms).unwrap_or_default()
}

/// The answer, and why the connection closes after it (None: it stays).
pub fn handle(
    broker: &Rc<Broker>,
    session: &Session,
    _version: i16,
    request: SaslHandshakeRequest,
) -> (SaslHandshakeResponse, Option<String>) {
    let enabled = enabled_mechanisms(broker);
    let names = enabled
        .iter()
        .map(|m| StrBytes::from_static_str(m.name()))
        .collect();
    let response = |error: Option<ResponseError>| {
        SaslHandshakeResponse::default()
            .with_error_code(error.map_or(0, |e| e.code()))
            .with_mechanisms(names)
    };
    if !session.protocol.uses_sasl() {
        // Kafka's answer on a listener without SASL; the connection stays.
        return (response(Some(ResponseError::IllegalSaslState)), None);
    }
    let wanted = Mechanism::parse(request.mechanism.as_str()).filter(|m| enabled.contains(m));
    let Some(mechanism) = wanted else {
        // Kafka answers and closes: the client cannot go on without a
        // mechanism both sides have.
        return (
            response(Some(ResponseError::UnsupportedSaslMechanism)),
            Some(format!(
                "SASL mechanism {:?} is not enabled on listener {}",
                request.mechanism.as_str(),
                session.listener
            )),
        );
    };
    session.with_auth_state(|state: &mut ConnectionSasl| {
        if state.mechanism.is_some_and(|m| m != mechanism) {
            // Re-authentication keeps the mechanism (KIP-368).
            return (
                response(Some(ResponseError::IllegalSaslState)),
                Some("re-authentication with another SASL mechanism".to_string()),
            );
        }
        state.exchange = Some(Exchange::new(mechanism));
        (response(None), None)
    })
}
