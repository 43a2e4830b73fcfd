//! Tenant onboarding diagnostics (SPEC §6) end to end: tenants built through the public
//! use cases into each state of each check, on PostgreSQL and (where the state can be
//! reached without raw SQL) on the in-memory store. Every scenario asserts the check's
//! id and status, the overall status, the exit code `user-engine diagnose` would end
//! with (by running the command's own code, `server::diagnose`), that the report a
//! caller gets equals the operator's, and that following the remedy turns the check
//! green. Also here: the HTTP endpoint's isolation (200, 401, 403, 404, 400).

use std::collections::BTreeSet;
use std::sync::Arc;

use adapters_pg::relay::Relay;
use async_trait::async_trait;
use diagnostics::{ids, Check, CheckStatus, Options, Report, Status};
use domain::audit::Partition;
use domain::event::Event;
use domain::fakes::{FakeTotp, MemStore};
use domain::ids::{Assurance, DisplayName, RoleName, ScopeName, TenantId, UserId};
use domain::model::{TenantState, UserState};
use domain::relay::{relay_once, EventPublisher};
use domain::usecases::{AddMember, Caller, NewApiKey, NewCatalogScope, TenantChange, UserRef};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use server::diagnose::{exit_code, Target};
use sqlx::Connection;
use tests::harness::{at, email, scope, tenant_id, user_of, Harness, PASSWORD};
use tests::http::{assert_problem, spawn_app, TestApp};
use tests::pg::TestDb;
use time::Duration;

/// The options every scenario runs with: a relay is expected, one minute of lag is fine.
const OPTIONS: Options = Options {
    outbox_lag_warn: Duration::seconds(60),
    relay_expected: true,
};

/// A publisher that acknowledges everything: the relay running, for the tests.
struct AcceptAll;

#[async_trait]
impl EventPublisher for AcceptAll {
    async fn publish(&self, _: &Event) -> Result<(), String> {
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pg,
    Mem,
}

/// The store under test, with what the tests need beyond the engine.
enum Backend {
    Pg { db: Arc<TestDb>, relay: Relay },
    Mem(Arc<MemStore>),
}

/// What the fixture builds on top of a ready tenant's minimum.
#[derive(Debug, Clone, Copy)]
struct Setup {
    second_admin: bool,
    second_admin_totp: bool,
}

const READY: Setup = Setup {
    second_admin: true,
    second_admin_totp: true,
};

/// A tenant `acme` with its admin (and a second one), a member, TOTP where asked, and
/// the outbox relayed; plus a platform root.
struct World {
    h: Harness,
    backend: Backend,
    root: Caller,
    tenant: TenantId,
    /// The first admin, at aal2.
    admin: Caller,
    /// The second admin at aal2, when the setup made one.
    second: Option<Caller>,
}

impl World {
    async fn build(kind: Kind, setup: Setup) -> Self {
        let (h, backend) = match kind {
            Kind::Pg => {
                let db = TestDb::create().await;
                let store = db.store(4).await;
                let relay = Relay::new(&store);
                let mut h = Harness::new(Arc::new(store));
                let db = Arc::new(db);
                h.keep_alive = Some(db.clone());
                (h, Backend::Pg { db, relay })
            }
            Kind::Mem => {
                let (h, store) = Harness::fake();
                (h, Backend::Mem(store))
            }
        };
        let root = h.root().await;
        let (tenant, admin) = h.tenant(&root, "acme").await;
        enrol_totp(&h, "admin@acme.example").await;
        let second = if setup.second_admin {
            let second = h
                .member(
                    &root,
                    &admin,
                    &tenant,
                    "second@acme.example",
                    &["tenant_admin"],
                )
                .await;
            if setup.second_admin_totp {
                enrol_totp(&h, "second@acme.example").await;
            }
            Some(at(&second, Assurance::Aal2))
        } else {
            None
        };
        h.member(&root, &admin, &tenant, "dev@acme.example", &["member"])
            .await;
        let world = Self {
            h,
            backend,
            root,
            tenant,
            admin,
            second,
        };
        world.relay().await;
        world
    }

    /// One pass of the relay over every waiting event.
    async fn relay(&self) {
        match &self.backend {
            Backend::Pg { relay, .. } => {
                while relay_once(relay, &AcceptAll, 500).await.expect("relayed") > 0 {}
            }
            Backend::Mem(store) => {
                store.publish_all().await;
            }
        }
    }

