//! The SASL token decoders a client reaches before it is authenticated:
//! SCRAM's client-first and client-final messages, PLAIN's message, the
//! whole server-side exchange (`sasl::server::Exchange`) fed hostile
//! tokens, and the client side's reading of a (hostile) server-first
//! message and of a `sasl.jaas.config` line.
//!
//! Input: `[mode u8][token 1: length u16 LE, bytes][token 2: the rest]`.

#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use corelog::sasl::client::ScramClient;
use corelog::sasl::client_config::parse_jaas;
use corelog::sasl::plain::PlainMessage;
use corelog::sasl::scram::{ClientFinal, ClientFirst};
use corelog::sasl::server::{CredentialStore, Exchange, Mechanism};
use corelog::sasl::{ScramCredential, ScramMechanism};
use corelog_fuzz::Reader;
use libfuzzer_sys::fuzz_target;

struct Store(BTreeMap<(String, ScramMechanism), ScramCredential>);

impl CredentialStore for Store {
    fn credential(&self, user: &str, mechanism: ScramMechanism) -> Option<&ScramCredential> {
        self.0.get(&(user.to_string(), mechanism))
    }
    fn credentials(&self, user: &str) -> Vec<&ScramCredential> {
        self.0
            .iter()
            .filter(|((u, _), _)| u == user)
            .map(|(_, c)| c)
            .collect()
    }
}

fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(|| {
        let mut map = BTreeMap::new();
        for mechanism in ScramMechanism::ALL {
            let credential = ScramCredential::from_password(mechanism, "pw", 4096).unwrap();
            map.insert(("user".to_string(), mechanism), credential);
        }
        Store(map)
    })
}

fuzz_target!(|data: &[u8]| {
    let mut input = Reader::new(data);
    let mode = input.u8();
    let first_len = input.u16() as usize;
    let first = input.bytes(first_len);
    let second = input.bytes(usize::MAX);
    match mode % 6 {
        0 => {
            let _ = ClientFirst::parse(first);
        }
        1 => {
            let _ = ClientFinal::parse(first);
        }
        2 => {
            let _ = PlainMessage::parse(first);
        }
        3 | 4 => {
            let mechanism = Mechanism::ALL[(mode as usize / 6) % Mechanism::ALL.len()];
            let mut exchange = Exchange::new(mechanism);
            if exchange.step(first, store()).is_ok() {
                let _ = exchange.step(second, store());
            }
            let _ = exchange.step(second, store());
        }
        _ => {
            let mut client = ScramClient::new(ScramMechanism::Sha256, "user", "pw");
            if client.final_message(first).is_ok() {
                let _ = client.check_server_final(second);
            }
            let _ = parse_jaas(&String::from_utf8_lossy(second), Mechanism::Plain);
        }
    }
});
