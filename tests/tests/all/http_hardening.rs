//! The holes of issue 12 closed, proven over real HTTP as an attacker would try them, on
//! PostgreSQL and on the embedded SQLite store: revoking `tenant_admin` by removal or
//! suspension, granting beyond one's own scopes, the last platform root under 20 parallel
//! attempts, JSON arrays as objects, existence oracles in the order of checks, `401`
//! and `no-store` headers, opaque cursors bound to their list and tenant.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tests::http::{
    add_member, assert_forbidden, assert_problem, assert_status, delete, enrol_totp, my_id,
    new_user, patch, put, spawn_app_on, tenant_with_admin, text, Reply, StoreKind, TestApp,
    PASSWORD,
};

/// Sends `body` as raw bytes with a content type.
async fn send_raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: &str,
) -> Reply {
    let mut request = app
        .client
        .request(method, app.url(path))
        .header("content-type", content_type)
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    tests::http::reply(request.send().await.expect("the request is sent")).await
}

/// SPEC §3.3 over HTTP: removal and suspension revoke `tenant_admin`, so a holder of
/// `members:write` and `accounts:write` and an admin at `aal1` are both refused; and
/// `members:write` gives itself neither `api_keys:write` nor `tenant_admin`.
async fn members_write_neither_revokes_admins_nor_escalates(store: StoreKind) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    enrol_totp(&app, &root).await;
    let (admin, _) = tenant_with_admin(&app, &root, "acme").await;
    let other = new_user(&app, &root, "other@acme.example", PASSWORD).await;
    add_member(&app, &root, "acme", &other, json!(["tenant_admin"])).await;
    for (role, scopes) in [
        ("manager", json!(["members:write", "accounts:write"])),
        ("keymaker", json!(["api_keys:write"])),
    ] {
        let bound = put(
            &app,
            &format!("/v1/tenants/acme/roles/{role}"),
            &root,
            json!({ "scopes": scopes }),
        )
        .await;
        assert_status(&bound, StatusCode::OK);
    }
    let manager_id = new_user(&app, &root, "manager@acme.example", PASSWORD).await;
    add_member(
        &app,
        &root,
        "acme",
        &manager_id,
        json!(["member", "manager"]),
    )
    .await;
    let manager = app.login("manager@acme.example", PASSWORD).await;
    let other_path = format!("/v1/tenants/acme/members/{other}");

    assert_forbidden(&delete(&app, &other_path, &manager).await, "exceeds_caller");
    let suspend = json!({ "state": "suspended" });
    assert_forbidden(
        &patch(&app, &other_path, &manager, suspend.clone()).await,
        "exceeds_caller",
    );
    assert_forbidden(
        &delete(&app, &other_path, &admin).await,
        "insufficient_assurance",
    );
    assert_forbidden(
        &patch(&app, &other_path, &admin, suspend.clone()).await,
        "insufficient_assurance",
    );
    let untouched = app.get(&other_path, &root).await;
    assert_status(&untouched, StatusCode::OK);
    assert_eq!(untouched.body["roles"], json!(["tenant_admin"]));
    assert_eq!(untouched.body["state"], "active");

    let own_path = format!("/v1/tenants/acme/members/{manager_id}");
    assert_forbidden(
        &patch(
            &app,
            &own_path,
            &manager,
            json!({ "roles": ["member", "manager", "keymaker"] }),
        )
        .await,
        "exceeds_caller",
    );
    enrol_totp(&app, &manager).await;
    assert_forbidden(
        &patch(
            &app,
            &own_path,
            &manager,
            json!({ "roles": ["member", "manager", "tenant_admin"] }),
        )
        .await,
        "exceeds_caller",
    );
    let own = app.get(&own_path, &manager).await;
    assert_eq!(own.body["roles"], json!(["manager", "member"]));
    let key = app
        .post(
            "/v1/tenants/acme/api-keys",
            &manager,
            json!({ "name": "mine", "scopes": ["tenant:read"] }),
        )
        .await;
    assert_forbidden(&key, "missing_scope");
}

/// SPEC §3.3: role names starting with `platform` are reserved.
async fn platform_role_names_are_refused_as_tenant_roles(store: StoreKind) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    enrol_totp(&app, &root).await;
    let (_, _) = tenant_with_admin(&app, &root, "acme").await;
    let someone = new_user(&app, &root, "someone@acme.example", PASSWORD).await;
    for role in ["platform_root", "platform_auditor", "platformer"] {
        let bound = put(
            &app,
            &format!("/v1/tenants/acme/roles/{role}"),
            &root,
            json!({ "scopes": ["tenant:read"] }),
        )
        .await;
        assert_problem(&bound, StatusCode::BAD_REQUEST, "invalid_role");
        let added = app
            .post(
                "/v1/tenants/acme/members",
                &root,
                json!({ "user_id": someone, "roles": [role] }),
            )
            .await;
        assert_problem(&added, StatusCode::BAD_REQUEST, "invalid_role");
    }
}

