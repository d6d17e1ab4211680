//! Deciding one request's access, as Kafka's `StandardAuthorizer` does:
//!
//! 1. a principal in `super.users` may do anything;
//! 2. the ACLs that apply to the resource are its literal ones, the literal
//!    `*` of its type, and the prefixed ones whose prefix starts its name;
//! 3. of those, the ones whose principal is the caller (or `User:*`) and
//!    whose host is the caller's address (or `*`) count: a DENY for the
//!    operation (or All) denies, whatever allows it; else an ALLOW for the
//!    operation, All, or an operation implying it ([`Operation::allow_implies`])
//!    allows;
//! 4. with no ACL at all on the resource, `allow.everyone.if.no.acl.found`
//!    decides (false by default: denied).
//!
//! One [`Authorizer`] per shard, built from that shard's catalog copy
//! whenever its ACLs change: a check is a few hash lookups on the shard,
//! never a call to another one.

use std::collections::{BTreeSet, HashMap};

use super::{AclBinding, Operation, PatternType, Permission, ResourceType};
use super::{WILDCARD_HOST, WILDCARD_PRINCIPAL, WILDCARD_RESOURCE};
use crate::security::Session;

/// `authorizer.class.name` values that turn ACL checks on: Kafka's KRaft
/// authorizer and its ZooKeeper-era one (both behave alike here).
pub const AUTHORIZER_CLASS_NAMES: [&str; 2] = [
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
];

/// The broker configs the authorizer reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// `authorizer.class.name` is set: every request is checked.
    pub enabled: bool,
    /// `super.users`: principals that may do anything.
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_if_no_acl: bool,
}

impl AuthorizerConfig {
    /// From the configs' text: `class_name` empty or one of
    /// [`AUTHORIZER_CLASS_NAMES`] (checked when the config is read),
    /// `super_users` semicolon-separated (`User:admin;User:broker`).
    pub fn new(class_name: &str, super_users: &str, allow_if_no_acl: bool) -> AuthorizerConfig {
        AuthorizerConfig {
            enabled: !class_name.trim().is_empty(),
            super_users: parse_super_users(super_users),
            allow_if_no_acl,
        }
    }
}

