//! Bounds of SPEC §7 through the real service (`Application::build`, as `serve` starts
//! it): the management listener takes `/metrics` off the public port, and a burst of
//! logins beyond the password-hashing queue is refused 503 `overloaded` at once.

use std::net::SocketAddr;

use reqwest::StatusCode;
use serde_json::json;
use tests::http::{
    assert_problem, reply, spawn_app_configured, AppOptions, StoreKind, ROOT_EMAIL, ROOT_PASSWORD,
};

async fn get(client: &reqwest::Client, address: SocketAddr, path: &str) -> tests::http::Reply {
    reply(
        client
            .get(format!("http://{address}{path}"))
            .send()
            .await
            .expect("the request is sent"),
    )
    .await
}

async fn text(client: &reqwest::Client, address: SocketAddr, path: &str) -> (StatusCode, String) {
    let response = client
        .get(format!("http://{address}{path}"))
        .send()
        .await
        .expect("the request is sent");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn with_a_management_listener_metrics_are_served_there_and_not_on_the_public_port() {
    let (app, management) =
        spawn_app_configured(StoreKind::Postgres, AppOptions::default(), |config| {
            config.management_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        })
        .await;
    let management = management.expect("a management listener");
    assert_ne!(management, app.address);
    assert!(management.ip().is_loopback());
    let client = reqwest::Client::new();

    let (status, metrics) = text(&client, management, "/metrics").await;
    assert_eq!(status, StatusCode::OK, "{metrics}");
    assert!(
        metrics.contains("user_engine_build_info{version="),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("process_resident_memory_bytes ")),
        "{metrics}"
    );
    let public = get(&client, app.address, "/metrics").await;
    assert_problem(&public, StatusCode::NOT_FOUND, "not_found");

    // Health and readiness stay on the public port, and are on the management port too.
    for address in [app.address, management] {
        let (status, body) = text(&client, address, "/healthz").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
        let (status, body) = text(&client, address, "/readyz").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ready"));
    }
    // The management port serves nothing of the API.
    let api = get(&client, management, "/v1/me").await;
    assert_problem(&api, StatusCode::NOT_FOUND, "not_found");
    // And the public port still serves the API.
    app.root_token().await;
    // Requests to the public port are counted in what the management port serves.
    let (_, metrics) = text(&client, management, "/metrics").await;
    assert!(
        metrics.contains("route=\"/v1/auth/password\",status=\"200\""),
        "{metrics}"
    );
}

#[tokio::test]
async fn without_a_management_listener_the_public_port_serves_metrics() {
    let (app, management) =
        spawn_app_configured(StoreKind::Sqlite, AppOptions::default(), |_| {}).await;
    assert_eq!(management, None);
    let client = reqwest::Client::new();
    let (status, metrics) = text(&client, app.address, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        metrics.contains("user_engine_build_info{version="),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_burst_of_logins_beyond_the_hashing_queue_gets_503_overloaded_with_retry_after() {
    // No waiting room: only as many hashes as there are hashing threads (one per core)
    // run at once, and every other login of the burst is refused at once.
    let (app, _) = spawn_app_configured(StoreKind::Sqlite, AppOptions::default(), |config| {
        config.hash_queue = 0;
    })
    .await;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let burst = (cores * 8).clamp(32, 256);
    let client = reqwest::Client::new();
    let url = app.url("/v1/auth/password");
    let logins = (0..burst).map(|_| {
        let client = client.clone();
        let url = url.clone();
        async move {
            reply(
                client
                    .post(url)
                    .json(&json!({ "email": ROOT_EMAIL, "password": ROOT_PASSWORD }))
                    .send()
                    .await
                    .expect("the request is sent"),
            )
            .await
        }
    });
    let replies = futures::future::join_all(logins).await;
    let mut succeeded = 0;
    let mut refused = 0;
    for reply in &replies {
        if reply.status == StatusCode::OK {
            succeeded += 1;
            continue;
        }
        assert_problem(reply, StatusCode::SERVICE_UNAVAILABLE, "overloaded");
        let retry_after = reply
            .headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        assert!(retry_after.is_some_and(|seconds| seconds >= 1), "{reply:?}");
        refused += 1;
    }
    assert!(succeeded >= 1, "no login of {burst} got through");
    assert!(refused >= 1, "all {burst} logins got through a queue of 0");
    // The refused work was never queued: the bound frees up, and a login succeeds.
    app.root_token().await;
}
