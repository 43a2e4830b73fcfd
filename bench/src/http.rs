//! `cargo xtask bench http`: authorize requests/s and p50/p99 at 64 connections beside two
//! baselines served by the same process (a hello-JSON route and a route doing one indexed
//! single-row select), and logins/s beside raw argon2id hashes/s with the same
//! parameters on the same cores.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_http::app::{router_with, AppState};
use axum::routing::get;
use domain::ids::{Email, Password};
use domain::usecases::{Engine, EngineConfig};
use serde_json::json;

use crate::{database_url, Failure};

pub(crate) const CONNECTIONS: usize = 64;

/// How many slices each measurement is cut into: the slices of a work and of its
/// baselines alternate, so that every figure sees the same machine (on a shared machine
/// the cores' speed drifts by several percent from one ten-second window to the next).
const SLICES: u32 = 4;

/// Successful requests and their latencies over one or more load runs.
#[derive(Default)]
pub(crate) struct Load {
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Load {
    pub(crate) fn add(&mut self, run: Self) {
        self.elapsed += run.elapsed;
        self.latencies.extend(run.latencies);
    }

    /// A load of `latencies` over `elapsed`.
    pub(crate) fn of(elapsed: Duration, latencies: Vec<Duration>) -> Self {
        Self { elapsed, latencies }
    }

    pub(crate) fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// The latency at `fraction` of the sorted latencies.
    pub(crate) fn at(&mut self, fraction: f64) -> Duration {
        self.latencies.sort_unstable();
        let index = ((self.latencies.len() as f64) * fraction) as usize;
        self.latencies
            .get(index.min(self.latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    }
}

/// `connections` tasks each sending requests back to back on their own connection for
/// `duration`.
pub(crate) async fn load(
    connections: usize,
    duration: Duration,
    request: Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync>,
) -> Result<Load, Failure> {
    let deadline = Instant::now() + duration;
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
    Ok(Load {
        elapsed: started.elapsed(),
        latencies,
    })
}

pub(crate) type Request = Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync>;

pub async fn run(name: &str, seconds: u64) -> Result<(), Failure> {
    let owner = sqlx::PgPool::connect(&database_url(name)).await?;
    adapters_pg::migrate(&owner).await?;
    // The pool the service gets by default (`USER_ENGINE_MAX_CONNECTIONS`), unless the
    // environment sets another for the experiment.
    let connections = std::env::var("USER_ENGINE_MAX_CONNECTIONS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(server::config::Config::default().max_connections);
    let store = adapters_pg::PgStore::connect(&database_url(name), connections).await?;
    let engine = Engine::new(
        adapters_security::production_ports(Arc::new(store.clone())),
        EngineConfig::default(),
    );
    engine
        .bootstrap(
            Email::parse("root@bench.example")?,
            Password::parse("bench root password")?,
            "bench",
        )
        .await?;
    let (address, server) = serve_with_baselines(engine, store).await?;
    let base = format!("http://{address}");
    let client = reqwest::Client::new();

    let root = login(&client, &base, "root@bench.example", "bench root password").await?;
    let (member, key) = authorize_fixture(&client, &base, &root).await?;
    let body =
        json!({ "subject": { "user_id": member, "assurance": "aal1" }, "scope": "tenant:read" });

    println!(
        "# HTTP benchmark: {seconds} s per figure in {SLICES} slices alternating with its \
         baselines', {CONNECTIONS} HTTP connections, a pool of {connections} database connections"
    );
    println!("| route | requests/s | p50 | p99 |");
    println!("|---|---:|---:|---:|");
    let hello_url = format!("{base}/bench/hello");
    let select_url = format!("{base}/bench/select");
    let authorize_url = format!("{base}/v1/tenants/bench/authorize");
    let jwks_url = format!("{base}/oauth2/jwks");
    let routes: [Request; 4] = [
        Arc::new(move |client: &reqwest::Client| client.get(&hello_url)),
        Arc::new(move |client: &reqwest::Client| client.get(&select_url)),
        Arc::new(move |client: &reqwest::Client| {
            client.post(&authorize_url).bearer_auth(&key).json(&body)
        }),
        Arc::new(move |client: &reqwest::Client| client.get(&jwks_url)),
    ];
    let slice = Duration::from_secs(seconds) / SLICES;
    let mut loads: [Load; 4] = Default::default();
    for _ in 0..SLICES {
        for (route, total) in routes.iter().zip(&mut loads) {
            total.add(load(CONNECTIONS, slice, route.clone()).await?);
        }
    }
    let [mut hello, mut select, mut authorize, mut jwks] = loads;
    print_load("hello JSON (baseline)", &mut hello);
    print_load("one indexed single-row select (baseline)", &mut select);
    print_load("POST /v1/tenants/{t}/authorize (API key)", &mut authorize);
    print_load("GET /oauth2/jwks (two keys)", &mut jwks);
    println!(
        "\nauthorize / single-row select = {:.2} (target ≥ 0.5); authorize / hello = {:.2}",
        authorize.per_second() / select.per_second(),
        authorize.per_second() / hello.per_second()
    );
    println!(
        "jwks / single-row select = {:.2}",
        jwks.per_second() / select.per_second()
    );
    let peak_after_requests = peak_resident_mib();

    // Logins beside raw argon2id with the same parameters: four logins in flight (two
    // per core; `BENCH_LOGINS_IN_FLIGHT` sets another number for an experiment).
    let concurrency = std::env::var("BENCH_LOGINS_IN_FLIGHT")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(4);
    let login_url = format!("{base}/v1/auth/password");
    let login: Request = Arc::new(move |client: &reqwest::Client| {
        client
            .post(&login_url)
            .json(&json!({ "email": "root@bench.example", "password": "bench root password" }))
    });
    // Raw hashing: one per core over reused working memory, as the service verifies,
    // alternating with the logins; then the crate's verification at one per core and at
    // the logins' concurrency, once each. The best of the three is the baseline.
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let mut logins = Load::default();
    let mut reused = 0.0;
    let mut peak_after_logins = 0;
    for index in 0..SLICES {
        logins.add(load(concurrency, slice, login.clone()).await?);
        if index == 0 {
            // Before the raw hashing adds working memory of its own to the process.
            peak_after_logins = peak_resident_mib();
        }
        reused += raw_argon2(cores, slice, true).await? / f64::from(SLICES);
    }
    let per_core = raw_argon2(cores, Duration::from_secs(seconds), false).await?;
    let hashes = raw_argon2(concurrency, Duration::from_secs(seconds), false).await?;
    let best = per_core.max(hashes).max(reused);
    println!("\n| work | per second |\n|---|---:|");
    println!(
        "| logins over HTTP ({concurrency} in flight) | {:.1} |",
        logins.per_second()
    );
    println!("| raw argon2id verifications ({cores} in flight, one per core) | {per_core:.1} |");
    println!("| raw argon2id verifications ({concurrency} in flight) | {hashes:.1} |");
    println!(
        "| raw argon2id verifications ({cores} in flight, working memory reused) | {reused:.1} |"
    );
    println!(
        "\nlogins / raw argon2id (the best raw figure) = {:.2} (target ≥ 0.9)",
        logins.per_second() / best
    );
    println!(
        "\npeak resident memory of the bench process (server and load generator): \
         {peak_after_requests} MiB after the request runs, {peak_after_logins} MiB after the first \
         slice of logins"
    );
    server.abort();
    owner.close().await;
    Ok(())
}

/// Serves the API of `engine` over `store` on 127.0.0.1 with the two baseline routes
/// (`/bench/hello`, `/bench/select`) behind the same middleware as the API's routes, so
/// a ratio compares what the handlers do.
pub(crate) async fn serve_with_baselines(
    engine: Engine,
    store: adapters_pg::PgStore,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), Failure> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mut state = AppState::with_login_limit(
        engine,
        Arc::new(server::store::Backend::Postgres(store.clone())),
        std::num::NonZeroU32::MAX,
    );
    // The provider's keys under a key-encryption key of this run (the first JWKS request
    // makes them); the issuer is where it listens.
    let vault = adapters_jose::SealingVault::random().map_err(|error| error.to_string())?;
    state.signing = Some(Arc::new(api_http::app::SigningSetup::new(
        Arc::new(vault),
        format!("http://{}", listener.local_addr()?),
    )));
    let pool = store.pool().clone();
    let baselines = axum::Router::new()
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
    serve_on(listener, router_with(state, baselines))
}

/// Serves `app` on a free port of 127.0.0.1 until the returned task is aborted.
pub(crate) async fn serve(
    app: axum::Router,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), Failure> {
    serve_on(tokio::net::TcpListener::bind("127.0.0.1:0").await?, app)
}

/// Serves `app` on `listener` until the returned task is aborted.
fn serve_on(
    listener: tokio::net::TcpListener,
    app: axum::Router,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), Failure> {
    let address = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    Ok((address, server))
}

/// The process's peak resident set (`VmHWM`) in MiB, 0 where `/proc` does not say.
pub(crate) fn peak_resident_mib() -> u64 {
    crate::process::resident_kib(std::process::id()).map_or(0, |(_, peak)| peak / 1024)
}

pub(crate) fn print_load(route: &str, load: &mut Load) {
    println!(
        "| {route} | {:.0} | {:.2} ms | {:.2} ms |",
        load.per_second(),
        load.at(0.50).as_secs_f64() * 1000.0,
        load.at(0.99).as_secs_f64() * 1000.0
    );
}

pub(crate) async fn login(
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
/// parameters the service uses, `concurrency` at a time on the blocking pool: either
/// the crate's `verify_password` (fresh working memory each time) or, with
/// `reuse_memory`, each slot looping on one thread over one working buffer, as the
/// service verifies.
async fn raw_argon2(
    concurrency: usize,
    duration: Duration,
    reuse_memory: bool,
) -> Result<f64, Failure> {
    use argon2::password_hash::{
        Output, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
    };
    let params = argon2::Params::new(19_456, 2, 1, None).map_err(|error| error.to_string())?;
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params.clone(),
    );
    let salt = SaltString::encode_b64(b"benchmark-salt!!").map_err(|error| error.to_string())?;
    let hash = argon
        .hash_password(b"bench root password", &salt)
        .map_err(|error| error.to_string())?
        .to_string();
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let argon = argon.clone();
        let hash = hash.clone();
        let blocks = params.block_count();
        tasks.push(tokio::task::spawn_blocking(move || {
            let Ok(parsed) = PasswordHash::new(&hash) else {
                return 0_u64;
            };
            let mut memory = vec![argon2::Block::default(); blocks];
            let mut salt_buffer = [0_u8; 64];
            let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
                return 0;
            };
            let Ok(salt) = salt.decode_b64(&mut salt_buffer) else {
                return 0;
            };
            let mut done = 0_u64;
            while Instant::now() < deadline {
                let ok = if reuse_memory {
                    let mut output = [0_u8; 32];
                    argon
                        .hash_password_into_with_memory(
                            b"bench root password",
                            salt,
                            &mut output,
                            memory.as_mut_slice(),
                        )
                        .is_ok()
                        && Output::new(&output).is_ok_and(|output| output == expected)
                } else {
                    argon
                        .verify_password(b"bench root password", &parsed)
                        .is_ok()
                };
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

/// A tenant `bench`, its admin (the member to ask about) and an API key with
/// `authz:check` there, created over HTTP by the platform root: the user id and the key.
pub(crate) async fn authorize_fixture(
    client: &reqwest::Client,
    base: &str,
    root: &str,
) -> Result<(String, String), Failure> {
    let created = client
        .post(format!("{base}/v1/tenants"))
        .bearer_auth(root)
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
        .bearer_auth(root)
        .json(&json!({ "name": "bench", "scopes": ["authz:check"] }))
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?
        .get("key")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Ok((member, key))
}
