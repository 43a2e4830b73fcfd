//! Single-use secrets, throttles and credentials over HTTP (SPEC §3.6), as an attacker
//! would try them: the same secret sent many times at once, throttles hit from two
//! nodes, bad credentials of every kind, forged forwarding headers. Each scenario runs
//! on PostgreSQL and on the embedded SQLite store.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tests::http::{
    assert_forbidden, assert_problem, assert_status, enrol_totp, new_user, patch, reply,
    spawn_app_on, spawn_app_with_options, tenant_with_admin, text, AppOptions, Authenticator,
    Reply, StoreKind, TestApp, PASSWORD,
};

/// Sends `count` copies of a request at once, each from a task of its own over its own
/// connection; `body(n)` is the n-th body. Replies come back in the order of `n`.
async fn at_once(
    app: &TestApp,
    count: usize,
    method: Method,
    path: &str,
    token: impl Fn(usize) -> Option<String>,
    body: impl Fn(usize) -> Option<Value>,
) -> Vec<Reply> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(count));
    let tasks: Vec<_> = (0..count)
        .map(|n| {
            let mut request = reqwest::Client::new().request(method.clone(), app.url(path));
            if let Some(token) = token(n) {
                request = request.bearer_auth(token);
            }
            if let Some(body) = body(n) {
                request = request.json(&body);
            }
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                reply(request.send().await.expect("the request is sent")).await
            })
        })
        .collect();
    let mut replies = Vec::with_capacity(count);
    for task in tasks {
        replies.push(task.await.expect("the request task"));
    }
    replies
}

/// Sends a request with extra headers.
async fn send_with_headers(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut request = app.client.request(method, app.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    reply(request.send().await.expect("the request is sent")).await
}

async fn login_attempt(app: &TestApp, email: &str, password: &str, via: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = via
        .map(|hop| ("x-forwarded-for", hop))
        .into_iter()
        .collect();
    send_with_headers(
        app,
        Method::POST,
        "/v1/auth/password",
        &headers,
        None,
        Some(json!({ "email": email, "password": password })),
    )
    .await
}

/// A 429 `rate_limited` whose `Retry-After` is a whole number of seconds within
/// `window` seconds.
fn assert_rate_limited(reply: &Reply, window: u64) {
    assert_problem(reply, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let wait: u64 = reply
        .headers
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("a Retry-After in seconds: {reply:?}"));
    assert!(
        (1..=window).contains(&wait),
        "Retry-After {wait}: {reply:?}"
    );
}

/// The tenant's audit records of refused unauthenticated requests.
async fn unauthenticated_records(app: &TestApp, admin: &str, tenant: &str) -> Vec<Value> {
    let trail = app
        .get(&format!("/v1/tenants/{tenant}/audit?limit=200"), admin)
        .await;
    assert_status(&trail, StatusCode::OK);
    trail.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|record| record["reason"] == "unauthenticated")
        .cloned()
        .collect()
}

fn count(replies: &[Reply], status: StatusCode) -> usize {
    replies
        .iter()
        .filter(|reply| reply.status == status)
        .count()
}

// ---- single-use secrets ----------------------------------------------------------------

async fn twenty_concurrent_acceptances_of_one_invitation_let_exactly_one_password_in(
    store: StoreKind,
) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    let created = app
        .post(
            "/v1/tenants",
            &root,
            json!({ "id": "acme", "display_name": "Acme", "admin": { "email": "boss@acme.example" } }),
        )
        .await;
    assert_status(&created, StatusCode::CREATED);
    let token = text(&created.body, "invitation_token").to_owned();
    let password = |n: usize| format!("password number {n:02}");
    let replies = at_once(
        &app,
        20,
        Method::POST,
        "/v1/auth/invitation",
        |_| None,
        |n| Some(json!({ "token": token, "password": password(n) })),
    )
    .await;
    assert_eq!(count(&replies, StatusCode::NO_CONTENT), 1, "{replies:#?}");
    let mut winner = None;
    for (n, reply) in replies.iter().enumerate() {
        if reply.status == StatusCode::NO_CONTENT {
            winner = Some(n);
        } else {
            // What a used token gets.
            assert_problem(reply, StatusCode::UNAUTHORIZED, "invalid_credentials");
        }
    }
    let winner = winner.expect("one acceptance won");
    app.login("boss@acme.example", &password(winner)).await;
    let loser = (winner + 1) % 20;
    let refused = login_attempt(&app, "boss@acme.example", &password(loser), None).await;
    assert_problem(&refused, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let again = app
        .send(
            Method::POST,
            "/v1/auth/invitation",
            None,
            Some(json!({ "token": token, "password": password(loser) })),
        )
        .await;
    assert_problem(&again, StatusCode::UNAUTHORIZED, "invalid_credentials");
}

