//! Access control lists as Kafka defines them: who (a principal, from a
//! host) may or may not do what (an operation) to which resources (a
//! resource type and a name, literal or prefixed). The types here are the
//! ones CreateAcls, DescribeAcls and DeleteAcls carry (with Kafka's codes),
//! the ones the metadata log stores (by Kafka's names), and the filters
//! DescribeAcls and DeleteAcls select with. [`authorizer`] decides a
//! request's access from them, as Kafka's `StandardAuthorizer` does.
//!
//! Imports only `security` (the principal and session it authorizes).

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::security::Principal;

pub mod authorizer;
pub use authorizer::{Authorizer, AuthorizerConfig};

/// At most this many ACLs in the cluster metadata: a bound on what the
/// log, a snapshot or a peer may make every node hold.
pub const ACLS_MAX: usize = 100_000;
/// Longest resource name, principal or host an ACL may hold, in bytes.
pub const ACL_FIELD_BYTES_MAX: usize = 4096;
/// The one name of the cluster resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// A literal resource name that stands for every resource of its type.
pub const WILDCARD_RESOURCE: &str = "*";
/// A host that stands for every host.
pub const WILDCARD_HOST: &str = "*";
/// A principal that stands for every user.
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// Kafka's `ResourceType`. `Any` is a filter value only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ResourceType {
    Any,
    Topic,
    Group,
    Cluster,
    TransactionalId,
    DelegationToken,
}

impl ResourceType {
    pub const CONCRETE: [ResourceType; 5] = [
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
        ResourceType::TransactionalId,
        ResourceType::DelegationToken,
    ];

    pub fn code(self) -> i8 {
        match self {
            ResourceType::Any => 1,
            ResourceType::Topic => 2,
            ResourceType::Group => 3,
            ResourceType::Cluster => 4,
            ResourceType::TransactionalId => 5,
            ResourceType::DelegationToken => 6,
        }
    }

    pub fn from_code(code: i8) -> Option<ResourceType> {
        Some(match code {
            1 => ResourceType::Any,
            2 => ResourceType::Topic,
            3 => ResourceType::Group,
            4 => ResourceType::Cluster,
            5 => ResourceType::TransactionalId,
            6 => ResourceType::DelegationToken,
            _ => return None,
        })
    }

    /// Kafka's name (`TOPIC`, `TRANSACTIONAL_ID`).
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Any => "ANY",
            ResourceType::Topic => "TOPIC",
            ResourceType::Group => "GROUP",
            ResourceType::Cluster => "CLUSTER",
            ResourceType::TransactionalId => "TRANSACTIONAL_ID",
            ResourceType::DelegationToken => "DELEGATION_TOKEN",
        }
    }
}

/// Kafka's `PatternType`. `Any` and `Match` are filter values only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PatternType {
    Any,
    Match,
    Literal,
    Prefixed,
}

impl PatternType {
    pub fn code(self) -> i8 {
        match self {
            PatternType::Any => 1,
            PatternType::Match => 2,
            PatternType::Literal => 3,
            PatternType::Prefixed => 4,
        }
    }

    pub fn from_code(code: i8) -> Option<PatternType> {
        Some(match code {
            1 => PatternType::Any,
            2 => PatternType::Match,
            3 => PatternType::Literal,
            4 => PatternType::Prefixed,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            PatternType::Any => "ANY",
            PatternType::Match => "MATCH",
            PatternType::Literal => "LITERAL",
            PatternType::Prefixed => "PREFIXED",
        }
    }

    /// `literal`, `PREFIXED` (the CLI's `--resource-pattern-type`).
    pub fn parse(text: &str) -> Option<PatternType> {
        [
            PatternType::Any,
            PatternType::Match,
            PatternType::Literal,
            PatternType::Prefixed,
        ]
        .into_iter()
        .find(|p| p.name().eq_ignore_ascii_case(text))
    }
}

/// Kafka's `AclOperation`. `Any` is a filter value only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Operation {
    Any,
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
    CreateTokens,
    DescribeTokens,
}

impl Operation {
    /// Every operation an ACL may name, in Kafka's code order.
    pub const CONCRETE: [Operation; 13] = [
        Operation::All,
        Operation::Read,
        Operation::Write,
        Operation::Create,
        Operation::Delete,
        Operation::Alter,
        Operation::Describe,
        Operation::ClusterAction,
        Operation::DescribeConfigs,
        Operation::AlterConfigs,
        Operation::IdempotentWrite,
        Operation::CreateTokens,
        Operation::DescribeTokens,
    ];

