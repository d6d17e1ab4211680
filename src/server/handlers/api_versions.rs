//! ApiVersions: the served table, straight from `protocol::apis`, and the
//! feature levels (`features.rs`): what this binary supports and what the
//! cluster runs at.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::features::{METADATA_VERSION_BASELINE, METADATA_VERSION_FEATURE, METADATA_VERSION_MAX};
use crate::metadata::Catalog;
use crate::protocol::apis::SERVED_APIS;

/// The level the cluster runs at and the epoch that finalized it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finalized {
    pub metadata_version: u16,
    pub epoch: i64,
}

impl Finalized {
    /// A cluster node: what the committed metadata says. A single node has
    /// nobody to wait for, and runs its binary's level.
    pub fn of(catalog: &Catalog, cluster_mode: bool) -> Finalized {
        if cluster_mode {
            Finalized {
                metadata_version: catalog.metadata_version,
                epoch: catalog.features_epoch as i64,
            }
        } else {
            Finalized {
                metadata_version: METADATA_VERSION_MAX,
                epoch: 0,
            }
        }
    }
}

fn served() -> Vec<ApiVersion> {
    SERVED_APIS
        .iter()
        .map(|api| {
            ApiVersion::default()
                .with_api_key(api.key as i16)
                .with_min_version(api.min_version)
                .with_max_version(api.max_version)
        })
        .collect()
}

pub fn handle(
    _version: i16,
    _request: ApiVersionsRequest,
    finalized: Finalized,
) -> ApiVersionsResponse {
    let name = StrBytes::from_static_str(METADATA_VERSION_FEATURE);
    // The feature fields are tagged (v3+): older versions do not encode them.
    ApiVersionsResponse::default()
        .with_api_keys(served())
        .with_supported_features(vec![SupportedFeatureKey::default()
            .with_name(name.clone())
            .with_min_version(METADATA_VERSION_BASELINE as i16)
            .with_max_version(METADATA_VERSION_MAX as i16)])
        .with_finalized_features_epoch(finalized.epoch)
        .with_finalized_features(vec![FinalizedFeatureKey::default()
            .with_name(name)
            .with_min_version_level(finalized.metadata_version as i16)
            .with_max_version_level(finalized.metadata_version as i16)])
}

/// The answer to an ApiVersions version this broker does not serve: encoded
/// as v0, error UNSUPPORTED_VERSION, with the served table.
pub fn unsupported_version() -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(served())
}
