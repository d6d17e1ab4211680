//! The record-batch view (owned by the log helper).
