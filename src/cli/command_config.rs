//! `--command-config FILE`: a Kafka client properties file, as Kafka's
//! tools take it. This file reads the SASL keys (`security.protocol`,
//! `sasl.mechanism`, `sasl.jaas.config`; `sasl::client_config`) and keeps
//! them for every connection the tool's client opens afterwards.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use super::client::{CliError, CliResult};
use crate::sasl::client_config::{self, ClientSasl};

static CLIENT_SASL: OnceLock<Option<ClientSasl>> = OnceLock::new();

/// Reads the properties file and keeps its SASL settings for the process.
pub fn load(path: &Path) -> CliResult<()> {
    let file = std::fs::File::open(path).map_err(|e| {
        CliError(format!(
            "cannot read --command-config {}: {e}",
            path.display()
        ))
    })?;
    let props: BTreeMap<String, String> = java_properties::read(std::io::BufReader::new(file))
        .map_err(|e| CliError(format!("--command-config {}: {e}", path.display())))?
        .into_iter()
        .collect();
    let sasl = client_config::from_properties(&props)
        .map_err(|e| CliError(format!("--command-config {}: {e}", path.display())))?;
    let _ = CLIENT_SASL.set(sasl);
    Ok(())
}

/// The SASL settings the tool's connections authenticate with, if any.
pub fn client_sasl() -> Option<&'static ClientSasl> {
    CLIENT_SASL.get().and_then(Option::as_ref)
}
