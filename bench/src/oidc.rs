//! `cargo xtask bench oidc`: the OpenID provider on PostgreSQL, one run — the token
//! endpoint (`authorization_code` and `refresh_token`) beside the login route; the JWKS
//! and discovery beside the hello baseline; and `authorize` with an access token as
//! `subject.token` beside the same with a session token.
//!
//! Each measurement is cut into slices that alternate with its baselines'. Codes are
//! made just before each slice through the engine (they live 60 s); each connection of
//! the refresh load keeps its own chain of refresh tokens, as a client does.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::ids::{Email, Password};
use domain::oidc::ClientId;
use domain::usecases::{CodeOutcome, CodeRequest, ConsentStep, Engine, EngineConfig};
use serde_json::{json, Value};

use crate::http::{load, login, print_load, serve_with_baselines, Load, Request, CONNECTIONS};
use crate::{database_url, Failure};

const SLICES: u32 = 4;
const REDIRECT: &str = "https://rp.bench.example/callback";
/// RFC 7636 appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// Logins in flight: argon2id is CPU-bound (as `bench http` measures them).
const LOGINS_IN_FLIGHT: usize = 4;

/// A string member of a JSON answer, or empty.
fn field(value: &Value, name: &str) -> String {
    value
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| {
            let encoded: String = value
                .bytes()
                .map(|byte| {
                    if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                        char::from(byte).to_string()
                    } else {
                        format!("%{byte:02X}")
                    }
                })
                .collect();
            format!("{name}={encoded}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `count` fresh codes for `client`, made through the engine for `session`.
async fn codes(
    engine: &Engine,
    session: &str,
    client: &ClientId,
    count: usize,
) -> Result<Vec<String>, Failure> {
    let request = CodeRequest {
        client: client.clone(),
        redirect_uri: REDIRECT.to_owned(),
        tenant: domain::ids::TenantId::parse("bench")?,
        scope: "openid email".to_owned(),
        nonce: Some("bench".to_owned()),
        code_challenge: Some(CHALLENGE.to_owned()),
        consent: ConsentStep::FirstParty,
    };
    let mut made = Vec::with_capacity(count);
    for chunk in 0..count.div_ceil(CONNECTIONS) {
        let batch = CONNECTIONS.min(count - chunk * CONNECTIONS);
        let results = futures::future::join_all(
            (0..batch).map(|_| engine.issue_code(session, &request, "bench")),
        )
        .await;
        for outcome in results {
            match outcome? {
                CodeOutcome::Code(code) => made.push(code),
                CodeOutcome::ConsentRequired => {
                    return Err("a first-party client was asked for consent".into())
                }
            }
        }
    }
    Ok(made)
}

/// The token endpoint redeeming codes from `pool` at `CONNECTIONS` in flight.
async fn redeem_load(
    base: &str,
    client_id: &str,
    pool: Vec<String>,
    duration: Duration,
) -> Result<Load, Failure> {
    let pool = Arc::new(Mutex::new(pool));
    let url = format!("{base}/oauth2/token");
    let client_id = client_id.to_owned();
    let request: Request = Arc::new(move |client: &reqwest::Client| {
        let code = pool
            .lock()
            .map(|mut codes| codes.pop())
            .ok()
            .flatten()
            .unwrap_or_default();
        client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
                ("client_id", &client_id),
            ]))
    });
    load(CONNECTIONS, duration, request).await
}

/// The token endpoint refreshing: each connection follows its own chain.
async fn refresh_load(
    base: &str,
    client_id: &str,
    chains: &mut [String],
    duration: Duration,
) -> Result<Load, Failure> {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for chain in chains.iter() {
        let (url, client_id, mut token) = (
            format!("{base}/oauth2/token"),
            client_id.to_owned(),
            chain.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()?;
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let sent = Instant::now();
                let answer: Value = client
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", &token),
                        ("client_id", &client_id),
                    ]))
                    .send()
                    .await?
                    .json()
                    .await?;
                match answer.get("refresh_token").and_then(Value::as_str) {
                    Some(next) => {
                        token = next.to_owned();
                        latencies.push(sent.elapsed());
                    }
                    None => break,
                }
            }
            Ok::<_, reqwest::Error>((latencies, token))
        }));
    }
    let mut latencies = Vec::new();
    for (task, chain) in tasks.into_iter().zip(chains.iter_mut()) {
        let (done, token) = task.await??;
        latencies.extend(done);
        *chain = token;
    }
    Ok(Load::of(started.elapsed(), latencies))
}

async fn redeem_one(
    http: &reqwest::Client,
    base: &str,
    client_id: &str,
    code: &str,
) -> Result<Value, Failure> {
    Ok(http
        .post(format!("{base}/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", client_id),
        ]))
        .send()
        .await?
        .json()
        .await?)
}

