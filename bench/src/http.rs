//! `cargo xtask bench http`: authorize requests/s and p50/p99 at 64 connections beside two
//! baselines served by the same process (a hello-JSON route and a route doing one indexed
//! single-row select), and logins/s beside raw argon2id hashes/s with the same
//! parameters on the same cores.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_http::app::{router, AppState};
use axum::routing::get;
use domain::ids::{Email, Password};
use domain::usecases::{Engine, EngineConfig};
use serde_json::json;

use crate::{database_url, Failure};

const CONNECTIONS: usize = 64;

/// Requests/s and latency percentiles of one load run.
struct Load {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// `connections` tasks each sending requests back to back on their own connection.
async fn load(
    connections: usize,
    seconds: u64,
    request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + 'static,
) -> Result<Load, Failure> {
    let request = Arc::new(request);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()?;
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let sent = Instant::now();
                let response = request(&client).send().await?;
                let ok = response.status().is_success();
                response.bytes().await?;
                if ok {
                    latencies.push(sent.elapsed());
                }
            }
            Ok::<_, reqwest::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |fraction: f64| {
        let index = ((latencies.len() as f64) * fraction) as usize;
        latencies
            .get(index.min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Ok(Load {
        per_second: latencies.len() as f64 / elapsed,
        p50: at(0.50),
        p99: at(0.99),
    })
}

pub async fn run(name: &str, seconds: u64) -> Result<(), Failure> {
    let owner = sqlx::PgPool::connect(&database_url(name)).await?;
    adapters_pg::migrate(&owner).await?;
    let store = adapters_pg::PgStore::connect(&database_url(name), 32).await?;
    let engine = Engine::new(
        api_http::security::production_ports(Arc::new(store.clone())),
        EngineConfig::default(),
    );
    engine
        .bootstrap(
            Email::parse("root@bench.example")?,
            Password::parse("bench root password")?,
            "bench",
        )
        .await?;
    let state =
        AppState::with_login_limit(engine, Arc::new(store.clone()), std::num::NonZeroU32::MAX);
    let pool = store.pool().clone();
    let app = router(state)
        .route(
            "/bench/hello",
            get(|| async { axum::Json(json!({ "hello": "world" })) }),
        )
        .route(
            "/bench/select",
            get(move || {
                let pool = pool.clone();
                async move {
                    let row: Result<(String,), _> =
                        sqlx::query_as("select name from catalog_scopes where name = $1")
                            .bind("tenant:read")
                            .fetch_one(&pool)
                            .await;
                    axum::Json(json!({ "name": row.map(|(name,)| name).unwrap_or_default() }))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    let base = format!("http://{address}");
    let client = reqwest::Client::new();

    // A tenant, a member to ask about, and an API key that may ask.
    let root = login(&client, &base, "root@bench.example", "bench root password").await?;
    let created = client
        .post(format!("{base}/v1/tenants"))
        .bearer_auth(&root)
        .json(&json!({ "id": "bench", "display_name": "Bench", "admin": { "email": "admin@bench.example" } }))
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?;
    let member = created
        .pointer("/admin/user_id")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let key = client
        .post(format!("{base}/v1/tenants/bench/api-keys"))
        .bearer_auth(&root)
        .json(&json!({ "name": "bench", "scopes": ["authz:check"] }))
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?
        .get("key")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let body =
        json!({ "subject": { "user_id": member, "assurance": "aal1" }, "scope": "tenant:read" });

    println!("# HTTP benchmark: {seconds} s per run, {CONNECTIONS} connections");
    println!("| route | requests/s | p50 | p99 |");
    println!("|---|---:|---:|---:|");
    let hello_url = format!("{base}/bench/hello");
    let hello = load(CONNECTIONS, seconds, move |client| client.get(&hello_url)).await?;
    print_load("hello JSON (baseline)", &hello);
    let select_url = format!("{base}/bench/select");
    let select = load(CONNECTIONS, seconds, move |client| client.get(&select_url)).await?;
    print_load("one indexed single-row select (baseline)", &select);
    let authorize_url = format!("{base}/v1/tenants/bench/authorize");
    let authorize = load(CONNECTIONS, seconds, move |client| {
        client.post(&authorize_url).bearer_auth(&key).json(&body)
    })
    .await?;
    print_load("POST /v1/tenants/{t}/authorize (API key)", &authorize);
    println!(
        "\nauthorize / single-row select = {:.2} (target ≥ 0.5); authorize / hello = {:.2}",
        authorize.per_second / select.per_second,
        authorize.per_second / hello.per_second
    );

    // Logins beside raw argon2id with the same parameters, both at two in flight per core.
    let concurrency = 4;
    let login_url = format!("{base}/v1/auth/password");
    let logins = load(concurrency, seconds, move |client| {
        client
            .post(&login_url)
            .json(&json!({ "email": "root@bench.example", "password": "bench root password" }))
    })
    .await?;
    let hashes = raw_argon2(concurrency, seconds).await?;
    println!("\n| work | per second |\n|---|---:|");
    println!(
        "| logins over HTTP ({concurrency} in flight) | {:.1} |",
        logins.per_second
    );
    println!("| raw argon2id verifications ({concurrency} in flight) | {hashes:.1} |");
    println!(
        "\nlogins / raw argon2id = {:.2} (target ≥ 0.9)",
        logins.per_second / hashes
    );
    server.abort();
    owner.close().await;
    Ok(())
}

fn print_load(route: &str, load: &Load) {
    println!(
        "| {route} | {:.0} | {:.2} ms | {:.2} ms |",
        load.per_second,
        load.p50.as_secs_f64() * 1000.0,
        load.p99.as_secs_f64() * 1000.0
    );
}

async fn login(
    client: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> Result<String, Failure> {
    let body = client
        .post(format!("{base}/v1/auth/password"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?;
    Ok(body
        .get("token")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned())
}

/// argon2id verifications per second (the work one login does) with the OWASP
/// parameters the service uses, on the blocking pool like the service.
async fn raw_argon2(concurrency: usize, seconds: u64) -> Result<f64, Failure> {
    use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
    let params = argon2::Params::new(19_456, 2, 1, None).map_err(|error| error.to_string())?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"benchmark-salt!!").map_err(|error| error.to_string())?;
    let hash = argon
        .hash_password(b"bench root password", &salt)
        .map_err(|error| error.to_string())?
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let argon = argon.clone();
        let hash = hash.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0_u64;
            while Instant::now() < deadline {
                let argon = argon.clone();
                let hash = hash.clone();
                let ok = tokio::task::spawn_blocking(move || {
                    PasswordHash::new(&hash)
                        .map(|parsed| {
                            argon
                                .verify_password(b"bench root password", &parsed)
                                .is_ok()
                        })
                        .unwrap_or(false)
                })
                .await
                .unwrap_or(false);
                done += u64::from(ok);
            }
            done
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await?;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}
