//! TLS listeners against real clients: librdkafka (`security.protocol=SSL`)
//! one-way and mutual, certificates made at test time (tests/security/
//! certs.rs); refused certificates (untrusted, expired, none where one is
//! required); plaintext bytes to a TLS port; a PLAINTEXT and two SSL
//! listeners on one node at once; a certificate replaced on disk while the
//! broker runs.

#[path = "security/certs.rs"]
mod certs;
mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use certs::{Ca, IssuedFiles};
use common::{flush, free_port, logged_producer, send_record, Broker, BrokerOptions};

const TIMEOUT: Duration = Duration::from_secs(30);

/// A broker with three listeners: PLAINTEXT, SSL (no client
/// certificate) and MTLS (an SSL listener that requires one, mapping
/// `CN=<name>,...` to `<name>`).
struct TlsBroker {
    broker: Broker,
    ssl_port: u16,
    mtls_port: u16,
    dir: tempfile::TempDir,
    ca: Ca,
    ca_file: PathBuf,
    server_keystore: PathBuf,
}

impl TlsBroker {
    fn start() -> TlsBroker {
        let dir = tempfile::Builder::new()
            .prefix("corelog-tls-")
            .tempdir()
            .unwrap();
        let ca = Ca::new("corelog test CA");
        let ca_file = ca.write(dir.path(), "ca");
        let server = ca.server("broker-one").write(dir.path(), "server");
        let (plain_port, ssl_port, mtls_port) = (free_port(), free_port(), free_port());
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let config = dir.path().join("server.properties");
        std::fs::write(
            &config,
            format!(
                "listeners=PLAINTEXT://127.0.0.1:{plain_port},SSL://127.0.0.1:{ssl_port},\
                 MTLS://127.0.0.1:{mtls_port}\n\
                 listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,MTLS:SSL\n\
                 log.dirs={}\n\
                 ssl.keystore.type=PEM\n\
                 ssl.keystore.location={}\n\
                 ssl.truststore.type=PEM\n\
                 ssl.truststore.location={}\n\
                 listener.name.mtls.ssl.client.auth=required\n\
                 listener.name.mtls.ssl.principal.mapping.rules=RULE:^CN=([^,]*),.*$/$1/L,DEFAULT\n",
                data.display(),
                server.keystore.display(),
                ca_file.display()
            ),
        )
        .unwrap();
        let broker = Broker::start_with(
            BrokerOptions::default()
                .config_file(config, plain_port)
                .data_dir(data)
                .env("RUST_LOG", "info,corelog::server::connection=debug"),
        );
        TlsBroker {
            broker,
            ssl_port,
            mtls_port,
            dir,
            ca,
            ca_file,
            server_keystore: server.keystore,
        }
    }

    /// librdkafka over SSL to `port`, trusting the test CA, with a client
    /// certificate when given.
    fn ssl_config(&self, port: u16, client: Option<&IssuedFiles>) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", format!("127.0.0.1:{port}"))
            .set("broker.address.family", "v4")
            .set("security.protocol", "SSL")
            .set("ssl.ca.location", self.ca_file.display().to_string())
            .set("socket.timeout.ms", "10000");
        if let Some(client) = client {
            config
                .set(
                    "ssl.certificate.location",
                    client.cert.display().to_string(),
                )
                .set("ssl.key.location", client.key.display().to_string());
        }
        config
    }

    fn client(&self, name: &str, ca: &Ca) -> IssuedFiles {
        ca.client(name, "eng").write(self.dir.path(), name)
    }
}

/// Produces `count` values to partition 0 of `topic` and reads them back,
/// both over `config`'s connection.
fn produce_and_consume(config: &ClientConfig, topic: &str, count: usize) {
    let mut producer_config = config.clone();
    producer_config
        .set("acks", "all")
        .set("message.timeout.ms", "30000");
    let producer = logged_producer(&producer_config);
    for i in 0..count {
        let value = format!("tls-{i}");
        send_record(
            &producer,
            rdkafka::producer::BaseRecord::<str, str, usize>::with_opaque_to(topic, i)
                .partition(0)
                .payload(value.as_str()),
        );
    }
    flush(&producer, TIMEOUT);
    let failed = rdkafka::producer::Producer::context(&producer)
        .failed
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(failed, 0, "produce failures over TLS");
    let mut consumer_config = config.clone();
    consumer_config
        .set("group.id", "tls-test")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100");
    let consumer: BaseConsumer = consumer_config.create().unwrap();
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&assignment).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let mut values = Vec::new();
    while values.len() < count && Instant::now() < deadline {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) {
            values
                .push(String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned());
        }
    }
    let expected: Vec<String> = (0..count).map(|i| format!("tls-{i}")).collect();
    assert_eq!(values, expected, "records read back over TLS");
}