    pub fn code(self) -> i8 {
        match self {
            Operation::Any => 1,
            Operation::All => 2,
            Operation::Read => 3,
            Operation::Write => 4,
            Operation::Create => 5,
            Operation::Delete => 6,
            Operation::Alter => 7,
            Operation::Describe => 8,
            Operation::ClusterAction => 9,
            Operation::DescribeConfigs => 10,
            Operation::AlterConfigs => 11,
            Operation::IdempotentWrite => 12,
            Operation::CreateTokens => 13,
            Operation::DescribeTokens => 14,
        }
    }

    pub fn from_code(code: i8) -> Option<Operation> {
        if code == 1 {
            return Some(Operation::Any);
        }
        Operation::CONCRETE.into_iter().find(|o| o.code() == code)
    }

    /// Kafka's name (`DESCRIBE_CONFIGS`).
    pub fn name(self) -> &'static str {
        match self {
            Operation::Any => "ANY",
            Operation::All => "ALL",
            Operation::Read => "READ",
            Operation::Write => "WRITE",
            Operation::Create => "CREATE",
            Operation::Delete => "DELETE",
            Operation::Alter => "ALTER",
            Operation::Describe => "DESCRIBE",
            Operation::ClusterAction => "CLUSTER_ACTION",
            Operation::DescribeConfigs => "DESCRIBE_CONFIGS",
            Operation::AlterConfigs => "ALTER_CONFIGS",
            Operation::IdempotentWrite => "IDEMPOTENT_WRITE",
            Operation::CreateTokens => "CREATE_TOKENS",
            Operation::DescribeTokens => "DESCRIBE_TOKENS",
        }
    }

    /// As kafka-acls' `--operation` takes it: `Read`, `DescribeConfigs`,
    /// `describe_configs`, any case.
    pub fn parse(text: &str) -> Option<Operation> {
        let wanted: String = text
            .chars()
            .filter(|c| *c != '_')
            .collect::<String>()
            .to_ascii_uppercase();
        Operation::CONCRETE
            .into_iter()
            .find(|o| o.name().replace('_', "") == wanted)
    }

    /// Whether an ALLOW ACL for `self` allows `wanted` (Kafka's implied
    /// operations: Read, Write, Delete and Alter imply Describe;
    /// AlterConfigs implies DescribeConfigs; All implies everything).
    pub fn allow_implies(self, wanted: Operation) -> bool {
        self == Operation::All
            || self == wanted
            || (wanted == Operation::Describe
                && matches!(
                    self,
                    Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
                ))
            || (wanted == Operation::DescribeConfigs && self == Operation::AlterConfigs)
    }

    /// Whether a DENY ACL for `self` denies `wanted`: only the operation
    /// itself or All (a denied Read does not deny Describe).
    pub fn deny_implies(self, wanted: Operation) -> bool {
        self == Operation::All || self == wanted
    }
}

/// Kafka's `AclPermissionType`. `Any` is a filter value only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Permission {
    Any,
    Deny,
    Allow,
}

impl Permission {
    pub fn code(self) -> i8 {
        match self {
            Permission::Any => 1,
            Permission::Deny => 2,
            Permission::Allow => 3,
        }
    }

    pub fn from_code(code: i8) -> Option<Permission> {
        Some(match code {
            1 => Permission::Any,
            2 => Permission::Deny,
            3 => Permission::Allow,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Permission::Any => "ANY",
            Permission::Deny => "DENY",
            Permission::Allow => "ALLOW",
        }
    }
}

/// One ACL (Kafka's `AclBinding`): a resource pattern and an access entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub name: String,
    pub pattern_type: PatternType,
    /// `User:alice`, `User:*`.
    pub principal: String,
    /// An IP address or `*`.
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

/// Why an ACL is not one that may be stored (Kafka answers
/// INVALID_REQUEST with the text).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAcl {
    #[error(
        "ACL resource type must be TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID or DELEGATION_TOKEN"
    )]
    ResourceType,
    #[error("ACL pattern type must be LITERAL or PREFIXED")]
    PatternType,
    #[error("ACL operation must not be ANY or UNKNOWN")]
    Operation,
    #[error("ACL permission type must be ALLOW or DENY")]
    Permission,
    #[error("Resource name should not be empty")]
    EmptyName,
    #[error("The only valid name for the CLUSTER resource is {CLUSTER_NAME}")]
    ClusterName,
    #[error("Could not parse principal from `{0}` (no colon is present separating the principal type from the principal name)")]
    Principal(String),
    #[error("Invalid host `{0}`: an ACL's host is * or an IP address")]
    Host(String),
    #[error("An ACL field of {0} bytes is longer than {ACL_FIELD_BYTES_MAX}")]
    TooLong(usize),
    #[error("more than {ACLS_MAX} ACLs")]
    TooMany,
}

