//! SPEC §3.1's freshness rule over real HTTP: a change to membership, account state,
//! roles, bindings, enabled scopes, tenant state, user state or a credential shows in the
//! very next authorize decision, however many identical decisions came before it, so no
//! cache, wherever it sits and however it is built, may serve a stale answer. Each test
//! warms `POST /v1/tenants/{t}/authorize` with repeated identical checks, makes one
//! change through the API of another node on the same database, and asserts the next
//! answer of the first node; each on PostgreSQL (two processes' worth of nodes: their own
//! pools and caches) and on the embedded SQLite store.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tests::http::{
    assert_problem, assert_status, enrol_totp, new_user, spawn_app_on, text, Reply, StoreKind,
    TestApp,
};

const PASSWORD: &str = "fresh password 123";
const TENANT: &str = "acme";
/// The scope every check asks about: bound to [`ROLE`], which the member holds.
const SCOPE: &str = "members:read";
/// The custom role the member holds, bound to [`SCOPE`].
const ROLE: &str = "reader";
/// How many identical checks warm any cache before a change.
const WARM_UP: usize = 5;

/// What a check must answer.
#[derive(Debug, Clone, Copy)]
enum Expected {
    /// 200 allow through the binding of [`ROLE`].
    Allow,
    /// 200 deny with this reason.
    Deny(&'static str),
    /// The caller itself is refused: 403 `forbidden` with this reason.
    CallerForbidden(&'static str),
    /// The caller's credential is refused: 401 `unauthenticated`.
    CallerUnauthenticated,
}

/// Tenant `acme` with an admin (session at `aal2`), a member holding only [`ROLE`]
/// (bound to [`SCOPE`]), and a tenant API key holding only `authz:check`.
struct Acme {
    /// The node every check is sent to.
    app: TestApp,
    /// Another node on the same database, which every change is sent to.
    writer: TestApp,
    /// The bootstrap platform root's session.
    root: String,
    /// The tenant admin's session, a caller of the authorize API (`authz:check` through
    /// `tenant_admin`).
    admin: String,
    /// The member's user id: the subject of every check.
    member: String,
    /// A tenant API key restricted to `authz:check`, the other caller.
    key: String,
    key_id: String,
}

impl Acme {
    async fn new(store: StoreKind) -> Self {
        let app = spawn_app_on(store).await;
        let root = app.root_token().await;
        let admin_id = new_user(&app, &root, "admin@acme.example", PASSWORD).await;
        let member = new_user(&app, &root, "member@acme.example", PASSWORD).await;
        let created = app
            .post(
                "/v1/tenants",
                &root,
                json!({ "id": TENANT, "display_name": "Acme", "admin": { "user_id": admin_id } }),
            )
            .await;
        assert_status(&created, StatusCode::CREATED);
        let admin = app.login("admin@acme.example", PASSWORD).await;
        enrol_totp(&app, &admin).await;
        let bound = app
            .send(
                Method::PUT,
                &format!("/v1/tenants/{TENANT}/roles/{ROLE}"),
                Some(&admin),
                Some(json!({ "scopes": [SCOPE] })),
            )
            .await;
        assert_status(&bound, StatusCode::OK);
        let added = app
            .post(
                &format!("/v1/tenants/{TENANT}/members"),
                &admin,
                json!({ "user_id": member, "roles": [ROLE] }),
            )
            .await;
        assert_status(&added, StatusCode::CREATED);
        assert_eq!(added.body["roles"], json!([ROLE]));
        let key = app
            .post(
                &format!("/v1/tenants/{TENANT}/api-keys"),
                &admin,
                json!({ "name": "authorizer", "scopes": ["authz:check"] }),
            )
            .await;
        assert_status(&key, StatusCode::CREATED);
        let key_id = text(&key.body, "id").to_owned();
        let key = text(&key.body, "key").to_owned();
        Self {
            writer: app.another_node().await,
            app,
            root,
            admin,
            member,
            key,
            key_id,
        }
    }

    /// The API key first, then the admin's session.
    fn callers(&self) -> [&str; 2] {
        [&self.key, &self.admin]
    }

    /// The admin's session first, then the API key.
    fn session_first(&self) -> [&str; 2] {
        [&self.admin, &self.key]
    }

    fn member_path(&self) -> String {
        format!("/v1/tenants/{TENANT}/members/{}", self.member)
    }

    /// Sends a change through the other node's API and asserts its status.
    async fn change(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        status: StatusCode,
    ) {
        let reply = self.writer.send(method, path, Some(token), body).await;
        assert_status(&reply, status);
    }

    /// One authorize call by `caller` about `subject`, for [`SCOPE`], checked against
    /// `expected`; `what` names the call in a failure.
    async fn check(&self, what: &str, caller: &str, subject: Value, expected: Expected) -> Reply {
        let reply = self
            .app
            .post(
                &format!("/v1/tenants/{TENANT}/authorize"),
                caller,
                json!({ "subject": subject, "scope": SCOPE }),
            )
            .await;
        match expected {
            Expected::Allow => {
                assert_status(&reply, StatusCode::OK);
                assert_eq!(reply.body["decision"], "allow", "{what}: {reply:?}");
                assert_eq!(reply.body["reason"], "role_binding", "{what}: {reply:?}");
                assert_eq!(reply.body["matched_role"], ROLE, "{what}: {reply:?}");
            }
            Expected::Deny(reason) => {
                assert_status(&reply, StatusCode::OK);
                assert_eq!(reply.body["decision"], "deny", "{what}: {reply:?}");
                assert_eq!(reply.body["reason"], reason, "{what}: {reply:?}");
            }
            Expected::CallerForbidden(reason) => {
                assert_problem(&reply, StatusCode::FORBIDDEN, "forbidden");
                assert_eq!(reply.body["reason"], reason, "{what}: {reply:?}");
            }
            Expected::CallerUnauthenticated => {
                assert_problem(&reply, StatusCode::UNAUTHORIZED, "unauthenticated");
            }
        }
        reply
    }

    /// [`WARM_UP`] identical checks about `user` by each caller, each answering `expected`.
    async fn warm(&self, callers: &[&str], user: &str, expected: Expected) {
        for caller in callers {
            for round in 0..WARM_UP {
                self.check(&format!("warm-up {round}"), caller, subject(user), expected)
                    .await;
            }
        }
    }

    /// The very next check about `user` by each caller, in order, answering `expected`;
    /// returns the first caller's reply.
    async fn next(&self, callers: &[&str], user: &str, expected: Expected) -> Reply {
        let mut first = None;
        for caller in callers {
            let reply = self
                .check("the next call", caller, subject(user), expected)
                .await;
            first.get_or_insert(reply);
        }
        first.expect("at least one caller")
    }
}

/// A check's subject: `user` at `aal1`, vouched for by the caller.
fn subject(user: &str) -> Value {
    json!({ "user_id": user, "assurance": "aal1" })
}

async fn suspending_the_account_denies_the_very_next_decision_and_reactivating_allows_it(
    store: StoreKind,
) {
    let acme = Acme::new(store).await;
    let member_session = acme.app.login("member@acme.example", PASSWORD).await;
    let by_token = json!({ "token": member_session });
    acme.warm(&acme.callers(), &acme.member, Expected::Allow)
        .await;
    for round in 0..WARM_UP {
        acme.check(
            &format!("token warm-up {round}"),
            &acme.key,
            by_token.clone(),
            Expected::Allow,
        )
        .await;
    }

    acme.change(
        Method::PATCH,
        &acme.member_path(),
        &acme.admin,
        Some(json!({ "state": "suspended" })),
        StatusCode::OK,
    )
    .await;
    let denied = acme
        .next(
            &acme.callers(),
            &acme.member,
            Expected::Deny("account_suspended"),
        )
        .await;
    assert_eq!(denied.body["facts"]["account_state"], "suspended");
    acme.check(
        "the member's session as subject",
        &acme.key,
        by_token.clone(),
        Expected::Deny("account_suspended"),
    )
    .await;

    // Back again, asked first by the session caller.
    acme.warm(
        &acme.session_first(),
        &acme.member,
        Expected::Deny("account_suspended"),
    )
    .await;
    acme.change(
        Method::PATCH,
        &acme.member_path(),
        &acme.admin,
        Some(json!({ "state": "active" })),
        StatusCode::OK,
    )
    .await;
    let allowed = acme
        .next(&acme.session_first(), &acme.member, Expected::Allow)
        .await;
    assert_eq!(allowed.body["facts"]["account_state"], "active");
    acme.check(
        "the member's session as subject",
        &acme.admin,
        by_token,
        Expected::Allow,
    )
    .await;
}

async fn removing_the_member_denies_the_very_next_decision_and_adding_them_back_allows_it(
    store: StoreKind,
) {
    let acme = Acme::new(store).await;
    acme.warm(&acme.callers(), &acme.member, Expected::Allow)
        .await;

    acme.change(
        Method::DELETE,
        &acme.member_path(),
        &acme.admin,
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    let denied = acme
        .next(
            &acme.callers(),
            &acme.member,
            Expected::Deny("not_a_member"),
        )
        .await;
    assert_eq!(denied.body["facts"]["account_state"], Value::Null);

    acme.warm(
        &acme.callers(),
        &acme.member,
        Expected::Deny("not_a_member"),
    )
    .await;
    acme.change(
        Method::POST,
        &format!("/v1/tenants/{TENANT}/members"),
        &acme.admin,
        Some(json!({ "user_id": acme.member, "roles": [ROLE] })),
        StatusCode::CREATED,
    )
    .await;
    acme.next(&acme.callers(), &acme.member, Expected::Allow)
        .await;
}

async fn adding_a_user_allows_the_very_next_decision_after_warmed_denials(store: StoreKind) {
    let acme = Acme::new(store).await;
    let newcomer = new_user(&acme.app, &acme.root, "newcomer@example.com", PASSWORD).await;
    acme.warm(
        &acme.session_first(),
        &newcomer,
        Expected::Deny("not_a_member"),
    )
    .await;

    acme.change(
        Method::POST,
        &format!("/v1/tenants/{TENANT}/members"),
        &acme.admin,
        Some(json!({ "user_id": newcomer, "roles": [ROLE] })),
        StatusCode::CREATED,
    )
    .await;
    let allowed = acme
        .next(&acme.session_first(), &newcomer, Expected::Allow)
        .await;
    assert_eq!(allowed.body["facts"]["roles"], json!([ROLE]));
}

async fn changing_the_members_roles_denies_the_very_next_decision_and_restoring_them_allows_it(
    store: StoreKind,
) {
    let acme = Acme::new(store).await;
    acme.warm(&acme.callers(), &acme.member, Expected::Allow)
        .await;

    // `member` is bound to tenant:read, profiles:read and roles:read, not members:read.
    acme.change(
        Method::PATCH,
        &acme.member_path(),
        &acme.admin,
        Some(json!({ "roles": ["member"] })),
        StatusCode::OK,
    )
    .await;
    let denied = acme
        .next(
            &acme.callers(),
            &acme.member,
            Expected::Deny("missing_scope"),
        )
        .await;
    assert_eq!(denied.body["facts"]["roles"], json!(["member"]));

    acme.warm(
        &acme.callers(),
        &acme.member,
        Expected::Deny("missing_scope"),
    )
    .await;
    acme.change(
        Method::PATCH,
        &acme.member_path(),
        &acme.admin,
        Some(json!({ "roles": [ROLE] })),
        StatusCode::OK,
    )
    .await;
    acme.next(&acme.callers(), &acme.member, Expected::Allow)
        .await;
}

async fn rebinding_the_role_without_the_scope_denies_the_very_next_decision(store: StoreKind) {
    let acme = Acme::new(store).await;
    let binding = format!("/v1/tenants/{TENANT}/roles/{ROLE}");
    acme.warm(&acme.callers(), &acme.member, Expected::Allow)
        .await;

    // The admin's session is at aal2 since its TOTP enrolment: binding changes need it.
    acme.change(
        Method::PUT,
        &binding,
        &acme.admin,
        Some(json!({ "scopes": ["tenant:read"] })),
        StatusCode::OK,
    )
    .await;
    let denied = acme
        .next(
            &acme.callers(),
            &acme.member,
            Expected::Deny("missing_scope"),
        )
        .await;
    assert_eq!(denied.body["facts"]["roles"], json!([ROLE]));
    assert_eq!(denied.body["facts"]["scope_enabled"], true);

    acme.warm(
        &acme.callers(),
        &acme.member,
        Expected::Deny("missing_scope"),
    )
    .await;
    acme.change(
        Method::PUT,
        &binding,
        &acme.admin,
        Some(json!({ "scopes": ["tenant:read", SCOPE] })),
        StatusCode::OK,
    )
    .await;
    acme.next(&acme.session_first(), &acme.member, Expected::Allow)
        .await;

    // Deleting the binding leaves the role granting nothing.
    acme.warm(&acme.callers(), &acme.member, Expected::Allow)
        .await;
    acme.change(
        Method::DELETE,
        &binding,
        &acme.admin,
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    acme.next(
        &acme.callers(),
        &acme.member,
        Expected::Deny("missing_scope"),
    )
    .await;
}

async fn disabling_the_scope_for_the_tenant_denies_the_very_next_decision(store: StoreKind) {
    let acme = Acme::new(store).await;
    let path = format!("/v1/tenants/{TENANT}/scopes");
    let enabled = acme.app.get(&path, &acme.admin).await;
    assert_status(&enabled, StatusCode::OK);
    let all: Vec<Value> = enabled.body["scopes"].as_array().expect("scopes").clone();
    assert!(all.contains(&json!(SCOPE)), "{enabled:?}");
    let fewer: Vec<&Value> = all.iter().filter(|scope| **scope != SCOPE).collect();
    acme.warm(&acme.callers(), &acme.member, Expected::Allow)
        .await;

    acme.change(
        Method::PUT,
        &path,
        &acme.root,
        Some(json!({ "scopes": fewer })),
        StatusCode::OK,
    )
    .await;
    let denied = acme
        .next(
            &acme.callers(),
            &acme.member,
            Expected::Deny("scope_not_enabled"),
        )
        .await;
    assert_eq!(denied.body["facts"]["scope_enabled"], false);

    acme.warm(
        &acme.callers(),
        &acme.member,
        Expected::Deny("scope_not_enabled"),
    )
    .await;
    acme.change(
        Method::PUT,
        &path,
        &acme.root,
        Some(json!({ "scopes": all })),
        StatusCode::OK,
    )
    .await;
    acme.next(&acme.callers(), &acme.member, Expected::Allow)
        .await;
}

async fn suspending_the_tenant_refuses_the_very_next_call_and_resuming_allows_it(store: StoreKind) {
    let acme = Acme::new(store).await;
    let tenant_path = format!("/v1/tenants/{TENANT}");
    // The platform root asks too: its own `authz:check` survives a suspended tenant, so
    // it sees the decision about the member.
    let callers = [acme.key.as_str(), acme.admin.as_str(), acme.root.as_str()];
    acme.warm(&callers, &acme.member, Expected::Allow).await;

    acme.change(
        Method::PATCH,
        &tenant_path,
        &acme.root,
        Some(json!({ "state": "suspended" })),
        StatusCode::OK,
    )
    .await;
    // The tenant's own key and admin are refused `authz:check` itself (SPEC §3.2 step 4):
    // they are in the tenant, so it is a 403 with the reason, not the outsider's 404.
    acme.next(
        &acme.callers(),
        &acme.member,
        Expected::CallerForbidden("tenant_suspended"),
    )
    .await;
    let denied = acme
        .next(
            &[acme.root.as_str()],
            &acme.member,
            Expected::Deny("tenant_suspended"),
        )
        .await;
    assert_eq!(denied.body["facts"]["tenant_state"], "suspended");

    acme.warm(
        &acme.callers(),
        &acme.member,
        Expected::CallerForbidden("tenant_suspended"),
    )
    .await;
    acme.warm(
        &[acme.root.as_str()],
        &acme.member,
        Expected::Deny("tenant_suspended"),
    )
    .await;
    acme.change(
        Method::PATCH,
        &tenant_path,
        &acme.root,
        Some(json!({ "state": "active" })),
        StatusCode::OK,
    )
    .await;
    let allowed = acme.next(&callers, &acme.member, Expected::Allow).await;
    assert_eq!(allowed.body["facts"]["tenant_state"], "active");
}

async fn suspending_the_user_denies_the_very_next_decision_and_reactivating_allows_it(
    store: StoreKind,
) {
    let acme = Acme::new(store).await;
    let user_path = format!("/v1/users/{}", acme.member);
    acme.warm(&acme.callers(), &acme.member, Expected::Allow)
        .await;

    acme.change(
        Method::PATCH,
        &user_path,
        &acme.root,
        Some(json!({ "state": "suspended" })),
        StatusCode::OK,
    )
    .await;
    let denied = acme
        .next(
            &acme.callers(),
            &acme.member,
            Expected::Deny("subject_suspended"),
        )
        .await;
    assert_eq!(denied.body["facts"]["user_state"], "suspended");

    acme.warm(
        &acme.session_first(),
        &acme.member,
        Expected::Deny("subject_suspended"),
    )
    .await;
    acme.change(
        Method::PATCH,
        &user_path,
        &acme.root,
        Some(json!({ "state": "active" })),
        StatusCode::OK,
    )
    .await;
    acme.next(&acme.session_first(), &acme.member, Expected::Allow)
        .await;
}

async fn revoking_the_api_key_or_ending_the_session_refuses_its_very_next_call(store: StoreKind) {
    let acme = Acme::new(store).await;
    acme.warm(&[acme.key.as_str()], &acme.member, Expected::Allow)
        .await;

    acme.change(
        Method::DELETE,
        &format!("/v1/tenants/{TENANT}/api-keys/{}", acme.key_id),
        &acme.admin,
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    acme.next(
        &[acme.key.as_str()],
        &acme.member,
        Expected::CallerUnauthenticated,
    )
    .await;
    acme.warm(
        &[acme.key.as_str()],
        &acme.member,
        Expected::CallerUnauthenticated,
    )
    .await;
    let batch = acme
        .app
        .post(
            &format!("/v1/tenants/{TENANT}/authorize/batch"),
            &acme.key,
            json!({ "checks": [{ "subject": subject(&acme.member), "scope": SCOPE }] }),
        )
        .await;
    assert_problem(&batch, StatusCode::UNAUTHORIZED, "unauthenticated");

    // A session caller: logging out is the session's revocation.
    let second = acme.app.login("admin@acme.example", PASSWORD).await;
    acme.warm(&[second.as_str()], &acme.member, Expected::Allow)
        .await;
    acme.change(
        Method::DELETE,
        "/v1/auth/session",
        &second,
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    acme.next(
        &[second.as_str()],
        &acme.member,
        Expected::CallerUnauthenticated,
    )
    .await;
    // Neither touched the other credentials.
    acme.next(&[acme.admin.as_str()], &acme.member, Expected::Allow)
        .await;
}

/// Under load: twenty calls with the key race its revocation on the other node (each is
/// answered as before or refused, never anything else), and once the revocation has
/// returned, twenty parallel calls on this node are all refused.
async fn a_revocation_on_one_node_refuses_twenty_parallel_calls_on_the_other(store: StoreKind) {
    const PARALLEL: usize = 20;
    let acme = Acme::new(store).await;
    acme.warm(&[acme.key.as_str()], &acme.member, Expected::Allow)
        .await;
    let path = format!("/v1/tenants/{TENANT}/authorize");
    let call = || {
        acme.app.post(
            &path,
            &acme.key,
            json!({ "subject": subject(&acme.member), "scope": SCOPE }),
        )
    };
    let key_path = format!("/v1/tenants/{TENANT}/api-keys/{}", acme.key_id);
    let revoke = acme.change(
        Method::DELETE,
        &key_path,
        &acme.admin,
        None,
        StatusCode::NO_CONTENT,
    );
    let (racing, ()) = tokio::join!(
        futures::future::join_all((0..PARALLEL).map(|_| call())),
        revoke
    );
    for reply in &racing {
        let allowed = reply.status == StatusCode::OK && reply.body["decision"] == "allow";
        let refused =
            reply.status == StatusCode::UNAUTHORIZED && reply.code() == Some("unauthenticated");
        assert!(
            allowed || refused,
            "a call racing the revocation: {reply:?}"
        );
    }
    let after = futures::future::join_all((0..PARALLEL).map(|_| call())).await;
    for reply in &after {
        assert_problem(reply, StatusCode::UNAUTHORIZED, "unauthenticated");
    }
}

// Every test above runs on PostgreSQL and on the embedded SQLite store, as
// `fresh_decisions::postgres::NAME` and `fresh_decisions::sqlite::NAME`.
tests::on_both_stores!(
    suspending_the_account_denies_the_very_next_decision_and_reactivating_allows_it,
    removing_the_member_denies_the_very_next_decision_and_adding_them_back_allows_it,
    adding_a_user_allows_the_very_next_decision_after_warmed_denials,
    changing_the_members_roles_denies_the_very_next_decision_and_restoring_them_allows_it,
    rebinding_the_role_without_the_scope_denies_the_very_next_decision,
    disabling_the_scope_for_the_tenant_denies_the_very_next_decision,
    suspending_the_tenant_refuses_the_very_next_call_and_resuming_allows_it,
    suspending_the_user_denies_the_very_next_decision_and_reactivating_allows_it,
    revoking_the_api_key_or_ending_the_session_refuses_its_very_next_call,
    a_revocation_on_one_node_refuses_twenty_parallel_calls_on_the_other,
);