    fn db(&self) -> &TestDb {
        match &self.backend {
            Backend::Pg { db, .. } => db,
            Backend::Mem(_) => unreachable!("a PostgreSQL scenario"),
        }
    }

    /// The report, as a caller (the platform root, who may read any tenant's) gets it
    /// and as `user-engine diagnose --tenant acme` computes it: the two must agree.
    async fn report_with(&self, options: &Options) -> Report {
        let via_caller = diagnostics::diagnose(&self.h.engine, &self.root, &self.tenant, options)
            .await
            .expect("diagnosed as a caller");
        let via_cli = server::diagnose::run(
            &self.h.engine,
            &Target::Tenant(self.tenant.clone()),
            options,
        )
        .await
        .expect("diagnosed as the command does");
        assert_eq!(via_cli, vec![via_caller.clone()], "caller and CLI disagree");
        assert_eq!(
            via_caller
                .checks
                .iter()
                .map(|check| check.id)
                .collect::<Vec<_>>(),
            ids::ALL,
            "every check, every time"
        );
        via_caller
    }

    async fn report(&self) -> Report {
        self.report_with(&OPTIONS).await
    }

    /// Asserts one check's status, the overall status and the exit code; returns the check.
    async fn expect(&self, id: &str, status: CheckStatus, overall: Status) -> Check {
        let report = self.report().await;
        let check = report.check(id).cloned().expect("the check is reported");
        assert_eq!(check.status, status, "{id}: {report:#?}");
        assert_eq!(report.status, overall, "{report:#?}");
        let expected_exit = match overall {
            Status::Ready => 0,
            Status::Degraded => 1,
            Status::NotReady => 2,
        };
        assert_eq!(exit_code(std::slice::from_ref(&report)), expected_exit);
        assert_eq!(
            check.remedy.is_some(),
            status != CheckStatus::Pass,
            "a remedy exactly when the check did not pass: {check:?}"
        );
        check
    }

    async fn expect_ready(&self) {
        let report = self.report().await;
        assert_eq!(report.status, Status::Ready, "{report:#?}");
        assert_eq!(exit_code(std::slice::from_ref(&report)), 0);
    }

    async fn trail_len(&self) -> u64 {
        self.h
            .engine
            .verify_trail(&Partition::Tenant(self.tenant.clone()))
            .await
            .expect("the trail is readable")
            .expect("the trail is intact")
    }
}

/// Logs `address` in, enrols TOTP and confirms it with the fake authenticator's code.
async fn enrol_totp(h: &Harness, address: &str) {
    let session = h
        .engine
        .login(&email(address), PASSWORD, "login")
        .await
        .expect("login");
    let caller = Caller {
        principal: h
            .engine
            .authenticate(&session.token)
            .await
            .expect("authenticated"),
        request_id: "totp".to_owned(),
    };
    let enrolment = h.engine.enroll_totp(&caller).await.expect("enrolment");
    let code = FakeTotp::code(&enrolment.secret, FakeTotp::step(h.clock_now()));
    h.engine
        .confirm_totp(&caller, &code)
        .await
        .expect("confirmed");
}

/// The JSON body of the call `prefix` (e.g. `PUT /v1/tenants/acme/scopes`) in a remedy:
/// the test follows the remedy as written, not a paraphrase of it.
fn body_of(remedy: &str, prefix: &str) -> Value {
    let start = remedy
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix} in {remedy}"))
        + prefix.len();
    let rest = remedy[start..].trim_start();
    serde_json::Deserializer::from_str(rest)
        .into_iter::<Value>()
        .next()
        .expect("a JSON body")
        .expect("valid JSON")
}

fn scopes_in(body: &Value) -> BTreeSet<ScopeName> {
    body["scopes"]
        .as_array()
        .expect("scopes")
        .iter()
        .map(|name| scope(name.as_str().expect("a scope name")))
        .collect()
}

fn default_scopes() -> BTreeSet<ScopeName> {
    domain::catalog::default_enabled_scopes()
        .into_iter()
        .collect()
}

async fn add_docs_edit_to_the_catalog(world: &World) {
    world
        .h
        .engine
        .add_catalog_scope(
            &world.root,
            NewCatalogScope {
                name: scope("docs:edit"),
                description: "edit documents".to_owned(),
                platform_only: false,
                min_assurance: Assurance::Aal1,
            },
        )
        .await
        .expect("catalog scope added");
}

