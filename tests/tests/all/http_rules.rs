//! The rules of SPEC §3 over real HTTP: what a tenant admin may do (with its audit record
//! and event), profile precedence, membership changes, every authorize reason, idempotency,
//! TOTP, and the problem+json shape of every error code of SPEC §5; each test on PostgreSQL
//! and on the embedded SQLite store, except the one that needs PostgreSQL itself.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use tests::http::AppDb;
use tests::http::{
    add_member, assert_forbidden, assert_problem, assert_status, delete, enrol_totp, etag, my_id,
    new_user, patch, put, reply, send_with, spawn_app, spawn_app_on, spawn_app_with,
    tenant_with_admin, text, Authenticator, StoreKind, TestApp, PASSWORD, ROOT_PASSWORD,
};
use tests::pg::run;

/// Raises a session to `aal2` with the next step's code (a step is accepted once).
async fn step_up(app: &TestApp, token: &str, authenticator: &Authenticator) {
    let stepped = app
        .post(
            "/v1/auth/totp",
            token,
            json!({ "code": authenticator.code(30) }),
        )
        .await;
    assert_status(&stepped, StatusCode::OK);
    assert_eq!(stepped.body["assurance"], "aal2");
}

/// The tenant's whole audit trail (one page of 200 is enough for a test).
async fn audit(app: &TestApp, token: &str, tenant: &str) -> Vec<Value> {
    let trail = app
        .get(&format!("/v1/tenants/{tenant}/audit?limit=200"), token)
        .await;
    assert_status(&trail, StatusCode::OK);
    trail.body["items"].as_array().expect("items").clone()
}

/// The tenant's event feed as CloudEvents.
async fn events(app: &TestApp, token: &str, tenant: &str) -> Vec<Value> {
    let feed = app
        .get(&format!("/v1/tenants/{tenant}/events?limit=200"), token)
        .await;
    assert_status(&feed, StatusCode::OK);
    feed.body["items"].as_array().expect("items").clone()
}

/// The trail holds an `allowed` record of `action` by `actor`.
fn assert_audited(trail: &[Value], action: &str, actor: &str) {
    assert!(
        trail.iter().any(|record| record["action"] == action
            && record["outcome"] == "allowed"
            && record["actor"]["id"] == actor),
        "an allowed {action} by {actor} in {trail:#?}"
    );
}

/// The feed holds a CloudEvent of `event_type` about `subject` in `tenant`'s feed.
fn assert_event(feed: &[Value], event_type: &str, subject: &str, tenant: &str) {
    let event = feed
        .iter()
        .find(|event| event["type"] == event_type && event["subject"] == subject)
        .unwrap_or_else(|| panic!("a {event_type} event about {subject} in {feed:#?}"));
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["source"], "user-engine");
    assert_eq!(event["tenant"], tenant);
    let id = text(event, "id");
    let id = uuid::Uuid::parse_str(id).expect("the event id is a UUID");
    assert_eq!(id.get_version_num(), 7, "event ids are UUID v7");
    assert!(event["time"].is_string());
    assert!(event["data"].is_object());
}

