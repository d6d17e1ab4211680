//! Tests of `--check-config`'s findings, on literal server files.

use super::*;
use crate::config::{Cores, ServeArgs};

/// A combined broker and controller, its own quorum's only voter: no
/// finding. Each test below changes one thing.
const GOOD: &str = "process.roles=broker,controller\n\
                    node.id=1\n\
                    controller.quorum.voters=1@127.0.0.1:9093\n\
                    listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093\n\
                    controller.listener.names=CONTROLLER\n\
                    advertised.listeners=PLAINTEXT://127.0.0.1:9092\n";

/// Two cores this process may use: enough for the one shard of `built`.
const ALLOWED: &[usize] = &[0, 1];

fn built(text: &str) -> (Config, IndexMap<String, String>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.properties");
    std::fs::write(&path, text).unwrap();
    let args = ServeArgs {
        config: Some(path.clone()),
        shards: Some(1),
        ..ServeArgs::default()
    };
    let config = Config::build(&args).unwrap_or_else(|e| panic!("{text}: {e}"));
    (config, crate::config::written_keys(&path).unwrap())
}

fn findings(text: &str) -> Vec<Finding> {
    let (config, written) = built(text);
    contradictions(&config, &written, ALLOWED)
}

/// The one finding of `text`, which must have exactly one.
fn only(text: &str) -> Finding {
    let found = findings(text);
    assert_eq!(found.len(), 1, "{text}: {found:?}");
    found.into_iter().next().unwrap()
}

#[test]
fn a_consistent_file_has_no_finding() {
    assert_eq!(findings(GOOD), Vec::new());
    // A minimal single node (no roles, no quorum) neither.
    assert_eq!(
        findings("listeners=PLAINTEXT://127.0.0.1:9092\n"),
        Vec::new()
    );
}

#[test]
fn a_minimum_isr_no_default_topic_reaches_is_an_error() {
    let found = only(&format!("{GOOD}min.insync.replicas=2\n"));
    assert!(found.is_error());
    assert_eq!(found.key, "min.insync.replicas");
    assert!(
        found.message.contains("default.replication.factor (1)"),
        "{found}"
    );
    assert!(found
        .to_string()
        .starts_with("error: min.insync.replicas: 2 is larger"));
}

#[test]
fn an_offsets_topic_below_the_minimum_isr_is_an_error() {
    let text = format!(
        "{GOOD}default.replication.factor=3\nmin.insync.replicas=2\n\
         offsets.topic.replication.factor=1\n"
    );
    let found = only(&text);
    assert_eq!(found.key, "offsets.topic.replication.factor");
    assert!(found.is_error());
}

#[test]
fn a_single_node_cannot_replicate() {
    let found = only("listeners=PLAINTEXT://127.0.0.1:9092\ndefault.replication.factor=3\n");
    assert_eq!(found.key, "default.replication.factor");
    assert!(found.message.contains("single-node"), "{found}");
}

#[test]
fn transaction_keys_that_contradict_warn() {
    let found = findings(&format!(
        "{GOOD}transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=2\n"
    ));
    assert!(found.iter().all(|f| !f.is_error()), "{found:?}");
    // Both keys are also reported as ignored, as `serve` reports them.
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(
        found
            .iter()
            .any(|f| f.key == "transaction.state.log.min.isr" && f.message.contains("larger")),
        "{found:?}"
    );
}

#[test]
fn listeners_on_one_port_clash() {
    let same_port = "process.roles=broker,controller\n\
                     node.id=1\n\
                     controller.quorum.voters=1@127.0.0.1:9092\n\
                     listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://0.0.0.0:9092\n\
                     controller.listener.names=CONTROLLER\n\
                     advertised.listeners=PLAINTEXT://127.0.0.1:9092\n";
    let found = only(same_port);
    assert_eq!(found.key, "listeners");
    assert!(found.is_error());
    // Two addresses of their own may share a port.
    let a: SocketAddr = "127.0.0.1:9092".parse().unwrap();
    assert!(!addresses_clash(a, "127.0.0.2:9092".parse().unwrap()));
    assert!(addresses_clash(a, "0.0.0.0:9092".parse().unwrap()));
    assert!(!addresses_clash(a, "0.0.0.0:9093".parse().unwrap()));
}

#[test]
fn the_http_listener_must_not_take_another_listeners_port() {
    let found = only(&format!("{GOOD}http.listeners=:9093\n"));
    assert_eq!(found.key, "http.listeners");
    assert!(found.is_error());
    assert!(found.to_string().contains("controller listener"), "{found}");
    let found = only(&format!("{GOOD}http.listeners=http://127.0.0.1:9092\n"));
    assert!(found.to_string().contains("client listener"), "{found}");
    // Its own port, or off: no finding.
    assert_eq!(
        findings(&format!("{GOOD}http.listeners=127.0.0.1:9644\n")),
        vec![]
    );
    assert_eq!(findings(&format!("{GOOD}http.listeners=\n")), vec![]);
}

