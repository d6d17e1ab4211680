//! SASL on a SASL_PLAINTEXT listener with real clients: librdkafka with
//! PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 produces and consumes; a wrong
//! password and an unknown user are refused (and the broker stays up and
//! logs no credential); a request before authentication closes the
//! connection; users made and removed with `corelog configs`, bootstrapped
//! with `corelog storage format --add-scram`; session lifetime
//! (`connections.max.reauth.ms`) with librdkafka re-authenticating, and a
//! connection that does not re-authenticate being closed; credentials
//! created on one node of a three-node cluster are on every node.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::cluster::{eventually, Cluster};
use common::{corelog, corelog_ok, free_port, Broker, BrokerOptions};
use corelog::sasl::client_config::ClientSasl;
use corelog::sasl::{Mechanism, ScramMechanism};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

const CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qk";
const TIMEOUT: Duration = Duration::from_secs(30);
const ALICE_PASSWORD: &str = "alice-secret";

/// A single-node broker with one SASL_PLAINTEXT listener, its data dir
/// formatted with user alice (SCRAM-SHA-256 and SCRAM-SHA-512).
struct SaslBroker {
    broker: Broker,
    dir: tempfile::TempDir,
}

impl SaslBroker {
    fn start(extra: &str) -> SaslBroker {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("server.properties");
        let data = dir.path().join("data");
        let port = free_port();
        fs::write(
            &config,
            format!(
                "listeners=SASL_PLAINTEXT://127.0.0.1:{port}\n\
                 log.dirs={}\n\
                 sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512\n{extra}\n",
                data.display()
            ),
        )
        .unwrap();
        let run = corelog_ok(
            &[
                "storage",
                "format",
                "-t",
                CLUSTER_ID,
                "-c",
                config.to_str().unwrap(),
                "--add-scram",
                &format!("SCRAM-SHA-256=[name=alice,password={ALICE_PASSWORD}]"),
                "--add-scram",
                &format!("SCRAM-SHA-512=[name=alice,iterations=8192,password={ALICE_PASSWORD}]"),
            ],
            "",
        );
        assert!(
            run.stdout
                .contains("Added SCRAM-SHA-256 credential for user alice."),
            "{run:?}"
        );
        let stored = fs::read_to_string(data.join("corelog-metadata.json")).unwrap();
        assert!(
            !stored.contains(ALICE_PASSWORD),
            "a password reached the disk"
        );
        let broker = Broker::start_with(
            BrokerOptions::default()
                .data_dir(data)
                .config_file(config, port),
        );
        SaslBroker { broker, dir }
    }

    fn client(&self, mechanism: &str, user: &str, password: &str) -> ClientConfig {
        let mut config = self.broker.client_config();
        config
            .set("security.protocol", "SASL_PLAINTEXT")
            .set("sasl.mechanism", mechanism)
            .set("sasl.username", user)
            .set("sasl.password", password);
        config
    }

    /// A `--command-config` file for the CLI.
    fn command_config(&self, mechanism: &str, user: &str, password: &str) -> PathBuf {
        let module = if mechanism == "PLAIN" {
            "org.apache.kafka.common.security.plain.PlainLoginModule"
        } else {
            "org.apache.kafka.common.security.scram.ScramLoginModule"
        };
        let path = self
            .dir
            .path()
            .join(format!("{user}-{mechanism}.properties"));
        fs::write(
            &path,
            format!(
                "security.protocol=SASL_PLAINTEXT\nsasl.mechanism={mechanism}\n\
                 sasl.jaas.config={module} required username=\"{user}\" password=\"{password}\";\n"
            ),
        )
        .unwrap();
        path
    }
}

/// Produces `count` messages to partition 0 of `topic`; the delivery
/// errors, if any.
fn produce(config: &ClientConfig, topic: &str, count: usize) -> Result<(), String> {
    let producer: BaseProducer = config
        .clone()
        .set("message.timeout.ms", "15000")
        .set("acks", "all")
        .create()
        .map_err(|e| e.to_string())?;
    for i in 0..count {
        let payload = format!("message-{i}");
        producer
            .send(
                BaseRecord::<(), _>::to(topic)
                    .partition(0)
                    .payload(&payload),
            )
            .map_err(|(e, _)| e.to_string())?;
    }
    producer.flush(TIMEOUT).map_err(|e| e.to_string())?;
    Ok(())
}

