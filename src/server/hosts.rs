//! The broker as the host of the services below it: each service defines
//! the small trait it needs (what it may read and do on its shard), and this
//! file implements it for [`Broker`]. A service gets only what its trait
//! offers; a simulation can implement the same traits without a broker.

use std::future::Future;
use std::rc::Rc;

use futures::future::LocalBoxFuture;
use glommio::TaskQueueHandle;

use super::broker::Broker;
use super::catalog::CatalogOwner;
use crate::cluster::node::{ImageNotApplied, ImageSink};
use crate::config::BrokerDefaults;
use crate::group::{GroupCoordinator, GroupHost};
use crate::metadata::Catalog;
use crate::net::BrokerNetwork;
use crate::partition::replica::IsrChange;
use crate::partition::Partition;
use crate::replication::{IsrChangeError, Replication, ReplicationHost};
use crate::shard::mesh::ShardCall;
use crate::shard::ShardId;

/// Committed metadata images become the broker's catalog (shard 0 of a node
/// in a cluster).
impl ImageSink for Broker {
    fn apply_image(
        self: Rc<Self>,
        image: Rc<Catalog>,
    ) -> LocalBoxFuture<'static, Result<(), ImageNotApplied>> {
        Box::pin(async move {
            CatalogOwner::sync_image(&self, &image)
                .await
                .map_err(|e| ImageNotApplied {
                    reason: e.to_string(),
                })
        })
    }
}

impl ReplicationHost for Broker {
    fn node_id(&self) -> i32 {
        self.config.broker.node_id
    }

    fn shard(&self) -> ShardId {
        Broker::shard(self)
    }

    fn broker_config(&self) -> &BrokerDefaults {
        &self.config.broker
    }

    fn cluster_mode(&self) -> bool {
        Broker::cluster_mode(self)
    }

    fn catalog(&self) -> Rc<Catalog> {
        Broker::catalog(self)
    }

    fn local_partitions(&self) -> Vec<Rc<Partition>> {
        Broker::local_partitions(self)
    }

    fn replication(&self) -> &Replication {
        &self.replication
    }

    fn schedule_commit(&self, partition: &Rc<Partition>) {
        self.committer.schedule(partition);
    }

    fn requests_queue(&self) -> TaskQueueHandle {
        self.requests
    }

    fn background_queue(&self) -> TaskQueueHandle {
        self.background
    }

    fn call<C: ShardCall<Self>>(
        self: &Rc<Self>,
        to: ShardId,
        call: C,
    ) -> impl Future<Output = C::Reply> {
        Broker::call(self, to, call)
    }

    async fn alter_isr(
        self: &Rc<Self>,
        topic: String,
        partition: i32,
        change: IsrChange,
    ) -> Result<(), IsrChangeError> {
        CatalogOwner::alter_isr(self, &topic, partition, change)
            .await
            .map_err(|e| IsrChangeError::Refused(e.to_string()))
    }

    type Network = BrokerNetwork;
    fn network(&self) -> &BrokerNetwork {
        crate::net::broker_network()
    }
}

impl GroupHost for Broker {
    fn shard(&self) -> ShardId {
        Broker::shard(self)
    }

    fn shard_count(&self) -> usize {
        self.mesh().shard_count()
    }

    fn broker_config(&self) -> &BrokerDefaults {
        &self.config.broker
    }

    fn catalog(&self) -> Rc<Catalog> {
        Broker::catalog(self)
    }

    fn partition(&self, topic: &str, index: i32) -> Option<Rc<Partition>> {
        Broker::partition(self, topic, index)
    }

    fn groups(&self) -> &GroupCoordinator {
        &self.groups
    }

    fn schedule_commit(&self, partition: &Rc<Partition>) {
        self.committer.schedule(partition);
    }

    fn background_queue(&self) -> TaskQueueHandle {
        self.background
    }

    fn call<C: ShardCall<Self>>(
        self: &Rc<Self>,
        to: ShardId,
        call: C,
    ) -> impl Future<Output = C::Reply> {
        Broker::call(self, to, call)
    }
}
