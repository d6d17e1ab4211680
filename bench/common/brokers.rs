//! Broker processes (filled in below).
