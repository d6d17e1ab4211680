//! Code shared by the bench targets (`loadgen`, `compare`, `scaling`, the harness test).
//!
//! Each target includes this directory with `#[path]`, so every target
//! compiles all of it and uses only a part: hence the `dead_code` allowance.
//! Nothing here runs inside the broker; it is a Kafka client (librdkafka via
//! `rdkafka`) plus process management for the brokers it measures.

#![allow(dead_code)]

pub mod brokers;
pub mod cpu;
pub mod loadgen;
pub mod report;
pub mod scaling;
pub mod workload;
