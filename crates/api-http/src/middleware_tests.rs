//! Tests of what every request passes through (`app::guarded`): bounded metric labels,
//! the deadline, the panic guard, the request id and the trace context, over the
//! in-memory engine and real HTTP on 127.0.0.1.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests: a failed expectation aborts the test"
)]

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use serde_json::Value;

use crate::app::{incoming_request_id, router_with, traceparent, AppState, Readiness};

struct Ready;

impl Readiness for Ready {
    fn ready(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async { Ok(()) })
    }
}

fn state() -> AppState {
    AppState::new(
        domain::fakes::FakeEngine::new().engine,
        Arc::new(Ready) as Arc<dyn Readiness>,
    )
}

/// Serves the API plus `extra` on a free port of 127.0.0.1.
async fn serve(state: AppState, extra: Router<AppState>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = router_with(state, extra).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

/// A client that gives up well after any deadline under test, so no test can hang.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The label sets of the requests counter in an exposition.
fn request_label_sets(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|line| line.starts_with("user_engine_http_requests_total{"))
        .filter_map(|line| line.split_once('}').map(|(labels, _)| labels.to_owned()))
        .collect()
}

async fn exposition(client: &reqwest::Client, address: SocketAddr) -> String {
    let response = client
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.text().await.unwrap()
}

/// A problem body's fields, checked against SPEC §5's shape and the echoed request id.
async fn problem(response: reqwest::Response, status: u16, code: &str) -> (HeaderMap, Value) {
    assert_eq!(response.status().as_u16(), status);
    let headers = response.headers().clone();
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(
        body["type"],
        format!("urn:user-engine:problem:{code}"),
        "{body}"
    );
    let echoed = headers.get("x-request-id").unwrap().to_str().unwrap();
    assert!(!echoed.is_empty());
    assert_eq!(body["request_id"], echoed, "{body}");
    (headers, body)
}

#[tokio::test]
async fn made_up_methods_and_random_paths_add_no_metric_label_sets() {
    let address = serve(state(), Router::new()).await;
    let client = client();
    // One request of each kind the flood sends, so its label sets exist before it.
    for method in ["BREW", "GET"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let _ = client
            .request(method, format!("http://{address}/nowhere/0"))
            .send()
            .await
            .unwrap();
    }
    let _ = client
        .request(
            reqwest::Method::from_bytes(b"BREW").unwrap(),
            format!("http://{address}/healthz"),
        )
        .send()
        .await
        .unwrap();
    let before = request_label_sets(&exposition(&client, address).await);
    for index in 0..200 {
        let method = reqwest::Method::from_bytes(format!("M{index}X").as_bytes()).unwrap();
        let path = if index % 4 == 0 {
            // A real route with a made-up method: 405, still one label set.
            "/healthz".to_owned()
        } else {
            format!("/x{}/{}", uuid::Uuid::now_v7().simple(), index)
        };
        let response = client
            .request(method, format!("http://{address}{path}"))
            .send()
            .await
            .unwrap();
        assert!(
            matches!(response.status().as_u16(), 404 | 405),
            "{path}: {}",
            response.status()
        );
    }
    let text = exposition(&client, address).await;
    let after = request_label_sets(&text);
    // The scrape itself may add `/metrics` GET 200 once; nothing of the flood may.
    let added: Vec<&String> = after.difference(&before).collect();
    assert!(
        added
            .iter()
            .all(|labels| labels.contains("route=\"/metrics\"")),
        "new label sets: {added:?}"
    );
    assert!(after.len() <= before.len() + 1, "{after:?}");
    assert!(text.contains("method=\"other\""), "{text}");
    assert!(!text.contains("M7X") && !text.contains("/x"), "{text}");
}