async fn set_scopes(world: &World, scopes: BTreeSet<ScopeName>) {
    world
        .h
        .engine
        .set_enabled_scopes(&world.root, &world.tenant, scopes)
        .await
        .expect("scopes set");
}

async fn put_role(world: &World, role: &str, scopes: BTreeSet<ScopeName>) {
    world
        .h
        .engine
        .put_role(
            &world.admin,
            &world.tenant,
            &RoleName::parse(role).expect("role"),
            scopes,
        )
        .await
        .expect("binding put");
}

// ---- the scenarios -----------------------------------------------------------------

async fn a_fully_ready_tenant_passes_every_check_and_the_probe_leaves_no_trace(kind: Kind) {
    let world = World::build(kind, READY).await;
    let before = world.trail_len().await;
    let report = world.report().await;
    assert_eq!(report.status, Status::Ready, "{report:#?}");
    assert!(report
        .checks
        .iter()
        .all(|check| check.status == CheckStatus::Pass && check.remedy.is_none()));
    assert_eq!(exit_code(std::slice::from_ref(&report)), 0);
    // The audit.writable probe was rolled back: no record, no consumed seq, and the
    // next real change continues the chain right after the last record.
    assert_eq!(world.trail_len().await, before);
    world
        .h
        .engine
        .update_tenant(
            &world.admin,
            &world.tenant,
            TenantChange {
                display_name: Some(DisplayName::parse("Acme Corp").expect("name")),
                state: None,
            },
        )
        .await
        .expect("renamed");
    assert_eq!(world.trail_len().await, before + 1);
}

async fn a_suspended_tenant_is_not_ready_until_reactivated(kind: Kind) {
    let world = World::build(kind, READY).await;
    let suspend = |state| TenantChange {
        display_name: None,
        state: Some(state),
    };
    world
        .h
        .engine
        .update_tenant(&world.root, &world.tenant, suspend(TenantState::Suspended))
        .await
        .expect("suspended");
    let check = world
        .expect(ids::TENANT_ACTIVE, CheckStatus::Fail, Status::NotReady)
        .await;
    assert_eq!(
        body_of(
            check.remedy.as_deref().unwrap_or_default(),
            "PATCH /v1/tenants/acme"
        ),
        json!({"state": "active"})
    );
    world
        .h
        .engine
        .update_tenant(&world.root, &world.tenant, suspend(TenantState::Active))
        .await
        .expect("reactivated");
    world
        .expect(ids::TENANT_ACTIVE, CheckStatus::Pass, Status::Ready)
        .await;
}

async fn one_admin_only_is_degraded_until_a_second_admin_is_added(kind: Kind) {
    let world = World::build(
        kind,
        Setup {
            second_admin: false,
            second_admin_totp: false,
        },
    )
    .await;
    world
        .expect(ids::ADMINS_PRESENT, CheckStatus::Pass, Status::Degraded)
        .await;
    let check = world
        .expect(ids::ADMINS_REDUNDANT, CheckStatus::Warn, Status::Degraded)
        .await;
    let remedy = check.remedy.unwrap_or_default();
    assert!(remedy.starts_with("as a tenant admin at aal2: POST /v1/tenants/acme/members"));
    let body = body_of(&remedy, "POST /v1/tenants/acme/members");
    assert_eq!(body["roles"], json!(["tenant_admin"]));
    // The remedy as written, with a real address for `<admin email>`.
    world.h.user(&world.root, "deputy@acme.example").await;
    world
        .h
        .engine
        .add_member(
            &world.admin,
            &world.tenant,
            AddMember {
                user: UserRef::Email(email("deputy@acme.example")),
                roles: [RoleName::tenant_admin()].into_iter().collect(),
            },
        )
        .await
        .expect("second admin added");
    enrol_totp(&world.h, "deputy@acme.example").await;
    world
        .expect(ids::ADMINS_REDUNDANT, CheckStatus::Pass, Status::Ready)
        .await;
}

