//! `corelog storage`: a node's storage identity, as Kafka's
//! `kafka-storage.sh` (`random-uuid`, `format`, `info`). Unlike the other
//! tools it works offline on the data directory a server config names.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::config::{Config, ServeArgs};
use crate::storage::{self, FormatOutcome, MetaProperties};

#[derive(Args)]
pub struct StorageArgs {
    #[command(subcommand)]
    command: StorageCommand,
}

#[derive(Subcommand)]
enum StorageCommand {
    /// Print a new random cluster id.
    RandomUuid,
    /// Write meta.properties (cluster id, node id, directory id) into the config's log dir.
    Format {
        /// The cluster id, from `corelog storage random-uuid`; the same for every node.
        #[arg(short = 't', long = "cluster-id")]
        cluster_id: String,
        /// The node's server config (server.properties format, or TOML).
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
        /// Leave an already formatted directory as it is instead of failing.
        #[arg(short = 'g', long)]
        ignore_formatted: bool,
        /// A SCRAM user to create with the metadata, as Kafka's tool takes it:
        /// 'SCRAM-SHA-256=[name=alice,password=alice-secret]' (iterations=N
        /// optional, 4096 by default). Repeatable. Single-node data dirs only.
        #[arg(
            short = 'S',
            long = "add-scram",
            value_name = "MECHANISM=[name=...,password=...]"
        )]
        add_scram: Vec<String>,
    },
    /// Show the meta.properties of the config's log dir.
    Info {
        /// The node's server config (server.properties format, or TOML).
        #[arg(short = 'c', long = "config")]
        config: PathBuf,
    },
}

pub fn main(args: StorageArgs) -> ExitCode {
    let outcome = match args.command {
        StorageCommand::RandomUuid => {
            println!("{}", storage::random_uuid());
            Ok(true)
        }
        StorageCommand::Format {
            cluster_id,
            config,
            ignore_formatted,
            add_scram,
        } => format_with_scram(&cluster_id, &config, ignore_formatted, &add_scram).map(|()| true),
        StorageCommand::Info { config } => info(&config),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: &Path) -> Result<Config, String> {
    Config::build(&ServeArgs {
        config: Some(path.to_path_buf()),
        // The shard count does not matter offline; fixing it keeps a
        // tuning profile's core list from being checked against this machine.
        shards: Some(1),
        ..ServeArgs::default()
    })
    .map_err(|e| e.to_string())
}

/// Formats the config's data dir. Public for `dev-cluster`, which formats
/// the configs it writes.
pub fn format(cluster_id: &str, config_path: &Path, ignore_formatted: bool) -> Result<(), String> {
    let config = load(config_path)?;
    let dir = &config.data_dir;
    match storage::format(dir, cluster_id, config.broker.node_id, ignore_formatted)
        .map_err(|e| e.to_string())?
    {
        FormatOutcome::Formatted(meta) => println!(
            "Formatting {} with cluster id {} for node {}.",
            dir.display(),
            meta.cluster_id,
            meta.node_id
        ),
        FormatOutcome::LeftAlone(_) => {
            println!("All of the log directories are already formatted.")
        }
    }
    Ok(())
}

/// `format`, then the `--add-scram` users written into the new metadata
/// (salted and hashed: the password is not stored).
fn format_with_scram(
    cluster_id: &str,
    config_path: &Path,
    ignore_formatted: bool,
    add_scram: &[String],
) -> Result<(), String> {
    let mut credentials = crate::metadata::ScramCredentials::new();
    for spec in add_scram {
        let (user, credential) = parse_add_scram(spec)?;
        credentials
            .entry(user)
            .or_default()
            .insert(credential.mechanism, credential);
    }
    if credentials.is_empty() {
        return format(cluster_id, config_path, ignore_formatted);
    }
    let config = load(config_path)?;
    if config.cluster.has_quorum() {
        return Err(
            "--add-scram writes a single node's metadata; in a cluster, create the users with              `corelog configs --alter --entity-type users` once it runs"
                .into(),
        );
    }
    let dir = &config.data_dir;
    if crate::metadata::Catalog::stored_cluster_id(dir)
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Err(format!(
            "{} already holds metadata; add users with `corelog configs --alter --entity-type users`",
            dir.display()
        ));
    }
    format(cluster_id, config_path, ignore_formatted)?;
    let mut catalog = crate::metadata::Catalog::new(cluster_id);
    catalog.scram_credentials = credentials;
    catalog.persist(dir).map_err(|e| e.to_string())?;
    for (user, by_mechanism) in &catalog.scram_credentials {
        for mechanism in by_mechanism.keys() {
            println!("Added {mechanism} credential for user {user}.");
        }
    }
    Ok(())
}

