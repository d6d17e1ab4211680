//! The Kafka wire, free of I/O.

pub mod batch;