async fn an_admin_without_totp_is_degraded_until_they_enrol(kind: Kind) {
    let world = World::build(
        kind,
        Setup {
            second_admin: true,
            second_admin_totp: false,
        },
    )
    .await;
    let check = world
        .expect(ids::ADMINS_MFA, CheckStatus::Warn, Status::Degraded)
        .await;
    assert!(check.detail.contains("second@acme.example"), "{check:?}");
    assert!(!check.detail.contains("admin@acme.example"), "{check:?}");
    let remedy = check.remedy.unwrap_or_default();
    assert!(remedy.contains("POST /v1/me/totp, then POST /v1/me/totp/confirm"));
    enrol_totp(&world.h, "second@acme.example").await;
    world
        .expect(ids::ADMINS_MFA, CheckStatus::Pass, Status::Ready)
        .await;
}

async fn an_admin_suspended_platform_wide_cannot_act_until_reactivated(kind: Kind) {
    let world = World::build(kind, READY).await;
    let second = user_of(world.second.as_ref().expect("a second admin"));
    let first = user_of(&world.admin);
    let set_state = |user: UserId, state| {
        let world = &world;
        async move {
            world
                .h
                .engine
                .set_user_state(&world.root, &user, state)
                .await
                .expect("state set");
        }
    };
    set_state(second, UserState::Suspended).await;
    // One admin left who can act: present, but not redundant.
    world
        .expect(ids::ADMINS_PRESENT, CheckStatus::Pass, Status::Degraded)
        .await;
    let check = world
        .expect(ids::ADMINS_REDUNDANT, CheckStatus::Warn, Status::Degraded)
        .await;
    assert!(check
        .detail
        .contains("second@acme.example (user suspended platform-wide)"));
    set_state(first, UserState::Suspended).await;
    let check = world
        .expect(ids::ADMINS_PRESENT, CheckStatus::Fail, Status::NotReady)
        .await;
    let remedy = check.remedy.unwrap_or_default();
    for user in [first, second] {
        let call = format!("PATCH /v1/users/{user}");
        assert!(
            remedy.contains(&format!("as a platform root: {call}")),
            "{remedy}"
        );
        assert_eq!(body_of(&remedy, &call), json!({"state": "active"}));
    }
    set_state(first, UserState::Active).await;
    world
        .expect(ids::ADMINS_PRESENT, CheckStatus::Pass, Status::Degraded)
        .await;
    set_state(second, UserState::Active).await;
    world
        .expect(ids::ADMINS_REDUNDANT, CheckStatus::Pass, Status::Ready)
        .await;
}

async fn disabled_engine_scopes_degrade_and_administration_scopes_block(kind: Kind) {
    let world = World::build(kind, READY).await;
    let mut scopes = default_scopes();
    scopes.remove(&scope("audit:read"));
    set_scopes(&world, scopes.clone()).await;
    world
        .expect(
            ids::CATALOG_SCOPES_ENABLED,
            CheckStatus::Warn,
            Status::Degraded,
        )
        .await;
    scopes.remove(&scope("members:write"));
    set_scopes(&world, scopes).await;
    let check = world
        .expect(
            ids::CATALOG_SCOPES_ENABLED,
            CheckStatus::Fail,
            Status::NotReady,
        )
        .await;
    let body = body_of(
        check.remedy.as_deref().unwrap_or_default(),
        "PUT /v1/tenants/acme/scopes",
    );
    set_scopes(&world, scopes_in(&body)).await;
    world
        .expect(
            ids::CATALOG_SCOPES_ENABLED,
            CheckStatus::Pass,
            Status::Ready,
        )
        .await;
}

async fn a_scope_disabled_after_a_binding_referenced_it_is_degraded_until_unbound(kind: Kind) {
    let world = World::build(kind, READY).await;
    add_docs_edit_to_the_catalog(&world).await;
    let mut with_docs = default_scopes();
    with_docs.insert(scope("docs:edit"));
    set_scopes(&world, with_docs).await;
    put_role(
        &world,
        "editor",
        [scope("docs:edit"), scope("tenant:read")]
            .into_iter()
            .collect(),
    )
    .await;
    world.expect_ready().await;
    set_scopes(&world, default_scopes()).await;
    let check = world
        .expect(ids::BINDINGS_VALID, CheckStatus::Warn, Status::Degraded)
        .await;
    assert!(check
        .detail
        .contains("role editor binds scopes that are not enabled"));
    assert!(check.detail.contains("docs:edit"));
    let body = body_of(
        check.remedy.as_deref().unwrap_or_default(),
        "PUT /v1/tenants/acme/roles/editor",
    );
    assert_eq!(body, json!({"scopes": ["tenant:read"]}));
    put_role(&world, "editor", scopes_in(&body)).await;
    world
        .expect(ids::BINDINGS_VALID, CheckStatus::Pass, Status::Ready)
        .await;
}

