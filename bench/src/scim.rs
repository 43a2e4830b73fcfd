//! `cargo xtask bench scim [seconds]`: SCIM 2.0 provisioning on PostgreSQL (issue 18), one
//! run against one server: SCIM user creates/s and `userName eq` lookups/s on a tenant of
//! 100,000 members, beside `/v1` member adds in the same run.
//!
//! The tenant is seeded by `seed.rs` (one tenant, `seed-00000`, 100,000 members, each a
//! user of their own) and then, as a tenant provisioned by an identity provider would
//! have it, every even-numbered member gets a SCIM identity (`scim_users`: a `userName`
//! unlike their email, its lowercased key, an `externalId`). The server is served in
//! process on 127.0.0.1 (as `bench http` serves it); the platform root adds members over
//! `/v1`, and a tenant API key holding `scim:write` (made by the root over `/v1`) drives
//! SCIM.
//!
//! Measured at [`CLIENTS`] concurrent clients, each figure `seconds` in [`SLICES`]
//! slices alternating with the others:
//! 1. `POST /v1/tenants/{t}/members` with a new email (the baseline);
//! 2. `POST /scim/v2/tenants/{t}/Users` with an Okta-like body and a new `userName`;
//! 3. `GET /scim/v2/tenants/{t}/Users?filter=userName eq "…"` for a random existing
//!    member, half of them by their SCIM `userName`, half (plain members) by their email;
//!    an answer counts only if it is 200 with `totalResults` 1.
//!
//! Then the same lookups from one client for one slice (what one costs without
//! queueing), and, for context, a few requests of a filter no index answers
//! (`displayName sw "x"`, `count=1`), one at a time, each latency reported. Every loop
//! is bounded in time and in count; a failed request never counts as throughput.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use domain::ids::{Email, Password};
use domain::usecases::{Engine, EngineConfig};
use serde_json::{json, Value};

use crate::http::{login, serve_with_baselines, Load};
use crate::seed::{seed, tenant_id, user_id, Plan};
use crate::{database_url, Failure};

/// Seconds per figure when the command line gives none.
pub(crate) const DEFAULT_SECONDS: u64 = 10;
/// Concurrent HTTP clients of every measured route.
const CLIENTS: usize = 8;
/// Members of the seeded tenant.
const MEMBERS: u64 = 100_000;
/// Slices per figure, alternating between the routes.
const SLICES: u32 = 4;
/// Requests one client may send per second of a slice, at most: far above what two
/// cores serve, so only a runaway loop meets it.
const MAX_PER_CLIENT_SECOND: f64 = 2_000.0;
/// A request not answered in this long is a failure (the server's own deadline is 30 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Requests of the filter no index answers.
const UNINDEXED_REQUESTS: usize = 5;
const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const SCIM_JSON: &str = "application/scim+json";

/// Whether member `member` of the seeded tenant was provisioned through SCIM.
fn provisioned(member: u64) -> bool {
    member % 2 == 0
}

/// The SCIM `userName` of a provisioned member: not their email, mixed case (its key is
/// the ASCII-lowercased form).
fn user_name(member: u64) -> String {
    format!("Bench.User{member}@IdP.Example")
}

/// The email `seed.rs` gives member `member` of tenant 0 (user number `member`).
fn email(member: u64) -> String {
    format!("u{member}@seed.example")
}

