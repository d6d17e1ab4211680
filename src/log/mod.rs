//! Storage (owned by the log helper).
