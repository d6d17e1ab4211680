//! Tests of the metadata records: validation, application and the image rules.

use super::*;

fn topic(name: &str, partitions: usize) -> TopicMeta {
    TopicMeta {
        name: name.into(),
        id: Uuid::new_v4(),
        shards: vec![0; partitions],
        configs: BTreeMap::new(),
        replicas: place_replicas(&[1, 2, 3], 0, partitions, 3, 0),
    }
}

#[test]
fn diff_then_apply_reproduces_the_change_and_conflicts_are_all_or_nothing() {
    let old = Catalog::new("test");
    let mut new = old.clone();
    new.topics.insert("a".into(), topic("a", 3));
    new.producer_id_block_end = 1000;
    let deltas = diff(&old, &new);
    let mut image = old.clone();
    apply(&mut image, &MetadataRecord::Catalog(deltas.clone()), 7).unwrap();
    assert_eq!(image.topics, new.topics);
    assert_eq!(image.version, 7);
    // The same creation again conflicts and changes nothing.
    let before = image.clone();
    let err = apply(&mut image, &MetadataRecord::Catalog(deltas), 8).unwrap_err();
    assert!(matches!(err, Rejected::Conflict(_)));
    assert_eq!(image.topics, before.topics);
    assert_eq!(image.producer_id_block_end, 1000);
}

/// One broker's own configs travel as their own delta: set, changed and
/// removed, without touching the cluster-wide ones or another broker's; a
/// negative broker id is refused.
#[test]
fn per_broker_configs_diff_and_apply_on_their_own() {
    let mut old = Catalog::new("test");
    old.broker_configs
        .insert("log.retention.ms".into(), "1000".into());
    old.per_broker_configs
        .insert(3, BTreeMap::from([("log.retention.ms".into(), "3".into())]));
    let mut new = old.clone();
    new.per_broker_configs
        .insert(2, BTreeMap::from([("log.retention.ms".into(), "2".into())]));
    new.per_broker_configs.remove(&3);
    let deltas = diff(&old, &new);
    assert_eq!(deltas.len(), 2, "{deltas:?}");
    let mut image = old.clone();
    apply(&mut image, &MetadataRecord::Catalog(deltas), 4).unwrap();
    assert_eq!(image.per_broker_configs, new.per_broker_configs);
    assert_eq!(image.broker_configs, old.broker_configs);
    assert_eq!(image.dynamic_broker_configs(2)["log.retention.ms"], "2");
    assert_eq!(image.dynamic_broker_configs(1)["log.retention.ms"], "1000");

    let bad = MetadataRecord::Catalog(vec![CatalogDelta::OneBrokerConfigs {
        broker: -1,
        configs: BTreeMap::new(),
    }]);
    assert!(validate_record(&bad).is_err());
}

#[test]
fn replicas_spread_and_leaders_balance() {
    let sets = place_replicas(&[1, 2, 3], 0, 3, 3, 0);
    let leaders: Vec<i32> = sets.iter().map(|s| s.leader).collect();
    assert_eq!(leaders, vec![1, 2, 3]);
    for s in &sets {
        let mut r = s.replicas.clone();
        r.sort();
        assert_eq!(r, vec![1, 2, 3]);
        assert_eq!(s.isr, s.replicas);
    }
}

#[test]
fn records_that_break_the_image_rules_are_refused_not_panicked_on() {
    let mut image = Catalog::new("test");
    let t = topic("a", 2);
    let id = t.id;
    image.topics.insert("a".into(), t);
    let change = |leader: i32, isr: Vec<i32>, leader_epoch: i32| {
        MetadataRecord::Partitions(vec![PartitionChange {
            topic: "a".into(),
            topic_id: id,
            partition: 0,
            set: ReplicaSet {
                replicas: vec![1, 2, 3],
                isr,
                leader,
                leader_epoch,
                partition_epoch: 0,
            },
            expect_partition_epoch: None,
            proposer: None,
        }])
    };
    let before = image.topics.clone();
    // A leader outside its ISR.
    let err = apply(&mut image, &change(3, vec![1, 2], 1), 5).unwrap_err();
    assert!(matches!(err, Rejected::Invalid(_)), "{err}");
    // A leader epoch that goes back.
    apply(&mut image, &change(2, vec![1, 2], 4), 6).unwrap();
    let err = apply(&mut image, &change(1, vec![1, 2], 3), 7).unwrap_err();
    assert!(matches!(err, Rejected::Invalid(_)), "{err}");
    assert_eq!(image.version, 7);
    assert_ne!(image.topics, before);
    assert_eq!(image.topics["a"].replicas[0].leader_epoch, 4);
}