/// `super.users` as Kafka reads it: `;`-separated principals, blanks
/// trimmed, empty items skipped.
pub fn parse_super_users(text: &str) -> Vec<String> {
    text.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Whether `authorizer.class.name` may take `value`.
pub fn valid_class_name(value: &str) -> bool {
    value.trim().is_empty() || AUTHORIZER_CLASS_NAMES.contains(&value.trim())
}

/// The access part of an ACL, filed under its resource pattern.
#[derive(Clone, Debug)]
struct Entry {
    principal: String,
    host: String,
    operation: Operation,
    permission: Permission,
}

/// The ACLs of one resource type, by pattern.
#[derive(Default, Debug)]
struct TypeAcls {
    literal: HashMap<String, Vec<Entry>>,
    prefixed: HashMap<String, Vec<Entry>>,
    /// The lengths of the prefixes in `prefixed`, so a check looks up only
    /// those prefixes of a name.
    prefix_lengths: BTreeSet<usize>,
}

/// A shard's access decisions: the configs and the cluster's ACLs, indexed
/// by resource.
#[derive(Debug, Default)]
pub struct Authorizer {
    config: AuthorizerConfig,
    by_type: HashMap<ResourceType, TypeAcls>,
}

impl Authorizer {
    pub fn new<'a>(
        config: AuthorizerConfig,
        acls: impl IntoIterator<Item = &'a AclBinding>,
    ) -> Authorizer {
        let mut by_type: HashMap<ResourceType, TypeAcls> = HashMap::new();
        for acl in acls {
            let entry = Entry {
                principal: acl.principal.clone(),
                host: acl.host.clone(),
                operation: acl.operation,
                permission: acl.permission,
            };
            let of_type = by_type.entry(acl.resource_type).or_default();
            match acl.pattern_type {
                PatternType::Prefixed => {
                    of_type.prefix_lengths.insert(acl.name.len());
                    of_type
                        .prefixed
                        .entry(acl.name.clone())
                        .or_default()
                        .push(entry);
                }
                // Only literal and prefixed ACLs are stored (validated).
                _ => of_type
                    .literal
                    .entry(acl.name.clone())
                    .or_default()
                    .push(entry),
            }
        }
        Authorizer { config, by_type }
    }

    pub fn config(&self) -> &AuthorizerConfig {
        &self.config
    }

    /// Whether checks are on (`authorizer.class.name` is set).
    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// Whether the session's principal, from its address, may do
    /// `operation` on the resource; always when no authorizer is set.
    pub fn authorize(
        &self,
        session: &Session,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if !self.config.enabled {
            return true;
        }
        let host = session.client_ip.to_string();
        session.with_principal(|principal| {
            self.authorize_principal(
                &principal.to_string(),
                &host,
                operation,
                resource_type,
                name,
            )
        })
    }

    /// Whether the session may do `operation` on at least one resource of
    /// the type, as Kafka's `authorizeByResourceType`: a super user, an
    /// ALLOW for it on any pattern not under a DENY of every resource (a
    /// literal `*` DENY); with no ACL of the type at all,
    /// `allow.everyone.if.no.acl.found`.
    pub fn authorize_any(
        &self,
        session: &Session,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        if !self.config.enabled {
            return true;
        }
        let principal = session.principal().to_string();
        let host = session.client_ip.to_string();
        if self.config.super_users.contains(&principal) {
            return true;
        }
        let Some(of_type) = self.by_type.get(&resource_type) else {
            return self.config.allow_if_no_acl;
        };
        let applies = |e: &Entry| {
            (e.principal == principal || e.principal == WILDCARD_PRINCIPAL)
                && (e.host == host || e.host == WILDCARD_HOST)
        };
        let denied_everywhere = of_type
            .literal
            .get(WILDCARD_RESOURCE)
            .into_iter()
            .flatten()
            .any(|e| {
                applies(e)
                    && e.permission == Permission::Deny
                    && e.operation.deny_implies(operation)
            });
        if denied_everywhere {
            return false;
        }
        of_type
            .literal
            .values()
            .chain(of_type.prefixed.values())
            .flatten()
            .any(|e| {
                applies(e)
                    && e.permission == Permission::Allow
                    && e.operation.allow_implies(operation)
            })
    }

    /// [`Authorizer::authorize`] for a principal (`User:alice`) and host
    /// (an IP address) given as text, whether or not checks are on.
    pub fn authorize_principal(
        &self,
        principal: &str,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if self.config.super_users.iter().any(|s| s == principal) {
            return true;
        }
        let Some(of_type) = self.by_type.get(&resource_type) else {
            return self.config.allow_if_no_acl;
        };
        let mut any_acl = false;
        let mut allowed = false;
        let mut consider = |entries: Option<&Vec<Entry>>| -> bool {
            for entry in entries.into_iter().flatten() {
                any_acl = true;
                if entry.principal != principal && entry.principal != WILDCARD_PRINCIPAL {
                    continue;
                }
                if entry.host != host && entry.host != WILDCARD_HOST {
                    continue;
                }
                match entry.permission {
                    Permission::Deny if entry.operation.deny_implies(operation) => return true,
                    Permission::Allow if entry.operation.allow_implies(operation) => allowed = true,
                    _ => {}
                }
            }
            false
        };
        // A DENY anywhere wins: look at every pattern before allowing.
        if consider(of_type.literal.get(name)) || consider(of_type.literal.get(WILDCARD_RESOURCE)) {
            return false;
        }
        for &len in of_type.prefix_lengths.range(..=name.len()) {
            if let Some(prefix) = name.get(..len) {
                if consider(of_type.prefixed.get(prefix)) {
                    return false;
                }
            }
        }
        if allowed {
            return true;
        }
        !any_acl && self.config.allow_if_no_acl
    }
}
