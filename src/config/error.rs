//! Why a configuration is refused: [`ValueError`] says what is wrong with
//! one value (the caller names the key), [`ConfigError`] why the whole
//! configuration (flags, server file, tuning profile) could not be built.
//! Their messages are what an operator reads at start-up and what a client
//! reads in an AlterConfigs error, so each names the key, the value and the
//! bound.

use std::path::PathBuf;

use super::listeners::ListenerError;

/// What is wrong with one config value; the caller names the key.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    #[error("expected true or false")]
    NotBoolean,
    #[error("{0:?} is not a number")]
    NotNumber(String),
    /// Bounds as Kafka writes them (numbers of the key's own type).
    #[error("{value} is outside [{min}, {max}]")]
    OutOfRange {
        value: String,
        min: String,
        max: String,
    },
    #[error("must be -1 ({meaning}) or at least {min}")]
    MinusOneOrAtLeast { min: i64, meaning: &'static str },
    /// The words allowed, written as "a, b or c".
    #[error("expected {0}")]
    NotOneOf(String),
    #[error("expected a comma-separated list of {0}")]
    NotListOf(String),
    #[error("at most {0} entries")]
    TooManyEntries(usize),
    #[error("{0:?} is not host:count")]
    NotHostCount(String),
    #[error("cannot resolve {host:?}: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    /// A cluster key's format (roles, listeners, voters).
    #[error(transparent)]
    Listener(#[from] ListenerError),
    #[error("expected a directory")]
    NoDirectory,
    #[error(
        "corelog keeps one data directory per node, but {0} are listed; run one node \
         per disk instead"
    )]
    ManyDirectories(usize),
    #[error("at most {0} voters")]
    TooManyVoters(usize),
    #[error("it must name one of the client listeners ({0})")]
    InterBrokerListener(String),
    #[error("clients cannot connect to an unspecified address; name a host")]
    UnspecifiedHost,
    #[error(
        "{0:?} is not host:port with an IP address (or localhost, or nothing for every \
         address) and a port; an empty value turns the HTTP listener off"
    )]
    NotHttpListener(String),
}

impl ValueError {
    /// `value` is outside [`min`, `max`].
    pub fn out_of_range(
        value: impl std::fmt::Display,
        min: impl std::fmt::Display,
        max: impl std::fmt::Display,
    ) -> ValueError {
        ValueError::OutOfRange {
            value: value.to_string(),
            min: min.to_string(),
            max: max.to_string(),
        }
    }
}

/// Why the configuration could not be built, or one key not set.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value {value:?} for {key}: {source}")]
    InvalidValue {
        key: String,
        value: String,
        source: ValueError,
    },
    #[error("unknown or unsupported broker config {0:?}")]
    UnknownBrokerConfig(String),
    #[error("unknown topic config {0:?}")]
    UnknownTopicConfig(String),
    /// A value refused where the caller names the key itself (a topic
    /// config from a client).
    #[error(transparent)]
    Value(#[from] ValueError),
    #[error(
        "queued.max.request.bytes ({queued}) must be -1 or at least socket.request.max.bytes \
         ({request_max})"
    )]
    QueuedBelowRequestMax { queued: i64, request_max: usize },
    /// An error in a file, prefixed with its path.
    #[error("{}: {source}", path.display())]
    InFile {
        path: PathBuf,
        source: Box<ConfigError>,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is larger than {max} bytes", path.display())]
    FileTooLarge { path: PathBuf, max: u64 },
    #[error(transparent)]
    Toml(#[from] toml::de::Error),
    #[error("line {line}: {source}")]
    PropertiesLine {
        line: usize,
        source: java_properties::PropertiesError,
    },
    #[error(transparent)]
    Properties(java_properties::PropertiesError),
    /// A listener's protocol or address.
    #[error(transparent)]
    Listener(#[from] ListenerError),
    #[error(
        "process.roles contains controller, so listeners needs a listener named in \
         controller.listener.names ({0}), for example CONTROLLER://127.0.0.1:9093 with \
         controller.listener.names=CONTROLLER"
    )]
    NoControllerListener(String),
    #[error(
        "listeners names the controller listener {0} but process.roles does not contain \
         controller"
    )]
    ControllerListenerWithoutRole(String),
    #[error("listeners: corelog runs one controller listener per node")]
    ManyControllerListeners,
    #[error(
        "process.roles contains broker, so listeners needs a client listener, for example \
         PLAINTEXT://127.0.0.1:9092"
    )]
    NoClientListener,
    #[error("listeners has the client listener {0} but process.roles does not contain broker")]
    ClientListenerWithoutRole(String),
    #[error("listeners: corelog serves clients on one listener, but {0} are listed")]
    ManyClientListeners(String),
    #[error(
        "process.roles contains controller, so node.id {0} must be one of \
         controller.quorum.voters"
    )]
    ControllerNotVoter(i32),
    #[error(
        "process.roles=broker needs the controllers: set controller.quorum.voters=id@host:port,..."
    )]
    BrokerWithoutVoters,
    #[error(
        "node.id {0} is listed in controller.quorum.voters but process.roles does not \
         contain controller"
    )]
    VoterWithoutRole(i32),
    #[error("cannot read tuning profile {}: {source}", path.display())]
    TuningRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tuning profile {}: {source}", path.display())]
    TuningToml {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("tuning: at most {0} cores")]
    TuningCores(usize),
    /// A tuning knob outside its bound, written as "must be ...".
    #[error("tuning: {knob} must be {bound}")]
    TuningBound { knob: &'static str, bound: String },
    #[error("--override expects key=value, got {0:?}")]
    OverrideNotKeyValue(String),
    #[error("shards must be in [1, {0}]")]
    Shards(usize),
    #[error("--cores (or the tuning profile's cores) names {cores} cores but {shards} shards were asked for")]
    CoresNotShards { cores: usize, shards: usize },
    #[error(
        "listeners binds {0}, which clients cannot connect to: set advertised.listeners to \
         the address clients should use"
    )]
    UnspecifiedListener(String),
    #[error("data directory {}: {source}", path.display())]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ConfigError {
    /// An error about `key`'s `value`, naming both.
    pub fn invalid(key: &str, value: &str, source: impl Into<ValueError>) -> ConfigError {
        ConfigError::InvalidValue {
            key: key.to_string(),
            value: value.to_string(),
            source: source.into(),
        }
    }

    /// This error, prefixed with the file it is in.
    pub fn in_file(path: &std::path::Path) -> impl FnOnce(ConfigError) -> ConfigError + '_ {
        move |source| ConfigError::InFile {
            path: path.to_path_buf(),
            source: Box::new(source),
        }
    }
}
