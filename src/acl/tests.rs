use super::*;

fn acl(
    resource_type: ResourceType,
    name: &str,
    pattern_type: PatternType,
    principal: &str,
    host: &str,
    operation: Operation,
    permission: Permission,
) -> AclBinding {
    AclBinding {
        resource_type,
        name: name.into(),
        pattern_type,
        principal: principal.into(),
        host: host.into(),
        operation,
        permission,
    }
}

fn allow_topic(name: &str, principal: &str, operation: Operation) -> AclBinding {
    acl(
        ResourceType::Topic,
        name,
        PatternType::Literal,
        principal,
        "*",
        operation,
        Permission::Allow,
    )
}

fn authorizer(acls: &[AclBinding]) -> Authorizer {
    Authorizer::new(AuthorizerConfig::new(AUTHORIZER, "", false), acls)
}

const AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
const ALICE: &str = "User:alice";
const IP: &str = "10.0.0.1";

fn may(a: &Authorizer, principal: &str, op: Operation, topic: &str) -> bool {
    a.authorize_principal(principal, IP, op, ResourceType::Topic, topic)
}

#[test]
fn codes_and_names_are_kafkas() {
    assert_eq!(Operation::from_code(12), Some(Operation::IdempotentWrite));
    assert_eq!(Operation::from_code(0), None);
    assert_eq!(Operation::from_code(15), None);
    for op in Operation::CONCRETE {
        assert_eq!(Operation::from_code(op.code()), Some(op));
        assert_eq!(Operation::parse(op.name()), Some(op));
    }
    assert_eq!(
        Operation::parse("DescribeConfigs"),
        Some(Operation::DescribeConfigs)
    );
    assert_eq!(Operation::parse("read"), Some(Operation::Read));
    assert_eq!(Operation::parse("Any"), None);
    assert_eq!(ResourceType::from_code(2), Some(ResourceType::Topic));
    assert_eq!(ResourceType::from_code(7), None, "USER is not served");
    assert_eq!(PatternType::from_code(4), Some(PatternType::Prefixed));
    assert_eq!(PatternType::parse("prefixed"), Some(PatternType::Prefixed));
    assert_eq!(Permission::from_code(2), Some(Permission::Deny));
}

#[test]
fn implied_operations_follow_kafka() {
    let a = authorizer(&[
        allow_topic("t-read", ALICE, Operation::Read),
        allow_topic("t-write", ALICE, Operation::Write),
        allow_topic("t-delete", ALICE, Operation::Delete),
        allow_topic("t-alter", ALICE, Operation::Alter),
        allow_topic("t-alter-configs", ALICE, Operation::AlterConfigs),
        allow_topic("t-all", ALICE, Operation::All),
        allow_topic("t-describe", ALICE, Operation::Describe),
    ]);
    for topic in ["t-read", "t-write", "t-delete", "t-alter", "t-all"] {
        assert!(may(&a, ALICE, Operation::Describe, topic), "{topic}");
    }
    assert!(!may(&a, ALICE, Operation::Describe, "t-alter-configs"));
    assert!(may(
        &a,
        ALICE,
        Operation::DescribeConfigs,
        "t-alter-configs"
    ));
    assert!(may(&a, ALICE, Operation::AlterConfigs, "t-alter-configs"));
    assert!(!may(&a, ALICE, Operation::AlterConfigs, "t-describe"));
    assert!(!may(&a, ALICE, Operation::DescribeConfigs, "t-read"));
    // Describe implies nothing else; Read does not imply Write.
    assert!(!may(&a, ALICE, Operation::Read, "t-describe"));
    assert!(!may(&a, ALICE, Operation::Write, "t-read"));
    for op in Operation::CONCRETE {
        assert!(may(&a, ALICE, op, "t-all"), "{op:?}");
    }
}