#[test]
fn an_isr_change_from_an_earlier_process_of_its_broker_is_refused() {
    let mut image = Catalog::new("test");
    let t = topic("a", 1);
    let id = t.id;
    image.topics.insert("a".into(), t);
    let register = |incarnation: Uuid| register(1, incarnation);
    let (old, new) = (Uuid::from_u64_pair(1, 0), Uuid::from_u64_pair(2, 0));
    let shrink = |incarnation, expect| isr_change(id, vec![1, 2], expect, incarnation);
    apply(&mut image, &register(old), 2).unwrap();
    apply(&mut image, &shrink(old, 0), 3).unwrap();
    assert_eq!(image.topics["a"].replicas[0].partition_epoch, 1);
    // The broker restarts: its new process registers, and a change the
    // old one sent before it stopped lands after.
    apply(&mut image, &register(new), 4).unwrap();
    let err = apply(&mut image, &shrink(old, 1), 5).unwrap_err();
    assert!(matches!(err, Rejected::Conflict(_)), "{err}");
    assert_eq!(image.topics["a"].replicas[0].partition_epoch, 1);
    apply(&mut image, &shrink(new, 1), 6).unwrap();
    assert_eq!(image.topics["a"].replicas[0].partition_epoch, 2);
    // A broker that never registered proposes nothing.
    let mut stranger = shrink(new, 2);
    if let MetadataRecord::Partitions(changes) = &mut stranger {
        changes[0].proposer = Some(Proposer {
            broker: 9,
            incarnation: new,
        });
    }
    assert!(apply(&mut image, &stranger, 7).is_err());
}

#[test]
fn a_fenced_broker_may_not_join_an_isr() {
    let mut image = Catalog::new("test");
    let t = topic("a", 1);
    let id = t.id;
    image.topics.insert("a".into(), t);
    let incarnation = Uuid::from_u64_pair(1, 0);
    for broker in [1, 3] {
        apply(&mut image, &register(broker, incarnation), 2).unwrap();
    }
    let isr_change = |isr, expect| isr_change(id, isr, expect, incarnation);
    apply(&mut image, &isr_change(vec![1, 2], 0), 3).unwrap();
    let fence = MetadataRecord::FenceBroker {
        id: 3,
        controlled_shutdown: true,
    };
    apply(&mut image, &fence, 4).unwrap();
    // Broker 3 is in controlled shutdown: the leader may not add it.
    let err = apply(&mut image, &isr_change(vec![1, 2, 3], 1), 5).unwrap_err();
    assert!(matches!(err, Rejected::Invalid(_)), "{err}");
    assert_eq!(image.topics["a"].replicas[0].isr, vec![1, 2]);
    // Back and unfenced, it may.
    apply(&mut image, &MetadataRecord::UnfenceBroker { id: 3 }, 6).unwrap();
    apply(&mut image, &isr_change(vec![1, 2, 3], 1), 7).unwrap();
    assert_eq!(image.topics["a"].replicas[0].isr, vec![1, 2, 3]);
}

/// Broker `id` (re)registers as process `incarnation`.
fn register(id: i32, incarnation: Uuid) -> MetadataRecord {
    MetadataRecord::RegisterBroker {
        id,
        broker: BrokerRecord {
            host: "h".into(),
            port: 1,
            incarnation,
            fenced: false,
            in_controlled_shutdown: false,
            directory_id: None,
            max_metadata_version: crate::features::METADATA_VERSION_MAX,
            endpoints: Vec::new(),
        },
    }
}

/// Leader 1's (process `incarnation`) ISR change of partition a-0 (topic
/// id `topic_id`), expecting partition epoch `expect`.
fn isr_change(topic_id: Uuid, isr: Vec<i32>, expect: i32, incarnation: Uuid) -> MetadataRecord {
    MetadataRecord::Partitions(vec![PartitionChange {
        topic: "a".into(),
        topic_id,
        partition: 0,
        set: ReplicaSet { isr, ..image_set() },
        expect_partition_epoch: Some(expect),
        proposer: Some(Proposer {
            broker: 1,
            incarnation,
        }),
    }])
}

fn image_set() -> ReplicaSet {
    ReplicaSet {
        replicas: vec![1, 2, 3],
        isr: vec![1, 2, 3],
        leader: 1,
        leader_epoch: 0,
        partition_epoch: 0,
    }
}

