//! `cargo xtask bench events`: the outbox relay on NATS JetStream — how fast one relay
//! drains a backlog of member-add events, beside raw JetStream publishes of the same
//! messages, and the lag from commit to JetStream acknowledgement while eight clients
//! add members.
//!
//! The relay drains the same backlog three times: with one acknowledgement awaited per
//! event (how the relay published before batches were pipelined), and with the whole
//! claimed batch in flight (how it publishes now) at batches of 256 and of its `BATCH`.
//! Each drain publishes to a stream of its own, deleted at the end, so nothing is
//! deduplicated across drains.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adapters_nats::JetStreamPublisher;
use adapters_pg::relay::Relay;
use adapters_pg::PgStore;
use async_nats::jetstream::{self, stream};
use domain::event::Event;
use domain::ids::{DisplayName, RoleName, TenantId, UserId};
use domain::relay::{relay_once, EventPublisher, PublishFailure, RelayOutbox};
use domain::usecases::{AddMember, Caller, CreateTenant, Engine, UserRef};
use server::relay::{run_relay, BATCH};
use sqlx::Executor;
use time::OffsetDateTime;

use crate::{database_url, engine, Failure};

const CLIENTS: usize = 8;
/// Users made per client and second of load: more than a client can add.
const USERS_PER_CLIENT_SECOND: u64 = 800;

pub(crate) fn nats_url() -> String {
    std::env::var("USER_ENGINE_NATS_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned())
}

/// One stream of this bench run, named after the process and a label.
pub(crate) struct BenchStream {
    pub(crate) name: String,
    pub(crate) prefix: String,
}

pub(crate) async fn bench_stream(
    js: &jetstream::Context,
    label: &str,
) -> Result<BenchStream, Failure> {
    let name = format!("UE_BENCH_{}_{label}", std::process::id());
    let prefix = format!("uebench{}{}", std::process::id(), label.to_lowercase());
    js.create_stream(stream::Config {
        name: name.clone(),
        subjects: vec![format!("{prefix}.>")],
        max_age: Duration::from_secs(600),
        ..Default::default()
    })
    .await?;
    Ok(BenchStream { name, prefix })
}

/// The relay's publisher, restricted to one acknowledgement at a time: it keeps the
/// trait's default `publish_batch`, which is how every batch was sent before.
struct OneAtATime(JetStreamPublisher);

#[async_trait::async_trait]
impl EventPublisher for OneAtATime {
    async fn publish(&self, event: &Event) -> Result<(), String> {
        self.0.publish(event).await
    }
}

/// The relay's publisher, noting for each acknowledged event how long ago its
/// transaction stamped it.
pub(crate) struct LagPublisher {
    pub(crate) inner: JetStreamPublisher,
    pub(crate) lags: Mutex<Vec<Duration>>,
}

#[async_trait::async_trait]
impl EventPublisher for LagPublisher {
    async fn publish(&self, event: &Event) -> Result<(), String> {
        self.inner.publish(event).await
    }

    async fn publish_batch(&self, batch: &[Event]) -> Result<(), PublishFailure> {
        let stamped: Vec<Option<OffsetDateTime>> =
            batch.iter().map(|event| Some(event.time)).collect();
        self.inner.publish_batch(batch).await?;
        let acked = OffsetDateTime::now_utc();
        let mut lags = self
            .lags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for time in stamped.into_iter().flatten() {
            lags.push(Duration::try_from(acked - time).unwrap_or_default());
        }
        Ok(())
    }
}

/// The platform root, one tenant per client, and users to add, in disjoint ranges per
/// load phase and client.
struct Seeded {
    root: Caller,
    tenants: Vec<TenantId>,
    users: Vec<uuid::Uuid>,
    per_client: usize,
}

async fn seed(owner: &sqlx::PgPool, engine: &Engine, seconds: u64) -> Result<Seeded, Failure> {
    let root = crate::insert_root(owner).await?;
    let admin = uuid::Uuid::now_v7();
    sqlx::query(
        "insert into users (user_id, email, state, created_at, updated_at) \
         values ($1, 'admin@bench.example', 'active', now(), now())",
    )
    .bind(admin)
    .execute(owner)
    .await?;
    let mut tenants = Vec::new();
    for client in 0..CLIENTS {
        let tenant = TenantId::parse(&format!("events-{client}"))?;
        engine
            .create_tenant(
                &root,
                CreateTenant {
                    id: tenant.clone(),
                    display_name: DisplayName::parse("Bench")?,
                    admin: UserRef::Id(UserId::from_generated(admin)),
                },
            )
            .await?;
        tenants.push(tenant);
    }
    let per_client = usize::try_from(USERS_PER_CLIENT_SECOND * seconds)?;
    let users: Vec<uuid::Uuid> = sqlx::query_scalar(
        "insert into users (user_id, email, state, created_at, updated_at) \
         select gen_random_uuid(), 'u' || n || '@bench.example', 'active', now(), now() \
         from generate_series(1, $1) as n returning user_id",
    )
    .bind(i64::try_from(per_client * CLIENTS * 3)?)
    .fetch_all(owner)
    .await?;
    sqlx::query("analyze").execute(owner).await?;
    Ok(Seeded {
        root,
        tenants,
        users,
        per_client,
    })
}

/// Eight clients adding members to their tenants for `seconds`; returns how many were
/// added and whether any client ran out of users.
async fn add_members(
    engine: &Engine,
    seeded: &Seeded,
    phase: usize,
    seconds: u64,
) -> Result<(u64, bool), Failure> {
    let added = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (client, tenant) in seeded.tenants.iter().enumerate() {
        let first = (phase * CLIENTS + client) * seeded.per_client;
        let users: Vec<uuid::Uuid> = seeded
            .users
            .iter()
            .skip(first)
            .take(seeded.per_client)
            .copied()
            .collect();
        let (engine, root, tenant, added) = (
            engine.clone(),
            seeded.root.clone(),
            tenant.clone(),
            added.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let roles = BTreeSet::from([RoleName::member()]);
            for user in users {
                if Instant::now() >= deadline {
                    return false;
                }
                let input = AddMember {
                    user: UserRef::Id(UserId::from_generated(user)),
                    roles: roles.clone(),
                };
                if engine.add_member(&root, &tenant, input).await.is_ok() {
                    added.fetch_add(1, Ordering::Relaxed);
                }
            }
            true
        }));
    }
    let mut ran_out = false;
    for task in tasks {
        ran_out |= task.await?;
    }
    Ok((added.load(Ordering::Relaxed), ran_out))
}

