//! SPEC §6 webhooks over HTTP on both stores, against a receiver that verifies every
//! signature with the `standardwebhooks` library: every event of a tenant arrives, signed,
//! in feed order, also after the receiver answered 500 for a while; another tenant's
//! events never reach this tenant's hook; a rotated secret signs from then on; internal
//! and plain-HTTP URLs are refused unless the operator allows them.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use server::config::Config;
use tests::http::{
    assert_problem, assert_status, put, spawn_app_configured, tenant_with_admin, AppOptions,
    StoreKind, TestApp,
};
use tests::receiver::WebhookReceiver;

async fn allowing_insecure(store: StoreKind) -> TestApp {
    spawn_app_configured(store, AppOptions::default(), |config: &mut Config| {
        config.webhooks_allow_insecure = true;
        config.delivery_retry_max_seconds = 1;
    })
    .await
    .0
}

/// The positions of the tenant's feed after `after`.
async fn feed_positions(app: &TestApp, token: &str, tenant: &str, after: u64) -> Vec<u64> {
    let mut positions = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/tenants/{tenant}/events?limit=200&after={cursor}"),
            None => format!("/v1/tenants/{tenant}/events?limit=200"),
        };
        let page = app.get(&path, token).await;
        assert_status(&page, StatusCode::OK);
        let items = page.body["items"].as_array().expect("items").clone();
        if items.is_empty() {
            return positions;
        }
        positions.extend(
            items
                .iter()
                .filter_map(|event| event["sequence"].as_u64())
                .filter(|position| *position > after),
        );
        cursor = page.body["next_cursor"].as_str().map(str::to_owned);
    }
}

/// Positions received at `path`, verified, first arrival of each, in arrival order.
fn arrivals(received: &[Value], path: &str) -> Vec<u64> {
    let mut seen = Vec::new();
    for record in received {
        if record["path"] == path && record["verified"] == true {
            let position = record["sequence"].as_u64().expect("sequence");
            if !seen.contains(&position) {
                seen.push(position);
            }
        }
    }
    seen
}

async fn add_members(app: &TestApp, token: &str, prefix: &str, tenant: &str, count: usize) {
    for index in 0..count {
        let reply = app
            .post(
                &format!("/v1/tenants/{tenant}/members"),
                token,
                json!({"email": format!("{prefix}{index}@{tenant}.test"), "roles": ["member"]}),
            )
            .await;
        assert_status(&reply, StatusCode::CREATED);
    }
}

