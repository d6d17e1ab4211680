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

/// One client listener of this node, served by every shard: where it
/// binds, its security protocol and what clients that connect to it are
/// told (Metadata answers the endpoint of the listener a request came in
/// on, as Kafka does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientListener {
    pub name: String,
    pub bind: SocketAddr,
    pub protocol: SecurityProtocol,
    pub advertised_host: String,
    pub advertised_port: u16,
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
    /// The inter-broker listener (`inter.broker.listener.name`, else the
    /// first client listener) as advertised (advertised.listeners, else
    /// listeners): what the broker registers as its main address, and
    /// where other brokers reach it.
    pub advertised: Listener,
    /// The inter-broker listener's security protocol
    /// (`listener.security.protocol.map`).
    pub listener_protocol: SecurityProtocol,
    /// Every client listener, the inter-broker one among them (empty: the
    /// one given by `Config::listen` and `advertised`).
    pub listeners: Vec<ClientListener>,
    /// The controller listener's security protocol.
    pub controller_protocol: SecurityProtocol,
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
            listeners: Vec::new(),
            controller_protocol: SecurityProtocol::Plaintext,
        }
    }

    /// The client listener named `name` (listener names are upper case).
    pub fn listener(&self, name: &str) -> Option<&ClientListener> {
        self.listeners.iter().find(|l| l.name == name)
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