async fn a_role_in_use_with_no_binding_is_degraded_until_bound(kind: Kind) {
    let world = World::build(kind, READY).await;
    put_role(
        &world,
        "editor",
        [scope("tenant:read")].into_iter().collect(),
    )
    .await;
    world
        .h
        .member(
            &world.root,
            &world.admin,
            &world.tenant,
            "editor@acme.example",
            &["editor"],
        )
        .await;
    world
        .h
        .engine
        .delete_role(
            &world.admin,
            &world.tenant,
            &RoleName::parse("editor").expect("role"),
        )
        .await
        .expect("binding deleted");
    let check = world
        .expect(ids::BINDINGS_VALID, CheckStatus::Warn, Status::Degraded)
        .await;
    assert!(check
        .detail
        .contains("role editor is held by 1 member but has no binding"));
    assert!(check
        .remedy
        .as_deref()
        .unwrap_or_default()
        .contains("PUT /v1/tenants/acme/roles/editor"));
    put_role(
        &world,
        "editor",
        [scope("tenant:read")].into_iter().collect(),
    )
    .await;
    world
        .expect(ids::BINDINGS_VALID, CheckStatus::Pass, Status::Ready)
        .await;
}

async fn an_enabled_scope_no_role_binds_is_degraded_until_bound(kind: Kind) {
    let world = World::build(kind, READY).await;
    add_docs_edit_to_the_catalog(&world).await;
    let mut with_docs = default_scopes();
    with_docs.insert(scope("docs:edit"));
    set_scopes(&world, with_docs).await;
    let check = world
        .expect(ids::BINDINGS_PRESENT, CheckStatus::Warn, Status::Degraded)
        .await;
    assert!(check.detail.contains("docs:edit"));
    let body = body_of(
        check.remedy.as_deref().unwrap_or_default(),
        "PUT /v1/tenants/acme/roles/member",
    );
    assert_eq!(
        body,
        json!({"scopes": ["docs:edit", "profiles:read", "roles:read", "tenant:read"]})
    );
    put_role(&world, "member", scopes_in(&body)).await;
    world
        .expect(ids::BINDINGS_PRESENT, CheckStatus::Pass, Status::Ready)
        .await;
}

async fn an_api_key_left_with_a_disabled_scope_is_degraded_until_replaced(kind: Kind) {
    let world = World::build(kind, READY).await;
    let old = world
        .h
        .engine
        .create_api_key(
            &world.admin,
            &world.tenant,
            NewApiKey {
                name: DisplayName::parse("ci").expect("name"),
                scopes: [scope("audit:read"), scope("tenant:read")]
                    .into_iter()
                    .collect(),
            },
        )
        .await
        .expect("key created");
    let mut scopes = default_scopes();
    scopes.remove(&scope("audit:read"));
    set_scopes(&world, scopes).await;
    let check = world
        .expect(
            ids::API_KEYS_SCOPES_ENABLED,
            CheckStatus::Warn,
            Status::Degraded,
        )
        .await;
    let remedy = check.remedy.unwrap_or_default();
    let body = body_of(&remedy, "POST /v1/tenants/acme/api-keys");
    assert_eq!(body, json!({"name": "ci", "scopes": ["tenant:read"]}));
    assert!(remedy.contains(&format!("DELETE /v1/tenants/acme/api-keys/{}", old.key.id)));
    world
        .h
        .engine
        .create_api_key(
            &world.admin,
            &world.tenant,
            NewApiKey {
                name: DisplayName::parse("ci").expect("name"),
                scopes: scopes_in(&body),
            },
        )
        .await
        .expect("replacement created");
    world
        .h
        .engine
        .revoke_api_key(&world.admin, &world.tenant, &old.key.id)
        .await
        .expect("old key revoked");
    world
        .expect(
            ids::API_KEYS_SCOPES_ENABLED,
            CheckStatus::Pass,
            Status::Degraded,
        )
        .await;
}