async fn a_tenant_admin_performs_every_tenant_admin_operation_with_its_audit_record_and_event(
    store: StoreKind,
) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    let (admin, admin_id) = tenant_with_admin(&app, &root, "acme").await;
    enrol_totp(&app, &admin).await;

    // The tenant itself.
    let tenant = app.get("/v1/tenants/acme", &admin).await;
    assert_status(&tenant, StatusCode::OK);
    assert_eq!(tenant.body["id"], "acme");
    let renamed = patch(
        &app,
        "/v1/tenants/acme",
        &admin,
        json!({ "display_name": "Acme Inc" }),
    )
    .await;
    assert_status(&renamed, StatusCode::OK);
    assert_eq!(renamed.body["display_name"], "Acme Inc");
    let scopes = app.get("/v1/tenants/acme/scopes", &admin).await;
    assert_status(&scopes, StatusCode::OK);
    assert!(scopes.body["scopes"]
        .as_array()
        .expect("scopes")
        .contains(&json!("members:read")));

    // Roles and bindings.
    let roles = app.get("/v1/tenants/acme/roles", &admin).await;
    assert_status(&roles, StatusCode::OK);
    assert!(
        roles.body["items"].as_array().expect("items").contains(
            &json!({ "role": "member", "scopes": ["profiles:read", "roles:read", "tenant:read"] })
        ),
        "{roles:?}"
    );
    let bound = put(
        &app,
        "/v1/tenants/acme/roles/editor",
        &admin,
        json!({ "scopes": ["tenant:read", "members:read"] }),
    )
    .await;
    assert_status(&bound, StatusCode::OK);
    assert_eq!(
        bound.body,
        json!({ "role": "editor", "scopes": ["members:read", "tenant:read"] })
    );

    // Members.
    let added = app
        .post(
            "/v1/tenants/acme/members",
            &admin,
            json!({ "email": "dev@acme.example", "roles": ["editor"] }),
        )
        .await;
    assert_status(&added, StatusCode::CREATED);
    assert_eq!(etag(&added), "\"m1\"");
    assert!(
        added.body["invitation_token"].is_string(),
        "a new email is invited"
    );
    let dev = text(&added.body, "user_id").to_owned();
    let dev_path = format!("/v1/tenants/acme/members/{dev}");
    let listed = app.get("/v1/tenants/acme/members", &admin).await;
    assert_status(&listed, StatusCode::OK);
    assert_eq!(listed.body["items"].as_array().expect("items").len(), 2);
    let read = app.get(&dev_path, &admin).await;
    assert_status(&read, StatusCode::OK);
    assert_eq!(read.body["email"], "dev@acme.example");
    let roles_changed = send_with(
        &app,
        Method::PATCH,
        &dev_path,
        &admin,
        Some(json!({ "roles": ["editor", "member"] })),
        &[("if-match", &etag(&read))],
    )
    .await;
    assert_status(&roles_changed, StatusCode::OK);
    assert_eq!(roles_changed.body["roles"], json!(["editor", "member"]));
    assert_eq!(etag(&roles_changed), "\"m2\"");
    let suspended = patch(&app, &dev_path, &admin, json!({ "state": "suspended" })).await;
    assert_status(&suspended, StatusCode::OK);
    assert_eq!(suspended.body["state"], "suspended");
    let reactivated = patch(&app, &dev_path, &admin, json!({ "state": "active" })).await;
    assert_status(&reactivated, StatusCode::OK);
    assert_eq!(reactivated.body["state"], "active");

    // Profiles: a member value and a tenant default.
    let profile_path = format!("{dev_path}/profile");
    let profile = app.get(&profile_path, &admin).await;
    assert_status(&profile, StatusCode::OK);
    assert!(etag(&profile).starts_with("\"p"));
    let set = send_with(
        &app,
        Method::PUT,
        &format!("{profile_path}/title"),
        &admin,
        Some(json!({ "value": "Engineer" })),
        &[("if-match", &etag(&profile))],
    )
    .await;
    assert_status(&set, StatusCode::OK);
    assert_eq!(
        set.body["values"]["title"],
        json!({ "value": "Engineer", "source": "tenant_member" })
    );
    let unset = send_with(
        &app,
        Method::DELETE,
        &format!("{profile_path}/title"),
        &admin,
        None,
        &[("if-match", &etag(&set))],
    )
    .await;
    assert_status(&unset, StatusCode::NO_CONTENT);
    let default = put(
        &app,
        "/v1/tenants/acme/profile/locale",
        &admin,
        json!({ "value": "fr" }),
    )
    .await;
    assert_status(&default, StatusCode::OK);
    assert_eq!(default.body, json!({ "key": "locale", "value": "fr" }));
    assert_status(
        &delete(&app, "/v1/tenants/acme/profile/locale", &admin).await,
        StatusCode::NO_CONTENT,
    );

    // API keys.
    let key = app
        .post(
            "/v1/tenants/acme/api-keys",
            &admin,
            json!({ "name": "ci", "scopes": ["members:read"] }),
        )
        .await;
    assert_status(&key, StatusCode::CREATED);
    assert!(text(&key.body, "key").starts_with("uek_"));
    let key_id = text(&key.body, "id").to_owned();
    let keys = app.get("/v1/tenants/acme/api-keys", &admin).await;
    assert_status(&keys, StatusCode::OK);
    assert_eq!(keys.body["items"][0]["id"], key_id.as_str());
    assert!(
        keys.body["items"][0].get("key").is_none(),
        "the key is shown once"
    );
    assert_status(
        &delete(&app, &format!("/v1/tenants/acme/api-keys/{key_id}"), &admin).await,
        StatusCode::NO_CONTENT,
    );

    // Decisions, once the invited member has accepted (until then: subject_invited).
    tests::http::accept_invitation(
        &app,
        text(&added.body, "invitation_token"),
        "dev password 1234",
    )
    .await;
    let check = json!({ "subject": { "user_id": dev }, "scope": "members:read" });
    let decision = app
        .post("/v1/tenants/acme/authorize", &admin, check.clone())
        .await;
    assert_status(&decision, StatusCode::OK);
    assert_eq!(decision.body["decision"], "allow");
    assert_eq!(decision.body["matched_role"], "editor");
    let batch = app
        .post(
            "/v1/tenants/acme/authorize/batch",
            &admin,
            json!({ "checks": [check, { "subject": { "user_id": dev }, "scope": "members:write" }] }),
        )
        .await;
    assert_status(&batch, StatusCode::OK);
    assert_eq!(batch.body["decisions"][0]["decision"], "allow");
    assert_eq!(batch.body["decisions"][1]["reason"], "missing_scope");

    // Removal, then the binding.
    assert_status(
        &delete(&app, &dev_path, &admin).await,
        StatusCode::NO_CONTENT,
    );
    assert_status(
        &delete(&app, "/v1/tenants/acme/roles/editor", &admin).await,
        StatusCode::NO_CONTENT,
    );

    // Every mutation is in the trail (reads that are allowed are not recorded).
    let trail = audit(&app, &admin, "acme").await;
    for action in [
        "tenant.update",
        "role.put",
        "member.add",
        "member.update",
        "profile.member.set",
        "profile.member.delete",
        "profile.default.set",
        "profile.default.delete",
        "api_key.create",
        "api_key.revoke",
        "member.remove",
        "role.delete",
    ] {
        assert_audited(&trail, action, &admin_id);
    }
    assert!(
        trail.iter().all(|record| record["outcome"] == "allowed"),
        "nothing the admin did was refused: {trail:#?}"
    );
    let feed = events(&app, &admin, "acme").await;
    assert_event(&feed, "tenant.created", "acme", "acme");
    assert_event(&feed, "tenant.updated", "acme", "acme");
    assert_event(&feed, "role.binding_changed", "editor", "acme");
    assert_event(&feed, "membership.added", &dev, "acme");
    assert_event(&feed, "membership.roles_changed", &dev, "acme");
    assert_event(&feed, "account.state_changed", &dev, "acme");
    assert_event(&feed, "profile.value_set", &dev, "acme");
    assert_event(&feed, "profile.value_deleted", &dev, "acme");
    assert_event(&feed, "profile.value_set", "acme", "acme");
    assert_event(&feed, "profile.value_deleted", "acme", "acme");
    assert_event(&feed, "api_key.created", &key_id, "acme");
    assert_event(&feed, "api_key.revoked", &key_id, "acme");
    assert_event(&feed, "membership.removed", &dev, "acme");
    let bindings: Vec<&Value> = feed
        .iter()
        .filter(|event| event["type"] == "role.binding_changed")
        .collect();
    assert_eq!(bindings.len(), 2, "put and delete: {bindings:#?}");
    assert_eq!(bindings[1]["data"]["scopes"], Value::Null);
    let states: Vec<&Value> = feed
        .iter()
        .filter(|event| event["type"] == "account.state_changed")
        .map(|event| &event["data"]["state"])
        .collect();
    assert_eq!(states, [&json!("suspended"), &json!("active")]);
    let mut ids: Vec<&str> = feed.iter().map(|event| text(event, "id")).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), feed.len(), "event ids are unique");
}

