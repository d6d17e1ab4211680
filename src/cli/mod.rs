//! The `corelog` command line: `serve` runs a broker; every other command is
//! a Kafka client of a running broker, mirroring Kafka's own tools (same
//! verbs, flags and output shapes), so it works against Apache Kafka too;
//! `storage` works offline on a node's data directory (kafka-storage.sh) and
//! `dev-cluster` runs several `serve` processes on one machine.
//!
//! Each tool lives in its own file with a clap `Args` struct and a
//! `run(args) -> CliResult<()>`; errors print one line and exit non-zero.

pub mod acls;
pub mod broker_api_versions;
pub mod check_config;
pub mod client;
pub mod command_config;
pub mod completions;
pub mod configs;
pub mod configs_users;
pub mod console_consumer;
pub mod console_producer;
pub mod consumer_groups;
pub mod delete_records;
pub mod dev_cluster;
pub mod doctor;
pub mod dump_log;
pub mod features;
pub mod host;
pub mod leader_election;
pub mod log_dirs;
pub mod metadata_quorum;
pub mod output;
pub mod storage;
pub mod top;
pub mod topics;
pub mod tune;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ServeArgs};

#[derive(Parser)]
#[command(
    name = "corelog",
    version,
    about = "A Kafka-compatible event streaming broker, thread-per-core on io_uring"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log lines on stderr as text or as JSON objects (RUST_LOG filters them).
    #[arg(long, global = true, value_enum, default_value_t)]
    pub log_format: crate::logging::LogFormat,
    /// Client properties for connecting to brokers, as Kafka's tools read
    /// them (security.protocol, ssl.truststore.location, ...).
    #[arg(long, global = true, value_name = "FILE")]
    pub command_config: Option<std::path::PathBuf>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run a broker (defaults: 127.0.0.1:9092, data in ./data, one shard per core).
    Serve(Serve),
    /// A node's storage identity: random-uuid, format, info (kafka-storage.sh).
    Storage(storage::StorageArgs),
    /// Write, format and run an N-node cluster on this machine for development.
    DevCluster(dev_cluster::DevClusterArgs),
    /// Create, list, describe, alter or delete topics (kafka-topics.sh).
    Topics(topics::TopicsArgs),
    /// Write lines from stdin to a topic, one record each (kafka-console-producer.sh).
    ConsoleProducer(console_producer::ConsoleProducerArgs),
    /// Print a topic's records to stdout (kafka-console-consumer.sh).
    ConsoleConsumer(console_consumer::ConsoleConsumerArgs),
    /// List consumer groups, or describe one's offsets and lag (kafka-consumer-groups.sh).
    ConsumerGroups(consumer_groups::ConsumerGroupsArgs),
    /// Describe or alter topic and broker configs (kafka-configs.sh).
    Configs(configs::ConfigsArgs),
    /// Move partitions' log start offsets forward (kafka-delete-records.sh).
    DeleteRecords(delete_records::DeleteRecordsArgs),
    /// The API versions each broker serves (kafka-broker-api-versions.sh).
    BrokerApiVersions(broker_api_versions::BrokerApiVersionsArgs),
    /// Describe the brokers' log directories as JSON (kafka-log-dirs.sh).
    LogDirs(log_dirs::LogDirsArgs),
    /// Print the batches and records of segment files offline (kafka-dump-log).
    DumpLog(dump_log::DumpLogArgs),
    /// Describe the controller quorum: --status or --replication (kafka-metadata-quorum.sh).
    MetadataQuorum(metadata_quorum::MetadataQuorumArgs),
    /// Describe the feature levels the cluster runs at (kafka-features.sh describe).
    Features(features::FeaturesArgs),
    /// Elect preferred or unclean leaders for partitions (kafka-leader-election.sh).
    LeaderElection(leader_election::LeaderElectionArgs),
    /// Print a shell completion script: bash, zsh, fish, elvish or powershell.
    Completions(completions::CompletionsArgs),
    /// Check this host and config against what a broker needs: one line per check, its verdict and fix.
    Doctor(doctor::DoctorArgs),
    /// Apply the kernel settings doctor recommends (governor, THP, IRQs, I/O scheduler, socket buffers).
    Tune(tune::TuneArgs),
    /// The cluster at a glance, refreshed in place: load per node and shard, hottest partitions, most-lagging groups.
    Top(top::TopArgs),
    /// Add, list or remove ACLs (kafka-acls.sh).
    Acls(acls::AclsArgs),
}