async fn events_unpublished_past_the_threshold_while_the_relay_is_stopped_warn(kind: Kind) {
    let world = World::build(kind, READY).await;
    // A change while the relay is stopped: its events wait in the outbox.
    world
        .h
        .member(
            &world.root,
            &world.admin,
            &world.tenant,
            "late@acme.example",
            &["member"],
        )
        .await;
    world
        .expect(ids::OUTBOX_LAG, CheckStatus::Pass, Status::Ready)
        .await;
    world.h.clock.advance(Duration::seconds(61));
    let check = world
        .expect(ids::OUTBOX_LAG, CheckStatus::Warn, Status::Degraded)
        .await;
    assert!(check.detail.contains("waiting for the relay"), "{check:?}");
    assert!(check
        .remedy
        .as_deref()
        .unwrap_or_default()
        .contains("user-engine relay"));
    // Without a relay configured, waiting is the feed-only normal.
    let feed_only = Options {
        relay_expected: false,
        ..OPTIONS
    };
    let report = world.report_with(&feed_only).await;
    assert_eq!(
        report.check(ids::OUTBOX_LAG).map(|check| check.status),
        Some(CheckStatus::Pass)
    );
    // The remedy: run the relay.
    world.relay().await;
    world
        .expect(ids::OUTBOX_LAG, CheckStatus::Pass, Status::Ready)
        .await;
}

async fn a_tampered_audit_chain_is_not_ready_until_the_records_are_restored(kind: Kind) {
    assert_eq!(kind, Kind::Pg, "tampering needs the database owner");
    let world = World::build(kind, READY).await;
    let mut owner = world.db().owner_connection().await;
    let original: String =
        sqlx::query_scalar("select reason from audit_records where partition = 'acme' and seq = 2")
            .fetch_one(&mut owner)
            .await
            .expect("a record at seq 2");
    // As the owner, with the append-only trigger off for the deed only.
    let tamper = |reason: String| {
        let db = world.db();
        async move {
            let mut owner = db.owner_connection().await;
            let mut tx = owner.begin().await.expect("owner transaction");
            for statement in [
                "alter table audit_records disable trigger audit_records_append_only",
                "update audit_records set reason = $1 where partition = 'acme' and seq = 2",
                "alter table audit_records enable trigger audit_records_append_only",
            ] {
                sqlx::query(statement)
                    .bind(&reason)
                    .execute(&mut *tx)
                    .await
                    .expect("statement runs");
            }
            tx.commit().await.expect("committed");
        }
    };
    tamper("nothing to see here".to_owned()).await;
    let check = world
        .expect(ids::AUDIT_CHAIN_INTACT, CheckStatus::Fail, Status::NotReady)
        .await;
    assert!(check.detail.contains("breaks at seq 2"), "{check:?}");
    assert!(check.detail.contains("modified"), "{check:?}");
    assert!(check
        .remedy
        .as_deref()
        .unwrap_or_default()
        .contains("user-engine audit verify --tenant acme"));
    // Appends still continue the chain head: only the old record is damaged.
    let report = world.report().await;
    assert_eq!(
        report.check(ids::AUDIT_WRITABLE).map(|check| check.status),
        Some(CheckStatus::Pass)
    );
    // The remedy: restore the record from a backup (here, the value saved above).
    tamper(original).await;
    world
        .expect(ids::AUDIT_CHAIN_INTACT, CheckStatus::Pass, Status::Ready)
        .await;
}

async fn an_audit_store_that_refuses_appends_is_not_ready_until_granted_again(kind: Kind) {
    assert_eq!(kind, Kind::Pg, "privileges are PostgreSQL's");
    let world = World::build(kind, READY).await;
    let before = world.trail_len().await;
    let mut owner = world.db().owner_connection().await;
    sqlx::query("revoke insert on audit_records from user_engine_app")
        .execute(&mut owner)
        .await
        .expect("revoked");
    let check = world
        .expect(ids::AUDIT_WRITABLE, CheckStatus::Fail, Status::NotReady)
        .await;
    assert!(check.detail.contains("refused an append"), "{check:?}");
    let remedy = check.remedy.unwrap_or_default();
    let command = "grant select, insert on audit_records to user_engine_app";
    assert!(remedy.contains(command), "{remedy}");
    sqlx::query(command)
        .execute(&mut owner)
        .await
        .expect("granted");
    world
        .expect(ids::AUDIT_WRITABLE, CheckStatus::Pass, Status::Ready)
        .await;
    assert_eq!(world.trail_len().await, before);
}

