//! `cargo xtask bench http --seeded [seconds]`: authorize at scale. Two databases seeded
//! by `seed.rs` — a small one (10 tenants × 10 members) and a large one (10,000 tenants ×
//! 100 members, a million users; `BENCH_SEED_TENANTS` and `BENCH_SEED_MEMBERS` set
//! another size) — each served in process like `bench http`, and on each, alternating in
//! slices: the one-row select route (the baseline), authorize with a random question per
//! request (a random tenant's key asking about a random member of it, for a random scope
//! of the seeded ones) and the batch route with 100 random questions per request.
//!
//! Before measuring, every member is asked about once through the batch route, so the
//! facts cache is full (the figures are those of a warm service; the peak resident set
//! after that is reported).
//!
//! Then, on each dataset, member adds through the engine (8 clients, each adding existing
//! users to random tenants as the platform root, every add a transaction with its audit
//! record and event), so a large dataset's write rate shows beside a small one's; and on
//! the last dataset, the release `user-engine serve` itself, its caches filled by the
//! same warm-up, for its own peak resident set.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::usecases::{Engine, EngineConfig};
use serde_json::{json, Value};

use crate::http::{load, serve_with_baselines, Load, Request, CONNECTIONS};
use crate::seed::{api_key, member_id, seed, tenant_id, Plan};
use crate::{database_url, Failure};

/// Slices per figure, alternating between the routes.
const SLICES: u32 = 4;
/// Concurrent clients adding members.
const ADDERS: u64 = 8;
/// Users made ready per adder and second of member adds: more than one client adds.
const ADDS_PER_SECOND: u64 = 2_000;
/// The scopes questions ask about: the seeded application scopes and two engine ones.
const SCOPES: [&str; 5] = [
    "docs:read",
    "docs:write",
    "billing:manage",
    "tenant:read",
    "members:write",
];

/// A random question generator shared by all connections: splitmix64 over a counter, so
/// the questions spread over every tenant, member and scope without a lock.
struct Questions {
    plan: Plan,
    next: AtomicU64,
}

