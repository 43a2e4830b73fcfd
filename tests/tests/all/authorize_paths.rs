//! The authorize API's two paths agree: wherever `Engine::authorize_fast` answers from
//! one store read, the general path (`authenticate_for_tenant` + `authorize_batch`)
//! gives the same decisions, reasons and facts — on the in-memory store (the port's
//! default snapshot) and on PostgreSQL (one SQL statement). Where the fast path declines,
//! the general path answers and records refusals.

use std::collections::BTreeSet;

use domain::ids::{Assurance, DisplayName, ScopeName, TenantId, UserId};
use domain::model::{AccountState, TenantState, UserState};
use domain::usecases::{AuthzCheck, CheckSubject, MemberChange, NewApiKey, TenantChange};
use tests::harness::{email, scope, user_of, Harness, PASSWORD};

/// A bearer token and whether the fast path must answer for it in tenant `acme`.
struct Token {
    name: &'static str,
    secret: String,
    answers_in_acme: bool,
}

async fn key(
    harness: &Harness,
    admin: &domain::usecases::Caller,
    tenant: &TenantId,
    scopes: &[&str],
) -> String {
    harness
        .engine
        .create_api_key(
            admin,
            tenant,
            NewApiKey {
                name: DisplayName::parse("paths").expect("name"),
                scopes: scopes
                    .iter()
                    .map(|name| scope(name))
                    .collect::<BTreeSet<_>>(),
            },
        )
        .await
        .expect("key created")
        .secret
}

async fn session(harness: &Harness, address: &str) -> String {
    harness
        .engine
        .login(&email(address), PASSWORD, "req-login")
        .await
        .expect("login")
        .token
}