/// Percent-encodes a query parameter's value (all but RFC 3986's unreserved characters).
fn encoded(value: &str) -> String {
    value
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// splitmix64 of `n`: random members without a lock.
fn mix(n: u64) -> u64 {
    let mut z = n
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The member the `n`th lookup asks about: even `n` a random provisioned member (by
/// `userName`), odd `n` a random plain one (by email).
fn lookup_target(n: u64) -> (u64, String) {
    let half = mix(n) % (MEMBERS / 2);
    if n % 2 == 0 {
        let member = half * 2;
        (member, user_name(member))
    } else {
        let member = half * 2 + 1;
        (member, email(member))
    }
}

/// The `n`th request of a route, built on a client.
type Make = Arc<dyn Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Send + Sync>;
/// Whether an answer (status, body) is the success the route promises.
type Check = fn(reqwest::StatusCode, &[u8]) -> bool;

/// One route's successful requests (latencies tagged with their `n % 2`) and failures.
#[derive(Default)]
struct Figure {
    elapsed: Duration,
    latencies: Vec<(u64, Duration)>,
    failures: u64,
    first_failure: Option<String>,
}

impl Figure {
    fn add(&mut self, other: Self) {
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
        self.failures += other.failures;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }

    /// The successes as a [`Load`], only those tagged `tag` if given.
    fn load(&self, tag: Option<u64>) -> Load {
        Load::of(
            self.elapsed,
            self.latencies
                .iter()
                .filter(|(t, _)| tag.is_none_or(|tag| *t == tag))
                .map(|(_, latency)| *latency)
                .collect(),
        )
    }
}

/// `clients` tasks, each on its own connection, sending the requests `make` builds back
/// to back for `duration` (and at most [`MAX_PER_CLIENT_SECOND`] per second each); `next`
/// numbers the requests across slices.
async fn phase(
    clients: usize,
    duration: Duration,
    next: Arc<AtomicU64>,
    make: Make,
    check: Check,
) -> Figure {
    let deadline = Instant::now() + duration;
    let limit = ((duration.as_secs_f64() * MAX_PER_CLIENT_SECOND) as u64).max(1);
    let failures = Arc::new(AtomicU64::new(0));
    let first_failure: Arc<Mutex<Option<String>>> = Arc::default();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (next, make, failures, first_failure) = (
            next.clone(),
            make.clone(),
            failures.clone(),
            first_failure.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .timeout(REQUEST_TIMEOUT)
                .build()?;
            let mut sent = 0;
            while sent < limit && Instant::now() < deadline {
                sent += 1;
                let n = next.fetch_add(1, Ordering::Relaxed);
                let at = Instant::now();
                let answer = match make(&client, n).send().await {
                    Ok(response) => {
                        let status = response.status();
                        response.bytes().await.map(|body| (status, body))
                    }
                    Err(error) => Err(error),
                };
                let failure = match &answer {
                    Ok((status, body)) if check(*status, body) => None,
                    Ok((status, body)) => Some(format!(
                        "{status}: {}",
                        String::from_utf8_lossy(body)
                            .chars()
                            .take(300)
                            .collect::<String>()
                    )),
                    Err(error) => Some(error.to_string()),
                };
                match failure {
                    None => latencies.push((n % 2, at.elapsed())),
                    Some(failure) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        first_failure
                            .lock()
                            .map(|mut first| {
                                first.get_or_insert(failure);
                            })
                            .ok();
                    }
                }
            }
            Ok::<_, reqwest::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    let mut failed_tasks = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(done)) => latencies.extend(done),
            Ok(Err(_)) | Err(_) => failed_tasks += 1,
        }
    }
    let first_failure = first_failure.lock().ok().and_then(|first| first.clone());
    Figure {
        elapsed: started.elapsed(),
        latencies,
        failures: failures.load(Ordering::Relaxed) + failed_tasks,
        first_failure,
    }
}

fn created(status: reqwest::StatusCode, _body: &[u8]) -> bool {
    status == reqwest::StatusCode::CREATED
}