async fn a_member_profile_resolves_member_value_then_platform_value_then_tenant_default(
    store: StoreKind,
) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    let (admin, _) = tenant_with_admin(&app, &root, "acme").await;
    let dev = new_user(&app, &root, "dev@acme.example", PASSWORD).await;
    add_member(&app, &admin, "acme", &dev, json!(["member"])).await;
    let dev_token = app.login("dev@acme.example", PASSWORD).await;
    let profile_path = format!("/v1/tenants/acme/members/{dev}/profile");

    // Platform values: the user's own (user_editable) and root's (admin-only key).
    let own = put(
        &app,
        &format!("/v1/users/{dev}/profile/timezone"),
        &dev_token,
        json!({ "value": "Europe/Paris" }),
    )
    .await;
    assert_status(&own, StatusCode::OK);
    let by_root = put(
        &app,
        &format!("/v1/users/{dev}/profile/department"),
        &root,
        json!({ "value": "R&D" }),
    )
    .await;
    assert_status(&by_root, StatusCode::OK);
    let not_editable = put(
        &app,
        &format!("/v1/users/{dev}/profile/title"),
        &dev_token,
        json!({ "value": "Boss" }),
    )
    .await;
    assert_forbidden(&not_editable, "platform_root_required");
    // Tenant defaults.
    for (key, value) in [("timezone", json!("UTC")), ("locale", json!("en"))] {
        let set = put(
            &app,
            &format!("/v1/tenants/acme/profile/{key}"),
            &admin,
            json!({ "value": value }),
        )
        .await;
        assert_status(&set, StatusCode::OK);
    }

    let resolved = app.get(&profile_path, &admin).await;
    assert_status(&resolved, StatusCode::OK);
    assert_eq!(
        resolved.body["values"]["timezone"],
        json!({ "value": "Europe/Paris", "source": "platform" })
    );
    assert_eq!(
        resolved.body["values"]["department"],
        json!({ "value": "R&D", "source": "platform" })
    );
    assert_eq!(
        resolved.body["values"]["locale"],
        json!({ "value": "en", "source": "tenant_default" })
    );
    assert!(
        resolved.body["values"].get("title").is_none(),
        "{resolved:?}"
    );

    // Member overrides: by the admin, and by the member for a user_editable key.
    let overridden = put(
        &app,
        &format!("{profile_path}/timezone"),
        &admin,
        json!({ "value": "Asia/Tokyo" }),
    )
    .await;
    assert_status(&overridden, StatusCode::OK);
    assert_eq!(
        overridden.body["values"]["timezone"],
        json!({ "value": "Asia/Tokyo", "source": "tenant_member" })
    );
    let own_override = put(
        &app,
        &format!("{profile_path}/locale"),
        &dev_token,
        json!({ "value": "de" }),
    )
    .await;
    assert_status(&own_override, StatusCode::OK);
    let own_title = put(
        &app,
        &format!("{profile_path}/title"),
        &dev_token,
        json!({ "value": "Boss" }),
    )
    .await;
    assert_forbidden(&own_title, "missing_scope");
    let read_own = app.get(&profile_path, &dev_token).await;
    assert_status(&read_own, StatusCode::OK);
    assert_eq!(
        read_own.body["values"]["timezone"],
        json!({ "value": "Asia/Tokyo", "source": "tenant_member" })
    );
    assert_eq!(
        read_own.body["values"]["locale"],
        json!({ "value": "de", "source": "tenant_member" })
    );
    assert_eq!(
        read_own.body["values"]["department"],
        json!({ "value": "R&D", "source": "platform" })
    );

    // A stale ETag is refused; the current one is honoured.
    let stale = send_with(
        &app,
        Method::DELETE,
        &format!("{profile_path}/timezone"),
        &admin,
        None,
        &[("if-match", "\"p0000\"")],
    )
    .await;
    assert_problem(
        &stale,
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
    );
    let removed = send_with(
        &app,
        Method::DELETE,
        &format!("{profile_path}/timezone"),
        &admin,
        None,
        &[("if-match", &etag(&read_own))],
    )
    .await;
    assert_status(&removed, StatusCode::NO_CONTENT);
    let fallback = app.get(&profile_path, &admin).await;
    assert_eq!(
        fallback.body["values"]["timezone"],
        json!({ "value": "Europe/Paris", "source": "platform" })
    );

    // Without the platform value, the tenant default shows through.
    assert_status(
        &delete(
            &app,
            &format!("/v1/users/{dev}/profile/timezone"),
            &dev_token,
        )
        .await,
        StatusCode::NO_CONTENT,
    );
    let last = app.get(&profile_path, &admin).await;
    assert_eq!(
        last.body["values"]["timezone"],
        json!({ "value": "UTC", "source": "tenant_default" })
    );
    assert_status(
        &delete(&app, "/v1/tenants/acme/profile/timezone", &admin).await,
        StatusCode::NO_CONTENT,
    );
    let none = app.get(&profile_path, &admin).await;
    assert!(none.body["values"].get("timezone").is_none(), "{none:?}");
}

async fn membership_changes_keep_one_admin_and_granting_or_revoking_tenant_admin_needs_aal2(
    store: StoreKind,
) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    let (admin, admin_id) = tenant_with_admin(&app, &root, "acme").await;
    let admin_path = format!("/v1/tenants/acme/members/{admin_id}");
    let dev = new_user(&app, &root, "dev@acme.example", PASSWORD).await;
    let added = app
        .post(
            "/v1/tenants/acme/members",
            &admin,
            json!({ "user_id": dev }),
        )
        .await;
    assert_status(&added, StatusCode::CREATED);
    assert_eq!(
        added.body["roles"],
        json!(["member"]),
        "member is the default role"
    );
    assert_eq!(added.body["state"], "active");
    let dev = text(&added.body, "user_id").to_owned();
    let dev_path = format!("/v1/tenants/acme/members/{dev}");
    let decide = |scope: &'static str| {
        app.post(
            "/v1/tenants/acme/authorize",
            &admin,
            json!({ "subject": { "user_id": dev }, "scope": scope }),
        )
    };
    assert_eq!(decide("tenant:read").await.body["reason"], "role_binding");

    // Granting tenant_admin at aal1 is refused, and the trail says why.
    let grant = patch(
        &app,
        &dev_path,
        &admin,
        json!({ "roles": ["member", "tenant_admin"] }),
    )
    .await;
    assert_forbidden(&grant, "insufficient_assurance");
    let trail = audit(&app, &admin, "acme").await;
    assert!(
        trail
            .iter()
            .any(|record| record["action"] == "member.update"
                && record["outcome"] == "denied"
                && record["reason"] == "insufficient_assurance"),
        "{trail:#?}"
    );
    assert_eq!(
        app.get(&dev_path, &admin).await.body["roles"],
        json!(["member"])
    );
    // So is adding a new member as tenant_admin.
    let add_admin = app
        .post(
            "/v1/tenants/acme/members",
            &admin,
            json!({ "email": "boss@acme.example", "roles": ["tenant_admin"] }),
        )
        .await;
    assert_forbidden(&add_admin, "insufficient_assurance");

    // Suspending and reactivating the account (accounts:write) takes effect at once.
    let suspended = patch(&app, &dev_path, &admin, json!({ "state": "suspended" })).await;
    assert_status(&suspended, StatusCode::OK);
    assert_eq!(suspended.body["state"], "suspended");
    assert_eq!(
        decide("tenant:read").await.body["reason"],
        "account_suspended"
    );
    let reactivated = patch(&app, &dev_path, &admin, json!({ "state": "active" })).await;
    assert_status(&reactivated, StatusCode::OK);
    assert_eq!(decide("tenant:read").await.body["reason"], "role_binding");

    // At aal2 the grant goes through.
    let authenticator = enrol_totp(&app, &admin).await;
    let granted = patch(
        &app,
        &dev_path,
        &admin,
        json!({ "roles": ["member", "tenant_admin"] }),
    )
    .await;
    assert_status(&granted, StatusCode::OK);
    assert_eq!(granted.body["roles"], json!(["member", "tenant_admin"]));
    assert_eq!(
        decide("members:write").await.body["matched_role"],
        "tenant_admin"
    );

    // Revoking needs aal2 too: a fresh password-only session is refused.
    let fresh = app.login("admin@acme.example", PASSWORD).await;
    let revoke = patch(&app, &dev_path, &fresh, json!({ "roles": ["member"] })).await;
    assert_forbidden(&revoke, "insufficient_assurance");
    step_up(&app, &fresh, &authenticator).await;
    let revoked = patch(&app, &dev_path, &fresh, json!({ "roles": ["member"] })).await;
    assert_status(&revoked, StatusCode::OK);
    assert_eq!(
        decide("members:write").await.body["reason"],
        "missing_scope"
    );

    // Removal, then the last admin stays whatever is tried.
    assert_status(
        &delete(&app, &dev_path, &admin).await,
        StatusCode::NO_CONTENT,
    );
    assert_problem(
        &app.get(&dev_path, &admin).await,
        StatusCode::NOT_FOUND,
        "member_not_found",
    );
    assert_eq!(decide("tenant:read").await.body["reason"], "not_a_member");
    assert_problem(
        &patch(&app, &admin_path, &admin, json!({ "roles": ["member"] })).await,
        StatusCode::CONFLICT,
        "last_tenant_admin",
    );
    assert_problem(
        &patch(&app, &admin_path, &admin, json!({ "state": "suspended" })).await,
        StatusCode::CONFLICT,
        "last_tenant_admin",
    );
    assert_problem(
        &delete(&app, &admin_path, &admin).await,
        StatusCode::CONFLICT,
        "last_tenant_admin",
    );
    let me = app.get(&admin_path, &admin).await;
    assert_eq!(me.body["roles"], json!(["tenant_admin"]));
    assert_eq!(me.body["state"], "active");

    let feed = events(&app, &admin, "acme").await;
    let types: Vec<&str> = feed
        .iter()
        .filter(|event| event["subject"] == dev.as_str())
        .map(|event| text(event, "type"))
        .collect();
    assert_eq!(
        types,
        [
            "membership.added",
            "account.state_changed",
            "account.state_changed",
            "membership.roles_changed",
            "membership.roles_changed",
            "membership.removed"
        ],
        "refused changes publish nothing"
    );
}

