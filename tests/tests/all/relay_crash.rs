//! Crash safety of the outbox relay (SPEC §6, issue 5): relays killed at random points
//! under a write load — tasks aborted mid-pass, and relay processes SIGKILLed — still
//! deliver every committed event at least once, and never an event of a rolled-back
//! transaction.
//!
//! The kill points come from a seeded RNG; the seed is printed and `RELAY_CRASH_SEED`
//! replays it (the interleaving with the load still varies with timing). The stream's
//! dedupe window is the shortest JetStream allows (100 ms), so most redeliveries after a
//! kill show up as duplicates instead of being hidden by JetStream; duplicates are
//! allowed and counted.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adapters_nats::JetStreamPublisher;
use adapters_pg::relay::Relay;
use async_trait::async_trait;
use domain::audit::Partition;
use domain::event::Event;
use domain::event::{types, EventDraft};
use domain::ids::{EventId, ProfileKey, ProfileValue, TenantId};
use domain::ports::TxScope;
use domain::relay::{relay_once, EventPublisher, PublishFailure, RelayOutbox};
use domain::usecases::{AddMember, Caller, UserRef};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use server::relay::run_relay;
use sqlx::Row;
use tests::harness::{user_of, Harness};
use tests::nats::{KillOnDrop, TestStream, SHARED_URL};
use tests::pg::TestDb;

/// Relay tasks aborted at a random point.
const TASK_ABORTS: usize = 300;
/// Relay processes SIGKILLed at a random point.
const PROCESS_KILLS: usize = 100;
const WRITERS: u64 = 3;

/// How long a relay lives: mostly within its first pass (claim, publish, mark), which
/// takes a few milliseconds; sometimes long enough to finish it and idle.
fn kill_delay(rng: &mut StdRng) -> Duration {
    let micros = match rng.gen_range(0..4) {
        0 => rng.gen_range(0..1_000),
        1 | 2 => rng.gen_range(0..10_000),
        _ => rng.gen_range(0..40_000),
    };
    Duration::from_micros(micros)
}

/// The JetStream publisher, counting how often each event was acknowledged: an event
/// acknowledged twice was redelivered after a relay died between publishing it and
/// marking it, which shows the kills hit that window (JetStream may dedupe the second
/// copy, so the stream alone does not show it).
struct CountingPublisher {
    inner: JetStreamPublisher,
    acked: Mutex<BTreeMap<String, usize>>,
}

#[async_trait]
impl EventPublisher for CountingPublisher {
    async fn publish(&self, event: &Event) -> Result<(), String> {
        self.inner.publish(event).await?;
        *self
            .acked
            .lock()
            .unwrap()
            .entry(event.id.to_string())
            .or_default() += 1;
        Ok(())
    }

    async fn publish_batch(&self, batch: &[Event]) -> Result<(), PublishFailure> {
        let ids: Vec<String> = batch.iter().map(|event| event.id.to_string()).collect();
        self.inner.publish_batch(batch).await?;
        let mut acked = self.acked.lock().unwrap();
        for id in ids {
            *acked.entry(id).or_default() += 1;
        }
        Ok(())
    }
}

/// The write load: member adds (a platform and a tenant event), profile writes (one
/// event), refused adds (no event) and transactions that append an event and roll back.
#[derive(Clone)]
struct Load {
    harness: Harness,
    root: Caller,
    tenants: Vec<(TenantId, Caller)>,
    rolled_back: Arc<Mutex<BTreeSet<String>>>,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
}

