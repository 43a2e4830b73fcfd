//! `cargo xtask bench connections [seconds]`: what TLS to PostgreSQL and a transaction
//! pooler cost on the two hot paths — authorize (an API key asking about a member, the
//! call every service makes per request) and member adds (a write transaction with its
//! audit record and event) — as ratios to a direct plaintext connection in the same run.
//!
//! Four ways to reach the same database, each an engine of its own over a pool of
//! [`POOL`] connections, measured in slices that alternate so every figure sees the same
//! machine:
//! - direct, plaintext (`sslmode=disable`): the baseline;
//! - direct over TLS (`sslmode=require`; the server's certificate is not checked, which
//!   costs nothing per request — `verify-full` differs only at connect);
//! - direct with `USER_ENGINE_DATABASE_POOLING=transaction`: the statement shape a
//!   transaction pooler needs (unnamed statements, the role set per transaction) without
//!   the pooler;
//! - through PgBouncer in transaction pooling mode (Debian's `pgbouncer`, started here
//!   with [`POOL`] server connections).
//!
//! The engine runs in this process (no HTTP), so the differences are the connection's.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters_pg::{PgStore, Pooling};
use domain::ids::{Assurance, DisplayName, RoleName, ScopeName, TenantId, UserId};
use domain::usecases::{
    AddMember, AuthzCheck, Caller, CheckSubject, Engine, EngineConfig, NewApiKey, UserRef,
};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::{create_tenant, database_url, insert_root, insert_user, Failure};

/// Connections of each engine's pool (and PgBouncer's server connections).
const POOL: u32 = 8;
/// Authorize calls in flight.
const AUTHORIZE_CLIENTS: usize = 32;
/// Member adds in flight, each into a tenant of its own.
const ADD_CLIENTS: usize = 8;
/// Slices each figure is cut into, alternating between the four ways.
const SLICES: u32 = 4;
/// How long each way runs before anything is measured.
const WARM_UP: Duration = Duration::from_secs(WARM_UP_SECONDS as u64);
const WARM_UP_SECONDS: usize = 1;
/// The ways to PostgreSQL measured.
const WAYS: usize = 4;
/// Users made ready to add, per second of member-add measurement.
const USERS_PER_SECOND: usize = 4_000;

struct Way {
    name: &'static str,
    engine: Engine,
    tls: bool,
    authorized: Count,
    added: Count,
}

#[derive(Default)]
struct Count {
    done: u64,
    elapsed: Duration,
}

impl Count {
    fn per_second(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

pub async fn run(name: &str, seconds: u64) -> Result<(), Failure> {
    let url = database_url(name);
    let owner = sqlx::PgPool::connect(&url).await?;
    adapters_pg::migrate(&owner).await?;
    let root = insert_root(&owner).await?;
    let setup = crate::engine(&url, 2).await?;

    // A tenant whose admin is the member asked about, an API key that may ask, and a
    // tenant per adding client.
    let admin = insert_user(&owner, "admin@conn.example").await?;
    let tenant = TenantId::parse("conn")?;
    create_tenant(&setup, &root, &tenant, admin).await?;
    let key = setup
        .create_api_key(
            &root,
            &tenant,
            NewApiKey {
                name: DisplayName::parse("bench")?,
                scopes: BTreeSet::from([ScopeName::parse("authz:check")?]),
            },
        )
        .await?
        .secret;
    let mut add_tenants = Vec::new();
    for client in 0..ADD_CLIENTS {
        let tenant = TenantId::parse(&format!("conn-{client}"))?;
        let admin = insert_user(&owner, &format!("admin{client}@conn.example")).await?;
        create_tenant(&setup, &root, &tenant, admin).await?;
        add_tenants.push(tenant);
    }
    let users: Arc<Vec<uuid::Uuid>> = Arc::new(
        sqlx::query_scalar(
            "insert into users (user_id, email, state, created_at, updated_at) \
             select gen_random_uuid(), 'c' || n || '@conn.example', 'active', now(), now() \
             from generate_series(1, $1) as n returning user_id",
        )
        .bind(i64::try_from(
            USERS_PER_SECOND * (usize::try_from(seconds)? + WARM_UP_SECONDS) * WAYS,
        )?)
        .fetch_all(&owner)
        .await?,
    );
    sqlx::query("analyze").execute(&owner).await?;

    let pgbouncer = tests::nodes::PgBouncer::start(name);
    let mut ways = Vec::new();
    for (way, url, pooling) in [
        (
            "direct, plaintext (baseline)",
            format!("{url}?sslmode=disable"),
            Pooling::Session,
        ),
        (
            "direct, TLS",
            format!("{url}?sslmode=require"),
            Pooling::Session,
        ),
        (
            "direct, transaction-pooling statements",
            format!("{url}?sslmode=disable"),
            Pooling::Transaction,
        ),
        (
            "PgBouncer, transaction pooling",
            pgbouncer.url(),
            Pooling::Transaction,
        ),
    ] {
        let store = PgStore::connect_pooled(&url, POOL, pooling).await?;
        ways.push(Way {
            name: way,
            engine: Engine::new(
                adapters_security::production_ports(Arc::new(store)),
                EngineConfig::default(),
            ),
            tls: uses_tls(&url).await?,
            authorized: Count::default(),
            added: Count::default(),
        });
    }

    let check = AuthzCheck {
        subject: CheckSubject::User {
            user_id: admin,
            assurance: Assurance::Aal1,
        },
        scope: ScopeName::parse("tenant:read")?,
        target: None,
    };
    let slice = Duration::from_secs(seconds) / SLICES;
    let next_user = Arc::new(AtomicUsize::new(0));
    // Warm-up, unmeasured: every way opens its connections and prepares its statements,
    // and the tables hold members and records before the statistics are taken. Measured
    // from an empty database, the first way's statements kept plans made for empty
    // tables and its member adds ran at a quarter of the others'.
    for way in &ways {
        authorize(&way.engine, &tenant, &key, &check, WARM_UP).await?;
        add_members(
            &way.engine,
            &root,
            &add_tenants,
            &users,
            &next_user,
            WARM_UP,
        )
        .await?;
    }
    sqlx::query("analyze").execute(&owner).await?;
    for _ in 0..SLICES {
        for way in &mut ways {
            let (done, elapsed) = authorize(&way.engine, &tenant, &key, &check, slice).await?;
            way.authorized.done += done;
            way.authorized.elapsed += elapsed;
            let (done, elapsed) =
                add_members(&way.engine, &root, &add_tenants, &users, &next_user, slice).await?;
            way.added.done += done;
            way.added.elapsed += elapsed;
        }
    }

    println!(
        "# connections benchmark: {seconds} s per figure in {SLICES} alternating slices, \
         pools of {POOL} connections, {AUTHORIZE_CLIENTS} authorize calls and {ADD_CLIENTS} \
         member adds in flight, in process"
    );
    println!("| way to PostgreSQL | TLS | authorize/s | ratio | member adds/s | ratio |");
    println!("|---|---|---:|---:|---:|---:|");
    let (base_authorize, base_add) = ways
        .first()
        .map(|way| (way.authorized.per_second(), way.added.per_second()))
        .unwrap_or_default();
    for way in &ways {
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.0} | {:.2} |",
            way.name,
            if way.tls { "yes" } else { "no" },
            way.authorized.per_second(),
            way.authorized.per_second() / base_authorize.max(f64::EPSILON),
            way.added.per_second(),
            way.added.per_second() / base_add.max(f64::EPSILON),
        );
    }
    drop(pgbouncer);
    owner.close().await;
    Ok(())
}