impl AclBinding {
    /// Kafka's rules for an ACL that may be created (and the metadata log
    /// and snapshots are held to them too).
    pub fn validate(&self) -> Result<(), InvalidAcl> {
        if self.resource_type == ResourceType::Any {
            return Err(InvalidAcl::ResourceType);
        }
        if !matches!(
            self.pattern_type,
            PatternType::Literal | PatternType::Prefixed
        ) {
            return Err(InvalidAcl::PatternType);
        }
        if self.operation == Operation::Any {
            return Err(InvalidAcl::Operation);
        }
        if self.permission == Permission::Any {
            return Err(InvalidAcl::Permission);
        }
        for field in [&self.name, &self.principal, &self.host] {
            if field.len() > ACL_FIELD_BYTES_MAX {
                return Err(InvalidAcl::TooLong(field.len()));
            }
        }
        if self.name.is_empty() {
            return Err(InvalidAcl::EmptyName);
        }
        if self.resource_type == ResourceType::Cluster && self.name != CLUSTER_NAME {
            return Err(InvalidAcl::ClusterName);
        }
        if Principal::parse(&self.principal).is_none() {
            return Err(InvalidAcl::Principal(self.principal.clone()));
        }
        if self.host != WILDCARD_HOST && self.host.parse::<IpAddr>().is_err() {
            return Err(InvalidAcl::Host(self.host.clone()));
        }
        Ok(())
    }

    /// Kafka's `ResourcePattern(resourceType=TOPIC, name=orders,
    /// patternType=LITERAL)`, as kafka-acls prints it.
    pub fn pattern_text(&self) -> String {
        format!(
            "ResourcePattern(resourceType={}, name={}, patternType={})",
            self.resource_type.name(),
            self.name,
            self.pattern_type.name()
        )
    }

    /// Kafka's `(principal=User:alice, host=*, operation=READ,
    /// permissionType=ALLOW)`.
    pub fn entry_text(&self) -> String {
        format!(
            "(principal={}, host={}, operation={}, permissionType={})",
            self.principal,
            self.host,
            self.operation.name(),
            self.permission.name()
        )
    }
}

impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.pattern_text(), self.entry_text())
    }
}

/// Kafka's `AclBindingFilter`: what DescribeAcls and DeleteAcls select.
/// `None` strings match any value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: ResourceType,
    pub name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclFilter {
    /// Selects every ACL.
    pub fn any() -> AclFilter {
        AclFilter {
            resource_type: ResourceType::Any,
            name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: Operation::Any,
            permission: Permission::Any,
        }
    }

    /// Whether `acl` is one this filter selects, as Kafka's
    /// `AclBindingFilter.matches`: a MATCH filter with a name selects the
    /// ACLs that apply to a resource of that name (its literal ACLs, the
    /// literal wildcard and the prefixes of the name).
    pub fn matches(&self, acl: &AclBinding) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != acl.resource_type {
            return false;
        }
        let pattern_ok = match (&self.name, self.pattern_type) {
            (None, PatternType::Any | PatternType::Match) => true,
            (None, wanted) => wanted == acl.pattern_type,
            (Some(name), PatternType::Any) => *name == acl.name,
            (Some(name), PatternType::Match) => match acl.pattern_type {
                PatternType::Literal => *name == acl.name || acl.name == WILDCARD_RESOURCE,
                PatternType::Prefixed => name.starts_with(&acl.name),
                _ => false,
            },
            (Some(name), wanted) => wanted == acl.pattern_type && *name == acl.name,
        };
        pattern_ok
            && self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && (self.operation == Operation::Any || self.operation == acl.operation)
            && (self.permission == Permission::Any || self.permission == acl.permission)
    }
}

#[cfg(test)]
mod tests;
