//! Drives librdkafka (through the `rdkafka` crate) through every kind of
//! traffic corelog serves, against `--bootstrap` (the recording proxy):
//! admin (create, describe, alter, grow and delete topics, delete records
//! and groups), producers of every codec with acks 0, 1 and all and an
//! idempotent one, keys, null keys and headers, consumers of a classic
//! group, of a KIP-848 group (`group.protocol=consumer`) and without a
//! group (offsets by timestamp, watermarks). Every wait is bounded.
//!
//! `drive BOOTSTRAP`

use std::time::{Duration, Instant};

use futures::executor::block_on;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(20);

fn config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("client.id", "corelog-fuzz-record")
        .set("socket.timeout.ms", "10000")
        .set("message.timeout.ms", "20000");
    c
}

fn admin_options() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(TIMEOUT))
}

fn say(what: &str, result: impl std::fmt::Debug) {
    let text = format!("{result:?}");
    let short: String = text.chars().take(200).collect();
    println!("drive: {what}: {short}");
}

fn admin(bootstrap: &str, replication: i32) -> AdminClient<DefaultClientContext> {
    let admin: AdminClient<DefaultClientContext> = config(bootstrap).create().expect("admin");
    let r = || TopicReplication::Fixed(replication);
    let topics = [
        NewTopic::new("fz-plain", 3, r()),
        NewTopic::new("fz-compact", 1, r()).set("cleanup.policy", "compact"),
        NewTopic::new("fz-configured", 1, r())
            .set("retention.ms", "86400000")
            .set("segment.bytes", "1048576")
            .set("compression.type", "zstd")
            .set("message.timestamp.type", "LogAppendTime"),
        NewTopic::new("fz-doomed", 1, r()),
    ];
    say(
        "create topics",
        block_on(admin.create_topics(&topics, &admin_options())),
    );
    say(
        "describe configs",
        block_on(admin.describe_configs(
            &[
                ResourceSpecifier::Topic("fz-configured"),
                ResourceSpecifier::Broker(1),
            ],
            &admin_options(),
        )),
    );
    say(
        "alter configs",
        block_on(
            admin.alter_configs(
                &[AlterConfig::new(ResourceSpecifier::Topic("fz-plain"))
                    .set("retention.ms", "3600000")],
                &admin_options(),
            ),
        ),
    );
    say(
        "create partitions",
        block_on(admin.create_partitions(&[NewPartitions::new("fz-doomed", 2)], &admin_options())),
    );
    admin
}

fn produce(
    bootstrap: &str,
    codec: &str,
    acks: &str,
    idempotent: bool,
    topic: &str,
    keyed_only: bool,
) {
    let producer: BaseProducer = config(bootstrap)
        .set("compression.type", codec)
        .set("acks", acks)
        .set(
            "enable.idempotence",
            if idempotent { "true" } else { "false" },
        )
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for i in 0..120u32 {
        let key = format!("key-{}", i % 17);
        let value = format!("value {i} {}", "x".repeat((i % 40) as usize));
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "h1",
                value: Some("v"),
            })
            .insert(Header {
                key: "null-header",
                value: None::<&[u8]>,
            });
        let mut record = BaseRecord::to(topic).payload(&value).headers(headers);
        if keyed_only || i % 5 != 0 {
            record = record.key(&key);
        }
        if i % 7 == 0 {
            record = record.partition((i % 3) as i32 % partitions(topic));
        }
        while let Err((e, back)) = producer.send(record) {
            say("send", &e);
            producer.poll(Duration::from_millis(50));
            record = back;
        }
        producer.poll(Duration::ZERO);
    }
    say(
        &format!("flush {topic} codec={codec} acks={acks} idempotent={idempotent}"),
        producer.flush(TIMEOUT),
    );
}

fn partitions(topic: &str) -> i32 {
    if topic == "fz-plain" {
        3
    } else {
        1
    }
}

fn consume_group(bootstrap: &str, group: &str, protocol: &str, want: usize) {
    let mut c = config(bootstrap);
    c.set("group.id", group)
        .set("group.protocol", protocol)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100");
    if protocol == "classic" {
        c.set("session.timeout.ms", "10000");
    }
    let consumer: BaseConsumer = c.create().expect("consumer");
    consumer
        .subscribe(&["fz-plain", "fz-compact"])
        .expect("subscribe");
    let deadline = Instant::now() + TIMEOUT;
    let mut got = 0;
    while got < want && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(_)) => got += 1,
            Some(Err(e)) => say("poll", e),
            None => {}
        }
    }
    say(&format!("{protocol} group {group} read"), got);
    say("commit", consumer.commit_consumer_state(CommitMode::Sync));
    say("committed", consumer.committed(TIMEOUT).map(|l| l.count()));
    say(
        "group list",
        consumer
            .fetch_group_list(None, TIMEOUT)
            .map(|l| l.groups().len()),
    );
    consumer.unsubscribe();
}

fn consume_assigned(bootstrap: &str) {
    let consumer: BaseConsumer = config(bootstrap)
        .set("group.id", "fz-assigned")
        .set("enable.auto.commit", "false")
        .set("check.crcs", "true")
        .create()
        .expect("consumer");
    say(
        "watermarks",
        consumer.fetch_watermarks("fz-plain", 0, TIMEOUT),
    );
    let mut times = TopicPartitionList::new();
    for p in 0..3 {
        times
            .add_partition_offset("fz-plain", p, Offset::Offset(1_600_000_000_000))
            .unwrap();
    }
    say(
        "offsets for times",
        consumer
            .offsets_for_times(times, TIMEOUT)
            .map(|l| l.count()),
    );
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset("fz-plain", 1, Offset::Beginning)
        .unwrap();
    assignment
        .add_partition_offset("fz-configured", 0, Offset::OffsetTail(5))
        .unwrap();
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = 0;
    while got < 40 && Instant::now() < deadline {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(200)) {
            got += 1;
        }
    }
    say("assigned read", got);
    say(
        "metadata",
        consumer
            .fetch_metadata(None, TIMEOUT)
            .map(|m| m.topics().len()),
    );
}

fn main() {
    let bootstrap = std::env::args()
        .nth(1)
        .expect("usage: drive BOOTSTRAP [REPLICATION]");
    let replication: i32 = std::env::args()
        .nth(2)
        .map(|r| r.parse().expect("replication factor"))
        .unwrap_or(1);
    let admin = admin(&bootstrap, replication);
    for (codec, acks, idempotent) in [
        ("none", "all", true),
        ("gzip", "1", false),
        ("snappy", "all", false),
        ("lz4", "0", false),
        ("zstd", "all", true),
    ] {
        produce(&bootstrap, codec, acks, idempotent, "fz-plain", false);
    }
    produce(&bootstrap, "none", "all", false, "fz-compact", true);
    produce(&bootstrap, "gzip", "all", false, "fz-configured", false);
    consume_group(&bootstrap, "fz-classic", "classic", 300);
    consume_group(&bootstrap, "fz-848", "consumer", 300);
    consume_assigned(&bootstrap);
    let mut before = TopicPartitionList::new();
    before
        .add_partition_offset("fz-plain", 0, Offset::Offset(5))
        .unwrap();
    say(
        "delete records",
        block_on(admin.delete_records(&before, &admin_options())),
    );
    say(
        "delete groups",
        block_on(admin.delete_groups(&["fz-classic"], &admin_options())),
    );
    say(
        "delete topics",
        block_on(admin.delete_topics(&["fz-doomed"], &admin_options())),
    );
}