async fn the_authorize_api_answers_every_reachable_reason_with_its_facts_and_keeps_batch_order(
    store: StoreKind,
) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    let root_id = my_id(&app, &root).await;
    enrol_totp(&app, &root).await;
    let (admin, admin_id) = tenant_with_admin(&app, &root, "acme").await;
    let dev = new_user(&app, &root, "dev@acme.example", PASSWORD).await;
    let parked = new_user(&app, &root, "parked@acme.example", PASSWORD).await;
    let banned = new_user(&app, &root, "banned@acme.example", PASSWORD).await;
    let auditor = new_user(&app, &root, "auditor@example.com", PASSWORD).await;
    let outsider = new_user(&app, &root, "outsider@example.com", PASSWORD).await;
    let invited = app
        .post(
            "/v1/tenants/acme/members",
            &admin,
            json!({ "email": "invitee@acme.example" }),
        )
        .await;
    assert_status(&invited, StatusCode::CREATED);
    let invitee = text(&invited.body, "user_id").to_owned();
    for user in [&dev, &parked, &banned] {
        add_member(&app, &admin, "acme", user, json!(["member"])).await;
    }
    add_member(&app, &root, "acme", &auditor, json!(["member"])).await;
    assert_status(
        &patch(
            &app,
            &format!("/v1/tenants/acme/members/{parked}"),
            &admin,
            json!({ "state": "suspended" }),
        )
        .await,
        StatusCode::OK,
    );
    assert_status(
        &patch(
            &app,
            &format!("/v1/users/{banned}"),
            &root,
            json!({ "state": "suspended" }),
        )
        .await,
        StatusCode::OK,
    );
    let roles = put(
        &app,
        &format!("/v1/users/{auditor}/platform-roles"),
        &root,
        json!({ "roles": ["platform_auditor"] }),
    )
    .await;
    assert_status(&roles, StatusCode::OK);
    assert_eq!(roles.body["platform_roles"], json!(["platform_auditor"]));
    // diagnostics:read is disabled in acme.
    let enabled = app.get("/v1/tenants/acme/scopes", &admin).await;
    let fewer: Vec<&Value> = enabled.body["scopes"]
        .as_array()
        .expect("scopes")
        .iter()
        .filter(|scope| **scope != "diagnostics:read")
        .collect();
    assert_status(
        &put(
            &app,
            "/v1/tenants/acme/scopes",
            &root,
            json!({ "scopes": fewer }),
        )
        .await,
        StatusCode::OK,
    );
    let key = app
        .post(
            "/v1/tenants/acme/api-keys",
            &admin,
            json!({ "name": "ci", "scopes": ["members:read"] }),
        )
        .await;
    assert_status(&key, StatusCode::CREATED);
    let key = text(&key.body, "key").to_owned();
    // A second tenant, suspended by root.
    let (_frozen_admin, frozen_admin_id) = tenant_with_admin(&app, &root, "frozen").await;
    assert_status(
        &patch(
            &app,
            "/v1/tenants/frozen",
            &root,
            json!({ "state": "suspended" }),
        )
        .await,
        StatusCode::OK,
    );

    let user = |id: &str, assurance: &str| json!({ "user_id": id, "assurance": assurance });
    let checks: Vec<(Value, &str, &str)> = vec![
        (
            json!({ "subject": user(&banned, "aal1"), "scope": "tenant:read" }),
            "deny",
            "subject_suspended",
        ),
        (
            json!({ "subject": user(&root_id, "aal2"), "scope": "roles:write" }),
            "allow",
            "platform_root",
        ),
        (
            json!({ "subject": user(&auditor, "aal1"), "scope": "members:read" }),
            "allow",
            "platform_auditor",
        ),
        (
            json!({ "subject": user(&dev, "aal2"), "scope": "platform:users:read" }),
            "deny",
            "platform_root_required",
        ),
        (
            json!({ "subject": user(&admin_id, "aal2"), "scope": "platform:tenants:write" }),
            "deny",
            "platform_root_required",
        ),
        (
            json!({ "subject": user(&outsider, "aal1"), "scope": "tenant:read" }),
            "deny",
            "not_a_member",
        ),
        (
            json!({ "subject": user(&parked, "aal1"), "scope": "tenant:read" }),
            "deny",
            "account_suspended",
        ),
        (
            json!({ "subject": user(&admin_id, "aal1"), "scope": "diagnostics:read" }),
            "deny",
            "scope_not_enabled",
        ),
        (
            json!({ "subject": user(&dev, "aal1"), "scope": "members:write" }),
            "deny",
            "missing_scope",
        ),
        (
            json!({ "subject": user(&admin_id, "aal1"), "scope": "roles:write" }),
            "deny",
            "insufficient_assurance",
        ),
        // `subject.token` names a session: an API key there is no subject (SPEC §4).
        (
            json!({ "subject": { "token": key }, "scope": "members:write" }),
            "deny",
            "subject_not_found",
        ),
        (
            json!({ "subject": { "token": key }, "scope": "members:read" }),
            "deny",
            "subject_not_found",
        ),
        (
            json!({ "subject": user(&admin_id, "aal1"), "scope": "members:write", "target_user": outsider }),
            "deny",
            "target_not_in_tenant",
        ),
        (
            json!({ "subject": user(&admin_id, "aal1"), "scope": "members:write", "target_user": auditor }),
            "deny",
            "target_protected",
        ),
        (
            json!({ "subject": user(&admin_id, "aal1"), "scope": "members:read", "target_user": auditor }),
            "allow",
            "role_binding",
        ),
        (
            json!({ "subject": user(&dev, "aal1"), "scope": "docs:edit" }),
            "deny",
            "unknown_scope",
        ),
        (
            json!({ "subject": { "token": "bogus" }, "scope": "tenant:read" }),
            "deny",
            "subject_not_found",
        ),
        (
            json!({ "subject": user(&dev, "aal1"), "scope": "tenant:read" }),
            "allow",
            "role_binding",
        ),
        (
            json!({ "subject": user(&invitee, "aal1"), "scope": "tenant:read" }),
            "deny",
            "subject_invited",
        ),
    ];
    let mut decisions = Vec::new();
    for (check, decision, reason) in &checks {
        let answer = app
            .post("/v1/tenants/acme/authorize", &admin, check.clone())
            .await;
        assert_status(&answer, StatusCode::OK);
        assert_eq!(answer.body["decision"], *decision, "{check}: {answer:?}");
        assert_eq!(answer.body["reason"], *reason, "{check}: {answer:?}");
        decisions.push(answer.body);
    }
    // tenant_suspended, asked by root (the tenant's own admin is refused there too).
    let frozen = app
        .post(
            "/v1/tenants/frozen/authorize",
            &root,
            json!({ "subject": user(&frozen_admin_id, "aal2"), "scope": "tenant:read" }),
        )
        .await;
    assert_status(&frozen, StatusCode::OK);
    assert_eq!(frozen.body["reason"], "tenant_suspended");
    assert_eq!(frozen.body["facts"]["tenant_state"], "suspended");
    assert_eq!(frozen.body["facts"]["account_state"], "active");
    assert_eq!(frozen.body["facts"]["roles"], json!(["tenant_admin"]));

    // The facts behind the answers.
    let facts = |index: usize| &decisions[index]["facts"];
    assert_eq!(facts(0)["user_state"], "suspended");
    assert_eq!(facts(1)["platform_roles"], json!(["platform_root"]));
    assert_eq!(facts(1)["assurance"], "aal2");
    assert_eq!(facts(1)["min_assurance"], "aal2");
    assert_eq!(facts(2)["platform_roles"], json!(["platform_auditor"]));
    assert_eq!(facts(3)["platform_only"], true);
    assert_eq!(facts(5)["account_state"], Value::Null);
    assert_eq!(facts(5)["tenant_state"], "active");
    assert_eq!(facts(6)["account_state"], "suspended");
    assert_eq!(facts(7)["scope_enabled"], false);
    assert_eq!(facts(8)["roles"], json!(["member"]));
    assert_eq!(facts(8)["scope_enabled"], true);
    assert_eq!(facts(9)["assurance"], "aal1");
    assert_eq!(facts(9)["min_assurance"], "aal2");
    assert_eq!(facts(9)["roles"], json!(["tenant_admin"]));
    assert_eq!(
        facts(10)["credential_scopes"],
        Value::Null,
        "a key is no subject"
    );
    assert_eq!(facts(12)["target_account_state"], Value::Null);
    assert_eq!(facts(13)["target_account_state"], "active");
    assert_eq!(decisions[17]["matched_role"], "member");
    assert_eq!(decisions[9].get("matched_role"), None);

    // The batch answers the same, in the order asked.
    let batch = app
        .post(
            "/v1/tenants/acme/authorize/batch",
            &admin,
            json!({ "checks": checks.iter().map(|(check, _, _)| check.clone()).collect::<Vec<_>>() }),
        )
        .await;
    assert_status(&batch, StatusCode::OK);
    let reasons: Vec<&Value> = batch.body["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .map(|decision| &decision["reason"])
        .collect();
    let expected: Vec<Value> = checks.iter().map(|(_, _, reason)| json!(reason)).collect();
    assert_eq!(reasons, expected.iter().collect::<Vec<_>>());
    let reversed: Vec<Value> = checks
        .iter()
        .rev()
        .map(|(check, _, _)| check.clone())
        .collect();
    let backwards = app
        .post(
            "/v1/tenants/acme/authorize/batch",
            &admin,
            json!({ "checks": reversed }),
        )
        .await;
    let reasons: Vec<&Value> = backwards.body["decisions"]
        .as_array()
        .expect("decisions")
        .iter()
        .map(|decision| &decision["reason"])
        .collect();
    assert_eq!(reasons, expected.iter().rev().collect::<Vec<_>>());

    // Too many checks, or a malformed one, is a 400; nothing is decided.
    let one = json!({ "subject": user(&dev, "aal1"), "scope": "tenant:read" });
    let too_many = app
        .post(
            "/v1/tenants/acme/authorize/batch",
            &admin,
            json!({ "checks": vec![one.clone(); 101] }),
        )
        .await;
    assert_problem(&too_many, StatusCode::BAD_REQUEST, "invalid_request");
    let hundred = app
        .post(
            "/v1/tenants/acme/authorize/batch",
            &admin,
            json!({ "checks": vec![one; 100] }),
        )
        .await;
    assert_status(&hundred, StatusCode::OK);
    assert_eq!(
        hundred.body["decisions"]
            .as_array()
            .expect("decisions")
            .len(),
        100
    );
    let both = app
        .post(
            "/v1/tenants/acme/authorize",
            &admin,
            json!({ "subject": { "user_id": dev, "token": key }, "scope": "tenant:read" }),
        )
        .await;
    assert_problem(&both, StatusCode::BAD_REQUEST, "invalid_request");
    let bad_assurance = app
        .post(
            "/v1/tenants/acme/authorize",
            &admin,
            json!({ "subject": user(&dev, "aal9"), "scope": "tenant:read" }),
        )
        .await;
    assert_eq!(
        bad_assurance.status,
        StatusCode::BAD_REQUEST,
        "{bad_assurance:?}"
    );
}