/// SPEC §3.3: the platform keeps an active platform root; a lone root cannot suspend
/// itself, and of two roots racing to suspend or demote each other (and themselves) 20
/// times at once, exactly one is left.
async fn the_last_platform_root_survives_twenty_parallel_suspensions_and_demotions(
    store: StoreKind,
) {
    let app = Arc::new(spawn_app_on(store).await);
    let first = app.root_token().await;
    let first_id = my_id(&app, &first).await;
    let alone = patch(
        &app,
        &format!("/v1/users/{first_id}"),
        &first,
        json!({ "state": "suspended" }),
    )
    .await;
    assert_problem(&alone, StatusCode::CONFLICT, "last_platform_root");
    enrol_totp(&app, &first).await;
    let alone = put(
        &app,
        &format!("/v1/users/{first_id}/platform-roles"),
        &first,
        json!({ "roles": [] }),
    )
    .await;
    assert_problem(&alone, StatusCode::CONFLICT, "last_platform_root");

    let second_id = new_user(&app, &first, "second@example.com", PASSWORD).await;
    let promoted = put(
        &app,
        &format!("/v1/users/{second_id}/platform-roles"),
        &first,
        json!({ "roles": ["platform_root"] }),
    )
    .await;
    assert_status(&promoted, StatusCode::OK);
    let second = app.login("second@example.com", PASSWORD).await;
    enrol_totp(&app, &second).await;
    let roots = [
        (first.clone(), first_id.clone()),
        (second.clone(), second_id.clone()),
    ];

    let mut attempts = Vec::new();
    for attempt in 0..20_usize {
        let app = Arc::clone(&app);
        let (token, _) = roots[attempt % 2].clone();
        let (_, target) = roots[(attempt / 2) % 2].clone();
        attempts.push(tokio::spawn(async move {
            if attempt % 4 < 2 {
                patch(
                    &app,
                    &format!("/v1/users/{target}"),
                    &token,
                    json!({ "state": "suspended" }),
                )
                .await
            } else {
                put(
                    &app,
                    &format!("/v1/users/{target}/platform-roles"),
                    &token,
                    json!({ "roles": [] }),
                )
                .await
            }
        }));
    }
    for attempt in attempts {
        let reply = attempt.await.expect("the request task");
        assert!(
            matches!(reply.status.as_u16(), 200 | 403 | 409),
            "{reply:?}"
        );
        if reply.status == StatusCode::CONFLICT {
            assert_problem(&reply, StatusCode::CONFLICT, "last_platform_root");
        }
    }
    let mut active_roots = 0;
    for (token, _) in &roots {
        for (_, id) in &roots {
            let user = app.get(&format!("/v1/users/{id}"), token).await;
            if user.status != StatusCode::OK {
                continue;
            }
            if user.body["state"] == "active"
                && user.body["platform_roles"] == json!(["platform_root"])
            {
                active_roots += 1;
            }
        }
    }
    // Only the surviving root can read both users, and sees exactly one active root.
    assert_eq!(active_roots, 1, "exactly one active root is left");
}