impl Load {
    async fn run(self, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let title = ProfileKey::parse("title").unwrap();
        let mut step = 0_u64;
        while !self.stop.load(Ordering::Relaxed) {
            step += 1;
            let (tenant, admin) = &self.tenants[rng.gen_range(0..self.tenants.len())];
            match rng.gen_range(0..10) {
                0..=2 => {
                    self.harness
                        .member(
                            &self.root,
                            admin,
                            tenant,
                            &format!("u{seed}-{step}@crash.example"),
                            &["member"],
                        )
                        .await;
                }
                3..=5 => {
                    let value =
                        ProfileValue::parse(&serde_json::json!(format!("{seed}-{step}"))).unwrap();
                    self.harness
                        .engine
                        .write_member_value(
                            admin,
                            tenant,
                            &user_of(admin),
                            &title,
                            Some(value),
                            None,
                        )
                        .await
                        .unwrap();
                }
                6 => {
                    let refused = self
                        .harness
                        .engine
                        .add_member(
                            admin,
                            tenant,
                            AddMember {
                                user: UserRef::Id(user_of(admin)),
                                roles: tests::harness::roles(&["member"]),
                            },
                        )
                        .await;
                    assert!(refused.is_err(), "adding an existing member is refused");
                }
                _ => {
                    let id = uuid::Uuid::now_v7();
                    let mut tx = self
                        .harness
                        .store
                        .begin(TxScope::Tenant(tenant.clone()))
                        .await
                        .unwrap();
                    let partition = Partition::Tenant(tenant.clone());
                    tx.lock_partition(&partition).await.unwrap();
                    tx.append_event(EventDraft {
                        id: EventId::from_generated(id),
                        time: self.harness.clock_now(),
                        partition,
                        event_type: types::PROFILE_VALUE_SET,
                        subject: id.to_string(),
                        data: serde_json::json!({ "rolled_back": true }),
                    })
                    .await
                    .unwrap();
                    self.rolled_back.lock().unwrap().insert(id.to_string());
                    // Sometimes the transaction lives on a little, so relays run while
                    // its uncommitted event sits in the table.
                    if rng.gen_bool(0.3) {
                        tokio::time::sleep(Duration::from_millis(rng.gen_range(1..5))).await;
                    }
                    drop(tx);
                }
            }
            self.done.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A `test-relay` process started and connected, then SIGKILLed after `delay`.
async fn kill_relay_process(db: &TestDb, stream: &TestStream, delay: Duration) {
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_test-relay"))
            .args([&db.url(), SHARED_URL, &stream.name, &stream.prefix])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("test-relay starts"),
    );
    let stdout = child.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        line
    })
    .await
    .unwrap();
    if line.trim() != "ready" {
        child.kill();
        let mut stderr = String::new();
        let _ = child.0.stderr.take().unwrap().read_to_string(&mut stderr);
        panic!("test-relay did not start: {stderr}");
    }
    tokio::time::sleep(delay).await;
    child.kill();
}