#[test]
fn deny_wins_over_allow_and_does_not_imply() {
    let deny = |name: &str, pattern, op| {
        acl(
            ResourceType::Topic,
            name,
            pattern,
            ALICE,
            "*",
            op,
            Permission::Deny,
        )
    };
    let a = authorizer(&[
        allow_topic("*", ALICE, Operation::All),
        deny("orders", PatternType::Literal, Operation::Write),
        deny("secret-", PatternType::Prefixed, Operation::All),
    ]);
    assert!(may(&a, ALICE, Operation::Read, "orders"));
    assert!(!may(&a, ALICE, Operation::Write, "orders"));
    // A denied Write does not deny Describe (only All or the operation).
    assert!(may(&a, ALICE, Operation::Describe, "orders"));
    assert!(!may(&a, ALICE, Operation::Describe, "secret-plans"));
    assert!(may(&a, ALICE, Operation::Describe, "secret"));
}

#[test]
fn principals_hosts_and_wildcards() {
    let a = authorizer(&[
        acl(
            ResourceType::Topic,
            "orders",
            PatternType::Literal,
            "User:*",
            "*",
            Operation::Read,
            Permission::Allow,
        ),
        acl(
            ResourceType::Topic,
            "billing",
            PatternType::Literal,
            ALICE,
            "10.0.0.9",
            Operation::Read,
            Permission::Allow,
        ),
    ]);
    assert!(may(&a, "User:bob", Operation::Read, "orders"));
    assert!(!may(&a, ALICE, Operation::Read, "billing"), "wrong host");
    assert!(a.authorize_principal(
        ALICE,
        "10.0.0.9",
        Operation::Read,
        ResourceType::Topic,
        "billing"
    ));
    assert!(!a.authorize_principal(
        "User:bob",
        "10.0.0.9",
        Operation::Read,
        ResourceType::Topic,
        "billing"
    ));
    // The resource type must match too.
    assert!(!a.authorize_principal(ALICE, IP, Operation::Read, ResourceType::Group, "orders"));
}

#[test]
fn prefixed_patterns_match_names_starting_with_them() {
    let a = authorizer(&[acl(
        ResourceType::Group,
        "billing-",
        PatternType::Prefixed,
        ALICE,
        "*",
        Operation::Read,
        Permission::Allow,
    )]);
    let group = |name| a.authorize_principal(ALICE, IP, Operation::Read, ResourceType::Group, name);
    assert!(group("billing-"));
    assert!(group("billing-eu"));
    assert!(!group("billing"));
    assert!(!group("xbilling-eu"));
    // A literal `*` is a name there, not a wildcard, when prefixed.
    let b = authorizer(&[acl(
        ResourceType::Topic,
        "*",
        PatternType::Prefixed,
        ALICE,
        "*",
        Operation::Read,
        Permission::Allow,
    )]);
    assert!(!may(&b, ALICE, Operation::Read, "orders"));
    assert!(may(&b, ALICE, Operation::Read, "*x"));
}

#[test]
fn super_users_and_no_acl_default() {
    let config = AuthorizerConfig::new(AUTHORIZER, " User:admin ; User:broker;", false);
    assert_eq!(config.super_users, vec!["User:admin", "User:broker"]);
    let a = Authorizer::new(
        config,
        &[acl(
            ResourceType::Topic,
            "orders",
            PatternType::Literal,
            "User:admin",
            "*",
            Operation::All,
            Permission::Deny,
        )],
    );
    assert!(
        may(&a, "User:admin", Operation::Write, "orders"),
        "super user"
    );
    assert!(may(&a, "User:broker", Operation::Delete, "anything"));
    assert!(!may(&a, ALICE, Operation::Read, "no-acls"));

    let open = Authorizer::new(
        AuthorizerConfig::new(AUTHORIZER, "", true),
        &[allow_topic("orders", "User:bob", Operation::Read)],
    );
    // No ACL on the resource: allowed; an ACL for someone else: denied.
    assert!(may(&open, ALICE, Operation::Write, "no-acls"));
    assert!(!may(&open, ALICE, Operation::Read, "orders"));
    assert!(open.authorize_principal(
        ALICE,
        IP,
        Operation::Alter,
        ResourceType::Cluster,
        "kafka-cluster"
    ));
}

#[test]
fn no_authorizer_allows_everything() {
    let a = Authorizer::new(AuthorizerConfig::new("", "", false), &[]);
    let session = crate::security::Session::new(
        "PLAINTEXT",
        crate::security::SecurityProtocol::Plaintext,
        IP.parse().unwrap(),
    );
    assert!(a.authorize(&session, Operation::Delete, ResourceType::Topic, "t"));
    let on = authorizer(&[allow_topic("t", "User:ANONYMOUS", Operation::Read)]);
    assert!(on.authorize(&session, Operation::Read, ResourceType::Topic, "t"));
    assert!(!on.authorize(&session, Operation::Write, ResourceType::Topic, "t"));
}