async fn one_totp_code_sent_on_eight_sessions_at_once_raises_exactly_one_to_aal2(store: StoreKind) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    new_user(&app, &root, "dev@example.com", PASSWORD).await;
    let first = app.login("dev@example.com", PASSWORD).await;
    let authenticator = enrol_totp(&app, &first).await;
    let mut sessions = Vec::new();
    for _ in 0..8 {
        sessions.push(app.login("dev@example.com", PASSWORD).await);
    }
    // The next step's code: the confirmation burned the current one.
    let code = authenticator.code(30);
    let replies = at_once(
        &app,
        8,
        Method::POST,
        "/v1/auth/totp",
        |n| Some(sessions[n].clone()),
        |_| Some(json!({ "code": code })),
    )
    .await;
    assert_eq!(count(&replies, StatusCode::OK), 1, "{replies:#?}");
    for (reply, session) in replies.iter().zip(&sessions) {
        let me = app.get("/v1/me", session).await;
        assert_status(&me, StatusCode::OK);
        if reply.status == StatusCode::OK {
            assert_eq!(reply.body["assurance"], "aal2", "{reply:?}");
            assert_eq!(me.body["assurance"], "aal2", "{me:?}");
        } else {
            assert_problem(reply, StatusCode::UNAUTHORIZED, "invalid_totp");
            assert_eq!(me.body["assurance"], "aal1", "{me:?}");
        }
    }
}