/// A 200 list answer naming exactly one User.
fn found_one(status: reqwest::StatusCode, body: &[u8]) -> bool {
    status == reqwest::StatusCode::OK
        && serde_json::from_slice::<Value>(body)
            .is_ok_and(|list| list.get("totalResults").and_then(Value::as_u64) == Some(1))
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn print_figure(route: &str, figure: &Figure, tag: Option<u64>) {
    let mut load = figure.load(tag);
    let failures = if tag.is_some() {
        String::new()
    } else {
        figure.failures.to_string()
    };
    println!(
        "| {route} | {:.0} | {:.2} ms | {:.2} ms | {failures} |",
        load.per_second(),
        millis(load.at(0.50)),
        millis(load.at(0.99)),
    );
}

/// Gives every even-numbered member of tenant 0 of `plan` a SCIM identity, through COPY
/// as the schema's owner; returns how many.
async fn provision(owner: &sqlx::PgPool, plan: &Plan) -> Result<u64, Failure> {
    use std::fmt::Write as _;
    let tenant = tenant_id(0)?;
    let mut rows = String::new();
    let mut count = 0;
    for member in (0..plan.members_per_tenant).filter(|member| provisioned(*member)) {
        let name = user_name(member);
        writeln!(
            rows,
            "{tenant}\t{}\t{name}\t{}\t00u{member:016x}\t\\N\tt",
            user_id(member),
            name.to_ascii_lowercase()
        )?;
        count += 1;
    }
    let mut connection = owner.acquire().await?;
    // The owner passes row-level security the way the engine's platform mode does.
    sqlx::query("set app.platform = 'on'")
        .execute(&mut *connection)
        .await?;
    let mut copy = connection
        .copy_in_raw(
            "copy scim_users (tenant_id, user_id, user_name, user_name_key, external_id, \
             emails, active_set) from stdin",
        )
        .await?;
    copy.send(rows.into_bytes()).await?;
    copy.finish().await?;
    sqlx::query("analyze scim_users")
        .execute(&mut *connection)
        .await?;
    Ok(count)
}

pub async fn run(name: &str, seconds: u64) -> Result<(), Failure> {
    let owner = sqlx::PgPool::connect(&database_url(name)).await?;
    adapters_pg::migrate(&owner).await?;
    let plan = Plan {
        tenants: 1,
        members_per_tenant: MEMBERS,
        multi_tenant_users: 0,
    };
    let seeding = Instant::now();
    seed(&owner, &plan).await?;
    let seeded = seeding.elapsed();
    let identities = provision(&owner, &plan).await?;
    let seeding = seeding.elapsed();
    println!(
        "(seeded {MEMBERS} members in {:.1} s, their {identities} SCIM identities in {:.1} s \
         more: {:.1} s)",
        seeded.as_secs_f64(),
        (seeding - seeded).as_secs_f64(),
        seeding.as_secs_f64()
    );

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
    let (address, server) = serve_with_baselines(engine, store).await?;
    let result = measure(&format!("http://{address}"), &owner, seconds, connections).await;
    server.abort();
    owner.close().await;
    result
}

async fn measure(
    base: &str,
    owner: &sqlx::PgPool,
    seconds: u64,
    connections: u32,
) -> Result<(), Failure> {
    let tenant = tenant_id(0)?;
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()?;
    let root = login(&http, base, "root@bench.example", "bench root password").await?;
    let key: Value = http
        .post(format!("{base}/v1/tenants/{tenant}/api-keys"))
        .bearer_auth(&root)
        .json(&json!({ "name": "identity provider", "scopes": ["scim:write"] }))
        .send()
        .await?
        .json()
        .await?;
    let key = key
        .get("key")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no scim:write key: {key}"))?
        .to_owned();
    let users = format!("{base}/scim/v2/tenants/{tenant}/Users");
    // Both kinds of lookup answer before anything is measured.
    for n in [0, 1] {
        let (member, name) = lookup_target(n);
        let answer = http
            .get(format!(
                "{users}?filter={}",
                encoded(&format!("userName eq \"{name}\""))
            ))
            .bearer_auth(&key)
            .send()
            .await?;
        let status = answer.status();
        let body = answer.bytes().await?;
        if !found_one(status, &body) {
            return Err(format!(
                "the lookup of member {member} ({name}) found no one: {status} {}",
                String::from_utf8_lossy(&body)
            )
            .into());
        }
    }

    let members_url = format!("{base}/v1/tenants/{tenant}/members");
    let add: Make = Arc::new(move |client: &reqwest::Client, n: u64| {
        client
            .post(&members_url)
            .bearer_auth(&root)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(format!(
                r#"{{"email":"new-{n}@example.com","roles":["member"]}}"#
            ))
    });
    let (create_url, create_key) = (users.clone(), key.clone());
    let create: Make = Arc::new(move |client: &reqwest::Client, n: u64| {
        let body = json!({
            "schemas": [USER_SCHEMA],
            "userName": format!("okta.user{n}@example.com"),
            "name": { "givenName": format!("Okta{n}"), "familyName": "User" },
            "externalId": format!("00u{n:016x}"),
            "active": true,
        });
        client
            .post(&create_url)
            .bearer_auth(&create_key)
            .header(reqwest::header::CONTENT_TYPE, SCIM_JSON)
            .body(body.to_string())
    });
    let (lookup_url, lookup_key) = (users.clone(), key.clone());
    let lookup: Make = Arc::new(move |client: &reqwest::Client, n: u64| {
        let (_, name) = lookup_target(n);
        client
            .get(format!(
                "{lookup_url}?filter={}",
                encoded(&format!("userName eq \"{name}\""))
            ))
            .bearer_auth(&lookup_key)
    });

    let slice = Duration::from_secs(seconds) / SLICES;
    let [add_next, create_next, lookup_next]: [Arc<AtomicU64>; 3] = Default::default();
    let (mut adds, mut creates, mut lookups) =
        (Figure::default(), Figure::default(), Figure::default());
    for _ in 0..SLICES {
        adds.add(phase(CLIENTS, slice, add_next.clone(), add.clone(), created).await);
        creates.add(phase(CLIENTS, slice, create_next.clone(), create.clone(), created).await);
        lookups.add(
            phase(
                CLIENTS,
                slice,
                lookup_next.clone(),
                lookup.clone(),
                found_one,
            )
            .await,
        );
    }
    // The same lookups one at a time: what one costs without queueing.
    let alone = phase(1, slice, lookup_next, lookup, found_one).await;

    // A filter no index answers, one request at a time: a few, and none begun after
    // `seconds` (the server's deadline bounds each).
    let unindexed_url = format!("{users}?filter={}&count=1", encoded("displayName sw \"x\""));
    let mut unindexed = Vec::new();
    let mut unindexed_failures = Vec::new();
    let mut unindexed_total = None;
    let began = Instant::now();
    for _ in 0..UNINDEXED_REQUESTS {
        if began.elapsed() >= Duration::from_secs(seconds) {
            break;
        }
        let at = Instant::now();
        let answer = http.get(&unindexed_url).bearer_auth(&key).send().await;
        let answer = match answer {
            Ok(response) => {
                let status = response.status();
                response.bytes().await.map(|body| (status, body))
            }
            Err(error) => Err(error),
        };
        match answer {
            Ok((status, body)) if status == reqwest::StatusCode::OK => {
                unindexed.push(at.elapsed());
                unindexed_total = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|list| list.get("totalResults").and_then(Value::as_u64));
            }
            Ok((status, body)) => unindexed_failures.push(format!(
                "{status} after {:.0} ms: {}",
                millis(at.elapsed()),
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(200)
                    .collect::<String>()
            )),
            Err(error) => unindexed_failures.push(error.to_string()),
        }
    }

    let accounts: i64 = sqlx::query_scalar("select count(*) from accounts where tenant_id = $1")
        .bind(tenant.as_str())
        .fetch_one(owner)
        .await?;
    println!(
        "# SCIM benchmark (PostgreSQL): tenant {tenant} of {MEMBERS} members ({} with a SCIM \
         identity), {seconds} s per figure in {SLICES} slices alternating with the others, \
         {CLIENTS} HTTP clients, a pool of {connections} database connections",
        MEMBERS / 2
    );
    println!("| route | requests/s | p50 | p99 | failed |");
    println!("|---|---:|---:|---:|---:|");
    print_figure(
        "POST /v1/tenants/{t}/members, new email (baseline)",
        &adds,
        None,
    );
    print_figure(
        "POST /scim/v2/tenants/{t}/Users, Okta-like body, new userName",
        &creates,
        None,
    );
    print_figure(
        "GET /scim/v2/tenants/{t}/Users?filter=userName eq \"…\", existing member",
        &lookups,
        None,
    );
    print_figure(
        "… of which SCIM-provisioned members, by userName",
        &lookups,
        Some(0),
    );
    print_figure("… of which plain members, by email", &lookups, Some(1));
    print_figure(
        &format!(
            "the same lookups from one client, {:.1} s (no queueing)",
            slice.as_secs_f64()
        ),
        &alone,
        None,
    );
    let add_rate = adds.load(None).per_second();
    println!(
        "\nSCIM create / v1 add = {:.2}; SCIM userName lookup / v1 add = {:.2}",
        creates.load(None).per_second() / add_rate,
        lookups.load(None).per_second() / add_rate
    );
    for (what, figure) in [
        ("v1 adds", &adds),
        ("SCIM creates", &creates),
        ("SCIM lookups", &lookups),
        ("SCIM lookups from one client", &alone),
    ] {
        if let Some(failure) = &figure.first_failure {
            println!("{what}: {} failed, the first: {failure}", figure.failures);
        }
    }
    let mut sorted = unindexed.clone();
    sorted.sort_unstable();
    let each: Vec<String> = unindexed
        .iter()
        .map(|latency| format!("{:.0}", millis(*latency)))
        .collect();
    println!(
        "filter=displayName sw \"x\"&count=1 (no index), one at a time: {} requests in ms: {} \
         (median {:.0} ms; totalResults {})",
        unindexed.len(),
        each.join(", "),
        sorted
            .get(sorted.len() / 2)
            .map_or(0.0, |median| millis(*median)),
        unindexed_total.map_or("?".to_owned(), |total| total.to_string())
    );
    for failure in &unindexed_failures {
        println!("filter=displayName sw \"x\": failed: {failure}");
    }
    println!("(the tenant has {accounts} members after the run)");
    Ok(())
}