#[test]
fn filters_select_as_kafka() {
    let literal = allow_topic("orders", ALICE, Operation::Read);
    let wildcard = allow_topic("*", ALICE, Operation::Read);
    let prefixed = acl(
        ResourceType::Topic,
        "ord",
        PatternType::Prefixed,
        "User:bob",
        "*",
        Operation::Write,
        Permission::Deny,
    );
    let other = allow_topic("payments", ALICE, Operation::Read);
    let all = [&literal, &wildcard, &prefixed, &other];
    let selected = |f: &AclFilter| -> Vec<&AclBinding> {
        all.iter().copied().filter(|a| f.matches(a)).collect()
    };
    assert_eq!(selected(&AclFilter::any()).len(), 4);
    let by_name = |pattern_type| AclFilter {
        name: Some("orders".into()),
        pattern_type,
        ..AclFilter::any()
    };
    assert_eq!(
        selected(&by_name(PatternType::Match)),
        vec![&literal, &wildcard, &prefixed]
    );
    assert_eq!(selected(&by_name(PatternType::Literal)), vec![&literal]);
    assert_eq!(selected(&by_name(PatternType::Any)), vec![&literal]);
    assert!(selected(&by_name(PatternType::Prefixed)).is_empty());
    let prefixed_only = AclFilter {
        pattern_type: PatternType::Prefixed,
        ..AclFilter::any()
    };
    assert_eq!(selected(&prefixed_only), vec![&prefixed]);
    let bob_denies = AclFilter {
        principal: Some("User:bob".into()),
        permission: Permission::Deny,
        operation: Operation::Write,
        ..AclFilter::any()
    };
    assert_eq!(selected(&bob_denies), vec![&prefixed]);
    let groups = AclFilter {
        resource_type: ResourceType::Group,
        ..AclFilter::any()
    };
    assert!(selected(&groups).is_empty());
}

#[test]
fn only_storable_acls_validate() {
    let good = allow_topic("orders", ALICE, Operation::Read);
    assert_eq!(good.validate(), Ok(()));
    let with = |f: &dyn Fn(&mut AclBinding)| {
        let mut a = good.clone();
        f(&mut a);
        a.validate()
    };
    assert_eq!(
        with(&|a| a.pattern_type = PatternType::Match),
        Err(InvalidAcl::PatternType)
    );
    assert_eq!(
        with(&|a| a.resource_type = ResourceType::Any),
        Err(InvalidAcl::ResourceType)
    );
    assert_eq!(
        with(&|a| a.operation = Operation::Any),
        Err(InvalidAcl::Operation)
    );
    assert_eq!(
        with(&|a| a.permission = Permission::Any),
        Err(InvalidAcl::Permission)
    );
    assert_eq!(with(&|a| a.name.clear()), Err(InvalidAcl::EmptyName));
    assert!(matches!(
        with(&|a| a.principal = "alice".into()),
        Err(InvalidAcl::Principal(_))
    ));
    assert!(matches!(
        with(&|a| a.host = "example.com".into()),
        Err(InvalidAcl::Host(_))
    ));
    assert_eq!(with(&|a| a.host = "::1".into()), Ok(()));
    assert_eq!(
        with(&|a| a.name = "x".repeat(ACL_FIELD_BYTES_MAX + 1)),
        Err(InvalidAcl::TooLong(ACL_FIELD_BYTES_MAX + 1))
    );
    assert_eq!(
        with(&|a| {
            a.resource_type = ResourceType::Cluster;
            a.name = "other".into()
        }),
        Err(InvalidAcl::ClusterName)
    );
}

#[test]
fn texts_are_kafka_acls_format() {
    let a = allow_topic("orders", ALICE, Operation::Read);
    assert_eq!(
        a.pattern_text(),
        "ResourcePattern(resourceType=TOPIC, name=orders, patternType=LITERAL)"
    );
    assert_eq!(
        a.entry_text(),
        "(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)"
    );
}