/// One relay draining the whole outbox in batches of `batch`; events per second.
async fn drain(
    relay: &Relay,
    publisher: &dyn EventPublisher,
    batch: usize,
) -> Result<f64, Failure> {
    let started = Instant::now();
    let mut published = 0;
    loop {
        match relay_once(relay, publisher, batch).await? {
            0 => break,
            count => published += count,
        }
    }
    Ok(published as f64 / started.elapsed().as_secs_f64())
}

/// Marks the whole outbox unpublished again and vacuums it, so each drain starts from
/// the same backlog in the same state.
async fn reset_backlog(owner: &sqlx::PgPool) -> Result<(), Failure> {
    sqlx::query("update outbox_events set published_at = null where published_at is not null")
        .execute(owner)
        .await?;
    owner.execute("vacuum analyze outbox_events").await?;
    Ok(())
}

/// `count` messages of `payload`'s size straight to JetStream, `in_flight` at a time
/// (1: each acknowledgement awaited before the next publish); messages per second.
async fn raw_publishes(
    js: &jetstream::Context,
    prefix: &str,
    payload: &[u8],
    count: usize,
    in_flight: usize,
) -> Result<f64, Failure> {
    let started = Instant::now();
    let mut sent = 0;
    while sent < count {
        let mut acks = Vec::with_capacity(in_flight);
        for _ in 0..in_flight.min(count - sent) {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                uuid::Uuid::now_v7().to_string().as_str(),
            );
            acks.push(
                js.publish_with_headers(
                    format!("{prefix}.events-0.membership.added"),
                    headers,
                    payload.to_vec().into(),
                )
                .await?,
            );
            sent += 1;
        }
        for ack in acks {
            ack.await?;
        }
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

pub(crate) fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64) * fraction) as usize;
    sorted
        .get(index.min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default()
}

pub(crate) fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

