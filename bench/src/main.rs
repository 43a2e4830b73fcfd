//! The benchmarks behind `cargo xtask bench`, each beside a baseline of the same run.
//!
//! `store`: member-add transactions per second through the engine on PostgreSQL (change +
//! audit record + event, `synchronous_commit` on) at 1, 8 and 32 concurrent clients,
//! beside pgbench running the equivalent inserts in one transaction against the same
//! database. `store --store sqlite`: the same on the embedded store, see `sqlite.rs`.
//! `http`: see `http.rs`; `http --seeded`: see `seeded.rs`; `seed`: see `seed.rs`;
//! `decide`: see `decide.rs`. `events`: see `events.rs`. `scim`: see `scim.rs`. `audit`,
//! `rss` and `connections`: see their modules; `peak-rss` is the helper process of
//! `process.rs`.

mod audit;
mod connections;
mod decide;
mod delivery;
mod events;
mod http;
mod oidc;
mod process;
mod rss;
mod scim;
mod seed;
mod seed_sqlite;
mod seeded;
mod sqlite;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters_pg::PgStore;
use domain::ids::{Assurance, DisplayName, RoleName, TenantId, UserId};
use domain::ports::{Clock, HashError, IdGenerator, PasswordHasher, SecretGenerator, TotpVerifier};
use domain::usecases::{
    AddMember, Caller, CreateTenant, Engine, EngineConfig, Ports, Principal, UserRef,
};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor, PgConnection};
use time::OffsetDateTime;

/// The allocator of `user-engine serve` (see `crates/server/src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        domain::audit::truncate_to_micros(OffsetDateTime::now_utc())
    }
}

struct V7Ids;

impl IdGenerator for V7Ids {
    fn new_v7(&self) -> uuid::Uuid {
        uuid::Uuid::now_v7()
    }
}

/// The member-add path hashes no password and checks no TOTP; these are never called.
struct Unused;

impl SecretGenerator for Unused {
    fn token(&self) -> String {
        uuid::Uuid::now_v7().simple().to_string()
    }
    fn totp_secret(&self) -> String {
        String::new()
    }
}

#[async_trait::async_trait]
impl PasswordHasher for Unused {
    async fn hash(&self, password: &str) -> Result<String, HashError> {
        Ok(password.to_owned())
    }
    async fn verify(&self, _password: &str, _hash: Option<&str>) -> Result<bool, HashError> {
        Ok(false)
    }
}

