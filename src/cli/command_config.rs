//! The SASL half of `--command-config FILE` (a Kafka client properties
//! file, as Kafka's tools take it; `client::set_command_config` reads it):
//! the SASL keys (`security.protocol`, `sasl.mechanism`, `sasl.jaas.config`;
//! `sasl::client_config`), kept for every connection the tool opens.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crate::sasl::client_config::{self, ClientSasl};

static CLIENT_SASL: OnceLock<Option<ClientSasl>> = OnceLock::new();

/// Keeps the SASL settings of the properties for the process (called once
/// by `client::set_command_config`, which reads the file).
pub fn set_from(props: &BTreeMap<String, String>) -> Result<(), String> {
    let sasl = client_config::from_properties(props).map_err(|e| e.to_string())?;
    let _ = CLIENT_SASL.set(sasl);
    Ok(())
}

/// The SASL settings the tool's connections authenticate with, if any.
pub fn client_sasl() -> Option<&'static ClientSasl> {
    CLIENT_SASL.get().and_then(Option::as_ref)
}