pub async fn run(name: &str, seconds: u64) -> Result<(), Failure> {
    let owner = sqlx::PgPool::connect(&database_url(name)).await?;
    adapters_pg::migrate(&owner).await?;
    let url = nats_url();
    let js = jetstream::new(async_nats::connect(&url).await?);
    let engine = engine(&database_url(name), u32::try_from(CLIENTS)?).await?;
    let seeded = seed(&owner, &engine, seconds).await?;
    let relay_store = PgStore::connect(&database_url(name), 2).await?;
    let relay = Relay::new(&relay_store);
    println!("# events benchmark: {seconds} s of load per phase, {CLIENTS} clients, NATS at {url}");

    let mut streams = Vec::new();
    let result = async {
        // The backlog: member adds with no relay running.
        let (backlog, ran_out) = add_members(&engine, &seeded, 0, seconds).await?;
        let payload: serde_json::Value = sqlx::query_scalar(
            "select jsonb_build_object('specversion', '1.0', 'id', event_id, 'source', \
             'user-engine', 'type', event_type, 'subject', subject, 'time', time, \
             'datacontenttype', 'application/json', 'tenant', partition, 'sequence', \
             position, 'data', data) from outbox_events \
             where event_type = 'membership.added' limit 1",
        )
        .fetch_one(&owner)
        .await?;
        let payload = serde_json::to_vec(&payload)?;
        let count = usize::try_from(backlog)?;

        let raw_one = bench_stream(&js, "RAWONE").await?;
        let raw_one_rate = raw_publishes(&js, &raw_one.prefix, &payload, count, 1).await?;
        streams.push(raw_one);
        let raw_batch = bench_stream(&js, "RAWBATCH").await?;
        let raw_batch_rate = raw_publishes(&js, &raw_batch.prefix, &payload, count, BATCH).await?;
        streams.push(raw_batch);

        // The same backlog three times: one acknowledgement at a time (how the relay
        // published before), then the whole batch in flight, at 256 and at BATCH.
        let mut drains = Vec::new();
        for (label, pipelined, batch) in [
            ("ONE", false, BATCH),
            ("SMALL", true, 256),
            ("BATCH", true, BATCH),
        ] {
            reset_backlog(&owner).await?;
            let target = bench_stream(&js, label).await?;
            let publisher =
                JetStreamPublisher::connect_to(&url, &target.name, &target.prefix).await?;
            streams.push(target);
            let rate = if pipelined {
                drain(&relay, &publisher, batch).await?
            } else {
                drain(&relay, &OneAtATime(publisher), batch).await?
            };
            drains.push(rate);
        }
        let [one_rate, small_rate, batch_rate] = drains.as_slice() else {
            return Err("three drains".into());
        };

        println!();
        println!(
            "Draining a backlog of {count} membership.added events ({} bytes each), one relay:",
            payload.len()
        );
        println!();
        println!("| publishing | events/s |");
        println!("|---|---:|");
        println!("| raw JetStream publishes, each ack awaited (baseline) | {raw_one_rate:.0} |");
        println!("| raw JetStream publishes, {BATCH} in flight (baseline) | {raw_batch_rate:.0} |");
        println!("| relay, batches of {BATCH}, each ack awaited (before) | {one_rate:.0} |");
        println!("| relay, batches of 256, whole batch in flight | {small_rate:.0} |");
        println!("| relay, batches of {BATCH}, whole batch in flight (now) | {batch_rate:.0} |");
        println!();
        println!(
            "relay / raw, {BATCH} in flight = {:.2}; pipelined / one at a time = {:.2}",
            batch_rate / raw_batch_rate,
            batch_rate / one_rate
        );

        // The writers alone, as the baseline of the live run. Statistics are refreshed
        // first: the plans made when the tables were nearly empty slow member adds
        // down by half once the tables have grown, which would swamp the comparison.
        owner.execute("analyze").await?;
        let started = Instant::now();
        let (quiet, quiet_ran_out) = add_members(&engine, &seeded, 1, seconds).await?;
        let quiet_rate = quiet as f64 / started.elapsed().as_secs_f64();
        let quiet_stream = bench_stream(&js, "QUIET").await?;
        let quiet_publisher =
            JetStreamPublisher::connect_to(&url, &quiet_stream.name, &quiet_stream.prefix).await?;
        streams.push(quiet_stream);
        drain(&relay, &quiet_publisher, BATCH).await?;
        owner.execute("analyze").await?;

        // Live: the relay loop runs while the clients add members.
        let live = bench_stream(&js, "LIVE").await?;
        let lag_publisher = Arc::new(LagPublisher {
            inner: JetStreamPublisher::connect_to(&url, &live.name, &live.prefix).await?,
            lags: Mutex::default(),
        });
        streams.push(live);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let relay_task = tokio::spawn({
            let (relay, publisher) = (relay.clone(), lag_publisher.clone());
            async move {
                run_relay(&relay, publisher.as_ref(), None, async {
                    let _ = stopped.await;
                })
                .await;
            }
        });
        let started = Instant::now();
        let (added, live_ran_out) = add_members(&engine, &seeded, 2, seconds).await?;
        let load_time = started.elapsed().as_secs_f64();
        let (behind, _) = relay.backlog().await?;
        while relay.backlog().await?.0 > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = stop.send(());
        relay_task.await?;
        let mut lags = lag_publisher
            .lags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        lags.sort_unstable();
        println!();
        println!("Live: {CLIENTS} clients adding members for {seconds} s, the relay loop running:");
        println!();
        println!(
            "| member adds/s, no relay (baseline) | member adds/s, relay running | events \
             relayed | backlog at the end | lag p50 | lag p99 | lag max |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|");
        println!(
            "| {quiet_rate:.0} | {:.0} | {} | {behind} | {:.1} ms | {:.1} ms | {:.1} ms |",
            added as f64 / load_time,
            lags.len(),
            millis(percentile(&lags, 0.50)),
            millis(percentile(&lags, 0.99)),
            millis(lags.last().copied().unwrap_or_default()),
        );
        if ran_out || quiet_ran_out || live_ran_out {
            println!("(a client ran out of users: raise USERS_PER_CLIENT_SECOND)");
        }
        Ok::<(), Failure>(())
    }
    .await;
    for stream in streams {
        js.delete_stream(&stream.name).await?;
    }
    relay_store.pool().close().await;
    owner.close().await;
    result
}
