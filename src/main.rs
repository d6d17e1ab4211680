//! The `corelog` binary: parse the command line, build and validate the
//! config, boot the shards. No broker logic lives here.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use corelog::config::{Config, ServeArgs};

#[derive(Parser)]
#[command(
    name = "corelog",
    version,
    about = "A Kafka-compatible event streaming broker, thread-per-core on io_uring"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker (defaults: 127.0.0.1:9092, data in ./data, one shard per core).
    Serve {
        /// A TOML server file (listen, data_dir, shards, tuning, and Kafka broker configs under [kafka]).
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
        /// Directory that holds the partitions' logs and the topic catalog.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Number of shards (executors); defaults to one per core.
        #[arg(long)]
        shards: Option<usize>,
        /// A Kafka broker config by its server.properties name, e.g. auto.create.topics.enable=false. Repeatable.
        #[arg(long = "override", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            tuning,
            listen,
            advertised_host,
            data_dir,
            shards,
            overrides,
        } => {
            let args = ServeArgs {
                config,
                tuning,
                listen,
                advertised_host,
                data_dir,
                shards,
                overrides,
            };
            let config = match Config::build(&args) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("corelog: {e}");
                    return ExitCode::from(2);
                }
            };
            install_signal_handler();
            match corelog::server::run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("corelog: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// SIGTERM and SIGINT ask every shard to stop cleanly.
fn install_signal_handler() {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .expect("signal handler installs");
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                corelog::server::SHUTDOWN.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        })
        .expect("signal thread starts");
}