impl Questions {
    fn random(&self) -> u64 {
        let mut z = self
            .next
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A random tenant's number.
    fn tenant(&self) -> u64 {
        self.random() % self.plan.tenants
    }

    /// A random check about a member of `tenant`, as JSON text: written straight, so the
    /// load generator (sharing the machine with the server) spends little on it.
    fn check(&self, tenant: u64) -> String {
        let random = self.random();
        let member = random % self.plan.members_per_tenant;
        let scope = SCOPES
            .get(usize::try_from((random >> 32) % SCOPES.len() as u64).unwrap_or(0))
            .copied()
            .unwrap_or("docs:read");
        format!(
            r#"{{"subject":{{"user_id":"{}","assurance":"aal1"}},"scope":"{scope}"}}"#,
            member_id(&self.plan, tenant, member)
        )
    }
}

/// One dataset's figures.
struct Figures {
    label: String,
    select: Load,
    authorize: Load,
    batch: Load,
    warm_up: Duration,
    /// Reads of facts the cache lacked while measuring (0 when the warm-up filled it).
    facts_reads: u64,
    peak_mib: u64,
    member_adds: f64,
    /// `user-engine serve`'s resident and peak resident set with its caches full (KiB).
    serve: Option<(u64, u64)>,
}

pub async fn run(name: &str, seconds: u64) -> Result<(), Failure> {
    let size = |variable: &str, default: u64| {
        std::env::var(variable)
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(default)
    };
    let plans = [
        Plan {
            tenants: 10,
            members_per_tenant: 10,
            multi_tenant_users: 0,
        },
        Plan {
            tenants: size("BENCH_SEED_TENANTS", 10_000),
            members_per_tenant: size("BENCH_SEED_MEMBERS", 100),
            multi_tenant_users: 0,
        },
    ];
    println!(
        "# authorize at scale: {seconds} s per figure in {SLICES} slices alternating with the \
         select baseline, {CONNECTIONS} HTTP connections, random questions"
    );
    let mut all = Vec::new();
    for (index, plan) in plans.iter().enumerate() {
        let database = format!("{name}_{index}");
        let url = database_url(&database);
        let admin = sqlx::PgPool::connect(&database_url(name)).await?;
        sqlx::query(&format!("create database {database}"))
            .execute(&admin)
            .await?;
        let last = index + 1 == plans.len();
        let figures = measure(&url, plan, seconds, last).await;
        sqlx::query(&format!("drop database if exists {database} with (force)"))
            .execute(&admin)
            .await?;
        admin.close().await;
        all.push(figures?);
    }
    println!("\n| dataset | route | requests/s | decisions/s | p50 | p99 |");
    println!("|---|---|---:|---:|---:|---:|");
    for figures in &mut all {
        let label = figures.label.clone();
        for (route, load, per_request) in [
            ("one-row select (baseline)", &mut figures.select, 1.0),
            ("authorize", &mut figures.authorize, 1.0),
            ("authorize/batch, 100 checks", &mut figures.batch, 100.0),
        ] {
            println!(
                "| {label} | {route} | {:.0} | {:.0} | {:.2} ms | {:.2} ms |",
                load.per_second(),
                load.per_second() * per_request,
                load.at(0.50).as_secs_f64() * 1000.0,
                load.at(0.99).as_secs_f64() * 1000.0
            );
        }
    }
    println!();
    for figures in &all {
        println!(
            "{}: authorize / select = {:.2} (target ≥ 0.8); warm-up {:.1} s; facts read while \
             measuring {}; peak RSS of the bench process (server, caches full, and load \
             generator) {} MiB",
            figures.label,
            figures.authorize.per_second() / figures.select.per_second(),
            figures.warm_up.as_secs_f64(),
            figures.facts_reads,
            figures.peak_mib
        );
    }
    for figures in &all {
        println!(
            "{}: member adds (engine, {ADDERS} clients) {:.0}/s",
            figures.label, figures.member_adds
        );
        if let Some((resident, peak)) = figures.serve {
            println!(
                "{}: user-engine serve with its caches full: resident {} MiB, peak {} MiB",
                figures.label,
                crate::process::mib(resident),
                crate::process::mib(peak)
            );
        }
    }
    if let [small, large] = all.as_mut_slice() {
        println!(
            "authorize p99 large / small = {:.2} (target ≤ 1.5); member adds large / small = \
             {:.2} (target ≥ 0.8)",
            large.authorize.at(0.99).as_secs_f64() / small.authorize.at(0.99).as_secs_f64(),
            large.member_adds / small.member_adds
        );
    }
    Ok(())
}

/// Asks about every member of every tenant once through `base`'s batch route, 100 to a
/// batch, so the facts cache holds them all; returns how long it took.
async fn warm_up(base: &str, plan: &Plan) -> Result<Duration, Failure> {
    let warming = Instant::now();
    let client = reqwest::Client::new();
    for tenant in 0..plan.tenants {
        let tenant_name = tenant_id(tenant)?;
        let members: Vec<u64> = (0..plan.members_per_tenant).collect();
        for chunk in members.chunks(100) {
            let checks: Vec<Value> = chunk
                .iter()
                .map(|member| {
                    json!({
                        "subject": { "user_id": member_id(plan, tenant, *member).to_string(), "assurance": "aal1" },
                        "scope": "docs:read",
                    })
                })
                .collect();
            let reply = client
                .post(format!("{base}/v1/tenants/{tenant_name}/authorize/batch"))
                .bearer_auth(api_key(&tenant_name))
                .json(&json!({ "checks": checks }))
                .send()
                .await?;
            if !reply.status().is_success() {
                return Err(format!("warm-up of {tenant_name}: {}", reply.status()).into());
            }
        }
    }
    Ok(warming.elapsed())
}

/// Member adds per second through the engine on the seeded database: [`ADDERS`] clients
/// for `seconds`, each adding users made for it (active, no account yet) to random
/// tenants as the platform root at `aal2`.
async fn member_adds(url: &str, plan: &Plan, seconds: u64) -> Result<f64, Failure> {
    let owner = sqlx::PgPool::connect(url).await?;
    let root = crate::insert_root(&owner).await?;
    let per_adder = ADDS_PER_SECOND * seconds.max(1);
    let users: Vec<uuid::Uuid> = sqlx::query_scalar(
        "insert into users (user_id, email, state, created_at, updated_at) \
         select gen_random_uuid(), 'added' || n || '@bench.example', 'active', now(), now() \
         from generate_series(1, $1) as n returning user_id",
    )
    .bind(i64::try_from(per_adder * ADDERS)?)
    .fetch_all(&owner)
    .await?;
    owner.close().await;
    let engine = crate::engine(url, u32::try_from(ADDERS)?).await?;
    let questions = Arc::new(Questions {
        plan: *plan,
        next: AtomicU64::new(7),
    });
    let added = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for chunk in users.chunks(usize::try_from(per_adder)?) {
        let (engine, root, added, questions) = (
            engine.clone(),
            root.clone(),
            added.clone(),
            questions.clone(),
        );
        tasks.push(tokio::spawn(crate::add_members(
            engine,
            root,
            chunk.to_vec(),
            deadline,
            added,
            move || tenant_id(questions.tenant()).ok(),
        )));
    }
    let started = Instant::now();
    for task in tasks {
        task.await?;
    }
    #[allow(clippy::cast_precision_loss, reason = "a count of at most millions")]
    let rate = added.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    Ok(rate)
}

/// The release `user-engine serve` on the seeded database, its caches filled by the
/// warm-up: its resident and peak resident set (KiB).
async fn serve_memory(url: &str, plan: &Plan) -> Result<(u64, u64), Failure> {
    let node = tests::nodes::Node::serve(
        "serve",
        &[
            ("USER_ENGINE_DATABASE_URL", url),
            ("USER_ENGINE_LISTEN", "127.0.0.1:0"),
        ],
    );
    let pid = node.pid().ok_or("serve is not running")?;
    let took = warm_up(&node.base_url(), plan).await?;
    println!(
        "(user-engine serve: every member asked about once in {:.1} s)",
        took.as_secs_f64()
    );
    crate::process::resident_kib(pid)
}

async fn measure(url: &str, plan: &Plan, seconds: u64, last: bool) -> Result<Figures, Failure> {
    let owner = sqlx::PgPool::connect(url).await?;
    adapters_pg::migrate(&owner).await?;
    let seeding = Instant::now();
    seed(&owner, plan).await?;
    let label = format!(
        "{} tenants × {} members",
        plan.tenants, plan.members_per_tenant
    );
    println!(
        "({label}: seeded in {:.1} s)",
        seeding.elapsed().as_secs_f64()
    );
    owner.close().await;
    let connections = server::config::Config::default().max_connections;
    let store = adapters_pg::PgStore::connect(url, connections).await?;
    let engine = Engine::new(
        adapters_security::production_ports(Arc::new(store.clone())),
        EngineConfig::default(),
    );
    let (address, server) = serve_with_baselines(engine, store.clone()).await?;
    let base = format!("http://{address}");
    let keys: Arc<Vec<String>> = Arc::new(
        (0..plan.tenants)
            .map(|tenant| tenant_id(tenant).map(|tenant| api_key(&tenant)))
            .collect::<Result<_, _>>()?,
    );
    let questions = Arc::new(Questions {
        plan: *plan,
        next: AtomicU64::new(1),
    });

    // Warm-up: every member of every tenant once, 100 to a batch.
    let warm_up = warm_up(&base, plan).await?;

    let select_url = format!("{base}/bench/select");
    // A request to `route` of a random tenant with that tenant's key and a body of
    // `checks` random questions about its members.
    let random_request = |route: &'static str, checks: Option<usize>| -> Request {
        let (base, keys, questions) = (base.clone(), keys.clone(), questions.clone());
        Arc::new(move |client: &reqwest::Client| {
            let tenant = questions.tenant();
            let key = keys
                .get(usize::try_from(tenant).unwrap_or(0))
                .cloned()
                .unwrap_or_default();
            let body = match checks {
                None => questions.check(tenant),
                Some(count) => {
                    let checks: Vec<String> = (0..count).map(|_| questions.check(tenant)).collect();
                    format!(r#"{{"checks":[{}]}}"#, checks.join(","))
                }
            };
            client
                .post(format!("{base}/v1/tenants/seed-{tenant:05}/{route}"))
                .bearer_auth(key)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
        })
    };
    let authorize = random_request("authorize", None);
    let batch = random_request("authorize/batch", Some(100));
    let routes: [Request; 3] = [
        Arc::new(move |client: &reqwest::Client| client.get(&select_url)),
        authorize,
        batch,
    ];
    let slice = Duration::from_secs(seconds) / SLICES;
    let mut loads: [Load; 3] = Default::default();
    let reads_before = store.facts_reads();
    for _ in 0..SLICES {
        for (route, total) in routes.iter().zip(&mut loads) {
            total.add(load(CONNECTIONS, slice, route.clone()).await?);
        }
    }
    let facts_reads = store.facts_reads() - reads_before;
    server.abort();
    let peak_mib = crate::http::peak_resident_mib();
    let member_adds = member_adds(url, plan, seconds).await?;
    let serve = if last {
        Some(serve_memory(url, plan).await?)
    } else {
        None
    };
    let [select, authorize, batch] = loads;
    Ok(Figures {
        label,
        select,
        authorize,
        batch,
        warm_up,
        facts_reads,
        peak_mib,
        member_adds,
        serve,
    })
}
