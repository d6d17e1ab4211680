//! This node's place in a cluster: roles, controller quorum voters and the
//! advertised listener, with Kafka's rules between them.

use std::net::SocketAddr;

use super::ConfigError;
use crate::security::SecurityProtocol;

/// One controller quorum voter (`controller.quorum.voters`: `id@host:port`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Voter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

/// One listener (`listeners`, `advertised.listeners`: `NAME://host:port`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// This node's place in a cluster, KRaft style.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// process.roles contains broker: the node serves clients' partitions.
    pub broker_role: bool,
    /// process.roles contains controller: the node is a metadata quorum voter.
    pub controller_role: bool,
    /// Address this node's CONTROLLER listener binds (controllers only).
    pub controller_listen: Option<SocketAddr>,
    /// controller.quorum.voters (or controller.quorum.bootstrap.servers
    /// resolved to voters); empty = single node on embedded defaults, its
    /// own quorum of one.
    pub voters: Vec<Voter>,
    /// The client listener clients are told about (advertised.listeners,
    /// else listeners).
    pub advertised: Listener,
    /// The client listener's security protocol
    /// (`listener.security.protocol.map`).
    pub listener_protocol: SecurityProtocol,
}

impl ClusterConfig {
    /// A single node that is both broker and controller, its own quorum of
    /// one, advertising `host` and `port` to clients: what `corelog serve`
    /// runs without a config file.
    pub fn single_node(host: String, port: u16) -> ClusterConfig {
        ClusterConfig {
            broker_role: true,
            controller_role: true,
            controller_listen: None,
            voters: Vec::new(),
            advertised: Listener {
                name: "PLAINTEXT".into(),
                host,
                port,
            },
            listener_protocol: SecurityProtocol::Plaintext,
        }
    }

    /// Whether this node is configured with a controller quorum (so its
    /// storage must be formatted with the cluster's id before it starts).
    pub fn has_quorum(&self) -> bool {
        !self.voters.is_empty()
    }

    /// Kafka's rules between roles, node id and voters.
    pub(super) fn check_quorum(&self, node_id: i32) -> Result<(), ConfigError> {
        let listed = self.voters.iter().find(|v| v.id == node_id);
        if self.controller_role && self.has_quorum() {
            let Some(own) = listed else {
                return Err(ConfigError::ControllerNotVoter(node_id));
            };
            if let Some(bind) = self.controller_listen {
                if bind.port() != own.port {
                    log::warn!(
                        "controller.quorum.voters gives node {node_id} port {} but its \
                         controller listener binds port {}",
                        own.port,
                        bind.port()
                    );
                }
            }
        }
        if !self.controller_role {
            if !self.has_quorum() {
                return Err(ConfigError::BrokerWithoutVoters);
            }
            if listed.is_some() {
                return Err(ConfigError::VoterWithoutRole(node_id));
            }
        }
        Ok(())
    }
}
