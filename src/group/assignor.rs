//! Server-side assignors for KIP-848 groups.
