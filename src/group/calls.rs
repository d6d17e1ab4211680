//! The calls handlers make of a group's coordinator: one type per Kafka
//! group API, each naming the answer it gets ([`GroupOp::Answer`]), so a
//! handler cannot be handed another API's answer and needs no catch-all arm.
//!
//! A call is built on the handler's shard and served on the shard that
//! coordinates the group (see `locate`); it crosses the mesh inside a
//! [`GroupShardCall`], which adds what every group call shares: the
//! coordinator must have loaded its groups, and an unreachable coordinator
//! is COORDINATOR_NOT_AVAILABLE. Every failure a client sees is a Kafka
//! error code (`Err(i16)`), for the whole group.

use std::rc::Rc;

use futures::future::LocalBoxFuture;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponsePartitions;
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, HeartbeatRequest,
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    SyncGroupRequest, SyncGroupResponse,
};

use super::{classic, code, consumer, owned_partition, GroupHost};
use crate::shard::mesh::{MeshError, ShardCall};

/// One group API as its coordinator serves it. Crosses shards: `Send`.
pub trait GroupOp: Send + Sized + 'static {
    /// What the handler gets back when the call succeeds.
    type Answer: Send + 'static;

    /// Serves the call on the coordinator's shard (its groups are loaded).
    /// `Err` is a Kafka error code for the whole group.
    fn serve<H: GroupHost>(self, host: Rc<H>)
        -> LocalBoxFuture<'static, Result<Self::Answer, i16>>;
}

/// To the shard that coordinates a consumer group (or every shard, for
/// ListGroups). `Err` is a Kafka error code for the whole group.
pub struct GroupShardCall<C>(pub C);

impl<H: GroupHost, C: GroupOp> ShardCall<H> for GroupShardCall<C> {
    type Reply = Result<C::Answer, i16>;
    fn serve(self, host: Rc<H>) -> LocalBoxFuture<'static, Self::Reply> {
        if host.groups().loading.get() {
            return Box::pin(async { Err(code(ResponseError::CoordinatorLoadInProgress)) });
        }
        self.0.serve(host)
    }
    /// The coordinator is moving or stopping: the client finds it again.
    fn unreachable(_: MeshError) -> Self::Reply {
        Err(code(ResponseError::CoordinatorNotAvailable))
    }
}

/// JoinGroup (classic protocol); parked until the rebalance completes.
pub struct Join {
    pub version: i16,
    pub client_id: String,
    pub client_host: String,
    pub request: JoinGroupRequest,
}

impl GroupOp for Join {
    type Answer = JoinGroupResponse;
    fn serve<H: GroupHost>(
        self,
        host: Rc<H>,
    ) -> LocalBoxFuture<'static, Result<Self::Answer, i16>> {
        Box::pin(async move {
            let partition = owned_partition(&host, &self.request.group_id.0)?;
            classic::join(
                &host,
                partition,
                self.version,
                self.client_id,
                self.client_host,
                self.request,
            )
            .await
        })
    }
}

/// SyncGroup (classic protocol).
pub struct Sync {
    pub request: SyncGroupRequest,
}

impl GroupOp for Sync {
    type Answer = SyncGroupResponse;
    fn serve<H: GroupHost>(
        self,
        host: Rc<H>,
    ) -> LocalBoxFuture<'static, Result<Self::Answer, i16>> {
        Box::pin(async move {
            let partition = owned_partition(&host, &self.request.group_id.0)?;
            classic::sync(&host, partition, self.request).await
        })
    }
}

/// Heartbeat (classic protocol).
pub struct Heartbeat {
    pub request: HeartbeatRequest,
}

impl GroupOp for Heartbeat {
    type Answer = HeartbeatResponse;
    fn serve<H: GroupHost>(
        self,
        host: Rc<H>,
    ) -> LocalBoxFuture<'static, Result<Self::Answer, i16>> {
        Box::pin(async move {
            owned_partition(&host, &self.request.group_id.0)?;
            classic::heartbeat(&host, self.request)
        })
    }
}

/// LeaveGroup (classic protocol).
pub struct Leave {
    pub version: i16,
    pub request: LeaveGroupRequest,
}

impl GroupOp for Leave {
    type Answer = LeaveGroupResponse;
    fn serve<H: GroupHost>(
        self,
        host: Rc<H>,
    ) -> LocalBoxFuture<'static, Result<Self::Answer, i16>> {
        Box::pin(async move {
            let partition = owned_partition(&host, &self.request.group_id.0)?;
            classic::leave(&host, partition, self.version, self.request)
        })
    }
}

/// OffsetCommit; answered once the offsets are durable.
pub struct OffsetCommit {
    pub request: OffsetCommitRequest,
}