async fn an_idempotency_key_replays_the_first_response_and_refuses_another_body(store: StoreKind) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    let (admin, _) = tenant_with_admin(&app, &root, "acme").await;
    let body = json!({ "email": "dev@acme.example", "roles": ["member"] });
    let key = [("idempotency-key", "add-dev-1")];
    let first = send_with(
        &app,
        Method::POST,
        "/v1/tenants/acme/members",
        &admin,
        Some(body.clone()),
        &key,
    )
    .await;
    assert_status(&first, StatusCode::CREATED);
    let again = send_with(
        &app,
        Method::POST,
        "/v1/tenants/acme/members",
        &admin,
        Some(body.clone()),
        &key,
    )
    .await;
    assert_status(&again, StatusCode::CREATED);
    assert_eq!(again.body, first.body, "the first response, replayed");
    assert_eq!(again.body["user_id"], first.body["user_id"]);
    assert_eq!(etag(&again), etag(&first));
    let members = app.get("/v1/tenants/acme/members", &admin).await;
    assert_eq!(
        members.body["items"].as_array().expect("items").len(),
        2,
        "one member was added: {members:?}"
    );
    let feed = events(&app, &admin, "acme").await;
    let added = feed
        .iter()
        .filter(|event| event["type"] == "membership.added")
        .count();
    assert_eq!(added, 2, "the admin's and dev's, once");

    let other = send_with(
        &app,
        Method::POST,
        "/v1/tenants/acme/members",
        &admin,
        Some(json!({ "email": "someone-else@acme.example" })),
        &key,
    )
    .await;
    assert_problem(
        &other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );
    let members = app.get("/v1/tenants/acme/members", &admin).await;
    assert_eq!(members.body["items"].as_array().expect("items").len(), 2);

    // Without a key, the same body is a second request: the member exists.
    let plain = app.post("/v1/tenants/acme/members", &admin, body).await;
    assert_problem(&plain, StatusCode::CONFLICT, "member_exists");
}

