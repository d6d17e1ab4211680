//! `corelog broker-api-versions`: Kafka's `kafka-broker-api-versions.sh`.
//! Asks every broker in the cluster (from Metadata) for its ApiVersions and
//! prints them as Kafka's `NodeApiVersions.toString(true)` does, with the
//! highest version this client can use next to each.

use kafka_protocol::messages::ApiKey;

use super::client::{CliResult, KafkaClient};
use super::output::Cluster;

#[derive(clap::Args)]
pub struct BrokerApiVersionsArgs {
    /// The broker(s) to connect to: host:port[,host:port...].
    #[arg(long, value_name = "SERVER")]
    bootstrap_server: String,
}

pub fn run(args: BrokerApiVersionsArgs) -> CliResult<()> {
    let mut cluster = Cluster::connect(&args.bootstrap_server)?;
    cluster.metadata(Some(&[]))?;
    let nodes: Vec<(i32, String, Option<String>)> = cluster
        .nodes()
        .map(|(id, address, rack)| (id, address, rack.map(str::to_string)))
        .collect();
    for (id, address, rack) in nodes {
        let client = cluster.node(id)?;
        let rack = rack.as_deref().unwrap_or("null");
        println!(
            "{address} (id: {id} rack: {rack}) -> {}",
            versions_text(client)
        );
    }
    Ok(())
}

/// `(\n\tProduce(0): 3 to 11 [usable: 11],\n\t...\n)`, in api key order;
/// APIs this client knows that the broker does not serve say UNSUPPORTED.
pub fn versions_text(client: &KafkaClient) -> String {
    let mut keys: Vec<ApiKey> = ApiKey::iter().collect();
    keys.sort_by_key(|k| *k as i16);
    let lines: Vec<String> = keys
        .into_iter()
        .map(|key| {
            let id = key as i16;
            let Some((min, max)) = client.served(key) else {
                return format!("{key:?}({id}): UNSUPPORTED");
            };
            let range = if min == max {
                min.to_string()
            } else {
                format!("{min} to {max}")
            };
            let codec = key.valid_versions();
            let usable = if codec.max < min {
                "[unusable: node too new]".to_string()
            } else if max < codec.min {
                "[unusable: node too old]".to_string()
            } else {
                format!("[usable: {}]", codec.max.min(max))
            };
            format!("{key:?}({id}): {range} {usable}")
        })
        .collect();
    format!("(\n\t{}\n)", lines.join(",\n\t"))
}
