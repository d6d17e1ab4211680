//! A follower's fetcher: one task per (shard, leader broker). Each round it
//! gathers the partitions of this shard that follow that leader, first
//! checks any partition that entered a new leader epoch against the
//! leader's epoch history (OffsetForLeaderEpoch) and cuts a divergent tail,
//! then fetches all of them in one Fetch with its replica id, appends what
//! came back, and waits until it is durable before the next round: the
//! next fetch offset tells the leader this follower's durable end, which is
//! what the leader's high watermark (and acks=all) counts on.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, OffsetForLeaderEpochRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::client::{BrokerConnection, CallError};
use super::ReplicationHost;
use crate::log::throttled;
use crate::net::Network;
use crate::partition::replica::{Divergence, FetchedBatches};
use crate::partition::{Partition, PartitionError};

const FETCH_VERSION: i16 = 12;
const EPOCH_VERSION: i16 = 3;
/// replica.fetch.response.max.bytes (Kafka's default).
const FETCH_RESPONSE_MAX_BYTES: i32 = 10 * 1024 * 1024;
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

type Key = (String, i32);

/// Why a fetcher round failed; the fetcher logs it, drops its connection
/// and tries again after a backoff.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("broker {0} is not registered")]
    NotRegistered(i32),
    #[error("broker {broker}: {source}")]
    Resolve { broker: i32, source: std::io::Error },
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("this replica's log: {0}")]
    Log(PartitionError),
    #[error("replicated batches not made durable: {0}")]
    NotDurable(PartitionError),
}

impl From<PartitionError> for FetchError {
    fn from(e: PartitionError) -> FetchError {
        FetchError::Log(e)
    }
}

/// A connection to a leader over the host's network.
type Connection<H> = BrokerConnection<<<H as ReplicationHost>::Network as Network>::Stream>;