pub async fn run(name: &str, seconds: u64) -> Result<(), Failure> {
    let owner = sqlx::PgPool::connect(&database_url(name)).await?;
    adapters_pg::migrate(&owner).await?;
    let connections = server::config::Config::default().max_connections;
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
    let (address, server) = serve_with_baselines(engine.clone(), store).await?;
    let base = format!("http://{address}");
    let http = reqwest::Client::new();
    let root = login(&http, &base, "root@bench.example", "bench root password").await?;
    let post = |path: &str, token: &str, body: Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let ada: Value = post(
        "/v1/users",
        &root,
        json!({ "email": "ada@bench.example", "password": "ada bench password" }),
    )
    .await?
    .json()
    .await?;
    let ada = field(&ada, "id");
    post(
        "/v1/tenants",
        &root,
        json!({ "id": "bench", "display_name": "Bench", "admin": { "user_id": ada } }),
    )
    .await?;
    let key: Value = post(
        "/v1/tenants/bench/api-keys",
        &root,
        json!({ "name": "bench", "scopes": ["authz:check"] }),
    )
    .await?
    .json()
    .await?;
    let key = field(&key, "key");
    let client: Value = post(
        "/v1/oauth-clients",
        &root,
        json!({ "name": "Bench", "type": "public", "redirect_uris": [REDIRECT] }),
    )
    .await?
    .json()
    .await?;
    let client_id = field(&client, "client_id");
    let client = ClientId::parse(&client_id).ok_or("no client id")?;
    let session = login(&http, &base, "ada@bench.example", "ada bench password").await?;
    // The first keys, then one chain of refresh tokens per connection and an access
    // token for the authorize runs.
    http.get(format!("{base}/oauth2/jwks")).send().await?;
    let mut chains = Vec::with_capacity(CONNECTIONS);
    let mut access_token = String::new();
    for code in codes(&engine, &session, &client, CONNECTIONS).await? {
        let answer = redeem_one(&http, &base, &client_id, &code).await?;
        access_token = field(&answer, "access_token");
        chains.push(field(&answer, "refresh_token"));
    }

    let slice = Duration::from_secs(seconds) / SLICES;
    let (mut logins, mut redeem, mut refresh) = (Load::default(), Load::default(), Load::default());
    let (mut jwks, mut discovery, mut hello) = (Load::default(), Load::default(), Load::default());
    let (mut with_access, mut with_session) = (Load::default(), Load::default());
    let get = |path: &str| -> Request {
        let url = format!("{base}{path}");
        Arc::new(move |client: &reqwest::Client| client.get(&url))
    };
    let authorize = |subject: String| -> Request {
        let (url, key) = (format!("{base}/v1/tenants/bench/authorize"), key.clone());
        let body = json!({ "subject": { "token": subject }, "scope": "tenant:read" });
        Arc::new(move |client: &reqwest::Client| client.post(&url).bearer_auth(&key).json(&body))
    };
    let login_url = format!("{base}/v1/auth/password");
    let login_request: Request = Arc::new(move |client: &reqwest::Client| {
        client
            .post(&login_url)
            .json(&json!({ "email": "ada@bench.example", "password": "ada bench password" }))
    });
    // Codes for a slice: twice what the refresh load did in one (at least 500).
    let mut per_slice = 500;
    for _ in 0..SLICES {
        refresh.add(refresh_load(&base, &client_id, &mut chains, slice).await?);
        per_slice = per_slice.max((refresh.per_second() * slice.as_secs_f64() * 2.0) as usize);
        let pool = codes(&engine, &session, &client, per_slice).await?;
        redeem.add(redeem_load(&base, &client_id, pool, slice).await?);
        logins.add(load(LOGINS_IN_FLIGHT, slice, login_request.clone()).await?);
        jwks.add(load(CONNECTIONS, slice, get("/oauth2/jwks")).await?);
        discovery.add(load(CONNECTIONS, slice, get("/.well-known/openid-configuration")).await?);
        hello.add(load(CONNECTIONS, slice, get("/bench/hello")).await?);
        // A fresh access token each slice: they live five minutes.
        let fresh = codes(&engine, &session, &client, 1).await?;
        if let Some(code) = fresh.first() {
            let answer = redeem_one(&http, &base, &client_id, code).await?;
            access_token = field(&answer, "access_token");
        }
        with_access.add(load(CONNECTIONS, slice, authorize(access_token.clone())).await?);
        with_session.add(load(CONNECTIONS, slice, authorize(session.clone())).await?);
    }
    println!(
        "# OpenID provider benchmark (PostgreSQL): {seconds} s per figure in {SLICES} slices, \
         {CONNECTIONS} HTTP connections ({LOGINS_IN_FLIGHT} for logins), a pool of \
         {connections} database connections"
    );
    println!("| route | requests/s | p50 | p99 |");
    println!("|---|---:|---:|---:|");
    print_load(
        "POST /oauth2/token (authorization_code + PKCE)",
        &mut redeem,
    );
    print_load("POST /oauth2/token (refresh_token, rotated)", &mut refresh);
    print_load(
        &format!("POST /v1/auth/password ({LOGINS_IN_FLIGHT} in flight)"),
        &mut logins,
    );
    print_load("GET /oauth2/jwks", &mut jwks);
    print_load("GET /.well-known/openid-configuration", &mut discovery);
    print_load("hello JSON (baseline)", &mut hello);
    print_load(
        "authorize, subject.token = access token (JWT)",
        &mut with_access,
    );
    print_load(
        "authorize, subject.token = session token",
        &mut with_session,
    );
    println!(
        "\ncode redemption / login = {:.2}; refresh / login = {:.2}; jwks / hello = {:.2}; \
         discovery / hello = {:.2}; authorize with access token / with session token = {:.2}",
        redeem.per_second() / logins.per_second(),
        refresh.per_second() / logins.per_second(),
        jwks.per_second() / hello.per_second(),
        discovery.per_second() / hello.per_second(),
        with_access.per_second() / with_session.per_second(),
    );
    server.abort();
    Ok(())
}