async fn all_tenants_are_diagnosed_and_the_worst_sets_the_exit_code(kind: Kind) {
    let world = World::build(kind, READY).await;
    // globex has one admin without TOTP: degraded.
    world.h.tenant(&world.root, "globex").await;
    let reports = server::diagnose::run(&world.h.engine, &Target::All, &OPTIONS)
        .await
        .expect("diagnosed");
    let statuses: Vec<(&str, Status)> = reports
        .iter()
        .map(|report| (report.tenant.as_str(), report.status))
        .collect();
    assert_eq!(
        statuses,
        vec![("acme", Status::Ready), ("globex", Status::Degraded)]
    );
    assert_eq!(exit_code(&reports), 1);
    let text = server::diagnose::render(&reports, &Target::All, false, false);
    assert_eq!(
        text.lines().last(),
        Some("2 tenants: 1 ready, 1 degraded (globex), 0 not ready")
    );
    let unknown = server::diagnose::run(
        &world.h.engine,
        &Target::Tenant(tenant_id("nope")),
        &OPTIONS,
    )
    .await;
    assert!(
        unknown
            .as_ref()
            .is_err_and(|message| message.contains("no tenant nope")),
        "{unknown:?}"
    );
}

/// One `#[test]` per scenario and store.
macro_rules! scenarios {
    ($module:ident, $kind:expr, [$($name:ident),* $(,)?]) => {
        mod $module {
            $(
                #[test]
                fn $name() {
                    tests::pg::run(super::$name($kind));
                }
            )*
        }
    };
}

scenarios!(
    pg,
    super::Kind::Pg,
    [
        a_fully_ready_tenant_passes_every_check_and_the_probe_leaves_no_trace,
        a_suspended_tenant_is_not_ready_until_reactivated,
        one_admin_only_is_degraded_until_a_second_admin_is_added,
        an_admin_without_totp_is_degraded_until_they_enrol,
        an_admin_suspended_platform_wide_cannot_act_until_reactivated,
        disabled_engine_scopes_degrade_and_administration_scopes_block,
        a_scope_disabled_after_a_binding_referenced_it_is_degraded_until_unbound,
        a_role_in_use_with_no_binding_is_degraded_until_bound,
        an_enabled_scope_no_role_binds_is_degraded_until_bound,
        an_api_key_left_with_a_disabled_scope_is_degraded_until_replaced,
        events_unpublished_past_the_threshold_while_the_relay_is_stopped_warn,
        a_tampered_audit_chain_is_not_ready_until_the_records_are_restored,
        an_audit_store_that_refuses_appends_is_not_ready_until_granted_again,
        all_tenants_are_diagnosed_and_the_worst_sets_the_exit_code,
    ]
);

scenarios!(
    fake,
    super::Kind::Mem,
    [
        a_fully_ready_tenant_passes_every_check_and_the_probe_leaves_no_trace,
        a_suspended_tenant_is_not_ready_until_reactivated,
        one_admin_only_is_degraded_until_a_second_admin_is_added,
        an_admin_without_totp_is_degraded_until_they_enrol,
        an_admin_suspended_platform_wide_cannot_act_until_reactivated,
        disabled_engine_scopes_degrade_and_administration_scopes_block,
        a_scope_disabled_after_a_binding_referenced_it_is_degraded_until_unbound,
        a_role_in_use_with_no_binding_is_degraded_until_bound,
        an_enabled_scope_no_role_binds_is_degraded_until_bound,
        an_api_key_left_with_a_disabled_scope_is_degraded_until_replaced,
        events_unpublished_past_the_threshold_while_the_relay_is_stopped_warn,
        all_tenants_are_diagnosed_and_the_worst_sets_the_exit_code,
    ]
);

// ---- over HTTP ---------------------------------------------------------------------

const MEMBER_PASSWORD: &str = "member password 123";