pub async fn run<H: ReplicationHost>(host: Rc<H>, leader: i32) {
    let me = host.node_id();
    let client_id = format!("corelog-replica-{me}-shard-{}", host.shard().0);
    let mut connection: Option<Connection<H>> = None;
    // The leader epoch each partition was last checked for divergence in.
    let mut checked: HashMap<Key, i32> = HashMap::new();
    let mut backoff = BACKOFF_MIN;
    log::info!("replica fetcher for broker {leader} started");
    loop {
        if crate::shard::shutdown::requested() {
            break;
        }
        let followed: Vec<Rc<Partition>> = host
            .local_partitions()
            .into_iter()
            .filter(|p| p.replica_state().followed_leader() == Some(leader))
            .collect();
        if followed.is_empty() {
            break;
        }
        checked.retain(|key, _| {
            followed
                .iter()
                .any(|p| (&p.topic, p.index) == (&key.0, key.1))
        });
        let outcome = async {
            if connection.is_none() {
                let addr = leader_address(&*host, leader)?;
                connection =
                    Some(BrokerConnection::connect(host.network(), addr, client_id.clone()).await?);
            }
            let conn = connection.as_mut().expect("connected above");
            check_epochs(conn, me, &followed, &mut checked).await?;
            fetch_round(&host, conn, me, leader, &followed, &mut checked).await
        }
        .await;
        match outcome {
            Ok(()) => backoff = BACKOFF_MIN,
            Err(e) => {
                log::debug!("replica fetcher for broker {leader}: {e}");
                connection = None;
                glommio::timer::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    host.replication().fetcher_stopped(leader);
    log::info!("replica fetcher for broker {leader} stopped");
}

fn leader_address<H: ReplicationHost>(
    host: &H,
    leader: i32,
) -> Result<std::net::SocketAddr, FetchError> {
    let catalog = host.catalog();
    let record = catalog
        .brokers
        .get(&leader)
        .ok_or(FetchError::NotRegistered(leader))?;
    crate::cluster::transport::resolve(&record.host, record.port).map_err(|source| {
        FetchError::Resolve {
            broker: leader,
            source,
        }
    })
}

/// OffsetForLeaderEpoch for the partitions that entered a new epoch since
/// their last check, and the truncation each answer calls for.
async fn check_epochs<S: futures_lite::AsyncRead + futures_lite::AsyncWrite + Unpin>(
    conn: &mut BrokerConnection<S>,
    me: i32,
    followed: &[Rc<Partition>],
    checked: &mut HashMap<Key, i32>,
) -> Result<(), FetchError> {
    let mut topics: Vec<OffsetForLeaderTopic> = Vec::new();
    let mut asked: Vec<(Rc<Partition>, i32)> = Vec::new();
    for p in followed {
        let epoch = p.replica_state().leader_epoch;
        if checked.get(&(p.topic.clone(), p.index)) == Some(&epoch) {
            continue;
        }
        let (latest, _) = p.follower_position();
        let Some(latest) = latest else {
            // Nothing stamped here yet: nothing can diverge.
            checked.insert((p.topic.clone(), p.index), epoch);
            continue;
        };
        let partition = OffsetForLeaderPartition::default()
            .with_partition(p.index)
            .with_current_leader_epoch(epoch)
            .with_leader_epoch(latest);
        match topics.last_mut() {
            Some(t) if t.topic.0.as_str() == p.topic => t.partitions.push(partition),
            _ => topics.push(
                OffsetForLeaderTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(p.topic.clone())))
                    .with_partitions(vec![partition]),
            ),
        }
        asked.push((p.clone(), epoch));
    }
    if asked.is_empty() {
        return Ok(());
    }
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(me))
        .with_topics(topics);
    let response = conn.call(EPOCH_VERSION, &request).await?;
    for topic in response.topics {
        for answer in topic.partitions {
            let Some((p, epoch)) = asked
                .iter()
                .find(|(p, _)| p.topic == topic.topic.0.as_str() && p.index == answer.partition)
            else {
                continue;
            };
            if answer.error_code != 0 {
                log::debug!(
                    "{}-{}: OffsetForLeaderEpoch error {}",
                    p.topic,
                    p.index,
                    answer.error_code
                );
                continue;
            }
            match p.divergence(answer.leader_epoch, answer.end_offset) {
                Divergence::None => {}
                Divergence::CutFrom(cut) => {
                    log::info!(
                        "{}-{}: leader {} epoch {} ends at {}; cutting this log from {cut}",
                        p.topic,
                        p.index,
                        p.replica_state().leader,
                        answer.leader_epoch,
                        answer.end_offset
                    );
                    p.truncate(cut, false).await?;
                }
                Divergence::StartOver => {
                    p.truncate(0, true).await?;
                }
            }
            checked.insert((p.topic.clone(), p.index), *epoch);
        }
    }
    Ok(())
}