/// Reads partition 0 of `topic` from the start until `count` messages came.
fn consume(config: &ClientConfig, topic: &str, count: usize) -> Vec<String> {
    let consumer: BaseConsumer = config
        .clone()
        .set("group.id", "sasl-tests")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let mut out = Vec::new();
    while out.len() < count && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string());
        }
    }
    out
}

/// Whether a client with `config` can fetch metadata.
fn metadata_works(config: &ClientConfig) -> Result<(), String> {
    let producer: BaseProducer = config.create().map_err(|e| e.to_string())?;
    producer
        .client()
        .fetch_metadata(None, Duration::from_secs(8))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn sasl(mechanism: Mechanism, user: &str, password: &str) -> ClientSasl {
    ClientSasl {
        mechanism,
        username: user.into(),
        password: password.into(),
    }
}

/// A size-prefixed request: api key, version, correlation id, client id.
fn raw_request(key: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(&key.to_be_bytes());
    frame.extend_from_slice(&version.to_be_bytes());
    frame.extend_from_slice(&7i32.to_be_bytes());
    frame.extend_from_slice(&(-1i16).to_be_bytes());
    frame.extend_from_slice(body);
    let mut out = (frame.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&frame);
    out
}

/// Metadata v1 for every topic (a null topic array).
fn metadata_request() -> Vec<u8> {
    raw_request(3, 1, &(-1i32).to_be_bytes())
}

/// Reads one answer; None when the broker closed the connection instead.
fn read_answer(stream: &mut TcpStream) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).ok()?;
    Some(body)
}

#[test]
fn every_mechanism_produces_and_consumes() {
    let b = SaslBroker::start("");
    for (i, mechanism) in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
        .iter()
        .enumerate()
    {
        let config = b.client(mechanism, "alice", ALICE_PASSWORD);
        // Created on first use (auto.create.topics.enable).
        let topic = format!("sasl-{i}");
        produce(&config, &topic, 5).unwrap_or_else(|e| panic!("{mechanism}: {e}"));
        let got = consume(&config, &topic, 5);
        assert_eq!(got.len(), 5, "{mechanism}: {got:?}");
        assert_eq!(got[0], "message-0");
    }
}

#[test]
fn wrong_password_and_unknown_user_are_refused_and_the_broker_stays_up() {
    let mut b = SaslBroker::start("");
    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        for (user, password) in [("alice", "not-her-password"), ("mallory", "whatever-pw")] {
            let refused = metadata_works(&b.client(mechanism, user, password));
            assert!(refused.is_err(), "{mechanism} {user} was let in");
            // The CLI's client reports the broker's answer.
            let run = corelog(
                &[
                    "configs",
                    "--bootstrap-server",
                    &b.broker.bootstrap(),
                    "--command-config",
                    b.command_config(mechanism, user, password)
                        .to_str()
                        .unwrap(),
                    "--entity-type",
                    "users",
                    "--describe",
                ],
                "",
            );
            assert!(!run.success(), "{run:?}");
            assert!(
                run.stderr.contains("Invalid username or password"),
                "{mechanism} {user}: {run:?}"
            );
        }
    }
    b.broker.assert_running();
    // Both failures read the same; no password reaches the log.
    let log = b.broker.stderr();
    assert!(
        log.contains("Failed authentication with /127.0.0.1"),
        "{log}"
    );
    for secret in ["not-her-password", "whatever-pw", ALICE_PASSWORD] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }
    // The right password still works from the same address (failures
    // past the bound are slowed down, not the right password).
    metadata_works(&b.client("SCRAM-SHA-256", "alice", ALICE_PASSWORD)).unwrap();
}