/// Whether a librdkafka client with `config` gets Metadata within a few
/// seconds (a refused handshake never does).
fn gets_metadata(config: &ClientConfig) -> bool {
    let consumer: BaseConsumer = config.create().unwrap();
    consumer
        .fetch_metadata(None, Duration::from_secs(6))
        .is_ok()
}

#[test]
fn one_way_and_mutual_tls_beside_plaintext() {
    let mut tls = TlsBroker::start();
    tls.broker.create_topic("secured", 1, &[]);

    // One-way TLS: the client checks the broker, the broker takes anyone.
    // Metadata over the SSL listener must name the SSL port (librdkafka
    // then connects there for produce and fetch).
    let one_way = tls.ssl_config(tls.ssl_port, None);
    produce_and_consume(&one_way, "secured", 20);

    // Mutual TLS: the principal is the certificate's subject, mapped.
    let alice = tls.client("alice", &tls.ca);
    let mutual = tls.ssl_config(tls.mtls_port, Some(&alice));
    produce_and_consume(&mutual, "secured", 20);
    let log = tls.broker.stderr();
    assert!(
        log.contains("as User:alice"),
        "the MTLS connection's principal is logged as User:alice:\n{log}"
    );

    // Refused: no certificate, an untrusted CA's, an expired one.
    assert!(!gets_metadata(&tls.ssl_config(tls.mtls_port, None)));
    let stranger_ca = Ca::new("nobody trusts this CA");
    let mallory = tls.client("mallory", &stranger_ca);
    assert!(!gets_metadata(
        &tls.ssl_config(tls.mtls_port, Some(&mallory))
    ));
    let expired = tls
        .ca
        .expired_client("old")
        .write(tls.dir.path(), "expired");
    assert!(!gets_metadata(
        &tls.ssl_config(tls.mtls_port, Some(&expired))
    ));
    let log = tls.broker.stderr();
    assert!(log.contains("TLS handshake failed"), "{log}");

    // The plaintext listener still serves plaintext clients.
    let plain = tls.broker.client_config();
    assert!(gets_metadata(&plain));
    tls.broker.assert_running();
}

#[test]
fn plaintext_bytes_to_a_tls_port_close_that_connection_only() {
    let mut tls = TlsBroker::start();
    let addr = SocketAddr::from(([127, 0, 0, 1], tls.ssl_port));
    let mut raw = TcpStream::connect(addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    // An ApiVersions v0 request, as a plaintext client would send it.
    raw.write_all(&[0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0xff, 0xff])
        .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match raw.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the TLS port neither answered nor closed: {e}"),
        }
        assert!(answer.len() < 64, "more than a TLS alert came back");
    }
    // At most a TLS alert (content type 21), never a Kafka answer.
    assert!(answer.is_empty() || answer[0] == 21, "{answer:?}");
    tls.broker.assert_running();
    assert!(gets_metadata(&tls.ssl_config(tls.ssl_port, None)));
    assert!(gets_metadata(&tls.broker.client_config()));
}

/// The common name of the certificate the server on `port` presents.
fn served_common_name(port: u16, ca_pem: &str) -> String {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut conn =
        rustls::ClientConnection::new(Arc::new(config), "127.0.0.1".try_into().unwrap()).unwrap();
    let mut sock = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).unwrap();
    }
    let cert = conn.peer_certificates().unwrap()[0].clone();
    let (_, parsed) =
        <x509_parser::certificate::X509Certificate as x509_parser::prelude::FromDer<_>>::from_der(
            cert.as_ref(),
        )
        .unwrap();
    let cn = parsed
        .subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    cn
}

fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn a_replaced_keystore_is_used_by_new_connections() {
    let mut tls = TlsBroker::start();
    let ca_pem = tls.ca.cert_pem();
    assert_eq!(served_common_name(tls.ssl_port, &ca_pem), "broker-one");
    let next = tls.ca.server("broker-two");
    replace_file(
        &tls.server_keystore,
        &format!("{}{}", next.key_pem, next.cert_pem),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let served = served_common_name(tls.ssl_port, &ca_pem);
        if served == "broker-two" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still serving {served} 20 s after the keystore changed:\n{}",
            tls.broker.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A keystore that cannot be used keeps the last good one.
    replace_file(&tls.server_keystore, "not a keystore");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(served_common_name(tls.ssl_port, &ca_pem), "broker-two");
    assert!(tls.broker.stderr().contains("keeping the previous one"));
    produce_and_consume(&tls.ssl_config(tls.ssl_port, None), "after-reload", 5);
    tls.broker.assert_running();
}

#[test]
fn a_missing_keystore_file_stops_the_start_naming_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let config = dir.path().join("server.properties");
    let port = free_port();
    std::fs::write(
        &config,
        format!(
            "listeners=SSL://127.0.0.1:{port}\nlog.dirs={}\nssl.keystore.location={}/nope.pem\n",
            data.display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_corelog"))
        .args(["serve", "--cores", "none", "--shards", "1", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child);
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ssl.keystore.location") && text.contains("nope.pem"),
        "{text}"
    );
}

#[test]
fn the_cli_speaks_tls_with_command_config() {
    let mut tls = TlsBroker::start();
    tls.broker.create_topic("cli-over-tls", 2, &[]);
    let alice = tls.client("alice", &tls.ca);
    let properties = tls.dir.path().join("client.properties");
    std::fs::write(
        &properties,
        format!(
            "security.protocol=SSL\n\
             ssl.truststore.type=PEM\n\
             ssl.truststore.location={}\n\
             ssl.keystore.type=PEM\n\
             ssl.keystore.location={}\n\
             ssl.endpoint.identification.algorithm=https\n",
            tls.ca_file.display(),
            alice.keystore.display()
        ),
    )
    .unwrap();
    let cli = |port: u16, config: Option<&Path>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_corelog"));
        cmd.args(["topics", "--bootstrap-server"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--list")
            .env("RUST_LOG", "error");
        if let Some(config) = config {
            cmd.arg("--command-config").arg(config);
        }
        let child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        wait_output(child)
    };
    for port in [tls.ssl_port, tls.mtls_port] {
        let out = cli(port, Some(&properties));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("cli-over-tls"),
            "port {port}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Without the file, the CLI speaks plaintext to the TLS port: refused.
    let out = cli(tls.ssl_port, None);
    assert!(!out.status.success());
    tls.broker.assert_running();
}

/// The output of a child process that must end within `TIMEOUT`.
fn wait_output(mut child: std::process::Child) -> std::process::Output {
    let deadline = Instant::now() + TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the command did not end within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// One node of a three-node cluster whose brokers replicate over an SSL
/// listener (INTERNAL, client certificates required) and serve the test's
/// clients on PLAINTEXT.
struct TlsNode {
    id: i32,
    client_port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<std::process::Child>,
}

impl TlsNode {
    fn spawn(&mut self) {
        let log = std::fs::File::create(&self.log).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_corelog"))
            .args(["serve", "--cores", "none", "--shards", "2", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "info,corelog::server::connection=debug")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for TlsNode {
    fn drop(&mut self) {
        self.kill();
    }
}

fn start_tls_cluster(dir: &Path, ca: &Ca, ca_file: &Path) -> Vec<TlsNode> {
    let ports: Vec<(u16, u16, u16, u16)> = (0..3)
        .map(|_| (free_port(), free_port(), free_port(), free_port()))
        .collect();
    let voters: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}@127.0.0.1:{}", i + 1, p.2))
        .collect();
    let bin = env!("CARGO_BIN_EXE_corelog");
    let mut nodes = Vec::new();
    for (i, (client, internal, controller, http)) in ports.iter().enumerate() {
        let id = i as i32 + 1;
        let keystore = ca
            .server(&format!("node{id}"))
            .write(dir, &format!("node{id}"));
        let config = dir.join(format!("node{id}.properties"));
        std::fs::write(
            &config,
            format!(
                "process.roles=broker,controller\nnode.id={id}\n\
                 controller.quorum.voters={}\n\
                 listeners=PLAINTEXT://127.0.0.1:{client},INTERNAL://127.0.0.1:{internal},\
                 CONTROLLER://127.0.0.1:{controller}\n\
                 advertised.listeners=PLAINTEXT://127.0.0.1:{client},INTERNAL://127.0.0.1:{internal}\n\
                 listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:SSL,CONTROLLER:PLAINTEXT\n\
                 inter.broker.listener.name=INTERNAL\n\
                 controller.listener.names=CONTROLLER\n\
                 http.listeners=127.0.0.1:{http}\n\
                 log.dirs={}\n\
                 ssl.keystore.type=PEM\n\
                 ssl.keystore.location={}\n\
                 ssl.truststore.type=PEM\n\
                 ssl.truststore.location={}\n\
                 listener.name.internal.ssl.client.auth=required\n",
                voters.join(","),
                dir.join(format!("data{id}")).display(),
                keystore.keystore.display(),
                ca_file.display()
            ),
        )
        .unwrap();
        nodes.push(TlsNode {
            id,
            client_port: *client,
            config,
            log: dir.join(format!("node{id}.log")),
            child: None,
        });
    }
    let id = std::process::Command::new(bin)
        .args(["storage", "random-uuid"])
        .output()
        .unwrap();
    let id = String::from_utf8(id.stdout).unwrap().trim().to_string();
    for node in &nodes {
        let formatted = std::process::Command::new(bin)
            .args(["storage", "format", "-t", &id, "-c"])
            .arg(&node.config)
            .output()
            .unwrap();
        assert!(formatted.status.success(), "format: {formatted:?}");
    }
    for node in &mut nodes {
        node.spawn();
    }
    for node in &nodes {
        let addr = SocketAddr::from(([127, 0, 0, 1], node.client_port));
        let deadline = Instant::now() + TIMEOUT;
        while !common::listening(addr) {
            assert!(
                Instant::now() < deadline,
                "node {} not ready:\n{}",
                node.id,
                node.output()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    nodes
}

/// (leader, isr) of each partition of `topic`, as the cluster's Metadata says.
fn partitions(bootstrap: &str, topic: &str) -> Vec<(i32, Vec<i32>)> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4");
    let consumer: BaseConsumer = config.create().unwrap();
    let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) else {
        return Vec::new();
    };
    metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions())
        .map(|p| (p.leader(), p.isr().to_vec()))
        .collect()
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool, nodes: &[TlsNode]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        if Instant::now() > deadline {
            let logs: Vec<String> = nodes
                .iter()
                .map(|n| format!("--- node {}:\n{}", n.id, n.output()))
                .collect();
            panic!("{what} within 60 s\n{}", logs.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_cluster_replicating_over_tls_keeps_replicating_and_fails_over() {
    let dir = tempfile::Builder::new()
        .prefix("corelog-tls-cluster-")
        .tempdir()
        .unwrap();
    let ca = Ca::new("corelog cluster CA");
    let ca_file = ca.write(dir.path(), "ca");
    let mut nodes = start_tls_cluster(dir.path(), &ca, &ca_file);
    let bootstrap: String = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.client_port))
        .collect::<Vec<_>>()
        .join(",");
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &bootstrap)
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "10000");
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        client.create().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let topic =
        rdkafka::admin::NewTopic::new("replicated", 1, rdkafka::admin::TopicReplication::Fixed(3));
    let options = rdkafka::admin::AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let created = runtime
        .block_on(async {
            tokio::time::timeout(TIMEOUT, admin.create_topics([&topic], &options)).await
        })
        .expect("CreateTopics in time")
        .expect("CreateTopics");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");

    // acks=all succeeds only once followers fetch over the INTERNAL (TLS)
    // listener and join the ISR.
    produce_and_consume(&client, "replicated", 30);
    wait_for(
        "every replica in the ISR",
        || {
            let parts = partitions(&bootstrap, "replicated");
            !parts.is_empty() && parts.iter().all(|(_, isr)| isr.len() == 3)
        },
        &nodes,
    );
    let logs: String = nodes.iter().map(|n| n.output()).collect();
    assert!(
        logs.contains("on listener INTERNAL as User:CN=node"),
        "followers connect over TLS with their node certificates:\n{logs}"
    );

    // The leader stops: another replica leads, and writes go on.
    let leader = partitions(&bootstrap, "replicated")[0].0;
    let index = nodes.iter().position(|n| n.id == leader).unwrap();
    nodes[index].kill();
    let others: String = nodes
        .iter()
        .filter(|n| n.id != leader)
        .map(|n| format!("127.0.0.1:{}", n.client_port))
        .collect::<Vec<_>>()
        .join(",");
    wait_for(
        "a new leader",
        || {
            partitions(&others, "replicated")
                .first()
                .is_some_and(|(l, _)| *l != leader && *l >= 1)
        },
        &nodes,
    );
    let mut survivors = client.clone();
    survivors.set("bootstrap.servers", &others);
    let producer = logged_producer(&survivors.clone().set("acks", "all").clone());
    for i in 0..10 {
        let value = format!("after-{i}");
        send_record(
            &producer,
            rdkafka::producer::BaseRecord::<str, str, usize>::with_opaque_to("replicated", i)
                .partition(0)
                .payload(value.as_str()),
        );
    }
    flush(&producer, TIMEOUT);
    let failed = rdkafka::producer::Producer::context(&producer)
        .failed
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(failed, 0, "produce after the fail-over");
}
