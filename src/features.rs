//! Feature levels: what a cluster of mixed binaries may write.
//!
//! A rolling upgrade runs old and new binaries side by side, and every
//! controller applies the same metadata log: a record an old binary cannot
//! read is skipped there (see `cluster/quorum/voter.rs`), so the images
//! would part. As Kafka's `metadata.version` (KIP-778), the cluster runs at
//! one finalized level, the highest every registered broker and every voter
//! supports; a change a level introduces is written only once the cluster
//! is finalized at that level. Each broker registers the newest level its
//! binary supports ([`crate::metadata::BrokerRecord::max_metadata_version`]);
//! the active controller finalizes a higher level as soon as all of them
//! support it (as Redpanda activates its cluster features, without an
//! operator's command), and refuses to register a binary older than the
//! finalized level, since it could not read what the log now holds.
//!
//! Clients see the levels in ApiVersions (supported and finalized
//! features, under [`METADATA_VERSION_FEATURE`]; a name of corelog's own, so
//! no client reads Kafka's meaning into corelog's numbers) and through
//! `corelog features describe`.
//!
//! | level | binaries | what it adds |
//! |-------|----------|--------------|
//! | 1 | every binary (the baseline; binaries before feature levels run at it) | - |
//! | 2 | since feature levels | the finalized level is recorded in the metadata log (`MetadataRecord::FinalizeFeatures`) |
//! | 3 | since TLS, SASL and ACLs | SCRAM credentials and ACLs in the metadata log |

/// The feature's name in ApiVersions.
pub const METADATA_VERSION_FEATURE: &str = "corelog.metadata.version";

/// The level every binary runs, and what a registration that does not name
/// its level (a binary from before feature levels) supports.
pub const METADATA_VERSION_BASELINE: u16 = 1;

/// The newest level this binary supports.
pub const METADATA_VERSION_MAX: u16 = 3;
/// The level from which the metadata log may hold security records (SCRAM
/// credentials, ACLs): an older binary cannot read them.
pub const METADATA_VERSION_SECURITY: u16 = 3;

/// The level a controller may finalize: the lowest of what every
/// registered broker supports (`supported`, fenced brokers included: they
/// may come back), when every voter is among them; None while a voter has
/// not registered (its binary is unknown) or nothing is registered.
pub fn finalizable(
    supported: impl IntoIterator<Item = (i32, u16)>,
    voters: impl IntoIterator<Item = i32>,
) -> Option<u16> {
    let supported: std::collections::BTreeMap<i32, u16> = supported.into_iter().collect();
    if voters.into_iter().any(|v| !supported.contains_key(&v)) {
        return None;
    }
    let lowest = supported.values().copied().min()?;
    Some(lowest.min(METADATA_VERSION_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_supported_level_wins_once_every_voter_registered() {
        let new = METADATA_VERSION_MAX;
        let old = METADATA_VERSION_BASELINE;
        // One old broker holds the cluster at the baseline.
        assert_eq!(
            finalizable([(1, new), (2, old), (3, new)], [1, 2, 3]),
            Some(old)
        );
        // All upgraded: this binary's level.
        assert_eq!(
            finalizable([(1, new), (2, new), (3, new)], [1, 2, 3]),
            Some(new)
        );
        // A broker-only node counts as much as a voter.
        assert_eq!(finalizable([(1, new), (4, old)], [1]), Some(old));
        // A voter not registered yet: its binary is unknown.
        assert_eq!(finalizable([(1, new), (2, new)], [1, 2, 3]), None);
        assert_eq!(finalizable([], []), None);
        // A newer binary than this one does not raise the level past ours.
        assert_eq!(finalizable([(1, new + 3)], [1]), Some(new));
    }
}