#[test]
fn relays_killed_at_random_points_under_load_deliver_every_committed_event_and_no_rolled_back_one()
{
    tests::pg::run(async {
        let seed = std::env::var("RELAY_CRASH_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or_else(rand::random::<u64>);
        println!("relay crash test seed: {seed} (RELAY_CRASH_SEED={seed} replays it)");
        let started = Instant::now();
        let db = TestDb::create().await;
        let writer_store = db.store(WRITERS as u32 + 1).await;
        let relay_store = db.store(4).await;
        let harness = Harness::new(Arc::new(writer_store));
        let root = harness.root().await;
        let mut tenants = Vec::new();
        for name in ["crash-a", "crash-b"] {
            tenants.push(harness.tenant(&root, name).await);
        }
        let stream = TestStream::create(SHARED_URL, Duration::from_millis(100)).await;
        let publisher = Arc::new(CountingPublisher {
            inner: JetStreamPublisher::connect_to(SHARED_URL, &stream.name, &stream.prefix)
                .await
                .unwrap(),
            acked: Mutex::default(),
        });

        let load = Load {
            harness: harness.clone(),
            root: root.clone(),
            tenants,
            rolled_back: Arc::default(),
            stop: Arc::default(),
            done: Arc::default(),
        };
        let writers: Vec<_> = (0..WRITERS)
            .map(|writer| tokio::spawn(load.clone().run(seed.wrapping_add(writer))))
            .collect();

        let mut rng = StdRng::seed_from_u64(seed);
        let mut concurrent_runs = 0;
        for _ in 0..TASK_ABORTS {
            // Now and then two relays at once, which must not step on each other.
            let relays = if rng.gen_bool(0.25) { 2 } else { 1 };
            if relays == 2 {
                concurrent_runs += 1;
            }
            let tasks: Vec<_> = (0..relays)
                .map(|_| {
                    let relay = Relay::new(&relay_store);
                    let publisher = publisher.clone();
                    tokio::spawn(async move {
                        run_relay(&relay, publisher.as_ref(), None, std::future::pending()).await;
                    })
                })
                .collect();
            tokio::time::sleep(kill_delay(&mut rng)).await;
            for task in tasks {
                task.abort();
                let _ = task.await;
            }
        }
        for _ in 0..PROCESS_KILLS {
            let delay = kill_delay(&mut rng);
            kill_relay_process(&db, &stream, delay).await;
        }

        load.stop.store(true, Ordering::Relaxed);
        for writer in writers {
            writer.await.expect("a writer failed");
        }
        // A last relay runs to completion. Claims of aborted passes are released when
        // their rollbacks reach the server; until then SKIP LOCKED passes them over, so
        // the backlog, not one empty pass, says when everything went out.
        let relay = Relay::new(&relay_store);
        let deadline = Instant::now() + Duration::from_secs(30);
        while relay.backlog().await.unwrap().0 > 0 {
            assert!(
                Instant::now() < deadline,
                "the final relay does not drain the outbox"
            );
            if relay_once(&relay, publisher.as_ref(), 256).await.unwrap() == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }

        let mut owner = db.owner_connection().await;
        let committed: BTreeSet<String> = sqlx::query(
            "select event_id::text as id, published_at is not null as published \
             from outbox_events",
        )
        .fetch_all(&mut owner)
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            assert!(row.get::<bool, _>("published"));
            row.get("id")
        })
        .collect();
        let rolled_back = load.rolled_back.lock().unwrap().clone();
        let delivered = stream.messages().await;
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for message in &delivered {
            assert_eq!(message.msg_id.as_deref(), Some(message.id()));
            *counts.entry(message.id().to_owned()).or_default() += 1;
        }
        let delivered_ids: BTreeSet<String> = counts.keys().cloned().collect();
        let missing: Vec<_> = committed.difference(&delivered_ids).collect();
        let unknown: Vec<_> = delivered_ids.difference(&committed).collect();
        let leaked: Vec<_> = rolled_back.intersection(&delivered_ids).collect();
        let republished = publisher
            .acked
            .lock()
            .unwrap()
            .values()
            .filter(|count| **count > 1)
            .count();
        println!(
            "seed {seed}: {} writes, {} committed events, {} rolled back, {} messages \
             ({} duplicates), {republished} events acknowledged twice to the relay tasks, \
             {TASK_ABORTS} aborted relay tasks ({concurrent_runs} runs with two), \
             {PROCESS_KILLS} killed relay processes, {:.1} s",
            load.done.load(Ordering::Relaxed),
            committed.len(),
            rolled_back.len(),
            delivered.len(),
            delivered.len() - delivered_ids.len(),
            started.elapsed().as_secs_f64(),
        );
        assert!(
            missing.is_empty(),
            "seed {seed}: committed, never delivered: {missing:?}"
        );
        assert!(
            unknown.is_empty(),
            "seed {seed}: delivered, not committed: {unknown:?}"
        );
        assert!(
            leaked.is_empty(),
            "seed {seed}: rolled back, delivered: {leaked:?}"
        );
        assert!(
            !rolled_back.is_empty(),
            "the load rolled some transactions back"
        );
        assert!(rolled_back.is_disjoint(&committed));
        stream.delete().await;
    });
}
