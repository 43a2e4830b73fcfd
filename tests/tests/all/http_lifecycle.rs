//! SPEC §4's lifecycle routes over real HTTP on two nodes of both stores, mail off (the
//! mail tests run them with SMTP): an email change applies only when its token comes back,
//! once of 20 parallel verifications; recovery codes need `aal2` to mint, and each raises
//! a session once of 20 parallel uses; a reset request answers alike whatever the email,
//! before the email is looked up, and is carried out afterwards.

use reqwest::{Method, StatusCode};
use serde_json::json;
use tests::http::{
    assert_forbidden, assert_problem, assert_status, enrol_totp, new_user, put, spawn_app_on,
    StoreKind, PASSWORD,
};

async fn an_email_change_applies_once_its_token_comes_back(store: StoreKind) {
    let node_a = spawn_app_on(store).await;
    let node_b = node_a.another_node().await;
    let root = node_a.root_token().await;
    let user = new_user(&node_a, &root, "old@example.com", PASSWORD).await;
    new_user(&node_a, &root, "taken@example.com", PASSWORD).await;
    let token = node_a.login("old@example.com", PASSWORD).await;

    let reply = put(
        &node_a,
        "/v1/me/email",
        &token,
        json!({"email": "new@example.com", "current_password": "not the password"}),
    )
    .await;
    assert_problem(&reply, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let reply = put(
        &node_a,
        "/v1/me/email",
        &token,
        json!({"email": "taken@example.com", "current_password": PASSWORD}),
    )
    .await;
    assert_problem(&reply, StatusCode::CONFLICT, "email_taken");
    let reply = put(
        &node_a,
        "/v1/me/email",
        &token,
        json!({"email": "not an email", "current_password": PASSWORD}),
    )
    .await;
    assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_email");
    let reply = put(
        &node_a,
        "/v1/me/email",
        &token,
        json!({"email": "new@example.com", "current_password": PASSWORD, "extra": 1}),
    )
    .await;
    assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_request");

    let pending = put(
        &node_a,
        "/v1/me/email",
        &token,
        json!({"email": "New@Example.com", "current_password": PASSWORD}),
    )
    .await;
    assert_status(&pending, StatusCode::ACCEPTED);
    assert_eq!(pending.body["email"], "new@example.com");
    assert_eq!(
        pending
            .headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let verification = pending.body["verification_token"]
        .as_str()
        .expect("mail is off: the token")
        .to_owned();
    let read = node_b.get(&format!("/v1/users/{user}"), &root).await;
    assert_eq!(read.body["email"], "old@example.com");
    assert_eq!(read.body["email_verified"], false);

    let body = json!({"token": verification});
    let replies = futures::future::join_all((0..20).map(|i| {
        [&node_a, &node_b][i % 2].send(
            Method::POST,
            "/v1/auth/email-verification",
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
    let me = node_b.get("/v1/me", &token).await;
    assert_status(&me, StatusCode::OK);
    assert_eq!(me.body["user"]["email"], "new@example.com");
    assert_eq!(me.body["user"]["email_verified"], true);
    node_b.login("new@example.com", PASSWORD).await;
    let refused = node_b
        .send(
            Method::POST,
            "/v1/auth/password",
            None,
            Some(json!({"email": "old@example.com", "password": PASSWORD})),
        )
        .await;
    assert_problem(&refused, StatusCode::UNAUTHORIZED, "invalid_credentials");
}

async fn recovery_codes_need_aal2_and_raise_a_session_once_each(store: StoreKind) {
    let node_a = spawn_app_on(store).await;
    let node_b = node_a.another_node().await;
    let root = node_a.root_token().await;
    new_user(&node_a, &root, "u@example.com", PASSWORD).await;
    let token = node_a.login("u@example.com", PASSWORD).await;
    let reply = node_a
        .send(Method::POST, "/v1/me/recovery-codes", Some(&token), None)
        .await;
    assert_forbidden(&reply, "insufficient_assurance");

    enrol_totp(&node_a, &token).await;
    let minted = node_a
        .send(Method::POST, "/v1/me/recovery-codes", Some(&token), None)
        .await;
    assert_status(&minted, StatusCode::OK);
    assert_eq!(
        minted
            .headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let codes: Vec<String> = minted.body["codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|code| code.as_str().expect("a code").to_owned())
        .collect();
    assert_eq!(codes.len(), 10);

    // A fresh session at aal1; 20 parallel uses of one code on both nodes raise it once.
    let fresh = node_b.login("u@example.com", PASSWORD).await;
    let body = json!({"code": codes[0]});
    let replies = futures::future::join_all((0..20).map(|i| {
        [&node_a, &node_b][i % 2].send(
            Method::POST,
            "/v1/auth/recovery",
            Some(&fresh),
            Some(body.clone()),
        )
    }))
    .await;
    let done: Vec<_> = replies
        .iter()
        .filter(|reply| reply.status == StatusCode::OK)
        .collect();
    assert_eq!(done.len(), 1, "{replies:?}");
    assert_eq!(done[0].body["assurance"], "aal2");
    for reply in replies
        .iter()
        .filter(|reply| reply.status != StatusCode::OK)
    {
        assert!(
            reply.code() == Some("invalid_totp") || reply.code() == Some("rate_limited"),
            "{reply:?}"
        );
    }
    let me = node_a.get("/v1/me", &fresh).await;
    assert_eq!(me.body["assurance"], "aal2");
    let reply = node_a
        .post(
            "/v1/auth/recovery",
            &fresh,
            json!({"code": codes[0], "x": 1}),
        )
        .await;
    assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_request");
    let reply = node_a
        .send(
            Method::POST,
            "/v1/auth/recovery",
            None,
            Some(json!({"code": codes[1]})),
        )
        .await;
    assert_problem(&reply, StatusCode::UNAUTHORIZED, "unauthenticated");
}

async fn reset_requests_answer_alike_whatever_the_email(store: StoreKind) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    new_user(&app, &root, "u@example.com", PASSWORD).await;
    let mut answers = Vec::new();
    for email in ["u@example.com", "nobody@example.com", "U@EXAMPLE.COM"] {
        let reply = app
            .send(
                Method::POST,
                "/v1/auth/password-reset",
                None,
                Some(json!({"email": email})),
            )
            .await;
        assert_status(&reply, StatusCode::ACCEPTED);
        answers.push((
            reply.body.clone(),
            reply.headers.get("content-length").cloned(),
        ));
    }
    assert!(
        answers.windows(2).all(|pair| pair[0] == pair[1]),
        "{answers:?}"
    );
    // Answered before the lookup, carried out after it: one record each, none naming
    // an address.
    let mut records = Vec::new();
    for _ in 0..100 {
        let audit = app
            .get("/v1/audit?action=user.password_reset.request", &root)
            .await;
        assert_status(&audit, StatusCode::OK);
        records = audit.body["items"].as_array().cloned().unwrap_or_default();
        if records.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(records.len(), 3, "{records:?}");
    assert!(
        records
            .iter()
            .all(|record| !record.to_string().contains("example.com")),
        "{records:?}"
    );
    let reply = app
        .send(
            Method::POST,
            "/v1/auth/password-reset",
            None,
            Some(json!({"email": "nope"})),
        )
        .await;
    assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_email");
    let reply = app
        .send(
            Method::POST,
            "/v1/auth/password-reset",
            None,
            Some(json!([{"email": "u@example.com"}])),
        )
        .await;
    assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_request");
}

tests::on_both_stores!(
    an_email_change_applies_once_its_token_comes_back,
    recovery_codes_need_aal2_and_raise_a_session_once_each,
    reset_requests_answer_alike_whatever_the_email,
);