#[derive(clap::Args)]
pub struct Serve {
    /// A server config: Kafka's server.properties format (node.id, process.roles, listeners,
    /// advertised.listeners, controller.quorum.voters, log.dirs, broker configs...), or a TOML
    /// file when the name ends in .toml. Flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A tuning profile (see tuning/).
    #[arg(long)]
    tuning: Option<PathBuf>,
    /// Address every shard listens on (SO_REUSEPORT).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Host name clients are told to connect to (defaults to the listen address).
    #[arg(long)]
    advertised_host: Option<String>,
    /// Directory that holds the partitions' logs, the topic catalog and meta.properties.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Number of shards (executors); defaults to one per core.
    #[arg(long)]
    shards: Option<usize>,
    /// Where shards run: auto (one per core this process may use when there
    /// are enough, else unpinned), none (unpinned), or cores as taskset
    /// lists them (0,2,4-7), shard i on the i-th.
    #[arg(long, value_name = "auto|none|LIST")]
    cores: Option<crate::config::Cores>,
    /// A Kafka broker config by its server.properties name, e.g. auto.create.topics.enable=false. Repeatable.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// The web console shows but changes nothing (http.console.read.only=true).
    #[arg(long)]
    read_only: bool,
    /// Check the configuration (types, bounds, contradictions, the data directory) and exit:
    /// 0 with "config OK: ..." or 1 with one line per problem. Starts nothing, writes nothing.
    #[arg(long)]
    check_config: bool,
}

impl Cli {
    /// What is logged without `RUST_LOG`: a broker's INFO lines (Kafka's
    /// server.log), a tool's warnings (Kafka's tools).
    pub fn default_log_filter(&self) -> &'static str {
        match self.command {
            // The check prints its own findings, the start-up warnings among them.
            Command::Serve(ref serve) if serve.check_config => "error",
            Command::Serve(_) => crate::logging::BROKER_DEFAULT_FILTER,
            _ => crate::logging::TOOL_DEFAULT_FILTER,
        }
    }
}

/// Runs the parsed command; the exit code says whether it worked.
pub fn run(cli: Cli) -> ExitCode {
    if !matches!(cli.command, Command::Serve(_) | Command::DevCluster(_)) {
        end_quietly_when_stdout_closes();
    }
    if let Some(path) = &cli.command_config {
        if let Err(e) = client::set_command_config(path) {
            return report(Err(e));
        }
    }
    let outcome: client::CliResult<()> = match cli.command {
        Command::Serve(serve) => return run_serve(serve),
        Command::Storage(args) => return storage::main(args),
        Command::DevCluster(args) => return dev_cluster::main(args),
        Command::Topics(args) => return topics::main(args),
        Command::Doctor(args) => return doctor::main(args),
        Command::Tune(args) => return tune::main(args),
        Command::ConsoleProducer(args) => console_producer::run(args),
        Command::ConsoleConsumer(args) => console_consumer::run(args),
        Command::Configs(args) => configs::run(args),
        Command::ConsumerGroups(args) => consumer_groups::run(args),
        Command::DeleteRecords(args) => delete_records::run(args),
        Command::BrokerApiVersions(args) => broker_api_versions::run(args),
        Command::LogDirs(args) => log_dirs::run(args),
        Command::DumpLog(args) => dump_log::run(args),
        Command::MetadataQuorum(args) => metadata_quorum::run(args),
        Command::Features(args) => features::run(args),
        Command::LeaderElection(args) => leader_election::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Top(args) => top::run(args),
        Command::Acls(args) => acls::run(args),
    };
    report(outcome)
}

/// A tool whose reader went away (`corelog log-dirs --describe | head`)
/// ends there, silently, as Unix tools do. Rust starts programs with
/// SIGPIPE ignored, which makes `println!` panic on the closed pipe; the
/// tools' sockets are not affected (std sends with MSG_NOSIGNAL and sees
/// EPIPE as an error). Not for `serve` and `dev-cluster`, which must
/// outlive a closed terminal pipe and stop their nodes cleanly.
#[allow(unsafe_code)]
fn end_quietly_when_stdout_closes() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: restores the default disposition (no handler runs), on the
    // main thread before the tool starts any other thread.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

fn report(outcome: client::CliResult<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_serve(serve: Serve) -> ExitCode {
    let mut overrides = serve.overrides;
    if serve.read_only {
        // After the others: the flag wins over an --override of the key.
        overrides.push("http.console.read.only=true".to_string());
    }
    let args = ServeArgs {
        config: serve.config,
        tuning: serve.tuning,
        listen: serve.listen,
        advertised_host: serve.advertised_host,
        data_dir: serve.data_dir,
        shards: serve.shards,
        cores: serve.cores,
        overrides,
    };
    if serve.check_config {
        return check_config::run(&args);
    }
    // SIGHUP's default action ends the process: until `server::run` hands
    // it to the reload, a `systemctl reload` during start-up only sets this
    // flag nobody reads.
    if let Err(e) = signal_hook::flag::register(
        signal_hook::consts::SIGHUP,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    ) {
        eprintln!("corelog: cannot handle SIGHUP: {e}");
        return ExitCode::from(1);
    }
    let mut config = match Config::build(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("corelog: {e}");
            return ExitCode::from(2);
        }
    };
    match crate::storage::prepare(&config, args.config.as_deref()) {
        Ok(meta) => {
            config.directory_id = meta.directory_uuid();
            config.cluster_id = Some(meta.cluster_id);
        }
        Err(e) => {
            eprintln!("corelog: {e}");
            return ExitCode::from(2);
        }
    }
    match crate::server::run(config, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("corelog: {}", e.message);
            ExitCode::from(e.exit_code)
        }
    }
}
