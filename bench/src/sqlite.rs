//! `store --store sqlite`: member-add transactions per second through the engine on the
//! embedded SQLite store (change + audit record + event, WAL with a full sync at every
//! commit) at 1, 8 and 32 concurrent clients, beside a baseline of the same run: the same
//! inserts as raw SQL, one `BEGIN IMMEDIATE` transaction each, on one writer connection
//! the clients take turns on — the way the adapter serialises writers, without the
//! engine. SQLite has no pgbench; this is the closest equivalent.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters_sqlite::SqliteStore;
use domain::ids::{DisplayName, RoleName, TenantId, UserId};
use domain::usecases::{AddMember, Caller, CreateTenant, Engine, UserRef};
use sqlx::sqlite::{SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::Mutex;

use crate::{Failure, CLIENT_COUNTS, MAX_CLIENTS};

/// Users made per second of a slice: above what one SQLite writer commits.
const USERS_PER_SECOND: usize = 10_000;
/// Slices each run is cut into, alternating engine and baseline.
const SLICES: u64 = 4;

pub(crate) async fn run(seconds: u64) -> Result<(), Failure> {
    let directory = std::env::temp_dir().join(format!("user-engine-bench-{}", std::process::id()));
    let result = run_in(&directory, seconds).await;
    std::fs::remove_dir_all(&directory).ok();
    result
}

async fn run_in(directory: &Path, seconds: u64) -> Result<(), Failure> {
    let path = directory.join(adapters_sqlite::DATABASE_FILE);
    let store = SqliteStore::open(adapters_sqlite::file_options(&path), 40).await?;
    store.migrate().await?;
    let mut raw = raw_connection(&path).await?;
    let synchronous: i64 = sqlx::query_scalar("pragma synchronous")
        .fetch_one(&mut raw)
        .await?;
    println!(
        "# store benchmark on SQLite: {seconds} s per run, WAL, synchronous = {} ({})",
        synchronous,
        if synchronous == 2 { "full" } else { "not full" }
    );
    let engine = crate::engine_on(Arc::new(store.clone()));
    let root = seed(&engine, &mut raw).await?;
    // Each figure is the mean of alternating slices (engine, raw, engine, raw, …): the
    // disk's sync time drifts during a run, and alternating spreads the drift over both.
    let slice = (seconds / SLICES).max(1);
    let per_slice = USERS_PER_SECOND * usize::try_from(slice)?;
    println!("| clients | engine member-adds/s | raw SQL tx/s | ratio |");
    println!("|---:|---:|---:|---:|");
    let raw = Arc::new(Mutex::new(raw));
    for (round, clients) in CLIENT_COUNTS.into_iter().enumerate() {
        let (mut engine_rate, mut raw_rate) = (0.0, 0.0);
        for part in 0..SLICES {
            let users = make_users(&raw, &format!("e{round}-{part}"), per_slice).await?;
            engine_rate += engine_run(&engine, &root, clients, slice, users).await?;
            let users = make_users(&raw, &format!("r{round}-{part}"), per_slice).await?;
            raw_rate += raw_run(&raw, clients, slice, users).await?;
        }
        let slices = f64::from(u32::try_from(SLICES)?);
        let (engine_rate, raw_rate) = (engine_rate / slices, raw_rate / slices);
        println!(
            "| {clients} | {engine_rate:.0} | {raw_rate:.0} | {:.2} |",
            engine_rate / raw_rate
        );
    }
    store.close().await;
    Ok(())
}

/// A plain connection with the store's settings (WAL, full sync, foreign keys).
async fn raw_connection(path: &Path) -> Result<SqliteConnection, Failure> {
    Ok(adapters_sqlite::file_options(path)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(adapters_sqlite::BUSY_TIMEOUT)
        .disable_statement_logging()
        .connect()
        .await?)
}

/// The root, and one engine tenant and one raw tenant per client.
async fn seed(engine: &Engine, raw: &mut SqliteConnection) -> Result<Caller, Failure> {
    let root_id = uuid::Uuid::now_v7();
    sqlx::query(
        "insert into users (user_id, email, state, created_at, updated_at) \
         values (?1, 'root@bench.example', 'active', 0, 0)",
    )
    .bind(root_id.to_string())
    .execute(&mut *raw)
    .await?;
    sqlx::query("insert into user_platform_roles (user_id, role) values (?1, 'platform_root')")
        .bind(root_id.to_string())
        .execute(&mut *raw)
        .await?;
    let root = crate::root_caller(root_id);
    for client in 0..MAX_CLIENTS {
        let admin = uuid::Uuid::now_v7();
        sqlx::query(
            "insert into users (user_id, email, state, created_at, updated_at) \
             values (?1, ?2, 'active', 0, 0)",
        )
        .bind(admin.to_string())
        .bind(format!("admin{client}@bench.example"))
        .execute(&mut *raw)
        .await?;
        for prefix in ["engine", "raw"] {
            engine
                .create_tenant(
                    &root,
                    CreateTenant {
                        id: TenantId::parse(&format!("{prefix}-{client}"))?,
                        display_name: DisplayName::parse("Bench")?,
                        admin: UserRef::Id(UserId::from_generated(admin)),
                    },
                )
                .await?;
        }
    }
    Ok(root)
}

/// `count` new users, inserted in one transaction outside the measurement.
async fn make_users(
    raw: &Mutex<SqliteConnection>,
    tag: &str,
    count: usize,
) -> Result<Vec<uuid::Uuid>, Failure> {
    let users: Vec<uuid::Uuid> = (0..count).map(|_| uuid::Uuid::now_v7()).collect();
    let mut connection = raw.lock().await;
    let mut tx = connection.begin().await?;
    for chunk in users.chunks(5_000) {
        let ids =
            serde_json::to_string(&chunk.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        sqlx::query(
            "insert into users (user_id, email, state, created_at, updated_at) \
             select value, 'u-' || value || '-' || ?2 || '@bench.example', 'active', 0, 0 \
             from json_each(?1)",
        )
        .bind(ids)
        .bind(tag)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(users)
}

/// `clients` tasks, each adding users to its own tenant through the engine.
async fn engine_run(
    engine: &Engine,
    root: &Caller,
    clients: usize,
    seconds: u64,
    users: Vec<uuid::Uuid>,
) -> Result<f64, Failure> {
    let users = Arc::new(users);
    let next = Arc::new(AtomicUsize::new(0));
    let added = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (engine, root, users, next, added) = (
            engine.clone(),
            root.clone(),
            users.clone(),
            next.clone(),
            added.clone(),
        );
        let tenant = TenantId::parse(&format!("engine-{client}"))?;
        tasks.push(tokio::spawn(async move {
            let member: BTreeSet<RoleName> = BTreeSet::from([RoleName::member()]);
            while Instant::now() < deadline {
                let Some(user) = users.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    break;
                };
                let input = AddMember {
                    user: UserRef::Id(UserId::from_generated(*user)),
                    roles: member.clone(),
                };
                if engine.add_member(&root, &tenant, input).await.is_ok() {
                    added.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    Ok(added.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// `clients` tasks taking turns on one writer connection, each transaction doing what a
/// member add writes: account, membership, audit record after its trail's last, event
/// at its feed's next position.
async fn raw_run(
    raw: &Arc<Mutex<SqliteConnection>>,
    clients: usize,
    seconds: u64,
    users: Vec<uuid::Uuid>,
) -> Result<f64, Failure> {
    let users = Arc::new(users);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (raw, users, next, done) = (raw.clone(), users.clone(), next.clone(), done.clone());
        let tenant = format!("raw-{client}");
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let Some(user) = users.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    break;
                };
                let mut connection = raw.lock().await;
                if raw_add(&mut connection, &tenant, &user.to_string())
                    .await
                    .is_ok()
                {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

async fn raw_add(
    connection: &mut SqliteConnection,
    tenant: &str,
    user: &str,
) -> Result<(), Failure> {
    let now = i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000)?;
    let mut tx = connection.begin_with("begin immediate").await?;
    sqlx::query(
        "insert into accounts (tenant_id, user_id, state, version, created_at, updated_at) \
         values (?1, ?2, 'active', 1, ?3, ?3)",
    )
    .bind(tenant)
    .bind(user)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("insert into memberships (tenant_id, user_id, role) values (?1, ?2, 'member')")
        .bind(tenant)
        .bind(user)
        .execute(&mut *tx)
        .await?;
    let last: Option<(i64, String)> = sqlx::query_as(
        "select seq, hash from audit_records where partition = ?1 order by seq desc limit 1",
    )
    .bind(tenant)
    .fetch_optional(&mut *tx)
    .await?;
    let (seq, prev_hash) = last.unwrap_or((0, domain::audit::GENESIS_HASH.to_owned()));
    let hash = format!("{:064x}", uuid::Uuid::now_v7().as_u128());
    sqlx::query(
        "insert into audit_records (partition, seq, tenant_id, audit_id, at, actor_type, \
             actor_id, action, target_type, target_id, outcome, reason, request_id, prev_hash, \
             hash) \
         values (?1, ?2, ?1, ?3, ?4, 'user', 'bench', 'member.add', 'member', ?5, 'allowed', \
             'platform_root', 'bench', ?6, ?7)",
    )
    .bind(tenant)
    .bind(seq + 1)
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(now)
    .bind(user)
    .bind(prev_hash)
    .bind(hash)
    .execute(&mut *tx)
    .await?;
    let position: i64 = sqlx::query_scalar(
        "select coalesce(max(position), 0) from outbox_events where partition = ?1",
    )
    .bind(tenant)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "insert into outbox_events (partition, position, tenant_id, event_id, event_type, \
             subject, time, data) \
         values (?1, ?2, ?1, ?3, 'membership.added', ?4, ?5, '{}')",
    )
    .bind(tenant)
    .bind(position + 1)
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(user)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