async fn both_paths_agree(harness: Harness) {
    let engine = &harness.engine;
    let root = harness.root().await;
    let (acme, admin) = harness.tenant(&root, "acme").await;
    let (other, other_admin) = harness.tenant(&root, "other").await;
    let (frozen, frozen_admin) = harness.tenant(&root, "frozen").await;
    let viewer = harness
        .member(&root, &admin, &acme, "viewer@acme.example", &["member"])
        .await;
    let resting = harness
        .member(&root, &admin, &acme, "resting@acme.example", &["member"])
        .await;
    engine
        .update_member(
            &admin,
            &acme,
            &user_of(&resting),
            MemberChange {
                roles: None,
                state: Some(AccountState::Suspended),
                expected_version: None,
            },
        )
        .await
        .expect("account suspended");
    let banned = harness
        .member(&root, &admin, &acme, "banned@acme.example", &["member"])
        .await;
    let outsider = harness
        .member(
            &root,
            &other_admin,
            &other,
            "outsider@other.example",
            &["member"],
        )
        .await;

    let tokens = vec![
        Token {
            name: "acme key with authz:check",
            secret: key(&harness, &admin, &acme, &["authz:check"]).await,
            answers_in_acme: true,
        },
        Token {
            name: "acme key without authz:check",
            secret: key(&harness, &admin, &acme, &["tenant:read"]).await,
            answers_in_acme: false,
        },
        Token {
            name: "other tenant's key",
            secret: key(&harness, &other_admin, &other, &["authz:check"]).await,
            answers_in_acme: false,
        },
        Token {
            name: "frozen tenant's key",
            secret: key(&harness, &frozen_admin, &frozen, &["authz:check"]).await,
            answers_in_acme: false,
        },
        Token {
            name: "acme admin session",
            secret: session(&harness, "admin@acme.example").await,
            answers_in_acme: true,
        },
        Token {
            name: "acme member session",
            secret: session(&harness, "viewer@acme.example").await,
            answers_in_acme: false,
        },
        Token {
            name: "outsider session",
            secret: session(&harness, "outsider@other.example").await,
            answers_in_acme: false,
        },
        Token {
            name: "platform root session",
            secret: session(&harness, "root@example.com").await,
            answers_in_acme: true,
        },
        Token {
            name: "unknown token",
            secret: "no-such-session".to_owned(),
            answers_in_acme: false,
        },
        Token {
            name: "unknown key",
            secret: "uek_no-such-key".to_owned(),
            answers_in_acme: false,
        },
    ];
    let revoked = key(&harness, &admin, &acme, &["authz:check"]).await;
    let keys = engine.list_api_keys(&admin, &acme).await.expect("keys");
    let revoked_id = keys.last().expect("the newest key").id;
    engine
        .revoke_api_key(&admin, &acme, &revoked_id)
        .await
        .expect("key revoked");
    engine
        .set_user_state(&root, &user_of(&banned), UserState::Suspended)
        .await
        .expect("user suspended");
    engine
        .update_tenant(
            &root,
            &frozen,
            TenantChange {
                display_name: None,
                state: Some(TenantState::Suspended),
            },
        )
        .await
        .expect("tenant suspended");

    let subjects: Vec<UserId> = vec![
        user_of(&admin),
        user_of(&viewer),
        user_of(&resting),
        user_of(&banned),
        user_of(&outsider),
        user_of(&root),
        UserId::parse("0190a000-0000-7000-8000-000000000000").expect("id"),
    ];
    let scopes: Vec<ScopeName> = [
        "tenant:read",
        "members:write",
        "roles:write",
        "platform:tenants:write",
        "docs:edit",
        "audit:read",
    ]
    .iter()
    .map(|name| scope(name))
    .collect();
    let targets = [
        None,
        Some(user_of(&viewer)),
        Some(user_of(&outsider)),
        Some(user_of(&root)),
    ];
    let mut checks = Vec::new();
    for subject in &subjects {
        for assurance in [Assurance::Aal1, Assurance::Aal2] {
            for scope in &scopes {
                for target in targets {
                    checks.push(AuthzCheck {
                        subject: CheckSubject::User {
                            user_id: *subject,
                            assurance,
                        },
                        scope: scope.clone(),
                        target,
                    });
                }
            }
        }
    }

    let mut answered = 0;
    for tenant in [
        &acme,
        &other,
        &frozen,
        &TenantId::parse("missing").expect("id"),
    ] {
        for token in tokens.iter().chain([&Token {
            name: "revoked key",
            secret: revoked.clone(),
            answers_in_acme: false,
        }]) {
            for batch in checks.chunks(100) {
                let fast = engine
                    .authorize_fast(tenant, &token.secret, batch)
                    .await
                    .expect("the store answers");
                if tenant == &acme {
                    assert_eq!(
                        fast.is_some(),
                        token.answers_in_acme,
                        "{}: whether the fast path answers in acme",
                        token.name
                    );
                }
                let Some(fast) = fast else { continue };
                answered += batch.len();
                let caller = engine
                    .authenticate_for_tenant(tenant, Some(&token.secret))
                    .await
                    .expect("the fast path answered, so the caller authenticates");
                let caller = domain::usecases::Caller {
                    principal: caller,
                    request_id: "req-paths".to_owned(),
                };
                let general = engine
                    .authorize_batch(&caller, tenant, batch.to_vec())
                    .await
                    .expect("the fast path answered, so the general path allows the caller");
                assert_eq!(fast, general, "{} in {tenant}", token.name);
            }
        }
    }
    // Every check for: acme's three allowed callers, the other tenant's key and the
    // platform root there, and the platform root in the suspended tenant (a root is
    // allowed before the tenant's state counts).
    assert_eq!(answered, 6 * checks.len());

    // A session whose idle clock is due to be written goes the general path, which
    // writes it; the next request is fast again.
    harness.clock.advance(time::Duration::minutes(2));
    let admin_session = &tokens
        .iter()
        .find(|token| token.name == "acme admin session")
        .expect("admin session")
        .secret;
    let batch = checks.get(..10).expect("checks");
    assert_eq!(
        engine
            .authorize_fast(&acme, admin_session, batch)
            .await
            .expect("the store answers"),
        None
    );
    engine
        .authenticate_for_tenant(&acme, Some(admin_session))
        .await
        .expect("the session is alive");
    assert!(engine
        .authorize_fast(&acme, admin_session, batch)
        .await
        .expect("the store answers")
        .is_some());
    // A check about a session token goes the general path.
    let by_token = [AuthzCheck {
        subject: CheckSubject::Token(admin_session.clone()),
        scope: scope("tenant:read"),
        target: None,
    }];
    assert_eq!(
        engine
            .authorize_fast(&acme, admin_session, &by_token)
            .await
            .expect("the store answers"),
        None
    );
}

#[test]
fn the_fast_and_general_authorize_paths_agree_on_the_fake_store() {
    let (harness, _store) = Harness::fake();
    futures::executor::block_on(both_paths_agree(harness));
}

#[test]
fn the_fast_and_general_authorize_paths_agree_on_postgres() {
    tests::pg::run(async { both_paths_agree(tests::pg::harness().await).await });
}

/// Tenant `acme` on `harness` with `count` members holding `member` (bound to
/// `tenant:read`) and an API key holding `authz:check`, whose common-path decisions about
/// those members [`TwoNodes::decide`] asks.
struct TwoNodes {
    harness: Harness,
    other_node: domain::usecases::Engine,
    root: domain::usecases::Caller,
    admin: domain::usecases::Caller,
    acme: TenantId,
    members: Vec<UserId>,
    secret: String,
}