#[test]
fn a_request_before_authentication_closes_the_connection() {
    let b = SaslBroker::start("");
    // ApiVersions is answered before authentication.
    let mut stream = TcpStream::connect(b.broker.addr()).unwrap();
    stream.write_all(&raw_request(18, 0, &[])).unwrap();
    assert!(read_answer(&mut stream).is_some(), "ApiVersions unanswered");
    // Metadata is not: the connection closes.
    stream.write_all(&metadata_request()).unwrap();
    assert_eq!(
        read_answer(&mut stream),
        None,
        "Metadata answered before SASL"
    );
    // SaslAuthenticate without a handshake: ILLEGAL_SASL_STATE, then closed.
    let mut stream = TcpStream::connect(b.broker.addr()).unwrap();
    stream
        .write_all(&raw_request(36, 1, &[0, 0, 0, 0]))
        .unwrap();
    let answer = read_answer(&mut stream).expect("an answer");
    assert_eq!(&answer[4..6], &34i16.to_be_bytes(), "ILLEGAL_SASL_STATE");
    assert_eq!(read_answer(&mut stream), None);
    // After authenticating, Metadata is answered.
    let mut stream = TcpStream::connect(b.broker.addr()).unwrap();
    let alice = sasl(
        Mechanism::Scram(ScramMechanism::Sha512),
        "alice",
        ALICE_PASSWORD,
    );
    corelog::sasl::client::authenticate(&mut stream, &alice).unwrap();
    stream.write_all(&metadata_request()).unwrap();
    assert!(read_answer(&mut stream).is_some());
    let log = b.broker.stderr();
    assert!(
        log.contains("Metadata request before SASL authentication"),
        "{log}"
    );
}

#[test]
fn users_made_with_the_cli_log_in_until_deleted() {
    let b = SaslBroker::start("");
    let admin = b.command_config("SCRAM-SHA-256", "alice", ALICE_PASSWORD);
    let bootstrap = b.broker.bootstrap();
    let configs = |extra: &[&str]| {
        let mut args = vec![
            "configs",
            "--bootstrap-server",
            &bootstrap,
            "--command-config",
            admin.to_str().unwrap(),
            "--entity-type",
            "users",
        ];
        args.extend_from_slice(extra);
        corelog(&args, "")
    };
    let run = configs(&[
        "--alter",
        "--entity-name",
        "bob",
        "--add-config",
        "SCRAM-SHA-256=[iterations=8192,password=bob-secret],SCRAM-SHA-512=[password=bob-secret]",
    ]);
    assert!(run.success(), "{run:?}");
    let run = configs(&["--describe", "--entity-name", "bob"]);
    assert!(run.success(), "{run:?}");
    assert_eq!(
        run.stdout,
        "SCRAM credential configs for user-principal 'bob' are \
         SCRAM-SHA-256=iterations=8192, SCRAM-SHA-512=iterations=4096\n"
    );
    let run = configs(&["--describe"]);
    assert!(
        run.stdout.contains("'alice'") && run.stdout.contains("'bob'"),
        "{run:?}"
    );
    assert!(!run.stdout.contains("secret"), "{run:?}");
    // Kafka's checks: too few iterations, an unknown user to delete.
    let run = configs(&[
        "--alter",
        "--entity-name",
        "carol",
        "--add-config",
        "SCRAM-SHA-256=[iterations=100,password=x]",
    ]);
    assert!(
        !run.success() && run.stderr.contains("Too few iterations"),
        "{run:?}"
    );
    let run = configs(&[
        "--alter",
        "--entity-name",
        "carol",
        "--delete-config",
        "SCRAM-SHA-256",
    ]);
    assert!(
        !run.success() && run.stderr.contains("does not exist"),
        "{run:?}"
    );

    for mechanism in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        metadata_works(&b.client(mechanism, "bob", "bob-secret"))
            .unwrap_or_else(|e| panic!("bob with {mechanism}: {e}"));
    }
    let run = configs(&[
        "--alter",
        "--entity-name",
        "bob",
        "--delete-config",
        "SCRAM-SHA-256",
    ]);
    assert!(run.success(), "{run:?}");
    assert!(metadata_works(&b.client("SCRAM-SHA-256", "bob", "bob-secret")).is_err());
    metadata_works(&b.client("SCRAM-SHA-512", "bob", "bob-secret")).unwrap();
    let run = configs(&[
        "--alter",
        "--entity-name",
        "bob",
        "--delete-config",
        "SCRAM-SHA-512",
    ]);
    assert!(run.success(), "{run:?}");
    assert!(metadata_works(&b.client("SCRAM-SHA-512", "bob", "bob-secret")).is_err());
    assert!(metadata_works(&b.client("PLAIN", "bob", "bob-secret")).is_err());
    let run = configs(&["--describe", "--entity-name", "bob"]);
    assert!(
        !run.success() && run.stderr.contains("does not exist"),
        "{run:?}"
    );
}

