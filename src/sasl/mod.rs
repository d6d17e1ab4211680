//! SASL authentication (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) as Kafka runs
//! it, and the SCRAM credentials the cluster metadata keeps.
//!
//! - [`scram`]: the credential (salt, iterations, stored key, server key:
//!   never a password), the RFC 5802 derivations and the client messages'
//!   parsers;
//! - [`plain`]: PLAIN's message;
//! - [`server`]: the broker's side of one exchange, and the per-shard limit
//!   on repeated failures;
//! - [`client`], [`client_config`]: the client's side, for the CLI and for
//!   brokers reaching each other, configured with Kafka's client properties.
//!
//! This module imports nothing from the broker: `server` (the handlers)
//! and `cluster` (the metadata records) use it.

pub mod client;
pub mod client_config;
pub mod plain;
pub mod scram;
pub mod server;

pub use scram::{ScramCredential, ScramMechanism};
pub use server::Mechanism;