#[test]
fn decoding_checks_counts_and_relations() {
    let mut image = Catalog::new("test");
    image.topics.insert("a".into(), topic("a", 3));
    let bytes = serde_json::to_vec(&image).unwrap();
    assert_eq!(decode_image(&bytes).unwrap(), image);
    // Replica sets that do not match the partition count.
    let mut bad = image.clone();
    bad.topics.get_mut("a").unwrap().replicas.pop();
    assert!(decode_image(&serde_json::to_vec(&bad).unwrap()).is_err());
    // No partitions at all.
    let mut bad = image.clone();
    let t = bad.topics.get_mut("a").unwrap();
    t.shards.clear();
    t.replicas.clear();
    assert!(decode_image(&serde_json::to_vec(&bad).unwrap()).is_err());
    // A topic filed under another name.
    let mut bad = image.clone();
    let t = bad.topics.remove("a").unwrap();
    bad.topics.insert("b".into(), t);
    assert!(decode_image(&serde_json::to_vec(&bad).unwrap()).is_err());
    // JSON nested past serde_json's limit is an error, not a stack overflow.
    let deep = "[".repeat(100_000);
    assert!(decode_record(deep.as_bytes()).is_err());
    assert!(decode_image(deep.as_bytes()).is_err());
    // A proposal with a duplicated replica.
    let record = MetadataRecord::Partitions(vec![PartitionChange {
        topic: "a".into(),
        topic_id: image.topics["a"].id,
        partition: 0,
        set: ReplicaSet {
            replicas: vec![1, 1],
            isr: vec![1],
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
        },
        expect_partition_epoch: None,
        proposer: None,
    }]);
    assert!(decode_record(&serde_json::to_vec(&record).unwrap()).is_err());
}

/// The finalized level only goes up, to a level this binary knows, and
/// records the index that raised it; a record or an image at a level past
/// this binary's is refused with the reason.
#[test]
fn feature_levels_go_up_only_and_unknown_ones_are_refused() {
    use crate::features::{METADATA_VERSION_BASELINE as BASE, METADATA_VERSION_MAX as MAX};
    let mut image = Catalog::new("test");
    assert_eq!((image.metadata_version, image.features_epoch), (BASE, 0));
    let finalize = |level| MetadataRecord::FinalizeFeatures {
        metadata_version: level,
    };
    apply(&mut image, &finalize(MAX), 5).unwrap();
    assert_eq!((image.metadata_version, image.features_epoch), (MAX, 5));
    // The same level again changes nothing, not even the epoch.
    apply(&mut image, &finalize(MAX), 6).unwrap();
    assert_eq!((image.metadata_version, image.features_epoch), (MAX, 5));
    let down = apply(&mut image, &finalize(BASE), 7).unwrap_err();
    assert!(down.to_string().contains("cannot go down"), "{down}");
    let beyond = apply(&mut image, &finalize(MAX + 1), 8).unwrap_err();
    assert!(
        beyond.to_string().contains("run a binary that supports it"),
        "{beyond}"
    );
    assert_eq!(image.metadata_version, MAX);

    // An image from a newer binary does not decode; one from before
    // feature levels (no such fields) is at the baseline.
    let mut newer = Catalog::new("test");
    newer.metadata_version = MAX + 1;
    let bytes = serde_json::to_vec(&newer).unwrap();
    let err = decode_image(&bytes).unwrap_err().to_string();
    assert!(err.contains(&format!("level {}", MAX + 1)), "{err}");
    let mut old: serde_json::Value = serde_json::to_value(Catalog::new("test")).unwrap();
    old.as_object_mut().unwrap().remove("metadata_version");
    old.as_object_mut().unwrap().remove("features_epoch");
    let old = decode_image(&serde_json::to_vec(&old).unwrap()).unwrap();
    assert_eq!(old.metadata_version, BASE);

    // A registration from before feature levels does not name its level:
    // it supports the baseline.
    let MetadataRecord::RegisterBroker { broker, .. } = register(1, Uuid::new_v4()) else {
        unreachable!()
    };
    let mut json = serde_json::to_value(&broker).unwrap();
    json.as_object_mut().unwrap().remove("max_metadata_version");
    let old: BrokerRecord = serde_json::from_value(json).unwrap();
    assert_eq!(old.max_metadata_version, BASE);
}

fn acl(name: &str, permission: crate::acl::Permission) -> AclBinding {
    AclBinding {
        resource_type: crate::acl::ResourceType::Topic,
        name: name.into(),
        pattern_type: crate::acl::PatternType::Literal,
        principal: "User:alice".into(),
        host: "*".into(),
        operation: crate::acl::Operation::Read,
        permission,
    }
}