/// The store operations behind the two tests above, with the interleaving forced: a
/// second transaction tries the secret while the first has used it and not committed.
/// Over HTTP the password hashing in front of an acceptance staggers the requests, so
/// this is where a check-then-write implementation would show.
async fn a_secret_used_by_an_uncommitted_transaction_cannot_be_used_again(store: StoreKind) {
    use domain::ports::TxScope;
    use std::time::Duration;

    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    let created = app
        .post(
            "/v1/tenants",
            &root,
            json!({ "id": "acme", "display_name": "Acme", "admin": { "email": "boss@acme.example" } }),
        )
        .await;
    assert_status(&created, StatusCode::CREATED);
    let token_hash = domain::usecases::hash_token(text(&created.body, "invitation_token"));
    let user_id = new_user(&app, &root, "dev@example.com", PASSWORD).await;
    let session = app.login("dev@example.com", PASSWORD).await;
    enrol_totp(&app, &session).await;
    let user = domain::ids::UserId::parse(&user_id).expect("a user id");
    let step = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp() / 30 + 10)
        .expect("after 1970");
    let store = app.store();
    let now = time::OffsetDateTime::now_utc();

    // A use rolled back leaves the secret to the transaction that waited for it.
    let mut first = store.begin(TxScope::Platform).await.expect("begin");
    assert!(first
        .consume_invitation(&token_hash, now)
        .await
        .expect("consume")
        .is_some());
    assert!(first.burn_totp_step(&user, step).await.expect("burn"));
    let waiting = {
        let store = store.clone();
        let token_hash = token_hash.clone();
        tokio::spawn(async move {
            let mut second = store.begin(TxScope::Platform).await.expect("begin");
            let invitation = second
                .consume_invitation(&token_hash, now)
                .await
                .expect("consume");
            let burned = second.burn_totp_step(&user, step).await.expect("burn");
            (second, invitation.is_some(), burned)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(first);
    let (second, consumed, burned) = waiting.await.expect("the second transaction");
    assert!(consumed, "a rolled-back use does not use the invitation");
    assert!(burned, "a rolled-back burn does not burn the step");

    // A use not yet committed: whoever tries meanwhile waits and finds it used.
    let racing = {
        let store = store.clone();
        let token_hash = token_hash.clone();
        tokio::spawn(async move {
            let mut third = store.begin(TxScope::Platform).await.expect("begin");
            let invitation = third
                .consume_invitation(&token_hash, now)
                .await
                .expect("consume");
            let burned = third.burn_totp_step(&user, step).await.expect("burn");
            (invitation.is_some(), burned)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    second.commit().await.expect("commit");
    let (consumed, burned) = racing.await.expect("the third transaction");
    assert!(!consumed, "an invitation is used once");
    assert!(!burned, "a time step is burned once");
}

// ---- the TOTP failure throttle -------------------------------------------------------------

async fn twenty_parallel_wrong_totp_codes_get_five_answers_and_then_429_even_for_the_right_code(
    store: StoreKind,
) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    new_user(&app, &root, "dev@example.com", PASSWORD).await;
    let enrolling = app.login("dev@example.com", PASSWORD).await;
    let authenticator = enrol_totp(&app, &enrolling).await;
    let session = app.login("dev@example.com", PASSWORD).await;
    let wrong = authenticator.wrong_code();
    let replies = at_once(
        &app,
        20,
        Method::POST,
        "/v1/auth/totp",
        |_| Some(session.clone()),
        |_| Some(json!({ "code": wrong })),
    )
    .await;
    // Each attempt is counted before it is checked, so no more than five are checked.
    assert_eq!(count(&replies, StatusCode::UNAUTHORIZED), 5, "{replies:#?}");
    for reply in &replies {
        if reply.status == StatusCode::UNAUTHORIZED {
            assert_problem(reply, StatusCode::UNAUTHORIZED, "invalid_totp");
        } else {
            assert_rate_limited(reply, 300);
        }
    }
    // The window is full: a right code is refused too, on any session of the user.
    let right = app
        .post(
            "/v1/auth/totp",
            &session,
            json!({ "code": authenticator.code(30) }),
        )
        .await;
    assert_rate_limited(&right, 300);
    assert_eq!(app.get("/v1/me", &session).await.body["assurance"], "aal1");
    let other_session = app.login("dev@example.com", PASSWORD).await;
    let elsewhere = app
        .post(
            "/v1/auth/totp",
            &other_session,
            json!({ "code": authenticator.code(30) }),
        )
        .await;
    assert_rate_limited(&elsewhere, 300);
    // Another user is not affected.
    new_user(&app, &root, "other@example.com", PASSWORD).await;
    let other = app.login("other@example.com", PASSWORD).await;
    let other_authenticator = enrol_totp(&app, &other).await;
    let other_step_up = app
        .post(
            "/v1/auth/totp",
            &app.login("other@example.com", PASSWORD).await,
            json!({ "code": other_authenticator.code(30) }),
        )
        .await;
    assert_status(&other_step_up, StatusCode::OK);
}

async fn wrong_confirmation_codes_count_against_the_same_totp_throttle(store: StoreKind) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    new_user(&app, &root, "dev@example.com", PASSWORD).await;
    let session = app.login("dev@example.com", PASSWORD).await;
    // A step-up without any factor is a wrong code too.
    let no_factor = app
        .post("/v1/auth/totp", &session, json!({ "code": "000000" }))
        .await;
    assert_problem(&no_factor, StatusCode::UNAUTHORIZED, "invalid_totp");
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
    let replies = at_once(
        &app,
        8,
        Method::POST,
        "/v1/me/totp/confirm",
        |_| Some(session.clone()),
        |_| Some(json!({ "code": authenticator.wrong_code() })),
    )
    .await;
    assert_eq!(count(&replies, StatusCode::UNAUTHORIZED), 4, "{replies:#?}");
    assert_eq!(
        count(&replies, StatusCode::TOO_MANY_REQUESTS),
        4,
        "{replies:#?}"
    );
    let right = app
        .post(
            "/v1/me/totp/confirm",
            &session,
            json!({ "code": authenticator.code(0) }),
        )
        .await;
    assert_rate_limited(&right, 300);
    let me = app.get("/v1/me", &session).await;
    assert_eq!(me.body["user"]["has_totp"], false, "{me:?}");
}

// ---- login throttles in the store ----------------------------------------------------------

async fn login_throttles_hold_across_two_nodes_per_email_and_per_address(store: StoreKind) {
    let app = spawn_app_with_options(
        store,
        AppOptions {
            login_per_minute: 3,
            trusted_proxies: vec!["127.0.0.0/8".to_owned()],
            ..AppOptions::default()
        },
    )
    .await;
    let other_node = app.another_node().await;
    let root = app.root_token().await;
    new_user(&app, &root, "dev@example.com", PASSWORD).await;
    // Per email: three attempts from three addresses over two nodes, then 429 anywhere.
    for (node, address) in [
        (&app, "198.51.100.1"),
        (&other_node, "198.51.100.2"),
        (&app, "198.51.100.3"),
    ] {
        let attempt =
            login_attempt(node, "dev@example.com", "wrong password 123", Some(address)).await;
        assert_problem(&attempt, StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    for node in [&app, &other_node] {
        let limited = login_attempt(node, "dev@example.com", PASSWORD, Some("198.51.100.4")).await;
        assert_rate_limited(&limited, 60);
    }
    // Per address: three emails from one address over two nodes, then 429.
    for (node, email) in [
        (&other_node, "a@example.com"),
        (&app, "b@example.com"),
        (&other_node, "c@example.com"),
    ] {
        let attempt = login_attempt(node, email, PASSWORD, Some("203.0.113.7")).await;
        assert_problem(&attempt, StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let limited = login_attempt(
        &app,
        "root@example.com",
        "root password 123",
        Some("203.0.113.7"),
    )
    .await;
    assert_rate_limited(&limited, 60);
    // Someone else, elsewhere, logs in.
    let fine = login_attempt(
        &other_node,
        "root@example.com",
        "root password 123",
        Some("203.0.113.8"),
    )
    .await;
    assert_status(&fine, StatusCode::OK);
}

// ---- client addresses ----------------------------------------------------------------------

async fn clients_behind_a_trusted_proxy_get_login_buckets_of_their_own(store: StoreKind) {
    let app = spawn_app_with_options(
        store,
        AppOptions {
            login_per_minute: 2,
            trusted_proxies: vec!["127.0.0.1/32".to_owned()],
            ..AppOptions::default()
        },
    )
    .await;
    for email in ["a@example.com", "b@example.com"] {
        let attempt = login_attempt(&app, email, PASSWORD, Some("198.51.100.1")).await;
        assert_problem(&attempt, StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let limited = login_attempt(&app, "c@example.com", PASSWORD, Some("198.51.100.1")).await;
    assert_rate_limited(&limited, 60);
    // A left-most entry the client wrote itself changes nothing.
    let spoofed = login_attempt(
        &app,
        "d@example.com",
        PASSWORD,
        Some("203.0.113.99, 198.51.100.1"),
    )
    .await;
    assert_rate_limited(&spoofed, 60);
    // Another client behind the same proxy has a bucket of its own.
    let other = login_attempt(&app, "e@example.com", PASSWORD, Some("198.51.100.2")).await;
    assert_problem(&other, StatusCode::UNAUTHORIZED, "invalid_credentials");
}

async fn an_untrusted_peer_cannot_choose_its_address_with_forwarding_headers(store: StoreKind) {
    let app = spawn_app_with_options(
        store,
        AppOptions {
            login_per_minute: 2,
            ..AppOptions::default()
        },
    )
    .await;
    for (email, hop) in [
        ("a@example.com", "198.51.100.1"),
        ("b@example.com", "198.51.100.2"),
    ] {
        let attempt = login_attempt(&app, email, PASSWORD, Some(hop)).await;
        assert_problem(&attempt, StatusCode::UNAUTHORIZED, "invalid_credentials");
    }
    let limited = login_attempt(&app, "c@example.com", PASSWORD, Some("198.51.100.3")).await;
    assert_rate_limited(&limited, 60);
    let forwarded = send_with_headers(
        &app,
        Method::POST,
        "/v1/auth/password",
        &[("forwarded", "for=198.51.100.4")],
        None,
        Some(json!({ "email": "d@example.com", "password": PASSWORD })),
    )
    .await;
    assert_rate_limited(&forwarded, 60);
}

// ---- bad bearer credentials ----------------------------------------------------------------

async fn every_kind_of_bad_credential_on_an_existing_tenant_leaves_an_anonymous_record(
    store: StoreKind,
) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    let (admin, _) = tenant_with_admin(&app, &root, "acme").await;
    new_user(&app, &root, "dev@example.com", PASSWORD).await;
    let ended = app.login("dev@example.com", PASSWORD).await;
    let logout = app
        .send(Method::DELETE, "/v1/auth/session", Some(&ended), None)
        .await;
    assert_status(&logout, StatusCode::NO_CONTENT);
    let before = unauthenticated_records(&app, &admin, "acme").await;
    assert!(before.is_empty(), "{before:#?}");
    let forged_key = format!("uek_{}", "A".repeat(43));
    let mut request_ids = Vec::new();
    for token in [
        None,
        Some("garbage"),
        Some(forged_key.as_str()),
        Some(ended.as_str()),
    ] {
        let probe = app
            .send(Method::GET, "/v1/tenants/acme/members", token, None)
            .await;
        assert_problem(&probe, StatusCode::UNAUTHORIZED, "unauthenticated");
        assert!(probe.headers.get("www-authenticate").is_some(), "{probe:?}");
        request_ids.push(text(&probe.body, "request_id").to_owned());
    }
    let records = unauthenticated_records(&app, &admin, "acme").await;
    assert_eq!(records.len(), 4, "{records:#?}");
    for (record, request_id) in records.iter().zip(&request_ids) {
        assert_eq!(record["actor"]["type"], "anonymous", "{record}");
        assert_eq!(record["outcome"], "denied", "{record}");
        assert_eq!(record["tenant"], "acme", "{record}");
        assert_eq!(&record["request_id"], request_id, "{record}");
    }
    // A missing tenant still answers 404 and leaves nothing in another tenant's trail.
    let missing = app
        .send(
            Method::GET,
            "/v1/tenants/nowhere/members",
            Some("garbage"),
            None,
        )
        .await;
    assert_problem(&missing, StatusCode::NOT_FOUND, "tenant_not_found");
    assert_eq!(unauthenticated_records(&app, &admin, "acme").await.len(), 4);
}

async fn failed_bearer_authentications_from_one_address_are_throttled_and_stop_being_recorded(
    store: StoreKind,
) {
    let app = spawn_app_with_options(
        store,
        AppOptions {
            auth_failures_per_minute: 3,
            ..AppOptions::default()
        },
    )
    .await;
    let other_node = app.another_node().await;
    let root = app.root_token().await;
    let (admin, _) = tenant_with_admin(&app, &root, "acme").await;
    let on_platform = app.get("/v1/me", "garbage").await;
    assert_problem(&on_platform, StatusCode::UNAUTHORIZED, "unauthenticated");
    let no_token = other_node
        .send(Method::GET, "/v1/tenants/acme/members", None, None)
        .await;
    assert_problem(&no_token, StatusCode::UNAUTHORIZED, "unauthenticated");
    let garbage = app.get("/v1/tenants/acme/members", "garbage").await;
    assert_problem(&garbage, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(unauthenticated_records(&app, &admin, "acme").await.len(), 2);
    // Over the limit, on either node: 429, and no more records.
    for node in [&app, &other_node] {
        let limited = node.get("/v1/tenants/acme/members", "garbage").await;
        assert_rate_limited(&limited, 60);
        let limited = node.get("/v1/me", "garbage").await;
        assert_rate_limited(&limited, 60);
    }
    assert_eq!(unauthenticated_records(&app, &admin, "acme").await.len(), 2);
    // A valid credential from the address is still served: the throttle counts failures.
    let members = app.get("/v1/tenants/acme/members", &admin).await;
    assert_status(&members, StatusCode::OK);
}

// ---- sessions and factors ------------------------------------------------------------------

async fn changing_the_password_ends_every_other_session_of_the_user(store: StoreKind) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    new_user(&app, &root, "dev@example.com", PASSWORD).await;
    new_user(&app, &root, "bystander@example.com", PASSWORD).await;
    let changer = app.login("dev@example.com", PASSWORD).await;
    let other = app.login("dev@example.com", PASSWORD).await;
    let bystander = app.login("bystander@example.com", PASSWORD).await;
    let changed = app
        .send(
            Method::PUT,
            "/v1/me/password",
            Some(&changer),
            Some(json!({ "current_password": PASSWORD, "new_password": "a new password 456" })),
        )
        .await;
    assert_status(&changed, StatusCode::NO_CONTENT);
    let ended = app.get("/v1/me", &other).await;
    assert_problem(&ended, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_status(&app.get("/v1/me", &changer).await, StatusCode::OK);
    assert_status(&app.get("/v1/me", &bystander).await, StatusCode::OK);
    app.login("dev@example.com", "a new password 456").await;
}

async fn an_aal1_session_cannot_replace_a_totp_factor_while_a_re_enrolment_is_pending(
    store: StoreKind,
) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    new_user(&app, &root, "dev@example.com", PASSWORD).await;
    let strong = app.login("dev@example.com", PASSWORD).await;
    enrol_totp(&app, &strong).await;
    assert_eq!(app.get("/v1/me", &strong).await.body["assurance"], "aal2");
    // A re-enrolment started at aal2 leaves an unconfirmed secret on file.
    let pending = app
        .send(Method::POST, "/v1/me/totp", Some(&strong), None)
        .await;
    assert_status(&pending, StatusCode::OK);
    let weak = app.login("dev@example.com", PASSWORD).await;
    assert_eq!(app.get("/v1/me", &weak).await.body["assurance"], "aal1");
    let replace = app
        .send(Method::POST, "/v1/me/totp", Some(&weak), None)
        .await;
    assert_problem(&replace, StatusCode::FORBIDDEN, "forbidden");
    assert_eq!(
        replace.body["reason"], "insufficient_assurance",
        "{replace:?}"
    );
}

/// SPEC §3.2 step 1: a platform-suspended user is refused everything, on the very next
/// request — also what their live session may do on their own account, which no scope
/// guards — and may still end the session. Reactivation gives it all back.
async fn a_suspended_users_session_is_refused_its_own_account_on_the_very_next_request(
    store: StoreKind,
) {
    let app = spawn_app_on(store).await;
    let root = app.root_token().await;
    let id = new_user(&app, &root, "dev@example.com", PASSWORD).await;
    let session = app.login("dev@example.com", PASSWORD).await;
    let authenticator = enrol_totp(&app, &session).await;
    let spare = app.login("dev@example.com", PASSWORD).await;
    assert_status(&app.get("/v1/me", &session).await, StatusCode::OK);
    let user = format!("/v1/users/{id}");
    let suspended = patch(&app, &user, &root, json!({ "state": "suspended" })).await;
    assert_status(&suspended, StatusCode::OK);

    // The very next requests, eight at once split over two nodes, are all refused.
    let other_node = app.another_node().await;
    let nodes = [&app, &other_node];
    let next = futures::future::join_all((0..8).map(|n| {
        let path = if n % 4 < 2 { "/v1/me" } else { "/v1/tenants" };
        nodes[n % 2].get(path, &session)
    }))
    .await;
    for reply in &next {
        assert_forbidden(reply, "subject_suspended");
    }
    let new_password =
        json!({ "current_password": PASSWORD, "new_password": "a new password 456" });
    let changed = app
        .send(
            Method::PUT,
            "/v1/me/password",
            Some(&session),
            Some(new_password),
        )
        .await;
    assert_forbidden(&changed, "subject_suspended");
    let enrol = app
        .send(Method::POST, "/v1/me/totp", Some(&session), None)
        .await;
    assert_forbidden(&enrol, "subject_suspended");
    let code = json!({ "code": authenticator.code(0) });
    let confirm = app
        .post("/v1/me/totp/confirm", &session, code.clone())
        .await;
    assert_forbidden(&confirm, "subject_suspended");
    let step_up = app.post("/v1/auth/totp", &spare, code).await;
    assert_forbidden(&step_up, "subject_suspended");
    let login = app
        .send(
            Method::POST,
            "/v1/auth/password",
            None,
            Some(json!({ "email": "dev@example.com", "password": PASSWORD })),
        )
        .await;
    assert_problem(&login, StatusCode::UNAUTHORIZED, "invalid_credentials");
    let ended = app
        .send(Method::DELETE, "/v1/auth/session", Some(&spare), None)
        .await;
    assert_status(&ended, StatusCode::NO_CONTENT);

    let active = patch(&app, &user, &root, json!({ "state": "active" })).await;
    assert_status(&active, StatusCode::OK);
    assert_status(&app.get("/v1/me", &session).await, StatusCode::OK);
    // The password did not change while suspended, and the ended session stays ended.
    app.login("dev@example.com", PASSWORD).await;
    let gone = app.get("/v1/me", &spare).await;
    assert_problem(&gone, StatusCode::UNAUTHORIZED, "unauthenticated");
}

tests::on_both_stores!(
    a_suspended_users_session_is_refused_its_own_account_on_the_very_next_request,
    twenty_concurrent_acceptances_of_one_invitation_let_exactly_one_password_in,
    one_totp_code_sent_on_eight_sessions_at_once_raises_exactly_one_to_aal2,
    a_secret_used_by_an_uncommitted_transaction_cannot_be_used_again,
    twenty_parallel_wrong_totp_codes_get_five_answers_and_then_429_even_for_the_right_code,
    wrong_confirmation_codes_count_against_the_same_totp_throttle,
    login_throttles_hold_across_two_nodes_per_email_and_per_address,
    clients_behind_a_trusted_proxy_get_login_buckets_of_their_own,
    an_untrusted_peer_cannot_choose_its_address_with_forwarding_headers,
    every_kind_of_bad_credential_on_an_existing_tenant_leaves_an_anonymous_record,
    failed_bearer_authentications_from_one_address_are_throttled_and_stop_being_recorded,
    changing_the_password_ends_every_other_session_of_the_user,
    an_aal1_session_cannot_replace_a_totp_factor_while_a_re_enrolment_is_pending,
);