async fn every_event_arrives_signed_in_order_also_after_the_receiver_failed(store: StoreKind) {
    let mut receiver = WebhookReceiver::start();
    let app = allowing_insecure(store).await;
    let root = app.root_token().await;
    let (acme_admin, _) = tenant_with_admin(&app, &root, "acme").await;
    let (globex_admin, _) = tenant_with_admin(&app, &root, "globex").await;
    let head = feed_positions(&app, &root, "acme", 0)
        .await
        .last()
        .copied()
        .unwrap_or(0);

    let created = put(
        &app,
        "/v1/tenants/acme/webhooks/all",
        &acme_admin,
        json!({"url": receiver.url("/acme"), "types": ["*"]}),
    )
    .await;
    assert_status(&created, StatusCode::CREATED);
    assert_eq!(
        created
            .headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let secret = created.body["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"));
    receiver.set_secret("/acme", &secret);
    let other = put(
        &app,
        "/v1/tenants/globex/webhooks/all",
        &globex_admin,
        json!({"url": receiver.url("/globex"), "types": ["membership.added"]}),
    )
    .await;
    assert_status(&other, StatusCode::CREATED);
    receiver.set_secret("/globex", other.body["secret"].as_str().expect("secret"));
    // Another tenant's admin cannot see or change acme's hook.
    let probe = app
        .get("/v1/tenants/acme/webhooks/all", &globex_admin)
        .await;
    assert_problem(&probe, StatusCode::NOT_FOUND, "tenant_not_found");

    add_members(&app, &acme_admin, "a", "acme", 4).await;
    add_members(&app, &globex_admin, "g", "globex", 2).await;
    // The receiver fails for a while; events keep coming.
    receiver.fail(true);
    add_members(&app, &acme_admin, "b", "acme", 3).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    receiver.fail(false);
    add_members(&app, &acme_admin, "c", "acme", 2).await;

    let expected = feed_positions(&app, &root, "acme", head).await;
    assert!(expected.len() >= 10, "{expected:?}");
    let received = receiver
        .wait_until(Duration::from_secs(30), |received| {
            arrivals(received, "/acme").len() >= expected.len()
        })
        .await;
    // Every event once at least, verified, in feed order, nothing of globex.
    assert_eq!(arrivals(&received, "/acme"), expected);
    for record in received.iter().filter(|record| record["path"] == "/acme") {
        assert!(record["verified"] != false, "{record}");
        if record["verified"] == true {
            assert_eq!(record["tenant"], "acme", "{record}");
        }
    }
    assert!(
        received
            .iter()
            .any(|record| record["path"] == "/acme" && record["status"] == 500),
        "the receiver failed some requests"
    );
    let globex = receiver
        .wait_until(Duration::from_secs(20), |received| {
            arrivals(received, "/globex").len() >= 2
        })
        .await;
    for record in globex
        .iter()
        .filter(|record| record["path"] == "/globex" && record["status"] != 500)
    {
        assert_eq!(record["verified"], true, "{record}");
        assert_eq!(record["tenant"], "globex", "{record}");
        assert_eq!(record["type"], "membership.added", "{record}");
    }

    // The deliveries say what happened, retries included. A pass records a hook's
    // deliveries once it has sent its batch, so the last arrivals may be seen by the
    // receiver a moment before they are recorded.
    let mut items = Vec::new();
    for _ in 0..200 {
        let deliveries = app
            .get(
                "/v1/tenants/acme/webhooks/all/deliveries?limit=200",
                &acme_admin,
            )
            .await;
        assert_status(&deliveries, StatusCode::OK);
        items = deliveries.body["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if items.len() >= expected.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(items.len(), expected.len(), "{items:?}");
    assert!(items.iter().all(|item| item["status"] == "delivered"));
    assert!(items.iter().any(|item| item["attempts"].as_u64() > Some(1)));

    // A rotated secret signs what follows.
    let rotated = app
        .send(
            Method::POST,
            "/v1/tenants/acme/webhooks/all/secret",
            Some(&acme_admin),
            None,
        )
        .await;
    assert_status(&rotated, StatusCode::OK);
    let new_secret = rotated.body["secret"].as_str().expect("secret").to_owned();
    assert_ne!(new_secret, secret);
    receiver.set_secret("/acme", &new_secret);
    add_members(&app, &acme_admin, "d", "acme", 1).await;
    let expected = feed_positions(&app, &root, "acme", head).await;
    let received = receiver
        .wait_until(Duration::from_secs(20), |received| {
            arrivals(received, "/acme").len() >= expected.len()
        })
        .await;
    assert_eq!(arrivals(&received, "/acme"), expected);

    // Read, list, delete.
    let read = app.get("/v1/tenants/acme/webhooks/all", &acme_admin).await;
    assert_status(&read, StatusCode::OK);
    assert!(read.body.get("secret").is_none());
    let listed = app.get("/v1/tenants/acme/webhooks", &acme_admin).await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));
    let deleted = app
        .send(
            Method::DELETE,
            "/v1/tenants/acme/webhooks/all",
            Some(&acme_admin),
            None,
        )
        .await;
    assert_status(&deleted, StatusCode::NO_CONTENT);
    let gone = app.get("/v1/tenants/acme/webhooks/all", &acme_admin).await;
    assert_problem(&gone, StatusCode::NOT_FOUND, "not_found");
}

async fn internal_and_plain_http_urls_are_refused_unless_allowed(store: StoreKind) {
    let (app, _) = spawn_app_configured(store, AppOptions::default(), |_| {}).await;
    let root = app.root_token().await;
    let (admin, _) = tenant_with_admin(&app, &root, "acme").await;
    for url in [
        "http://hooks.example.com/in",
        "https://127.0.0.1:9/in",
        "https://localhost/in",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.1/in",
        "https://[::1]/in",
        "not a url",
    ] {
        let reply = put(
            &app,
            "/v1/tenants/acme/webhooks/hook",
            &admin,
            json!({"url": url, "types": ["*"]}),
        )
        .await;
        assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_request");
    }
    for (name, types) in [
        ("Bad Name", json!(["*"])),
        ("hook", json!([])),
        ("hook", json!(["nope.type"])),
        ("hook", json!(["*", "membership.added"])),
    ] {
        let reply = put(
            &app,
            &format!("/v1/tenants/acme/webhooks/{}", name.replace(' ', "%20")),
            &admin,
            json!({"url": "https://hooks.example.com/in", "types": types}),
        )
        .await;
        assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let fine = put(
        &app,
        "/v1/tenants/acme/webhooks/hook",
        &admin,
        json!({"url": "https://hooks.example.com/in", "types": ["membership.added"]}),
    )
    .await;
    assert_status(&fine, StatusCode::CREATED);
    let again = put(
        &app,
        "/v1/tenants/acme/webhooks/hook",
        &admin,
        json!({"url": "https://hooks.example.com/other", "types": ["*"]}),
    )
    .await;
    assert_status(&again, StatusCode::OK);
    assert!(again.body.get("secret").is_none());
    assert_eq!(again.body["url"], "https://hooks.example.com/other");
}

tests::on_both_stores!(
    every_event_arrives_signed_in_order_also_after_the_receiver_failed,
    internal_and_plain_http_urls_are_refused_unless_allowed,
);