#[test]
fn an_advertised_listener_must_be_a_listener() {
    let text = GOOD.replace(
        "advertised.listeners=PLAINTEXT://127.0.0.1:9092",
        "advertised.listeners=EXTERNAL://broker1.example:19092",
    );
    let found = only(&text);
    assert_eq!(found.key, "advertised.listeners");
    assert!(found.message.contains("EXTERNAL"), "{found}");
    assert!(found.message.contains("PLAINTEXT, CONTROLLER"), "{found}");
}

#[test]
fn a_voter_port_not_bound_warns() {
    let text = GOOD.replace("1@127.0.0.1:9093", "1@127.0.0.1:9193");
    let found = only(&text);
    assert_eq!(found.key, "controller.quorum.voters");
    assert_eq!(found.severity, Severity::Warning);
}

#[test]
fn roles_without_a_quorum_are_errors() {
    let combined = "process.roles=broker,controller\n\
                    listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093\n\
                    controller.listener.names=CONTROLLER\n";
    assert_eq!(only(combined).key, "controller.quorum.voters");
    let controller_only = "process.roles=controller\n\
                           listeners=CONTROLLER://127.0.0.1:9093\n\
                           controller.listener.names=CONTROLLER\n";
    assert_eq!(only(controller_only).key, "process.roles");
}

#[test]
fn cores_must_be_allowed() {
    let (mut config, written) = built(GOOD);
    config.cores = Cores::List(vec![5]);
    let found = contradictions(&config, &written, ALLOWED);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].key, "--cores");
    assert!(
        found[0].is_error() && found[0].message.contains("core 5"),
        "{found:?}"
    );
    // More shards than allowed cores, asked for nothing: unpinned, a warning.
    config.cores = Cores::Auto;
    config.shards = 4;
    let found = contradictions(&config, &written, ALLOWED);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].severity, Severity::Warning);
}

#[test]
fn ignored_keys_warn_and_say_why() {
    let text = format!(
        "{GOOD}num.network.threads=3\nlog.flush.interval.messages=10000\n\
         zookeeper.connect=localhost:2181\nnum.partiton=3\n"
    );
    let found = findings(&text);
    assert!(found.iter().all(|f| !f.is_error()), "{found:?}");
    let message = |key: &str| {
        found
            .iter()
            .find(|f| f.key == key)
            .unwrap_or_else(|| panic!("no finding for {key}: {found:?}"))
            .message
            .clone()
    };
    assert!(message("num.network.threads").starts_with("accepted and ignored"));
    assert!(message("log.flush.interval.messages").contains("fdatasync"));
    assert!(message("zookeeper.connect").contains("KRaft"));
    assert!(message("num.partiton").contains("typo"));
    assert_eq!(found.len(), 4, "{found:?}");
}

#[test]
fn data_dirs_are_checked_without_writing() {
    let scratch = tempfile::tempdir().unwrap();
    assert_eq!(data_dir_findings(scratch.path()), Vec::new());
    let missing = scratch.path().join("a/b/data");
    assert_eq!(data_dir_findings(&missing), Vec::new());
    assert!(!scratch.path().join("a").exists(), "nothing created");
    let file = scratch.path().join("file");
    std::fs::write(&file, "").unwrap();
    let found = data_dir_findings(&file);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].key, "log.dirs");
    assert!(found[0].message.contains("is a file"), "{found:?}");
    let under_file = data_dir_findings(&file.join("data"));
    assert_eq!(under_file.len(), 1);
    assert!(
        under_file[0].message.contains("cannot be created"),
        "{under_file:?}"
    );
}

#[test]
fn build_errors_name_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.properties");
    let error_of = |text: &str| {
        std::fs::write(&path, text).unwrap();
        let args = ServeArgs {
            config: Some(path.clone()),
            shards: Some(1),
            ..ServeArgs::default()
        };
        build_error(&Config::build(&args).unwrap_err())
    };
    let found = error_of("num.partitions=many\n");
    assert_eq!(found.key, "num.partitions");
    assert!(
        found.message.starts_with("invalid value \"many\""),
        "{found}"
    );
    assert!(found.message.contains("server.properties"), "{found}");
    let not_voter = GOOD.replace("1@127.0.0.1:9093", "2@127.0.0.1:9093");
    assert_eq!(error_of(&not_voter).key, "controller.quorum.voters");
    let overlong = ConfigError::CoresNotShards {
        cores: 3,
        shards: 2,
    };
    assert_eq!(build_error(&overlong).key, "--cores");
}

#[test]
fn the_summary_names_node_roles_listeners_and_shards() {
    let (config, _) = built(GOOD);
    let line = summary(&config);
    for part in [
        "node 1",
        "roles broker,controller",
        "PLAINTEXT://127.0.0.1:9092",
        "controller 127.0.0.1:9093",
        "voters 1@127.0.0.1:9093",
        "http 127.0.0.1:9644",
        "shards 1",
    ] {
        assert!(line.contains(part), "{part} missing: {line}");
    }
}