async fn new_user(app: &TestApp, root: &str, address: &str) -> String {
    let created = app
        .post(
            "/v1/users",
            root,
            json!({ "email": address, "password": MEMBER_PASSWORD }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    created.body["id"].as_str().expect("an id").to_owned()
}

/// A tenant whose first admin is a new active user; returns the admin's token.
async fn tenant_with_admin(app: &TestApp, root: &str, tenant: &str) -> String {
    let address = format!("admin@{tenant}.example");
    let admin = new_user(app, root, &address).await;
    let created = app
        .post(
            "/v1/tenants",
            root,
            json!({"id": tenant, "display_name": "Tenant", "admin": {"user_id": admin}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    app.login(&address, MEMBER_PASSWORD).await
}

#[test]
fn the_endpoint_reports_to_an_admin_and_is_isolated_like_every_tenant_route() {
    tests::pg::run(async {
        let app = spawn_app().await;
        let root = app.root_token().await;
        let admin = tenant_with_admin(&app, &root, "acme").await;
        let outsider = tenant_with_admin(&app, &root, "globex").await;
        let member_id = new_user(&app, &root, "dev@acme.example").await;
        let added = app
            .post(
                "/v1/tenants/acme/members",
                &admin,
                json!({"user_id": member_id, "roles": ["member"]}),
            )
            .await;
        assert_eq!(added.status, StatusCode::CREATED, "{added:?}");
        let member = app.login("dev@acme.example", MEMBER_PASSWORD).await;
        let trail = Partition::Tenant(tenant_id("acme"));
        let records = app.engine.verify_trail(&trail).await.unwrap().unwrap();

        let reply = app.get("/v1/tenants/acme/diagnostics", &admin).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
        assert_eq!(reply.body["tenant"], "acme");
        // One admin, without TOTP: degraded, with both warnings and their remedies.
        assert_eq!(reply.body["status"], "degraded", "{reply:?}");
        let checks = reply.body["checks"].as_array().expect("checks");
        let listed: Vec<&str> = checks
            .iter()
            .filter_map(|check| check["id"].as_str())
            .collect();
        assert_eq!(listed, ids::ALL);
        for check in checks {
            let keys: BTreeSet<&str> = check
                .as_object()
                .expect("a check object")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                ["detail", "id", "remedy", "status"].into_iter().collect()
            );
            let warned =
                ["admins.redundant", "admins.mfa"].contains(&check["id"].as_str().unwrap());
            assert_eq!(
                check["status"],
                if warned { "warn" } else { "pass" },
                "{check}"
            );
            assert_eq!(check["remedy"].is_string(), warned, "{check}");
        }
        // A successful read leaves no trace in the trail (the probe was rolled back).
        assert_eq!(app.engine.verify_trail(&trail).await.unwrap(), Ok(records));

        // The platform root may read any tenant's report.
        let reply = app.get("/v1/tenants/acme/diagnostics", &root).await;
        assert_eq!(reply.status, StatusCode::OK, "{reply:?}");

        // A member of another tenant learns nothing: the same 404 as a missing tenant.
        let reply = app.get("/v1/tenants/acme/diagnostics", &outsider).await;
        assert_problem(&reply, StatusCode::NOT_FOUND, "tenant_not_found");
        let reply = app.get("/v1/tenants/nowhere/diagnostics", &admin).await;
        assert_problem(&reply, StatusCode::NOT_FOUND, "tenant_not_found");
        // A member without diagnostics:read is refused with the reason.
        let reply = app.get("/v1/tenants/acme/diagnostics", &member).await;
        assert_problem(&reply, StatusCode::FORBIDDEN, "forbidden");
        assert_eq!(reply.body["reason"], "missing_scope", "{reply:?}");
        // No token, a bad token, a bad slug.
        let reply = app
            .send(Method::GET, "/v1/tenants/acme/diagnostics", None, None)
            .await;
        assert_problem(&reply, StatusCode::UNAUTHORIZED, "unauthenticated");
        let reply = app.get("/v1/tenants/acme/diagnostics", "not-a-token").await;
        assert_problem(&reply, StatusCode::UNAUTHORIZED, "unauthenticated");
        let reply = app.get("/v1/tenants/Not_A_Slug/diagnostics", &admin).await;
        assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_tenant_id");
        // Refusals are audited in the tenant's trail, like every tenant route's: the
        // unauthenticated requests too (SPEC §3.6), the bad slug names no tenant.
        let records_after = app.engine.verify_trail(&trail).await.unwrap().unwrap();
        assert_eq!(
            records_after,
            records + 4,
            "the 404, the 403 and the two unauthenticated requests are recorded"
        );
    });
}
