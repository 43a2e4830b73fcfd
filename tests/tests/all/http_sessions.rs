//! SPEC §4's session and password reset routes over real HTTP on two nodes: a user lists
//! their sessions (with where each was opened), ends one, or every other one; a platform
//! administrator ends all of a user's sessions, issues a password reset token, or (at
//! `aal2`) removes a lost TOTP factor. An ended session is refused on the very next
//! request on the other node, also by 20 parallel requests; a reset token is used once
//! by 20 parallel confirmations.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tests::http::{
    assert_forbidden, assert_problem, assert_status, enrol_totp, new_user, send_with, spawn_app_on,
    spawn_app_with_options, AppOptions, StoreKind, TestApp, PASSWORD,
};

/// Logs `email` in with a `User-Agent` of its own and returns the token.
async fn login_as(app: &TestApp, email: &str, agent: &str) -> String {
    let reply = tests::http::reply(
        app.client
            .post(app.url("/v1/auth/password"))
            .header("user-agent", agent)
            .json(&serde_json::json!({ "email": email, "password": PASSWORD }))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_status(&reply, StatusCode::OK);
    reply.body["token"].as_str().expect("a token").to_owned()
}

async fn sessions(app: &TestApp, token: &str) -> Vec<Value> {
    let reply = app.get("/v1/me/sessions", token).await;
    assert_status(&reply, StatusCode::OK);
    assert_eq!(reply.body["next_cursor"], Value::Null);
    reply.body["items"].as_array().expect("items").clone()
}

async fn delete(app: &TestApp, path: &str, token: &str) -> tests::http::Reply {
    send_with(app, Method::DELETE, path, token, None, &[]).await
}

/// 20 parallel requests with `token`, half on each node: all must be refused.
async fn refused_everywhere(nodes: [&TestApp; 2], token: &str) {
    let replies =
        futures::future::join_all((0..20).map(|i| nodes[i % 2].get("/v1/me", token))).await;
    for reply in &replies {
        assert_problem(reply, StatusCode::UNAUTHORIZED, "unauthenticated");
    }
}

async fn sessions_are_listed_and_ended_on_the_very_next_request_on_any_node(store: StoreKind) {
    let node_a = spawn_app_on(store).await;
    let node_b = node_a.another_node().await;
    let root = node_a.root_token().await;
    let user = new_user(&node_a, &root, "u@example.com", PASSWORD).await;
    let laptop = login_as(&node_a, "u@example.com", "Laptop/1.0").await;
    let phone = login_as(&node_b, "u@example.com", "Phone/2.0").await;
    let tablet = login_as(&node_a, "u@example.com", "Tablet/3.0").await;
    new_user(&node_a, &root, "v@example.com", PASSWORD).await;
    let other = login_as(&node_a, "v@example.com", "Other/1.0").await;

    // Listed on either node, oldest first, with where each was opened and which asked.
    let listed = sessions(&node_b, &laptop).await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    let agents: Vec<&str> = listed
        .iter()
        .map(|session| session["user_agent"].as_str().expect("an agent"))
        .collect();
    assert_eq!(agents, vec!["Laptop/1.0", "Phone/2.0", "Tablet/3.0"]);
    let current: Vec<bool> = listed
        .iter()
        .map(|session| session["current"].as_bool().expect("a flag"))
        .collect();
    assert_eq!(current, vec![true, false, false]);
    for session in &listed {
        assert_eq!(session["client_address"], "127.0.0.1");
        assert_eq!(session["assurance"], "aal1");
        for field in ["id", "created_at", "last_seen_at", "expires_at"] {
            assert!(session[field].is_string(), "{field}: {session}");
        }
        assert!(session.get("token").is_none());
    }
    let id = |index: usize| listed[index]["id"].as_str().expect("an id").to_owned();

    // Someone else's session id, a malformed one, an API key: nothing ends.
    let others = sessions(&node_a, &other).await;
    let theirs = others[0]["id"].as_str().expect("an id");
    let reply = delete(&node_a, &format!("/v1/me/sessions/{theirs}"), &laptop).await;
    assert_problem(&reply, StatusCode::NOT_FOUND, "not_found");
    let reply = delete(&node_a, "/v1/me/sessions/not-an-id", &laptop).await;
    assert_problem(&reply, StatusCode::NOT_FOUND, "not_found");
    assert_status(&node_b.get("/v1/me", &other).await, StatusCode::OK);
    let reply = node_a
        .send(Method::GET, "/v1/me/sessions", None, None)
        .await;
    assert_problem(&reply, StatusCode::UNAUTHORIZED, "unauthenticated");

    // The phone's session ended on node A is refused on node B at once.
    let reply = delete(&node_a, &format!("/v1/me/sessions/{}", id(1)), &laptop).await;
    assert_status(&reply, StatusCode::NO_CONTENT);
    refused_everywhere([&node_b, &node_a], &phone).await;
    let reply = delete(&node_b, &format!("/v1/me/sessions/{}", id(1)), &laptop).await;
    assert_problem(&reply, StatusCode::NOT_FOUND, "not_found");

    // Every other one, from node B: the tablet goes, the laptop stays.
    let reply = delete(&node_b, "/v1/me/sessions", &laptop).await;
    assert_status(&reply, StatusCode::NO_CONTENT);
    refused_everywhere([&node_a, &node_b], &tablet).await;
    let left = sessions(&node_a, &laptop).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"].as_str(), Some(id(0).as_str()));

    // A user may not end another's sessions; the platform root may.
    let path = format!("/v1/users/{user}/sessions");
    let reply = delete(&node_a, &path, &other).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
    assert_status(&node_b.get("/v1/me", &laptop).await, StatusCode::OK);
    let reply = delete(&node_b, &path, &root).await;
    assert_status(&reply, StatusCode::NO_CONTENT);
    refused_everywhere([&node_a, &node_b], &laptop).await;
    let unknown = format!("/v1/users/{}/sessions", uuid::Uuid::now_v7());
    assert_problem(
        &delete(&node_a, &unknown, &root).await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    );
    assert_problem(
        &delete(&node_a, "/v1/users/nope/sessions", &root).await,
        StatusCode::BAD_REQUEST,
        "invalid_user_id",
    );

    // Each end is one allowed record naming ids only.
    let trail = node_a.get("/v1/audit?limit=200", &root).await;
    assert_status(&trail, StatusCode::OK);
    let records = trail.body["items"].as_array().expect("items");
    let ends: Vec<(&str, &str)> = records
        .iter()
        .filter(|record| {
            matches!(
                record["action"].as_str(),
                Some("session.revoke" | "session.revoke_others" | "user.sessions.revoke")
            )
        })
        .map(|record| {
            (
                record["action"].as_str().expect("an action"),
                record["outcome"].as_str().expect("an outcome"),
            )
        })
        .collect();
    assert_eq!(
        ends,
        vec![
            ("session.revoke", "allowed"),
            ("session.revoke_others", "allowed"),
            ("user.sessions.revoke", "denied"),
            ("user.sessions.revoke", "allowed"),
            ("user.sessions.revoke", "denied"),
        ]
    );
    let text = trail.body.to_string();
    for token in [&laptop, &phone, &tablet] {
        assert!(!text.contains(token.as_str()));
    }
}

async fn a_reset_token_is_used_once_across_nodes_and_ends_every_session(store: StoreKind) {
    let node_a = spawn_app_on(store).await;
    let node_b = node_a.another_node().await;
    let root = node_a.root_token().await;
    let user = new_user(&node_a, &root, "u@example.com", PASSWORD).await;
    let on_a = login_as(&node_a, "u@example.com", "A/1").await;
    let on_b = login_as(&node_b, "u@example.com", "B/1").await;
    let path = format!("/v1/users/{user}/password-reset");

    // Issued by the platform root only, shown once and never stored by a cache.
    let reply = send_with(&node_a, Method::POST, &path, &on_a, None, &[]).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{reply:?}");
    let issued = send_with(&node_a, Method::POST, &path, &root, None, &[]).await;
    assert_status(&issued, StatusCode::CREATED);
    assert_eq!(
        issued
            .headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let token = issued.body["token"].as_str().expect("a token").to_owned();
    assert!(issued.body["expires_at"].is_string());

    // A short password changes nothing and leaves the token usable.
    let short = serde_json::json!({ "token": token, "new_password": "short" });
    let reply = node_b
        .send(
            Method::POST,
            "/v1/auth/password-reset/confirm",
            None,
            Some(short),
        )
        .await;
    assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_request");

    // 20 parallel confirmations over both nodes: one 204, the rest what a used token gets.
    let body = serde_json::json!({ "token": token, "new_password": "a brand new passphrase" });
    let replies = futures::future::join_all((0..20).map(|i| {
        [&node_a, &node_b][i % 2].send(
            Method::POST,
            "/v1/auth/password-reset/confirm",
            None,
            Some(body.clone()),
        )
    }))
    .await;
    let done = replies
        .iter()
        .filter(|reply| reply.status == StatusCode::NO_CONTENT)
        .count();
    assert_eq!(done, 1, "{replies:?}");
    for reply in replies
        .iter()
        .filter(|reply| reply.status != StatusCode::NO_CONTENT)
    {
        assert_problem(reply, StatusCode::UNAUTHORIZED, "invalid_credentials");
    }

    // Every session of the user ended, on both nodes; the new password logs in.
    refused_everywhere([&node_a, &node_b], &on_a).await;
    refused_everywhere([&node_b, &node_a], &on_b).await;
    login_with(&node_b, "u@example.com", "a brand new passphrase").await;
}

async fn wrong_reset_tokens_are_throttled_by_address_and_bound_the_records(store: StoreKind) {
    let node_a = spawn_app_with_options(
        store,
        AppOptions {
            auth_failures_per_minute: 5,
            ..AppOptions::default()
        },
    )
    .await;
    let node_b = node_a.another_node().await;
    let body = serde_json::json!({ "token": "guessed", "new_password": "a brand new passphrase" });
    // 20 concurrent guesses from one address, split over both nodes: the window admits
    // five refusals, the rest are 429 and leave no record.
    let replies = futures::future::join_all((0..20).map(|i| {
        [&node_a, &node_b][i % 2].send(
            Method::POST,
            "/v1/auth/password-reset/confirm",
            None,
            Some(body.clone()),
        )
    }))
    .await;
    let refused = replies
        .iter()
        .filter(|reply| reply.status == StatusCode::UNAUTHORIZED)
        .count();
    assert_eq!(refused, 5, "{replies:?}");
    for reply in &replies {
        if reply.status == StatusCode::UNAUTHORIZED {
            assert_problem(reply, StatusCode::UNAUTHORIZED, "invalid_credentials");
        } else {
            assert_problem(reply, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
            assert!(reply.headers.get("retry-after").is_some());
        }
    }
    let root = node_a.root_token().await;
    let trail = node_b.get("/v1/audit?limit=200", &root).await;
    let recorded = trail.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|record| record["action"] == "user.password.reset")
        .count();
    assert_eq!(recorded, 5, "a throttled attempt leaves no record");
}

async fn a_lost_totp_factor_is_removed_by_a_root_at_aal2(store: StoreKind) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    let user = new_user(&app, &root, "u@example.com", PASSWORD).await;
    let token = login_as(&app, "u@example.com", "Phone/1").await;
    enrol_totp(&app, &token).await;
    let path = format!("/v1/users/{user}/totp");

    // A root at aal1 is refused; the user may not remove it for themselves this way.
    assert_forbidden(&delete(&app, &path, &root).await, "insufficient_assurance");
    assert_eq!(
        delete(&app, &path, &token).await.status,
        StatusCode::FORBIDDEN
    );
    let authenticator = enrol_totp(&app, &root).await;
    let stepped = app
        .post(
            "/v1/auth/totp",
            &root,
            serde_json::json!({ "code": authenticator.code(30) }),
        )
        .await;
    assert_status(&stepped, StatusCode::OK);

    // At aal2 it goes; the user's session goes on and they can enrol a new factor.
    assert_status(&delete(&app, &path, &root).await, StatusCode::NO_CONTENT);
    assert_status(&app.get("/v1/me", &token).await, StatusCode::OK);
    enrol_totp(&app, &token).await;
    let unknown = format!("/v1/users/{}/totp", uuid::Uuid::now_v7());
    assert_problem(
        &delete(&app, &unknown, &root).await,
        StatusCode::NOT_FOUND,
        "user_not_found",
    );
}

async fn login_with(app: &TestApp, email: &str, password: &str) {
    let reply = app
        .send(
            Method::POST,
            "/v1/auth/password",
            None,
            Some(serde_json::json!({ "email": email, "password": password })),
        )
        .await;
    assert_status(&reply, StatusCode::OK);
}

tests::on_both_stores!(
    sessions_are_listed_and_ended_on_the_very_next_request_on_any_node,
    a_reset_token_is_used_once_across_nodes_and_ends_every_session,
    wrong_reset_tokens_are_throttled_by_address_and_bound_the_records,
    a_lost_totp_factor_is_removed_by_a_root_at_aal2,
);