/// One Fetch for every checked partition; appends, waits for durability and
/// takes the leader's high watermark.
async fn fetch_round<H: ReplicationHost>(
    host: &Rc<H>,
    conn: &mut Connection<H>,
    me: i32,
    leader: i32,
    followed: &[Rc<Partition>],
    checked: &mut HashMap<Key, i32>,
) -> Result<(), FetchError> {
    let config = host.broker_config();
    let mut topics: Vec<FetchTopic> = Vec::new();
    let mut asked: Vec<(Rc<Partition>, i32)> = Vec::new();
    for p in followed {
        let epoch = p.replica_state().leader_epoch;
        if checked.get(&(p.topic.clone(), p.index)) != Some(&epoch) {
            continue;
        }
        let (latest, _) = p.follower_position();
        // The fetch offset tells the leader what this follower holds
        // durably (its high watermark counts on it): the flushed end, which
        // is the log end except after a failed fsync, when the log went
        // offline with written but unsynced batches (found by the
        // simulation, seed 1).
        let end = p.flushed_offset();
        let partition = FetchPartition::default()
            .with_partition(p.index)
            .with_current_leader_epoch(epoch)
            .with_fetch_offset(end)
            .with_last_fetched_epoch(latest.unwrap_or(-1))
            .with_log_start_offset(p.log_start_offset())
            .with_partition_max_bytes(config.replica_fetch_max_bytes.max(1));
        match topics.last_mut() {
            Some(t) if t.topic.0.as_str() == p.topic => t.partitions.push(partition),
            _ => topics.push(
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(p.topic.clone())))
                    .with_partitions(vec![partition]),
            ),
        }
        asked.push((p.clone(), epoch));
    }
    if asked.is_empty() {
        // Every partition waits for its epoch check (the leader did not
        // answer it yet): do not spin.
        glommio::timer::sleep(BACKOFF_MIN).await;
        return Ok(());
    }
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(me))
        .with_max_wait_ms(config.replica_fetch_wait_max_ms.max(1))
        .with_min_bytes(1)
        .with_max_bytes(FETCH_RESPONSE_MAX_BYTES)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics);
    let response: FetchResponse = conn.call(FETCH_VERSION, &request).await?;
    let mut waits = Vec::new();
    let mut high_watermarks = Vec::new();
    let mut retry_soon = false;
    for topic in response.responses {
        for data in topic.partitions {
            let Some((p, epoch)) = asked.iter().find(|(p, _)| {
                p.topic == topic.topic.0.as_str() && p.index == data.partition_index
            }) else {
                continue;
            };
            let key = (p.topic.clone(), p.index);
            match ResponseError::try_from_code(data.error_code) {
                None => {
                    let records = data.records.unwrap_or_default();
                    let fetched = match FetchedBatches::check(&records) {
                        Ok(fetched) => fetched,
                        Err(e) => {
                            // A damaged batch from the leader (its log or
                            // the wire): nothing of it is stored; ask again
                            // after a pause, the partition's other work and
                            // the other partitions go on.
                            throttled::log("replicated batch refused", log::Level::Warn, || {
                                format!("{}-{}: from broker {leader}: {e}", p.topic, p.index)
                            });
                            retry_soon = true;
                            continue;
                        }
                    };
                    if !fetched.is_empty() {
                        if let Some(text) = p.note_epochs(&fetched) {
                            p.write_epochs(text).await?;
                        }
                        match p.append_replicated(leader, *epoch, &fetched) {
                            Ok(Some(wait)) => {
                                host.schedule_commit(p);
                                waits.push(wait);
                            }
                            Ok(None) => {}
                            Err(e) => {
                                log::info!("{}-{}: replicated append: {e}", p.topic, p.index);
                                checked.remove(&key);
                            }
                        }
                    }
                    high_watermarks.push((p.clone(), data.high_watermark));
                }
                Some(ResponseError::OffsetOutOfRange) => {
                    let (_, end) = p.follower_position();
                    if end < data.log_start_offset {
                        // The leader deleted what this follower lacks: start at its log start.
                        p.truncate(data.log_start_offset, true).await?;
                    } else {
                        // Ahead of the leader: check the epochs again.
                        checked.remove(&key);
                    }
                }
                Some(e) => {
                    log::debug!("{}-{}: fetch from broker {leader}: {e:?}", p.topic, p.index);
                    if matches!(
                        e,
                        ResponseError::FencedLeaderEpoch | ResponseError::UnknownLeaderEpoch
                    ) {
                        checked.remove(&key);
                    }
                    retry_soon = true;
                }
            }
        }
    }
    for wait in waits {
        if let Ok(Err(e)) = wait.await {
            return Err(FetchError::NotDurable(e));
        }
    }
    for (p, hw) in high_watermarks {
        p.set_leader_high_watermark(hw);
    }
    if retry_soon {
        // The leader (or this broker) has not caught up with the latest
        // leader epochs: metadata arrives within a heartbeat or two.
        glommio::timer::sleep(BACKOFF_MIN).await;
    }
    Ok(())
}