/// ACLs travel as CreateAcls / DeleteAcls deltas, only at the feature
/// level that stores them; an ACL CreateAcls could not have made is
/// refused by the decoder, and an image holding one too.
#[test]
fn acls_diff_apply_and_are_validated() {
    use crate::acl::Permission::{Allow, Deny};
    let mut old = Catalog::new("test");
    old.metadata_version = crate::features::METADATA_VERSION_SECURITY;
    old.acls.insert(acl("gone", Allow));
    let mut new = old.clone();
    new.acls.remove(&acl("gone", Allow));
    new.acls.insert(acl("orders", Allow));
    new.acls.insert(acl("orders", Deny));
    let deltas = diff(&old, &new);
    assert_eq!(deltas.len(), 2, "{deltas:?}");
    let mut image = old.clone();
    apply(&mut image, &MetadataRecord::Catalog(deltas.clone()), 3).unwrap();
    assert_eq!(image.acls, new.acls);

    // Below the security level an older binary could be reading: refused.
    let mut old_level = Catalog::new("test");
    let err = apply(&mut old_level, &MetadataRecord::Catalog(deltas), 3).unwrap_err();
    assert!(matches!(err, Rejected::Invalid(_)), "{err:?}");
    assert!(old_level.acls.is_empty());

    let mut bad = acl("orders", Allow);
    bad.host = "not-an-ip".into();
    let record = MetadataRecord::Catalog(vec![CatalogDelta::CreateAcls(vec![bad.clone()])]);
    let bytes = serde_json::to_vec(&record).unwrap();
    assert!(matches!(
        decode_record(&bytes),
        Err(DecodeError::Invalid { .. })
    ));
    let good = MetadataRecord::Catalog(vec![CatalogDelta::DeleteAcls(vec![acl("x", Deny)])]);
    let bytes = serde_json::to_vec(&good).unwrap();
    assert_eq!(decode_record(&bytes).unwrap(), good);
    let mut image = new.clone();
    image.acls.insert(bad);
    assert!(matches!(
        validate_image(&image),
        Err(InvalidMetadata::Acl { .. })
    ));
}

/// SCRAM credentials travel as their own deltas, only at feature level
/// `METADATA_VERSION_SECURITY`; a bad credential from the log is refused
/// when decoded, and an image holding one does not decode.
#[test]
fn scram_credentials_diff_apply_and_are_checked_on_decode() {
    use crate::sasl::{ScramCredential, ScramMechanism};
    let credential = ScramCredential::from_password(ScramMechanism::Sha256, "pw", 4096).unwrap();
    let old = Catalog::new("test");
    let mut new = old.clone();
    new.scram_credentials
        .entry("alice".into())
        .or_default()
        .insert(ScramMechanism::Sha256, credential.clone());
    let deltas = diff(&old, &new);
    assert_eq!(
        deltas,
        [CatalogDelta::UpsertScramCredential {
            user: "alice".into(),
            credential: credential.clone()
        }]
    );
    let record = MetadataRecord::Catalog(deltas);
    // Below the security level: refused, nothing changes.
    let mut image = old.clone();
    assert!(matches!(
        apply(&mut image, &record, 3),
        Err(Rejected::Invalid(_))
    ));
    assert!(image.scram_credentials.is_empty());
    image.metadata_version = crate::features::METADATA_VERSION_SECURITY;
    apply(&mut image, &record, 4).unwrap();
    assert_eq!(image.scram_credentials, new.scram_credentials);
    // Through bytes, as the log and snapshots carry them.
    let bytes = serde_json::to_vec(&record).unwrap();
    assert_eq!(decode_record(&bytes).unwrap(), record);
    let image_bytes = serde_json::to_vec(&image).unwrap();
    assert_eq!(decode_image(&image_bytes).unwrap(), image);
    // Deleting it leaves no user behind.
    let deltas = diff(&image, &old);
    assert_eq!(
        deltas,
        [CatalogDelta::DeleteScramCredential {
            user: "alice".into(),
            mechanism: ScramMechanism::Sha256
        }]
    );
    apply(&mut image, &MetadataRecord::Catalog(deltas), 5).unwrap();
    assert!(image.scram_credentials.is_empty());
    // A short key, too few iterations, an empty user: refused on decode.
    let mut short = credential.clone();
    short.stored_key.pop();
    let mut weak = credential.clone();
    weak.iterations = 1;
    for (user, credential) in [("alice", short), ("alice", weak.clone()), ("", credential)] {
        let record = MetadataRecord::Catalog(vec![CatalogDelta::UpsertScramCredential {
            user: user.into(),
            credential,
        }]);
        let bytes = serde_json::to_vec(&record).unwrap();
        assert!(decode_record(&bytes).is_err(), "{user:?}");
    }
    let mut bad_image = image.clone();
    bad_image
        .scram_credentials
        .entry("bob".into())
        .or_default()
        .insert(ScramMechanism::Sha512, weak);
    assert!(decode_image(&serde_json::to_vec(&bad_image).unwrap()).is_err());
}