#[tokio::test]
async fn a_request_past_its_deadline_answers_503_overloaded_with_retry_after() {
    let mut state = state();
    state.request_timeout = Duration::from_secs(1);
    // Far longer than any deadline under test: only the deadline can end it in time.
    let extra = Router::new().route(
        "/test/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(600)).await;
            "too late"
        }),
    );
    let address = serve(state, extra).await;
    let client = client();
    let response = client
        .get(format!("http://{address}/test/slow"))
        .header("x-request-id", "slow-1")
        .send()
        .await
        .unwrap();
    let (headers, body) = problem(response, 503, "overloaded").await;
    assert_eq!(headers.get("retry-after").unwrap(), "1");
    assert_eq!(body["request_id"], "slow-1");
    // A quick request is untouched by the deadline.
    let healthy = client
        .get(format!("http://{address}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(healthy.status().as_u16(), 200);
}

#[tokio::test]
async fn a_panicking_handler_answers_500_problem_and_the_server_keeps_serving() {
    let extra = Router::new().route(
        "/test/panic",
        get(|| async {
            if std::hint::black_box(true) {
                panic!("a handler bug with a secret in its message");
            }
            "unreachable"
        }),
    );
    let address = serve(state(), extra).await;
    let client = client();
    for attempt in 0..3 {
        let response = client
            .get(format!("http://{address}/test/panic"))
            .header("x-request-id", format!("panic-{attempt}"))
            .send()
            .await
            .unwrap();
        let (_, body) = problem(response, 500, "internal").await;
        assert_eq!(body["request_id"], format!("panic-{attempt}"));
        assert!(!body.to_string().contains("secret"), "{body}");
        let healthy = client
            .get(format!("http://{address}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(healthy.status().as_u16(), 200);
        assert_eq!(healthy.text().await.unwrap(), "ok");
    }
    let text = exposition(&client, address).await;
    assert!(
        text.contains(
            "user_engine_http_requests_total{method=\"GET\",route=\"/test/panic\",status=\"500\"} 3"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_well_formed_request_id_is_kept_and_a_malformed_one_replaced() {
    let address = serve(state(), Router::new()).await;
    let client = client();
    let longest = "a".repeat(128);
    for kept in ["abc-123", "trace.span:01_x", longest.as_str(), "7"] {
        let response = client
            .get(format!("http://{address}/v1/nowhere"))
            .header("x-request-id", kept)
            .send()
            .await
            .unwrap();
        let (headers, _) = problem(response, 404, "not_found").await;
        assert_eq!(headers.get("x-request-id").unwrap(), kept);
    }
    let too_long = "a".repeat(129);
    for malformed in [
        "has space",
        "semi;colon",
        "quote\"",
        too_long.as_str(),
        "ünï",
    ] {
        let request = client.get(format!("http://{address}/v1/nowhere"));
        let request = match reqwest::header::HeaderValue::from_bytes(malformed.as_bytes()) {
            Ok(value) => request.header("x-request-id", value),
            Err(_) => continue,
        };
        let response = request.send().await.unwrap();
        let (headers, _) = problem(response, 404, "not_found").await;
        let echoed = headers.get("x-request-id").unwrap().to_str().unwrap();
        assert_ne!(echoed, malformed);
        let generated = uuid::Uuid::parse_str(echoed).unwrap();
        assert_eq!(generated.get_version_num(), 7, "{echoed}");
    }
    // An empty header is malformed too, and without one a fresh id is made.
    let response = client
        .get(format!("http://{address}/healthz"))
        .header("x-request-id", "")
        .send()
        .await
        .unwrap();
    let echoed = response
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(uuid::Uuid::parse_str(echoed).unwrap().get_version_num(), 7);
}

#[test]
fn the_request_id_and_traceparent_parsers_take_only_well_formed_values() {
    let headers = |name: &'static str, value: &str| {
        let mut headers = HeaderMap::new();
        headers.insert(name, value.parse().unwrap());
        headers
    };
    assert_eq!(
        incoming_request_id(&headers("x-request-id", "a.b_c:d-e")),
        Some("a.b_c:d-e".to_owned())
    );
    assert_eq!(incoming_request_id(&headers("x-request-id", "a/b")), None);
    assert_eq!(incoming_request_id(&HeaderMap::new()), None);
    let parsed = traceparent(&headers(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ))
    .unwrap();
    assert_eq!(parsed.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(parsed.parent_span_id, "00f067aa0ba902b7");
    for malformed in [
        // Another version, upper-case hex, all-zero ids, wrong lengths, extra parts.
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-00",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902g7-01",
        "",
    ] {
        assert_eq!(
            traceparent(&headers("traceparent", malformed)),
            None,
            "{malformed}"
        );
    }
}

/// Log output kept in memory, for the one test that reads what a request logs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The server runs on this test's one runtime thread, so the subscriber set for the
/// thread sees every line the requests log.
#[tokio::test(flavor = "current_thread")]
async fn a_well_formed_traceparent_is_continued_into_the_request_logs() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let address = serve(state(), Router::new()).await;
    let client = client();
    for (request_id, header) in [
        (
            "traced",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        (
            "untraced",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ),
    ] {
        let response = client
            .get(format!("http://{address}/healthz"))
            .header("x-request-id", request_id)
            .header("traceparent", header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
    }
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line_of = |request_id: &str| {
        logs.lines()
            .find(|line| line.contains(&format!("request_id={request_id} ")))
            .unwrap_or_else(|| panic!("no log line of {request_id}: {logs}"))
            .to_owned()
    };
    let traced = line_of("traced");
    assert!(
        traced.contains("trace_id=4bf92f3577b34da6a3ce929d0e0e4736"),
        "{traced}"
    );
    assert!(
        traced.contains("parent_span_id=00f067aa0ba902b7"),
        "{traced}"
    );
    let untraced = line_of("untraced");
    assert!(!untraced.contains("trace_id="), "{untraced}");
}