/// Whether a session opened with `url` (as the engine's pool opens them) runs over TLS;
/// through PgBouncer, whether PgBouncer's own connection to the server does.
async fn uses_tls(url: &str) -> Result<bool, Failure> {
    let options = url
        .parse::<PgConnectOptions>()?
        .statement_cache_capacity(0)
        .disable_statement_logging();
    let mut connection = sqlx::PgConnection::connect_with(&options).await?;
    let tls: Option<bool> =
        sqlx::query_scalar("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
            .fetch_optional(&mut connection)
            .await?;
    connection.close().await.ok();
    Ok(tls.unwrap_or(false))
}

/// `clients` tasks each running `step(client)` back to back for `duration`: the steps
/// done and the time taken; the first failing step fails the run.
async fn in_flight<Step, Done>(
    clients: usize,
    duration: Duration,
    step: Step,
) -> Result<(u64, Duration), Failure>
where
    Step: Fn(usize) -> Done + Send + Sync + 'static,
    Done: std::future::Future<Output = Result<(), String>> + Send,
{
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let step = Arc::new(step);
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (step, done) = (step.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                step(client).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, String>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok((done.load(Ordering::Relaxed), started.elapsed()))
}

/// [`AUTHORIZE_CLIENTS`] tasks asking the same question back to back for `duration`,
/// as the HTTP route asks it: decisions made (each must be an allow) and the time taken.
async fn authorize(
    engine: &Engine,
    tenant: &TenantId,
    key: &str,
    check: &AuthzCheck,
    duration: Duration,
) -> Result<(u64, Duration), Failure> {
    let (engine, tenant, key, check) = (
        engine.clone(),
        tenant.clone(),
        key.to_owned(),
        check.clone(),
    );
    in_flight(AUTHORIZE_CLIENTS, duration, move |_| {
        let (engine, tenant, key, check) =
            (engine.clone(), tenant.clone(), key.clone(), check.clone());
        async move {
            let decisions = engine
                .authorize_request(&tenant, Some(&key), "bench", vec![Ok(check)])
                .await
                .map_err(|error| error.to_string())?;
            if decisions.first().is_some_and(|decision| decision.allowed) {
                Ok(())
            } else {
                Err(format!("authorize did not allow: {decisions:?}"))
            }
        }
    })
    .await
}

/// One task per tenant, each adding fresh users as members of its tenant for
/// `duration`: members added and the time taken.
async fn add_members(
    engine: &Engine,
    root: &Caller,
    tenants: &[TenantId],
    users: &Arc<Vec<uuid::Uuid>>,
    next_user: &Arc<AtomicUsize>,
    duration: Duration,
) -> Result<(u64, Duration), Failure> {
    let (engine, root, tenants, users, next_user) = (
        engine.clone(),
        root.clone(),
        tenants.to_vec(),
        users.clone(),
        next_user.clone(),
    );
    in_flight(tenants.len(), duration, move |client| {
        let (engine, root) = (engine.clone(), root.clone());
        let tenant = tenants.get(client).cloned();
        let user = users
            .get(next_user.fetch_add(1, Ordering::Relaxed))
            .copied();
        async move {
            let (Some(tenant), Some(user)) = (tenant, user) else {
                return Err("ran out of users to add: raise USERS_PER_SECOND".to_owned());
            };
            engine
                .add_member(
                    &root,
                    &tenant,
                    AddMember {
                        user: UserRef::Id(UserId::from_generated(user)),
                        roles: BTreeSet::from([RoleName::member()]),
                    },
                )
                .await
                .map(|_| ())
                .map_err(|error| error.to_string())
        }
    })
    .await
}
