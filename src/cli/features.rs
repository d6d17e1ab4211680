//! `corelog features`: Kafka's `kafka-features.sh describe`. Prints each
//! feature one broker reports in ApiVersions (supported range of its
//! binary, the cluster's finalized level and its epoch) as Kafka 3.9's
//! `FeatureCommand` does. corelog finalizes its levels by itself once every
//! broker supports them (`features.rs`), so there is no `upgrade`.

use kafka_protocol::messages::api_versions_response::{FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::ApiVersionsRequest;

use super::client::{fail, CliResult, KafkaClient};

#[derive(clap::Args)]
pub struct FeaturesArgs {
    /// A broker to connect to: host:port[,host:port...].
    #[arg(long, value_name = "SERVER")]
    bootstrap_server: String,
    #[command(subcommand)]
    command: FeaturesCommand,
}

#[derive(clap::Subcommand)]
enum FeaturesCommand {
    /// The features the broker's binary supports and the levels the cluster runs at.
    Describe,
}

pub fn run(args: FeaturesArgs) -> CliResult<()> {
    let FeaturesCommand::Describe = args.command;
    let mut client = KafkaClient::connect(&args.bootstrap_server)?;
    let response = client.call(3, &ApiVersionsRequest::default())?;
    if response.error_code != 0 {
        return fail(format!(
            "ApiVersions failed with error {}",
            response.error_code
        ));
    }
    for line in describe_lines(
        &response.supported_features,
        &response.finalized_features,
        response.finalized_features_epoch,
    ) {
        println!("{line}");
    }
    Ok(())
}

/// One line per supported feature, in name order: `Feature: NAME\t
/// SupportedMinVersion: A\tSupportedMaxVersion: B\tFinalizedVersionLevel:
/// L\tEpoch: E` (level 0 and epoch "-" when nothing is finalized).
fn describe_lines(
    supported: &[SupportedFeatureKey],
    finalized: &[FinalizedFeatureKey],
    epoch: i64,
) -> Vec<String> {
    let mut supported: Vec<&SupportedFeatureKey> = supported.iter().collect();
    supported.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    supported
        .into_iter()
        .map(|feature| {
            let level = finalized
                .iter()
                .find(|f| f.name == feature.name)
                .map_or(0, |f| f.max_version_level);
            let epoch = if epoch < 0 {
                "-".to_string()
            } else {
                epoch.to_string()
            };
            format!(
                "Feature: {}\tSupportedMinVersion: {}\tSupportedMaxVersion: {}\t\
                 FinalizedVersionLevel: {level}\tEpoch: {epoch}",
                feature.name.as_str(),
                feature.min_version,
                feature.max_version
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use kafka_protocol::protocol::StrBytes;

    use super::*;

    #[test]
    fn lines_read_as_kafka_features_describe() {
        let name = StrBytes::from_static_str("corelog.metadata.version");
        let supported = [SupportedFeatureKey::default()
            .with_name(name.clone())
            .with_min_version(1)
            .with_max_version(2)];
        let finalized = [FinalizedFeatureKey::default()
            .with_name(name)
            .with_min_version_level(1)
            .with_max_version_level(1)];
        assert_eq!(
            describe_lines(&supported, &finalized, 7),
            ["Feature: corelog.metadata.version\tSupportedMinVersion: 1\tSupportedMaxVersion: 2\t\
              FinalizedVersionLevel: 1\tEpoch: 7"]
        );
        assert_eq!(
            describe_lines(&supported, &[], -1),
            ["Feature: corelog.metadata.version\tSupportedMinVersion: 1\tSupportedMaxVersion: 2\t\
              FinalizedVersionLevel: 0\tEpoch: -"]
        );
    }
}