impl TwoNodes {
    async fn new(harness: Harness, count: usize) -> Self {
        let other_node = harness.other_node.clone().expect("another node");
        let root = harness.root().await;
        let (acme, admin) = harness.tenant(&root, "acme").await;
        let mut members = Vec::new();
        for n in 0..count {
            let address = format!("m{n}@acme.example");
            let member = harness
                .member(&root, &admin, &acme, &address, &["member"])
                .await;
            members.push(user_of(&member));
        }
        let secret = key(&harness, &admin, &acme, &["authz:check"]).await;
        Self {
            harness,
            other_node,
            root,
            admin,
            acme,
            members,
            secret,
        }
    }

    /// The common path's decision on this harness's node about `user` for `tenant:read`.
    async fn decide(&self, user: UserId) -> domain::authz::Decision {
        let check = AuthzCheck {
            subject: CheckSubject::User {
                user_id: user,
                assurance: Assurance::Aal1,
            },
            scope: scope("tenant:read"),
            target: None,
        };
        let mut decisions = self
            .harness
            .engine
            .authorize_fast(&self.acme, &self.secret, &[check])
            .await
            .expect("store")
            .expect("the common path answers");
        decisions.pop().expect("one decision")
    }
}

/// A facts cache bounded below the members asked about (two users, two accounts) evicts
/// and reads again; a change made on another node — to a member whose facts were evicted
/// and to one whose facts are held — shows on the very next decision, and the members
/// evicted in between are read again and still allowed.
#[test]
fn a_cache_smaller_than_the_members_asked_about_rereads_evicted_facts_and_never_serves_them() {
    use std::num::NonZeroUsize;
    use std::sync::Arc;

    use adapters_pg::facts_cache::Capacity;
    use domain::authz::Reason;

    tests::pg::run(async {
        let db = tests::pg::TestDb::create().await;
        let bound = Capacity::entries(NonZeroUsize::new(2).expect("two"));
        let small = db.store(2).await.with_facts_capacity(bound);
        let harness = Harness::new(Arc::new(small)).with_other_node(Arc::new(db.store(2).await));
        let nodes = TwoNodes::new(harness, 6).await;
        let members = nodes.members.clone();
        for member in &members {
            assert!(nodes.decide(*member).await.allowed);
        }
        // members[0] was evicted long ago; members[5] was asked last and is held.
        for changed in [members[0], members[5]] {
            nodes
                .other_node
                .update_member(
                    &nodes.admin,
                    &nodes.acme,
                    &changed,
                    MemberChange {
                        roles: None,
                        state: Some(AccountState::Suspended),
                        expected_version: None,
                    },
                )
                .await
                .expect("suspended on the other node");
            assert_eq!(nodes.decide(changed).await.reason, Reason::AccountSuspended);
        }
        for member in &members[1..5] {
            assert!(
                nodes.decide(*member).await.allowed,
                "read again, still allowed"
            );
        }
        drop(nodes);
        drop(db);
    });
}

/// Users and the catalog are versioned by what decisions read of them, not by the
/// platform trail: a login on another node (which appends `session.create` to that
/// trail) leaves every cached user valid — the next decisions need no read — while a
/// user's suspension there is seen by the very next decisions, twenty in parallel.
#[test]
fn a_login_elsewhere_leaves_cached_users_valid_and_a_suspension_is_seen_at_once() {
    use std::sync::Arc;

    use domain::authz::Reason;

    tests::pg::run(async {
        let db = tests::pg::TestDb::create().await;
        let store = db.store(2).await;
        let harness =
            Harness::new(Arc::new(store.clone())).with_other_node(Arc::new(db.store(2).await));
        let nodes = TwoNodes::new(harness, 3).await;
        let members = nodes.members.clone();
        for member in &members {
            assert!(nodes.decide(*member).await.allowed);
        }
        let reads = store.facts_reads();
        nodes
            .other_node
            .login(&email("m1@acme.example"), PASSWORD, "req-login")
            .await
            .expect("login on the other node");
        for member in &members {
            assert!(nodes.decide(*member).await.allowed);
        }
        assert_eq!(
            store.facts_reads(),
            reads,
            "a login made no cached user stale"
        );
        nodes
            .other_node
            .set_user_state(&nodes.root, &members[2], UserState::Suspended)
            .await
            .expect("suspended on the other node");
        // The very next decisions, twenty at once, all see it.
        let next = futures::future::join_all((0..20).map(|_| nodes.decide(members[2]))).await;
        for decision in next {
            assert_eq!(decision.reason, Reason::SubjectSuspended);
        }
        assert!(store.facts_reads() > reads);
        drop(nodes);
        drop(db);
    });
}