/// SPEC §4: a body that is not a JSON object where one is expected is refused, at any
/// depth, and changes nothing.
async fn a_json_array_is_never_read_as_an_object(store: StoreKind) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    let login = send_raw(
        &app,
        Method::POST,
        "/v1/auth/password",
        None,
        "application/json",
        r#"["root@example.com","root password 123"]"#,
    )
    .await;
    assert_problem(&login, StatusCode::BAD_REQUEST, "invalid_request");
    for body in [
        r#"["arr","Arr",{"email":"a@arr.example"}]"#,
        r#"{"id":"arr","display_name":"Arr","admin":["a@arr.example",null]}"#,
    ] {
        let created = send_raw(
            &app,
            Method::POST,
            "/v1/tenants",
            Some(&root),
            "application/json",
            body,
        )
        .await;
        assert_problem(&created, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let missing = app.get("/v1/tenants/arr", &root).await;
    assert_problem(&missing, StatusCode::NOT_FOUND, "tenant_not_found");
    // An object still works.
    let created = app
        .post(
            "/v1/tenants",
            &root,
            json!({ "id": "arr", "display_name": "Arr", "admin": { "email": "a@arr.example" } }),
        )
        .await;
    assert_status(&created, StatusCode::CREATED);
}

/// A malformed request: method, path of tenant `T`, body, extra headers, and the status
/// a member of the tenant gets for it.
type Probe = (
    Method,
    String,
    Option<&'static str>,
    Vec<(&'static str, &'static str)>,
    u16,
);

/// SPEC §3.6: an outsider learns nothing from the order of checks — every malformed
/// header, precondition, body, path or query on an existing tenant's route answers the
/// 404 a missing tenant gets, while a member gets the real 4xx.
async fn an_outsider_gets_tenant_not_found_for_every_malformed_input(store: StoreKind) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    let (admin, admin_id) = tenant_with_admin(&app, &root, "acme").await;
    new_user(&app, &root, "outsider@example.com", PASSWORD).await;
    let outsider = app.login("outsider@example.com", PASSWORD).await;
    let member = |tenant: &str| format!("/v1/tenants/{tenant}/members/{admin_id}");
    let probes: Vec<Probe> = vec![
        (
            Method::PATCH,
            member("T"),
            Some(r#"{"roles":["member"]}"#),
            vec![("if-match", "garbage")],
            412,
        ),
        (
            Method::DELETE,
            member("T"),
            None,
            vec![("if-match", "\"x\"")],
            412,
        ),
        (
            Method::POST,
            "/v1/tenants/T/members".to_owned(),
            Some(r#"{"email":"x@example.com","bogus":1}"#),
            vec![],
            400,
        ),
        (
            Method::POST,
            "/v1/tenants/T/members".to_owned(),
            Some(r#"["x@example.com"]"#),
            vec![],
            400,
        ),
        (
            Method::POST,
            "/v1/tenants/T/members".to_owned(),
            Some(r#"{"email":"x@example.com"}"#),
            vec![("idempotency-key", "")],
            400,
        ),
        (
            Method::POST,
            "/v1/tenants/T/api-keys".to_owned(),
            Some("name=x"),
            vec![("content-type", "text/plain")],
            415,
        ),
        (
            Method::GET,
            "/v1/tenants/T/members?limit=0".to_owned(),
            None,
            vec![],
            400,
        ),
        (
            Method::GET,
            "/v1/tenants/T/members?after=forged".to_owned(),
            None,
            vec![],
            400,
        ),
        (
            Method::GET,
            "/v1/tenants/T/members/not-a-user-id".to_owned(),
            None,
            vec![],
            400,
        ),
        (
            Method::POST,
            "/v1/tenants/T/authorize".to_owned(),
            Some(r#"{"subject":{},"scope":"tenant:read"}"#),
            vec![],
            400,
        ),
    ];
    for (method, path, body, headers, insider_status) in probes {
        let mut answers = Vec::new();
        for (tenant, token) in [
            ("acme", &outsider),
            ("nowhere", &outsider),
            ("acme", &admin),
        ] {
            let path = path.replace("/T", &format!("/{tenant}"));
            let mut request = app
                .client
                .request(method.clone(), app.url(&path))
                .bearer_auth(token);
            if !headers.iter().any(|(name, _)| *name == "content-type") {
                request = request.header("content-type", "application/json");
            }
            for (name, value) in &headers {
                request = request.header(*name, *value);
            }
            if let Some(body) = body {
                request = request.body(body.to_owned());
            }
            answers.push(tests::http::reply(request.send().await.expect("sent")).await);
        }
        let context = format!("{method} {path} {headers:?}");
        assert_problem(&answers[0], StatusCode::NOT_FOUND, "tenant_not_found");
        assert_problem(&answers[1], StatusCode::NOT_FOUND, "tenant_not_found");
        assert_eq!(
            answers[2].status.as_u16(),
            insider_status,
            "{context}: {:?}",
            answers[2]
        );
    }
}

/// SPEC §3.6: every 401 names the Bearer scheme; every answer carrying a secret (and
/// every API answer) is `Cache-Control: no-store`.
async fn every_401_names_bearer_and_secrets_are_never_stored(store: StoreKind) {
    let app = spawn_app_on(store).await;
    for token in [None, Some("garbage"), Some("uek_forged")] {
        let me = app.send(Method::GET, "/v1/me", token, None).await;
        assert_problem(&me, StatusCode::UNAUTHORIZED, "unauthenticated");
        assert_eq!(
            me.headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Bearer"),
            "{me:?}"
        );
    }
    let wrong = app
        .send(
            Method::POST,
            "/v1/auth/password",
            None,
            Some(json!({ "email": "root@example.com", "password": "wrong password 1" })),
        )
        .await;
    assert_problem(&wrong, StatusCode::UNAUTHORIZED, "invalid_credentials");
    assert!(wrong.headers.get("www-authenticate").is_some(), "{wrong:?}");

    let login = app
        .send(
            Method::POST,
            "/v1/auth/password",
            None,
            Some(json!({ "email": "root@example.com", "password": tests::http::ROOT_PASSWORD })),
        )
        .await;
    let root = text(&login.body, "token").to_owned();
    let (admin, _) = tenant_with_admin(&app, &root, "acme").await;
    let key = app
        .post(
            "/v1/tenants/acme/api-keys",
            &admin,
            json!({ "name": "ci", "scopes": ["tenant:read"] }),
        )
        .await;
    let invited = app
        .post(
            "/v1/tenants/acme/members",
            &admin,
            json!({ "email": "new@acme.example" }),
        )
        .await;
    let totp = app
        .send(Method::POST, "/v1/me/totp", Some(&admin), None)
        .await;
    let user = app
        .post(
            "/v1/users",
            &root,
            json!({ "email": "invitee@example.com" }),
        )
        .await;
    for reply in [&login, &key, &invited, &totp, &user] {
        assert!(reply.status.is_success(), "{reply:?}");
        assert_eq!(
            reply
                .headers
                .get("cache-control")
                .and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{reply:?}"
        );
    }
}

/// SPEC §4: cursors are opaque and bound to their list and tenant; the event feed always
/// gives the cursor to resume from, and a poller at its end sees the next event.
async fn cursors_are_opaque_and_bound_to_their_list_and_tenant(store: StoreKind) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    let (acme, _) = tenant_with_admin(&app, &root, "acme").await;
    tenant_with_admin(&app, &root, "globex").await;
    for n in 0..3 {
        let user = new_user(&app, &root, &format!("m{n}@acme.example"), PASSWORD).await;
        add_member(&app, &acme, "acme", &user, json!(["member"])).await;
    }
    let first = app.get("/v1/tenants/acme/members?limit=2", &acme).await;
    assert_status(&first, StatusCode::OK);
    let cursor = text(&first.body, "next_cursor").to_owned();
    let last_id = first.body["items"][1]["user_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert!(!cursor.contains(&last_id), "opaque: {cursor}");
    let second = app
        .get(
            &format!("/v1/tenants/acme/members?limit=2&after={cursor}"),
            &acme,
        )
        .await;
    assert_status(&second, StatusCode::OK);
    assert_eq!(second.body["items"].as_array().expect("items").len(), 2);
    assert_eq!(second.body["next_cursor"], Value::Null, "the last page");

    let mut altered: Vec<char> = cursor.chars().collect();
    altered[3] = if altered[3] == 'A' { 'B' } else { 'A' };
    let altered: String = altered.into_iter().collect();
    for (path, token) in [
        (format!("/v1/tenants/globex/members?after={cursor}"), &root),
        (format!("/v1/tenants/acme/audit?after={cursor}"), &acme),
        (format!("/v1/tenants/acme/events?after={cursor}"), &acme),
        (format!("/v1/tenants?after={cursor}"), &root),
        (format!("/v1/tenants/acme/members?after={last_id}"), &acme),
        (format!("/v1/tenants/acme/members?after={altered}"), &acme),
        ("/v1/tenants/acme/events?after=3".to_owned(), &acme),
    ] {
        let refused = app.get(&path, token).await;
        assert_problem(&refused, StatusCode::BAD_REQUEST, "invalid_cursor");
    }

    // The feed's last page has a cursor; polling from it finds the next event only.
    let feed = app.get("/v1/tenants/acme/events?limit=200", &acme).await;
    assert_status(&feed, StatusCode::OK);
    let resume = text(&feed.body, "next_cursor").to_owned();
    let idle = app
        .get(&format!("/v1/tenants/acme/events?after={resume}"), &acme)
        .await;
    assert_eq!(idle.body["items"], json!([]));
    assert_eq!(
        idle.body["next_cursor"],
        resume.as_str(),
        "stays where it was"
    );
    let renamed = patch(
        &app,
        "/v1/tenants/acme",
        &acme,
        json!({ "display_name": "Acme Renamed" }),
    )
    .await;
    assert_status(&renamed, StatusCode::OK);
    let next = app
        .get(&format!("/v1/tenants/acme/events?after={resume}"), &acme)
        .await;
    let items = next.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{next:?}");
    assert_eq!(items[0]["type"], "tenant.updated");
}

tests::on_both_stores!(
    members_write_neither_revokes_admins_nor_escalates,
    platform_role_names_are_refused_as_tenant_roles,
    the_last_platform_root_survives_twenty_parallel_suspensions_and_demotions,
    a_json_array_is_never_read_as_an_object,
    an_outsider_gets_tenant_not_found_for_every_malformed_input,
    every_401_names_bearer_and_secrets_are_never_stored,
    cursors_are_opaque_and_bound_to_their_list_and_tenant,
);