/// Every response the store holds for idempotency keys, as stored.
async fn stored_idempotent_responses(db: &AppDb) -> Vec<Vec<u8>> {
    let sql = "select response from idempotency_keys where response is not null";
    match db {
        AppDb::Postgres(db) => {
            let mut connection = PgConnection::connect_with(&db.owner)
                .await
                .expect("connect as the owner");
            sqlx::query_scalar(sql)
                .fetch_all(&mut connection)
                .await
                .expect("read the records")
        }
        AppDb::Sqlite(file) => {
            let pool = sqlx::SqlitePool::connect(&file.url())
                .await
                .expect("open the file");
            sqlx::query_scalar(sql)
                .fetch_all(&pool)
                .await
                .expect("read the records")
        }
    }
}

async fn an_idempotency_key_runs_once_across_nodes_replays_on_either_and_is_sealed_at_rest(
    store: StoreKind,
) {
    let node_a = spawn_app_on(store).await;
    let node_b = node_a.another_node().await;
    let root = node_a.root_token().await;
    let (admin, _) = tenant_with_admin(&node_a, &root, "acme").await;
    let body = json!({ "email": "dev@acme.example", "roles": ["member"] });
    let key = [("idempotency-key", "add-dev-race")];

    // 20 concurrent uses of one key, split over two nodes: one runs, the others replay
    // it or find it still running.
    let replies = futures::future::join_all((0..20).map(|i| {
        let node = if i % 2 == 0 { &node_a } else { &node_b };
        send_with(
            node,
            Method::POST,
            "/v1/tenants/acme/members",
            &admin,
            Some(body.clone()),
            &key,
        )
    }))
    .await;
    let mut first = None;
    for reply in &replies {
        match reply.status {
            StatusCode::CREATED if reply.headers.get("idempotent-replayed").is_none() => {
                assert!(first.is_none(), "the request ran twice: {replies:?}");
                first = Some(reply.body.clone());
            }
            StatusCode::CREATED => {}
            _ => assert_problem(reply, StatusCode::CONFLICT, "idempotency_key_in_use"),
        }
    }
    let first = first.expect("one request ran");
    for reply in replies
        .iter()
        .filter(|reply| reply.status == StatusCode::CREATED)
    {
        assert_eq!(reply.body, first, "a replay is the first response");
    }
    let members = node_b.get("/v1/tenants/acme/members", &admin).await;
    assert_eq!(members.body["items"].as_array().expect("items").len(), 2);
    let added = events(&node_a, &admin, "acme")
        .await
        .iter()
        .filter(|event| event["type"] == "membership.added")
        .count();
    assert_eq!(added, 2, "the admin's and dev's, once");

    // Once finished, either node replays it.
    for node in [&node_a, &node_b] {
        let again = send_with(
            node,
            Method::POST,
            "/v1/tenants/acme/members",
            &admin,
            Some(body.clone()),
            &key,
        )
        .await;
        assert_status(&again, StatusCode::CREATED);
        assert_eq!(again.body, first);
        assert_eq!(
            again
                .headers
                .get("idempotent-replayed")
                .map(|v| v.as_bytes()),
            Some(&b"true"[..])
        );
    }

    // A new API key, created on node A and replayed on node B: the replay shows the same
    // secret, and the store holds neither it nor the caller's token in the clear.
    let key_body = json!({ "name": "ci", "scopes": ["members:read"] });
    let key_header = [("idempotency-key", "key-ci")];
    let created = send_with(
        &node_a,
        Method::POST,
        "/v1/tenants/acme/api-keys",
        &admin,
        Some(key_body.clone()),
        &key_header,
    )
    .await;
    assert_status(&created, StatusCode::CREATED);
    let secret = created.body["key"].as_str().expect("the key").to_owned();
    let replayed = send_with(
        &node_b,
        Method::POST,
        "/v1/tenants/acme/api-keys",
        &admin,
        Some(key_body),
        &key_header,
    )
    .await;
    assert_status(&replayed, StatusCode::CREATED);
    assert_eq!(replayed.body["key"], secret.as_str());
    // Another caller with the same key and body does not get it.
    let (other_admin, _) = tenant_with_admin(&node_a, &root, "globex").await;
    let others = send_with(
        &node_b,
        Method::POST,
        "/v1/tenants/acme/api-keys",
        &other_admin,
        Some(json!({ "name": "ci", "scopes": ["members:read"] })),
        &key_header,
    )
    .await;
    assert_ne!(others.body["key"], secret.as_str());
    let stored = stored_idempotent_responses(&node_a.db).await;
    assert!(
        stored.len() >= 2,
        "the answers are stored: {}",
        stored.len()
    );

    // A request that authenticates nobody is answered 401 and leaves no record: the
    // key stays free and nothing accumulates for anonymous callers.
    let anonymous = send_with(
        &node_b,
        Method::POST,
        "/v1/tenants/acme/members",
        "not-a-token",
        Some(body.clone()),
        &[("idempotency-key", "anonymous-1")],
    )
    .await;
    assert_status(&anonymous, StatusCode::UNAUTHORIZED);
    assert_eq!(
        stored_idempotent_responses(&node_a.db).await.len(),
        stored.len(),
        "a 401 is not kept"
    );
    for response in &stored {
        for clear in [secret.as_bytes(), admin.as_bytes(), b"dev@acme.example"] {
            assert!(
                !response.windows(clear.len()).any(|window| window == clear),
                "a stored answer holds a secret in the clear"
            );
        }
    }
}