#[test]
fn sessions_end_at_their_lifetime_unless_the_client_re_authenticates() {
    let b = SaslBroker::start("connections.max.reauth.ms=1500");
    // A client that does not re-authenticate is closed at its first
    // request past the lifetime.
    let mut stream = TcpStream::connect(b.broker.addr()).unwrap();
    let alice = sasl(Mechanism::Plain, "alice", ALICE_PASSWORD);
    corelog::sasl::client::authenticate(&mut stream, &alice).unwrap();
    stream.write_all(&metadata_request()).unwrap();
    assert!(read_answer(&mut stream).is_some());
    std::thread::sleep(Duration::from_millis(1700));
    stream.write_all(&metadata_request()).unwrap();
    assert_eq!(read_answer(&mut stream), None, "answered past the lifetime");
    // Re-authenticating on the same connection renews the session.
    let mut stream = TcpStream::connect(b.broker.addr()).unwrap();
    corelog::sasl::client::authenticate(&mut stream, &alice).unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    corelog::sasl::client::authenticate(&mut stream, &alice).unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    stream.write_all(&metadata_request()).unwrap();
    assert!(
        read_answer(&mut stream).is_some(),
        "re-authentication did not renew"
    );

    // librdkafka re-authenticates (KIP-368) and keeps producing over
    // several lifetimes on its connections.
    let config = b.client("SCRAM-SHA-256", "alice", ALICE_PASSWORD);
    let producer: BaseProducer = config
        .clone()
        .set("message.timeout.ms", "15000")
        .set("linger.ms", "0")
        .create()
        .unwrap();
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_millis(6000) {
        producer
            .send(BaseRecord::<(), _>::to("reauth").partition(0).payload("x"))
            .unwrap_or_else(|(e, _)| panic!("{e}"));
        sent += 1;
        producer.poll(Duration::from_millis(200));
    }
    producer.flush(TIMEOUT).unwrap();
    assert_eq!(consume(&config, "reauth", sent).len(), sent);
    let log = b.broker.stderr();
    let closed = log
        .lines()
        .filter(|l| l.contains("without re-authentication"))
        .count();
    assert_eq!(closed, 1, "only the raw client above was cut off:\n{log}");
}

#[test]
fn credentials_made_on_one_node_are_on_every_node_of_a_cluster() {
    let cluster = Cluster::start(3);
    let alter = |i: usize| {
        corelog(
            &[
                "configs",
                "--bootstrap-server",
                &cluster.bootstrap(i),
                "--alter",
                "--entity-type",
                "users",
                "--entity-name",
                "dana",
                "--add-config",
                "SCRAM-SHA-512=[iterations=4096,password=dana-secret]",
            ],
            "",
        )
    };
    // The cluster finalizes the feature level that has SCRAM records once
    // every node registered; until then the request is refused.
    eventually("SCRAM credentials accepted", TIMEOUT, || alter(0).success());
    for i in 0..3 {
        eventually(&format!("dana described on node {i}"), TIMEOUT, || {
            let run = corelog(
                &[
                    "configs",
                    "--bootstrap-server",
                    &cluster.bootstrap(i),
                    "--describe",
                    "--entity-type",
                    "users",
                    "--entity-name",
                    "dana",
                ],
                "",
            );
            run.stdout.contains("SCRAM-SHA-512=iterations=4096")
        });
    }
}
