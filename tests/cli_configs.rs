//! `corelog configs` for the cluster-wide broker defaults: written with
//! `--entity-default --alter`, listed by `--entity-default --describe`, and
//! labelled DYNAMIC_DEFAULT_BROKER_CONFIG wherever a broker or topic config
//! takes its value from them, as Kafka's tool shows them; and one broker's
//! own (`--entity-name N`), DYNAMIC_BROKER_CONFIG, over the default. Every
//! CLI run has a deadline.

mod common;

use common::{corelog, Broker, Run};

fn configs(broker: &Broker, rest: &[&str]) -> Run {
    let bootstrap = broker.bootstrap();
    let mut args = vec!["configs", "--bootstrap-server", &bootstrap];
    args.extend_from_slice(rest);
    let run = corelog(&args, "");
    assert!(run.success(), "configs {rest:?}:\n{run:?}");
    run
}

const DEFAULT: [&str; 3] = ["--entity-type", "brokers", "--entity-default"];
const BROKER: [&str; 4] = ["--entity-type", "brokers", "--entity-name", "1"];

fn with(base: &[&'static str], rest: &[&'static str]) -> Vec<&'static str> {
    [base, rest].concat()
}

#[test]
fn entity_default_configs_are_described_as_cluster_defaults() {
    let broker = Broker::start();
    broker.create_topic("kept", 1, &[]);
    // Nothing written yet: the default has no dynamic configs.
    let run = configs(&broker, &with(&DEFAULT, &["--describe"]));
    assert_eq!(
        run.stdout,
        "Default configs for brokers in the cluster are:\n"
    );

    let run = configs(
        &broker,
        &with(
            &DEFAULT,
            &[
                "--alter",
                "--add-config",
                "log.retention.ms=3600000,min.insync.replicas=2",
            ],
        ),
    );
    assert_eq!(
        run.stdout,
        "Completed updating default config for brokers in the cluster.\n"
    );
    let run = configs(&broker, &with(&DEFAULT, &["--describe"]));
    assert_eq!(
        run.stdout,
        "Default configs for brokers in the cluster are:\n\
         \x20 log.retention.ms=3600000 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=3600000, DEFAULT_CONFIG:log.retention.ms=604800000}\n\
         \x20 min.insync.replicas=2 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:min.insync.replicas=2, DEFAULT_CONFIG:min.insync.replicas=1}\n"
    );

    // The broker itself takes them from the cluster default: not its own
    // dynamic configs, and labelled as the default with --all.
    let run = configs(&broker, &with(&BROKER, &["--describe"]));
    assert_eq!(run.stdout, "Dynamic configs for broker 1 are:\n");
    let run = configs(&broker, &with(&BROKER, &["--describe", "--all"]));
    assert!(
        run.stdout.contains(
            "\n  min.insync.replicas=2 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:min.insync.replicas=2, DEFAULT_CONFIG:min.insync.replicas=1}\n"
        ),
        "{run:?}"
    );
    assert!(!run.stdout.contains("DYNAMIC_BROKER_CONFIG"), "{run:?}");
    // So does a topic without an override of its own.
    let run = configs(
        &broker,
        &[
            "--entity-type",
            "topics",
            "--entity-name",
            "kept",
            "--describe",
            "--all",
        ],
    );
    assert!(
        run.stdout.contains(
            "\n  retention.ms=3600000 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=3600000, DEFAULT_CONFIG:log.retention.ms=604800000}\n"
        ),
        "{run:?}"
    );

    // Deleted from the default: gone everywhere.
    configs(
        &broker,
        &with(
            &DEFAULT,
            &[
                "--alter",
                "--delete-config",
                "log.retention.ms,min.insync.replicas",
            ],
        ),
    );
    let run = configs(&broker, &with(&DEFAULT, &["--describe"]));
    assert_eq!(
        run.stdout,
        "Default configs for brokers in the cluster are:\n"
    );
    let run = configs(&broker, &with(&BROKER, &["--describe", "--all"]));
    assert!(
        run.stdout.contains(
            "\n  min.insync.replicas=1 sensitive=false synonyms={DEFAULT_CONFIG:min.insync.replicas=1}\n"
        ),
        "{run:?}"
    );
}

#[test]
fn a_brokers_own_configs_override_the_cluster_default() {
    let broker = Broker::start();
    broker.create_topic("kept", 1, &[]);
    configs(
        &broker,
        &with(
            &DEFAULT,
            &["--alter", "--add-config", "log.retention.ms=3600000"],
        ),
    );
    let run = configs(
        &broker,
        &with(
            &BROKER,
            &["--alter", "--add-config", "log.retention.ms=7200000"],
        ),
    );
    assert_eq!(
        run.stdout, "Completed updating config for broker 1.\n",
        "{run:?}"
    );
    // The broker's own value, over the default, over the built-in default.
    let run = configs(&broker, &with(&BROKER, &["--describe"]));
    assert_eq!(
        run.stdout,
        "Dynamic configs for broker 1 are:\n\
         \x20 log.retention.ms=7200000 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:log.retention.ms=7200000, DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=3600000, DEFAULT_CONFIG:log.retention.ms=604800000}\n"
    );
    // The cluster default is still the default, without broker 1's value.
    let run = configs(&broker, &with(&DEFAULT, &["--describe"]));
    assert_eq!(
        run.stdout,
        "Default configs for brokers in the cluster are:\n\
         \x20 log.retention.ms=3600000 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=3600000, DEFAULT_CONFIG:log.retention.ms=604800000}\n"
    );
    // A topic without an override takes the broker's value.
    let topic = [
        "--entity-type",
        "topics",
        "--entity-name",
        "kept",
        "--describe",
        "--all",
    ];
    let run = configs(&broker, &topic);
    assert!(
        run.stdout.contains(
            "\n  retention.ms=7200000 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:log.retention.ms=7200000, DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=3600000, DEFAULT_CONFIG:log.retention.ms=604800000}\n"
        ),
        "{run:?}"
    );
    // Deleted from the broker: the default applies again.
    configs(
        &broker,
        &with(&BROKER, &["--alter", "--delete-config", "log.retention.ms"]),
    );
    let run = configs(&broker, &with(&BROKER, &["--describe"]));
    assert_eq!(run.stdout, "Dynamic configs for broker 1 are:\n");
    let run = configs(&broker, &topic);
    assert!(
        run.stdout
            .contains("\n  retention.ms=3600000 sensitive=false"),
        "{run:?}"
    );
}