/// `SCRAM-SHA-256=[name=alice,password=alice-secret,iterations=8192]`.
fn parse_add_scram(spec: &str) -> Result<(String, crate::sasl::ScramCredential), String> {
    use crate::sasl::scram::{ScramCredential, ScramMechanism, ITERATIONS_DEFAULT};
    let bad = || format!("--add-scram {spec:?}: expected MECHANISM=[name=NAME,password=PASSWORD]");
    let (mechanism, rest) = spec.split_once('=').ok_or_else(bad)?;
    let mechanism = ScramMechanism::parse(mechanism.trim()).ok_or_else(|| {
        format!("--add-scram: unknown mechanism {mechanism:?} (SCRAM-SHA-256 or SCRAM-SHA-512)")
    })?;
    let inner = rest
        .trim()
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(bad)?;
    let (mut name, mut password, mut iterations) = (None, None, ITERATIONS_DEFAULT);
    for part in inner.split(',') {
        match part.split_once('=') {
            Some(("name", v)) => name = Some(v.trim_matches('"').to_string()),
            Some(("password", v)) => password = Some(v.trim_matches('"').to_string()),
            Some(("iterations", v)) => iterations = v.parse().map_err(|_| bad())?,
            _ => return Err(bad()),
        }
    }
    let (Some(name), Some(password)) = (name, password) else {
        return Err(bad());
    };
    crate::metadata::validate_scram_user(&name).map_err(|e| format!("--add-scram: {e}"))?;
    if password.is_empty() {
        return Err(bad());
    }
    let credential = ScramCredential::from_password(mechanism, &password, iterations)
        .map_err(|e| format!("--add-scram {}: {e}", mechanism.name()))?;
    Ok((name, credential))
}

/// Prints what Kafka's `kafka-storage.sh info` prints; false when it found
/// a problem.
fn info(config_path: &Path) -> Result<bool, String> {
    let config = load(config_path)?;
    let dir = &config.data_dir;
    println!("Found log directory:\n  {}\n", dir.display());
    let problem = match MetaProperties::read(dir) {
        Ok(Some(meta)) => {
            println!("Found metadata: {}\n", meta.summary());
            storage::check(dir, &meta, &config)
                .err()
                .map(|e| e.to_string())
        }
        Ok(None) => Some(format!("{} is not formatted.", dir.display())),
        Err(e) => Some(e.to_string()),
    };
    print_formats(dir);
    match problem {
        Some(problem) => {
            println!("Found problem:\n  {problem}\n");
            Ok(false)
        }
        None => Ok(true),
    }
}

/// The formats of the files in `dir`, per kind, and the versions this
/// binary reads (docs/storage-formats.md).
fn print_formats(dir: &Path) {
    use crate::storage::formats;
    let found = formats::inventory(dir);
    if found.is_empty() {
        return;
    }
    println!(
        "Found file formats (this binary writes storage format {} and reads {} to {}):",
        formats::STORAGE_FORMAT,
        formats::STORAGE_FORMAT_OLDEST,
        formats::STORAGE_FORMAT
    );
    for (kind, seen) in &found {
        let versions: Vec<String> = seen
            .versions
            .iter()
            .map(|(version, files)| {
                let plural = if *files == 1 { "" } else { "s" };
                format!("{version} ({files} file{plural})")
            })
            .collect();
        println!("  {kind}: {}", versions.join(", "));
    }
    println!();
}