impl TotpVerifier for Unused {
    fn verify(&self, _secret: &str, _code: &str, _now: OffsetDateTime) -> Option<u64> {
        None
    }
    fn provisioning_uri(&self, _secret: &str, _account: &str) -> String {
        String::new()
    }
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn server_url() -> String {
    std::env::var("USER_ENGINE_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub(crate) fn database_url(name: &str) -> String {
    let mut url = server_url();
    if let Some(slash) = url.rfind('/') {
        url.truncate(slash);
    }
    format!("{url}/{name}")
}

const MAX_CLIENTS: usize = 32;
const CLIENT_COUNTS: [usize; 3] = [1, 8, MAX_CLIENTS];
/// Users pre-created per client, round and second: more than one client can add.
const USERS_PER_CLIENT_SECOND: i64 = 1_000;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args.first().cloned().unwrap_or_default();
    if which == "peak-rss" {
        return process::peak_rss_main(args.get(1..).unwrap_or_default());
    }
    if which == "seed" {
        return seed_main(args.get(1..).unwrap_or_default()).await;
    }
    // Needs no database.
    if which == "decide" {
        return decide::run(args.get(1..).unwrap_or_default()).await;
    }
    if ![
        "store",
        "http",
        "events",
        "delivery",
        "oidc",
        "scim",
        "audit",
        "rss",
        "connections",
    ]
    .contains(&which.as_str())
    {
        return Err(
            "usage: bench store|http|events|delivery|oidc|rss|connections [seconds per run, default 5] \
                    | bench scim [seconds per figure, default 10] \
                    | bench audit [records, default 1000000]"
                .into(),
        );
    }
    // `--store sqlite` (after `store`) selects the embedded store; the seconds are the
    // first number.
    let store = args
        .iter()
        .position(|arg| arg == "--store")
        .and_then(|index| args.get(index + 1))
        .map_or("postgres", String::as_str);
    let number: Option<u64> = args.iter().skip(1).find_map(|text| text.parse().ok());
    let seconds = number.unwrap_or(5);
    match (which.as_str(), store) {
        // Needs no PostgreSQL: return before creating a database there.
        ("store", "sqlite") => return sqlite::run(seconds).await,
        (_, "postgres") => {}
        _ => return Err(format!("unknown --store {store}: postgres or sqlite").into()),
    }
    let name = format!("ue_bench_{}", std::process::id());
    let server: PgConnectOptions = server_url().parse()?;
    let mut admin = PgConnection::connect_with(&server.clone().disable_statement_logging()).await?;
    admin
        .execute(format!("create database {name}").as_str())
        .await?;
    let result = match which.as_str() {
        "http" if args.iter().any(|arg| arg == "--seeded") => seeded::run(&name, seconds).await,
        "http" => http::run(&name, seconds).await,
        "events" => events::run(&name, seconds).await,
        "delivery" => delivery::run(&name, seconds).await,
        "oidc" => oidc::run(&name, seconds).await,
        "scim" => scim::run(&name, number.unwrap_or(scim::DEFAULT_SECONDS)).await,
        "audit" => audit::run(&name, number).await,
        "rss" => rss::run(&name, seconds).await,
        "connections" => connections::run(&name, seconds).await,
        _ => run(&name, seconds).await,
    };
    admin
        .execute(format!("drop database if exists {name} with (force)").as_str())
        .await?;
    result
}

/// `bench seed --tenants N --members-per-tenant M [--multi-tenant-users K] [--store
/// sqlite]`: seeds the database of `USER_ENGINE_DATABASE_URL` (else the development
/// server's `postgres` database), or with `--store sqlite` the embedded store of
/// `USER_ENGINE_DATA_DIR` (else `./user-engine-data`, as `serve` finds it), migrating it
/// first.
async fn seed_main(args: &[String]) -> Result<(), Failure> {
    let number = |flag: &str| -> Result<Option<u64>, Failure> {
        match args.iter().position(|arg| arg == flag) {
            None => Ok(None),
            Some(index) => Ok(Some(
                args.get(index + 1)
                    .ok_or_else(|| format!("{flag} needs a number"))?
                    .parse()
                    .map_err(|_| format!("{flag} needs a number"))?,
            )),
        }
    };
    let usage = "usage: seed --tenants N --members-per-tenant M [--multi-tenant-users K] \
                 [--store sqlite]";
    let plan = seed::Plan {
        tenants: number("--tenants")?.ok_or(usage)?,
        members_per_tenant: number("--members-per-tenant")?.ok_or(usage)?,
        multi_tenant_users: number("--multi-tenant-users")?.unwrap_or(0),
    };
    if plan.tenants == 0 || plan.tenants > 99_999 || plan.members_per_tenant == 0 {
        return Err("--tenants is 1 to 99999 and --members-per-tenant at least 1".into());
    }
    let started = Instant::now();
    if args.windows(2).any(|pair| pair == ["--store", "sqlite"]) {
        let dir = std::path::PathBuf::from(
            std::env::var("USER_ENGINE_DATA_DIR").unwrap_or_else(|_| "user-engine-data".into()),
        );
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(adapters_sqlite::DATABASE_FILE);
        seed_sqlite::seed(&path, &plan).await?;
        println!("(embedded store at {})", path.display());
    } else {
        let url =
            std::env::var("USER_ENGINE_DATABASE_URL").unwrap_or_else(|_| database_url("postgres"));
        let owner = sqlx::PgPool::connect(&url).await?;
        adapters_pg::migrate(&owner).await?;
        seed::seed(&owner, &plan).await?;
        owner.close().await;
    }
    println!(
        "seeded {} tenants x {} members and {} multi-tenant users ({} users) in {:.1} s",
        plan.tenants,
        plan.members_per_tenant,
        plan.multi_tenant_users,
        plan.users(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn run(name: &str, seconds: u64) -> Result<(), Failure> {
    let owner = sqlx::PgPool::connect(&database_url(name)).await?;
    adapters_pg::migrate(&owner).await?;
    let commit: String = sqlx::query_scalar("show synchronous_commit")
        .fetch_one(&owner)
        .await?;
    println!("# store benchmark: {seconds} s per run, synchronous_commit = {commit}");
    let per_client = USERS_PER_CLIENT_SECOND * i64::try_from(seconds)?;
    let root = seed(&owner, MAX_CLIENTS, per_client).await?;
    println!("| clients | engine member-adds/s | pgbench tx/s | ratio |");
    println!("|---:|---:|---:|---:|");
    for (round, clients) in CLIENT_COUNTS.into_iter().enumerate() {
        let engine_rate = engine_run(name, &root, clients, round, seconds, per_client).await?;
        let pgbench_rate = pgbench_run(name, clients, seconds)?;
        println!(
            "| {clients} | {engine_rate:.0} | {pgbench_rate:.0} | {:.2} |",
            engine_rate / pgbench_rate
        );
    }
    owner.close().await;
    Ok(())
}

/// The platform root every benchmark acts as, at `aal2`.
fn root_caller(root_id: uuid::Uuid) -> Caller {
    Caller {
        principal: Principal::User {
            user_id: UserId::from_generated(root_id),
            assurance: Assurance::Aal2,
            session: None,
        },
        request_id: "bench".to_owned(),
    }
}

/// Inserts a platform root straight into PostgreSQL (no password needed) and returns it.
async fn insert_root(owner: &sqlx::PgPool) -> Result<Caller, Failure> {
    let root_id = uuid::Uuid::now_v7();
    sqlx::query(
        "insert into users (user_id, email, state, platform_roles, created_at, updated_at) \
         values ($1, 'root@bench.example', 'active', array['platform_root'], now(), now())",
    )
    .bind(root_id)
    .execute(owner)
    .await?;
    Ok(root_caller(root_id))
}

/// An active user with no password, inserted straight into PostgreSQL.
async fn insert_user(owner: &sqlx::PgPool, email: &str) -> Result<UserId, Failure> {
    let id = uuid::Uuid::now_v7();
    sqlx::query(
        "insert into users (user_id, email, state, created_at, updated_at) \
         values ($1, $2, 'active', now(), now())",
    )
    .bind(id)
    .bind(email)
    .execute(owner)
    .await?;
    Ok(UserId::from_generated(id))
}

/// A tenant created through the engine by `root`, with `admin` as its tenant admin.
async fn create_tenant(
    engine: &Engine,
    root: &Caller,
    tenant: &TenantId,
    admin: UserId,
) -> Result<(), Failure> {
    engine
        .create_tenant(
            root,
            CreateTenant {
                id: tenant.clone(),
                display_name: DisplayName::parse("Bench")?,
                admin: UserRef::Id(admin),
            },
        )
        .await?;
    Ok(())
}

/// One tenant per client (its own partition head), users to add, and the pgbench tables.
async fn seed(owner: &sqlx::PgPool, clients: usize, per_client: i64) -> Result<Caller, Failure> {
    let root = insert_root(owner).await?;
    let engine = engine(&database_url_of(owner), 4).await?;
    for client in 0..clients {
        let admin = insert_user(owner, &format!("admin{client}@bench.example")).await?;
        for prefix in ["engine", "pgbench"] {
            let tenant = TenantId::parse(&format!("{prefix}-{client}"))?;
            create_tenant(&engine, &root, &tenant, admin).await?;
        }
    }
    // Engine rounds draw disjoint ranges; pgbench takes users from the start by sequence.
    let total = per_client * i64::try_from(clients * CLIENT_COUNTS.len())?;
    for statement in [
        "create table bench_users (n bigint primary key, user_id uuid not null)",
        "create sequence bench_seq",
        "grant select on bench_users to user_engine_app",
        "grant usage on sequence bench_seq to user_engine_app",
    ] {
        sqlx::query(statement).execute(owner).await?;
    }
    sqlx::query(
        "with made as ( \
             insert into users (user_id, email, state, created_at, updated_at) \
             select gen_random_uuid(), 'u' || n || '@bench.example', 'active', now(), now() \
             from generate_series(1, $1) as n returning user_id) \
         insert into bench_users (n, user_id) \
         select row_number() over (), user_id from made",
    )
    .bind(total)
    .execute(owner)
    .await?;
    sqlx::query("analyze").execute(owner).await?;
    Ok(root)
}

fn database_url_of(pool: &sqlx::PgPool) -> String {
    let options = pool.connect_options();
    database_url(options.get_database().unwrap_or("postgres"))
}

async fn engine(url: &str, connections: u32) -> Result<Engine, Failure> {
    let store = PgStore::connect(url, connections).await?;
    Ok(engine_on(Arc::new(store)))
}

/// The engine over a store, with the system clock, UUID v7 ids and unused secrets.
fn engine_on(store: Arc<dyn domain::ports::Store>) -> Engine {
    Engine::new(
        Ports {
            store,
            clock: Arc::new(SystemClock),
            ids: Arc::new(V7Ids),
            secrets: Arc::new(Unused),
            passwords: Arc::new(Unused),
            totp: Arc::new(Unused),
        },
        EngineConfig::default(),
    )
}

/// Adds each of `users` as a `member` of the tenant `tenant` names for it, as `root`,
/// until `deadline` (or until `tenant` names none), counting the adds in `added`.
async fn add_members(
    engine: Engine,
    root: Caller,
    users: Vec<uuid::Uuid>,
    deadline: Instant,
    added: Arc<AtomicU64>,
    mut tenant: impl FnMut() -> Option<TenantId>,
) {
    let member: BTreeSet<RoleName> = BTreeSet::from([RoleName::member()]);
    for user in users {
        if Instant::now() >= deadline {
            break;
        }
        let Some(tenant) = tenant() else {
            break;
        };
        let input = AddMember {
            user: UserRef::Id(UserId::from_generated(user)),
            roles: member.clone(),
        };
        if engine.add_member(&root, &tenant, input).await.is_ok() {
            added.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `clients` tasks, each adding existing users to its own tenant for `seconds`.
async fn engine_run(
    name: &str,
    root: &Caller,
    clients: usize,
    round: usize,
    seconds: u64,
    per_client: i64,
) -> Result<f64, Failure> {
    let engine = engine(&database_url(name), u32::try_from(clients)?).await?;
    let owner = sqlx::PgPool::connect(&database_url(name)).await?;
    let added = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for client in 0..clients {
        // Each (round, client) draws from its own range of the pre-made users.
        let first = 1 + per_client * i64::try_from(round * MAX_CLIENTS + client)?;
        let users: Vec<uuid::Uuid> = sqlx::query_scalar(
            "select user_id from bench_users where n >= $1 and n < $2 order by n",
        )
        .bind(first)
        .bind(first + per_client)
        .fetch_all(&owner)
        .await?;
        let tenant = TenantId::parse(&format!("engine-{client}"))?;
        tasks.push(tokio::spawn(add_members(
            engine.clone(),
            root.clone(),
            users,
            deadline,
            added.clone(),
            move || Some(tenant.clone()),
        )));
    }
    let started = Instant::now();
    for task in tasks {
        task.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    owner.close().await;
    Ok(added.load(Ordering::Relaxed) as f64 / elapsed)
}

/// The same inserts as a member add (head lock, account, membership, audit record,
/// event, head update), as the service role, one transaction each.
const PGBENCH_SCRIPT: &str = r"BEGIN;
SET LOCAL ROLE user_engine_app;
SELECT set_config('app.tenant_id', 'pgbench-' || :client_id, true);
SELECT user_id AS uid FROM bench_users WHERE n = (SELECT nextval('bench_seq')) \gset
INSERT INTO partition_heads (partition) VALUES ('pgbench-' || :client_id) ON CONFLICT (partition) DO UPDATE SET partition = excluded.partition RETURNING audit_seq, audit_hash, event_position;
INSERT INTO accounts (tenant_id, user_id, state, version, created_at, updated_at) VALUES ('pgbench-' || :client_id, :uid, 'active', 1, now(), now());
INSERT INTO memberships (tenant_id, user_id, role) VALUES ('pgbench-' || :client_id, :uid, 'member');
WITH head AS (UPDATE partition_heads SET audit_seq = audit_seq + 1, audit_hash = md5(random()::text) || md5(random()::text) WHERE partition = 'pgbench-' || :client_id RETURNING audit_seq, audit_hash) INSERT INTO audit_records (partition, seq, tenant_id, audit_id, at, actor_type, actor_id, action, target_type, target_id, outcome, reason, request_id, prev_hash, hash) SELECT 'pgbench-' || :client_id, head.audit_seq, 'pgbench-' || :client_id, gen_random_uuid(), now(), 'user', 'bench', 'member.add', 'member', :uid, 'allowed', 'platform_root', 'bench', head.audit_hash, head.audit_hash FROM head;
WITH head AS (UPDATE partition_heads SET event_position = event_position + 1 WHERE partition = 'pgbench-' || :client_id RETURNING event_position) INSERT INTO outbox_events (partition, position, tenant_id, event_id, event_type, subject, time, data) SELECT 'pgbench-' || :client_id, head.event_position, 'pgbench-' || :client_id, gen_random_uuid(), 'membership.added', :uid, now(), '{}'::jsonb FROM head;
COMMIT;
";

fn pgbench_run(name: &str, clients: usize, seconds: u64) -> Result<f64, Failure> {
    let script = std::env::temp_dir().join(format!("user-engine-bench-{}.sql", std::process::id()));
    std::fs::write(&script, PGBENCH_SCRIPT)?;
    let server: PgConnectOptions = server_url().parse()?;
    let output = Command::new("pgbench")
        .args([
            "--no-vacuum",
            "--protocol=prepared",
            "--host",
            server.get_host(),
            "--port",
            &server.get_port().to_string(),
            "--username",
            server.get_username(),
            "--client",
            &clients.to_string(),
            "--jobs",
            &clients.min(2).to_string(),
            "--time",
            &seconds.to_string(),
            "--file",
        ])
        .arg(&script)
        .arg(name)
        .output()?;
    std::fs::remove_file(&script).ok();
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "pgbench failed: {}{}",
            text,
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix("tps = ")?;
            rest.split_whitespace().next()?.parse::<f64>().ok()
        })
        .ok_or_else(|| format!("no tps in pgbench output: {text}").into())
}
