//! The checks handlers make before they act: one [`Access`] per request,
//! the shard's authorizer and the request's session. With no
//! `authorizer.class.name` every check passes (no ACLs are consulted).

use std::rc::Rc;

use crate::acl::{Authorizer, Operation, ResourceType, CLUSTER_NAME};
use crate::security::Session;
use crate::server::broker::Broker;

pub const TOPIC_DENIED: i16 = 29;
pub const GROUP_DENIED: i16 = 30;
pub const CLUSTER_DENIED: i16 = 31;
pub const TRANSACTIONAL_ID_DENIED: i16 = 53;

/// One request's view of the authorizer.
pub struct Access<'a> {
    authorizer: Rc<Authorizer>,
    session: &'a Session,
}

impl<'a> Access<'a> {
    pub fn new(broker: &Rc<Broker>, session: &'a Session) -> Access<'a> {
        Access {
            authorizer: broker.authorizer(),
            session,
        }
    }

    /// Whether ACL checks are on.
    pub fn enabled(&self) -> bool {
        self.authorizer.enabled()
    }

    pub fn topic(&self, operation: Operation, topic: &str) -> bool {
        self.authorizer
            .authorize(self.session, operation, ResourceType::Topic, topic)
    }

    pub fn group(&self, operation: Operation, group: &str) -> bool {
        self.authorizer
            .authorize(self.session, operation, ResourceType::Group, group)
    }

    pub fn cluster(&self, operation: Operation) -> bool {
        self.authorizer
            .authorize(self.session, operation, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// Whether the principal may do `operation` on some topic (Kafka's
    /// `authorizeByResourceType`, for idempotent producers).
    pub fn any_topic(&self, operation: Operation) -> bool {
        self.authorizer
            .authorize_any(self.session, operation, ResourceType::Topic)
    }

    pub fn transactional_id(&self, operation: Operation, id: &str) -> bool {
        self.authorizer
            .authorize(self.session, operation, ResourceType::TransactionalId, id)
    }
}

/// Kafka's codes, checked against the protocol crate's once.
#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::error::ResponseError;

    #[test]
    fn denial_codes_are_kafkas() {
        assert_eq!(TOPIC_DENIED, ResponseError::TopicAuthorizationFailed.code());
        assert_eq!(GROUP_DENIED, ResponseError::GroupAuthorizationFailed.code());
        assert_eq!(
            CLUSTER_DENIED,
            ResponseError::ClusterAuthorizationFailed.code()
        );
        assert_eq!(
            TRANSACTIONAL_ID_DENIED,
            ResponseError::TransactionalIdAuthorizationFailed.code()
        );
    }
}