async fn every_error_code_the_api_can_produce_is_a_problem_json(store: StoreKind) {
    // Logins are limited per client address too: every login below counts.
    let app = spawn_app_with(store, 10).await;
    let root = app.root_token().await;
    enrol_totp(&app, &root).await;
    let (admin, admin_id) = tenant_with_admin(&app, &root, "acme").await;
    let admin_path = format!("/v1/tenants/acme/members/{admin_id}");
    let ghost_id = uuid::Uuid::now_v7().to_string();
    let raw = |content_type: &'static str, body: String| {
        app.client
            .post(app.url("/v1/tenants/acme/members"))
            .bearer_auth(&admin)
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    // 400
    let malformed = reply(
        raw("application/json", "{\"email\":".to_owned())
            .await
            .expect("sent"),
    )
    .await;
    assert_problem(&malformed, StatusCode::BAD_REQUEST, "invalid_request");
    let unknown_field = app
        .post(
            "/v1/tenants/acme/members",
            &admin,
            json!({ "email": "a@b.c", "plan": "gold" }),
        )
        .await;
    assert_problem(&unknown_field, StatusCode::BAD_REQUEST, "invalid_request");
    let bad_tenant = app
        .post(
            "/v1/tenants",
            &root,
            json!({ "id": "Acme!", "display_name": "A", "admin": { "email": "a@b.c" } }),
        )
        .await;
    assert_problem(&bad_tenant, StatusCode::BAD_REQUEST, "invalid_tenant_id");
    let reserved = app
        .post(
            "/v1/tenants",
            &root,
            json!({ "id": "admin", "display_name": "A", "admin": { "email": "a@b.c" } }),
        )
        .await;
    assert_problem(&reserved, StatusCode::BAD_REQUEST, "invalid_tenant_id");
    assert_problem(
        &app.get("/v1/tenants/acme/members/not-a-uuid", &admin).await,
        StatusCode::BAD_REQUEST,
        "invalid_user_id",
    );
    assert_problem(
        &app.post("/v1/users", &root, json!({ "email": "nobody" }))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_email",
    );
    assert_problem(
        &put(
            &app,
            "/v1/tenants/acme/roles/Bad-Role",
            &root,
            json!({ "scopes": [] }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_role",
    );
    assert_problem(
        &app.post(
            "/v1/tenants/acme/members",
            &admin,
            json!({ "email": "a@b.c", "roles": ["Not A Role"] }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_role",
    );
    assert_problem(
        &put(
            &app,
            "/v1/tenants/acme/roles/editor",
            &root,
            json!({ "scopes": ["NOT A SCOPE"] }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_scope",
    );
    assert_problem(
        &put(
            &app,
            "/v1/tenants/acme/roles/editor",
            &root,
            json!({ "scopes": ["docs:edit"] }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "unknown_scope",
    );
    assert_problem(
        &app.post(
            "/v1/tenants/acme/members",
            &admin,
            json!({ "email": "a@b.c", "roles": ["ghost"] }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "unknown_role",
    );
    assert_problem(
        &put(
            &app,
            "/v1/tenants/acme/profile/ghost",
            &admin,
            json!({ "value": "x" }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "unknown_profile_key",
    );
    assert_problem(
        &put(
            &app,
            "/v1/tenants/acme/profile/locale",
            &admin,
            json!({ "value": 42 }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_profile_value",
    );
    assert_problem(
        &put(
            &app,
            "/v1/tenants/acme/profile/locale",
            &admin,
            json!({ "value": ["fr"] }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_profile_value",
    );
    assert_problem(
        &put(
            &app,
            "/v1/tenants/acme/profile/locale",
            &admin,
            json!({ "value": "x".repeat(1025) }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_profile_value",
    );
    assert_problem(
        &put(
            &app,
            "/v1/tenants/acme/roles/editor",
            &root,
            json!({ "scopes": ["platform:users:read"] }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "scope_not_assignable",
    );
    let added = app
        .post(
            "/v1/catalog/scopes",
            &root,
            json!({ "name": "docs:edit", "description": "edit documents" }),
        )
        .await;
    assert_status(&added, StatusCode::CREATED);
    assert_problem(
        &put(
            &app,
            "/v1/tenants/acme/roles/editor",
            &root,
            json!({ "scopes": ["docs:edit"] }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "scope_not_enabled",
    );

    // 401
    assert_problem(
        &app.send(Method::GET, "/v1/me", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    assert_problem(
        &app.get("/v1/me", "uek_not_a_key").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    let wrong_password = app
        .send(
            Method::POST,
            "/v1/auth/password",
            None,
            Some(json!({ "email": "root@example.com", "password": "not the password" })),
        )
        .await;
    assert_problem(
        &wrong_password,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    );
    assert_problem(
        &app.post("/v1/auth/totp", &admin, json!({ "code": "123456" }))
            .await,
        StatusCode::UNAUTHORIZED,
        "invalid_totp",
    );

    // 403
    assert_forbidden(
        &app.post("/v1/users", &admin, json!({ "email": "x@example.com" }))
            .await,
        "platform_root_required",
    );
    assert_forbidden(
        &put(
            &app,
            "/v1/tenants/acme/roles/editor",
            &admin,
            json!({ "scopes": ["tenant:read"] }),
        )
        .await,
        "insufficient_assurance",
    );

    // 404
    assert_problem(
        &app.get("/v1/tenants/nowhere", &admin).await,
        StatusCode::NOT_FOUND,
        "tenant_not_found",
    );
    assert_problem(
        &app.get(&format!("/v1/tenants/acme/members/{ghost_id}"), &admin)
            .await,
        StatusCode::NOT_FOUND,
        "member_not_found",
    );
    assert_problem(
        &app.get(&format!("/v1/users/{ghost_id}"), &root).await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    );
    assert_problem(
        &app.get("/v1/nothing-here", &admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_problem(
        &delete(
            &app,
            &format!("/v1/tenants/acme/api-keys/{ghost_id}"),
            &admin,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_problem(
        &delete(&app, "/v1/tenants/acme/profile/locale", &admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    // 409
    assert_problem(
        &app.post(
            "/v1/tenants",
            &root,
            json!({ "id": "acme", "display_name": "Again", "admin": { "user_id": admin_id } }),
        )
        .await,
        StatusCode::CONFLICT,
        "tenant_exists",
    );
    assert_problem(
        &app.post(
            "/v1/tenants/acme/members",
            &admin,
            json!({ "user_id": admin_id }),
        )
        .await,
        StatusCode::CONFLICT,
        "member_exists",
    );
    assert_problem(
        &app.post(
            "/v1/users",
            &root,
            json!({ "email": " ADMIN@acme.example " }),
        )
        .await,
        StatusCode::CONFLICT,
        "email_taken",
    );
    assert_problem(
        &delete(&app, &admin_path, &admin).await,
        StatusCode::CONFLICT,
        "last_tenant_admin",
    );

    // 412
    let stale = send_with(
        &app,
        Method::PATCH,
        &admin_path,
        &admin,
        Some(json!({ "state": "active" })),
        &[("if-match", "\"m999\"")],
    )
    .await;
    assert_problem(
        &stale,
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
    );
    let garbled = send_with(
        &app,
        Method::DELETE,
        &admin_path,
        &admin,
        None,
        &[("if-match", "\"p123\"")],
    )
    .await;
    assert_problem(
        &garbled,
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
    );

    // 413, 415
    let big = reply(
        raw(
            "application/json",
            format!("{{\"email\":\"{}\"}}", "a".repeat(70_000)),
        )
        .await
        .expect("sent"),
    )
    .await;
    assert_problem(&big, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    let wrong_type = reply(raw("text/plain", "{}".to_owned()).await.expect("sent")).await;
    assert_problem(
        &wrong_type,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );

    // 422
    let key = [("idempotency-key", "k-1")];
    let first = send_with(
        &app,
        Method::POST,
        "/v1/tenants/acme/members",
        &admin,
        Some(json!({ "email": "one@acme.example" })),
        &key,
    )
    .await;
    assert_status(&first, StatusCode::CREATED);
    let reused = send_with(
        &app,
        Method::POST,
        "/v1/tenants/acme/members",
        &admin,
        Some(json!({ "email": "two@acme.example" })),
        &key,
    )
    .await;
    assert_problem(
        &reused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );

    // 429, last: it uses up the address's login quota.
    let mut limited = None;
    for _ in 0..12 {
        let attempt = app
            .send(
                Method::POST,
                "/v1/auth/password",
                None,
                Some(json!({ "email": "ghost@example.com", "password": ROOT_PASSWORD })),
            )
            .await;
        if attempt.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(attempt);
            break;
        }
        assert_problem(&attempt, StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let limited = limited.expect("the login quota runs out");
    assert_problem(&limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let retry_after: u64 = limited
        .headers
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .expect("Retry-After in seconds");
    assert!(retry_after >= 1);

    // A 500 never appears, and refusals changed nothing.
    let members = app.get("/v1/tenants/acme/members", &admin).await;
    assert_eq!(
        members.body["items"].as_array().expect("items").len(),
        2,
        "{members:?}"
    );
}

// Every test above runs on PostgreSQL and on the embedded SQLite store, as
// `http_rules::postgres::NAME` and `http_rules::sqlite::NAME`.
tests::on_both_stores!(
    a_tenant_admin_performs_every_tenant_admin_operation_with_its_audit_record_and_event,
    a_member_profile_resolves_member_value_then_platform_value_then_tenant_default,
    membership_changes_keep_one_admin_and_granting_or_revoking_tenant_admin_needs_aal2,
    the_authorize_api_answers_every_reachable_reason_with_its_facts_and_keeps_batch_order,
    an_idempotency_key_replays_the_first_response_and_refuses_another_body,
    an_idempotency_key_runs_once_across_nodes_replays_on_either_and_is_sealed_at_rest,
    every_error_code_the_api_can_produce_is_a_problem_json,
);

// PostgreSQL only: it moves session clocks back with SQL as the database owner.
#[test]
fn totp_codes_are_accepted_once_and_aal2_lapses_with_the_step_up_and_the_session() {
    run(async {
        let app = spawn_app().await;
        let root = app.root_token().await;
        new_user(&app, &root, "dev@example.com", PASSWORD).await;
        let session = app.login("dev@example.com", PASSWORD).await;
        assert_eq!(app.get("/v1/me", &session).await.body["assurance"], "aal1");
        let no_enrolment = app
            .post("/v1/auth/totp", &session, json!({ "code": "123456" }))
            .await;
        assert_problem(&no_enrolment, StatusCode::UNAUTHORIZED, "invalid_totp");

        // Enrolment: a wrong confirmation is refused, a right one makes the session aal2.
        let enrolment = app
            .send(Method::POST, "/v1/me/totp", Some(&session), None)
            .await;
        assert_status(&enrolment, StatusCode::OK);
        let secret = totp_rs::Secret::Encoded(text(&enrolment.body, "secret").to_owned())
            .to_bytes()
            .expect("base32");
        let authenticator = Authenticator(
            totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 0, 30, secret).expect("generator"),
        );
        let wrong = app
            .post(
                "/v1/me/totp/confirm",
                &session,
                json!({ "code": authenticator.wrong_code() }),
            )
            .await;
        assert_problem(&wrong, StatusCode::UNAUTHORIZED, "invalid_totp");
        let confirm_code = authenticator.code(0);
        let confirmed = app
            .post(
                "/v1/me/totp/confirm",
                &session,
                json!({ "code": confirm_code }),
            )
            .await;
        assert_status(&confirmed, StatusCode::NO_CONTENT);
        let me = app.get("/v1/me", &session).await;
        assert_eq!(me.body["assurance"], "aal2", "{me:?}");
        assert_eq!(me.body["user"]["has_totp"], true);

        // A new session starts at aal1; the confirmation's code cannot step it up again.
        let second = app.login("dev@example.com", PASSWORD).await;
        assert_eq!(app.get("/v1/me", &second).await.body["assurance"], "aal1");
        let replayed_confirmation = app
            .post("/v1/auth/totp", &second, json!({ "code": confirm_code }))
            .await;
        assert_problem(
            &replayed_confirmation,
            StatusCode::UNAUTHORIZED,
            "invalid_totp",
        );
        // Replacing a confirmed enrolment needs aal2.
        let replace = app
            .send(Method::POST, "/v1/me/totp", Some(&second), None)
            .await;
        assert_forbidden(&replace, "insufficient_assurance");
        let code = authenticator.code(30);
        let stepped = app
            .post("/v1/auth/totp", &second, json!({ "code": code }))
            .await;
        assert_status(&stepped, StatusCode::OK);
        assert_eq!(stepped.body["assurance"], "aal2");
        assert!(stepped.body["aal2_until"].is_string());
        assert_eq!(app.get("/v1/me", &second).await.body["assurance"], "aal2");
        let replayed = app
            .post("/v1/auth/totp", &second, json!({ "code": code }))
            .await;
        assert_problem(&replayed, StatusCode::UNAUTHORIZED, "invalid_totp");
        let wrong = app
            .post(
                "/v1/auth/totp",
                &second,
                json!({ "code": authenticator.wrong_code() }),
            )
            .await;
        assert_problem(&wrong, StatusCode::UNAUTHORIZED, "invalid_totp");
        let malformed = app
            .post("/v1/auth/totp", &second, json!({ "code": "12ab56" }))
            .await;
        assert_problem(&malformed, StatusCode::UNAUTHORIZED, "invalid_totp");

        // Waiting 15 minutes is not a test: the session rows are moved back in time instead.
        let mut db = app.db.owner_connection().await;
        let hash = domain::usecases::hash_token(&second);
        sqlx::query(
            "update sessions set aal2_until = now() - interval '1 second' where token_hash = $1",
        )
        .bind(&hash)
        .execute(&mut db)
        .await
        .expect("step-up moved back");
        assert_eq!(
            app.get("/v1/me", &second).await.body["assurance"],
            "aal1",
            "the step-up lapsed"
        );
        sqlx::query("update sessions set last_seen_at = now() - interval '31 minutes' where token_hash = $1")
            .bind(&hash)
            .execute(&mut db)
            .await
            .expect("idle clock moved back");
        assert_problem(
            &app.get("/v1/me", &second).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        );
        let first_hash = domain::usecases::hash_token(&session);
        sqlx::query(
            "update sessions set expires_at = now() - interval '1 second' where token_hash = $1",
        )
        .bind(&first_hash)
        .execute(&mut db)
        .await
        .expect("expiry moved back");
        assert_problem(
            &app.get("/v1/me", &session).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        );

        // Logging out ends a session.
        let third = app.login("dev@example.com", PASSWORD).await;
        assert_status(
            &app.send(Method::DELETE, "/v1/auth/session", Some(&third), None)
                .await,
            StatusCode::NO_CONTENT,
        );
        assert_problem(
            &app.get("/v1/me", &third).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        );
    });
}