impl GroupOp for OffsetCommit {
    type Answer = OffsetCommitResponse;
    fn serve<H: GroupHost>(
        self,
        host: Rc<H>,
    ) -> LocalBoxFuture<'static, Result<Self::Answer, i16>> {
        Box::pin(async move {
            let partition = owned_partition(&host, &self.request.group_id.0)?;
            classic::offset_commit(&host, partition, self.request).await
        })
    }
}

/// OffsetFetch of one group. `None` topics: every committed offset of the
/// group. OffsetFetch v9 names the member (id, epoch) asking; before it
/// `None`, -1.
pub struct OffsetFetch {
    pub group: String,
    pub topics: Option<Vec<(String, Vec<i32>)>>,
    pub member_id: Option<String>,
    pub member_epoch: i32,
}

impl GroupOp for OffsetFetch {
    /// Per topic: (name, partitions).
    type Answer = Vec<(String, Vec<OffsetFetchResponsePartitions>)>;
    fn serve<H: GroupHost>(
        self,
        host: Rc<H>,
    ) -> LocalBoxFuture<'static, Result<Self::Answer, i16>> {
        Box::pin(async move {
            owned_partition(&host, &self.group)?;
            let checked = match host
                .groups()
                .groups
                .borrow()
                .get(&self.group)
                .and_then(|g| g.consumer.as_ref())
            {
                Some(c) => consumer::check_fetch(c, self.member_id.as_deref(), self.member_epoch),
                None => Ok(()),
            };
            checked.map_err(code)?;
            Ok(host.groups().offset_fetch(&self.group, self.topics))
        })
    }
}

/// DescribeGroups of one group.
pub struct Describe {
    pub group: String,
}

impl GroupOp for Describe {
    type Answer = DescribedGroup;
    fn serve<H: GroupHost>(
        self,
        host: Rc<H>,
    ) -> LocalBoxFuture<'static, Result<Self::Answer, i16>> {
        Box::pin(async move {
            owned_partition(&host, &self.group)?;
            Ok(classic::describe(&host, &self.group))
        })
    }
}

/// ListGroups: sent to every shard; each lists its own groups.
#[derive(Clone)]
pub struct List {
    pub states: Vec<String>,
    pub types: Vec<String>,
}

impl GroupOp for List {
    type Answer = Vec<ListedGroup>;
    fn serve<H: GroupHost>(
        self,
        host: Rc<H>,
    ) -> LocalBoxFuture<'static, Result<Self::Answer, i16>> {
        Box::pin(async move { Ok(host.groups().list(&self.states, &self.types)) })
    }
}

/// DeleteGroups of one group (only when it has no members).
pub struct Delete {
    pub group: String,
}

impl GroupOp for Delete {
    type Answer = ();
    fn serve<H: GroupHost>(
        self,
        host: Rc<H>,
    ) -> LocalBoxFuture<'static, Result<Self::Answer, i16>> {
        Box::pin(async move {
            let partition = owned_partition(&host, &self.group)?;
            classic::delete(&host, partition, &self.group).await
        })
    }
}

/// OffsetDelete.
pub struct OffsetDelete {
    pub request: OffsetDeleteRequest,
}

impl GroupOp for OffsetDelete {
    type Answer = OffsetDeleteResponse;
    fn serve<H: GroupHost>(
        self,
        host: Rc<H>,
    ) -> LocalBoxFuture<'static, Result<Self::Answer, i16>> {
        Box::pin(async move {
            let partition = owned_partition(&host, &self.request.group_id.0)?;
            classic::offset_delete(&host, partition, self.request).await
        })
    }
}

/// ConsumerGroupHeartbeat (KIP-848).
pub struct ConsumerHeartbeat {
    pub version: i16,
    pub client_id: String,
    pub client_host: String,
    pub request: ConsumerGroupHeartbeatRequest,
}

impl GroupOp for ConsumerHeartbeat {
    type Answer = ConsumerGroupHeartbeatResponse;
    fn serve<H: GroupHost>(
        self,
        host: Rc<H>,
    ) -> LocalBoxFuture<'static, Result<Self::Answer, i16>> {
        Box::pin(async move {
            let partition = owned_partition(&host, &self.request.group_id.0)?;
            consumer::heartbeat(
                &host,
                partition,
                self.version,
                self.client_id,
                self.client_host,
                self.request,
            )
            .await
        })
    }
}

/// ConsumerGroupDescribe (KIP-848) of one group.
pub struct ConsumerDescribe {
    pub group: String,
}

impl GroupOp for ConsumerDescribe {
    type Answer = consumer_group_describe_response::DescribedGroup;
    fn serve<H: GroupHost>(
        self,
        host: Rc<H>,
    ) -> LocalBoxFuture<'static, Result<Self::Answer, i16>> {
        Box::pin(async move {
            owned_partition(&host, &self.group)?;
            Ok(consumer::describe(&host, &self.group))
        })
    }
}
