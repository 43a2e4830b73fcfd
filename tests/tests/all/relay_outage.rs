//! The outbox relay across a NATS outage longer than JetStream's dedupe window (SPEC §6,
//! issue 5): while the server is down the relay keeps retrying and drops nothing; once
//! it is back every event arrives, and each carries its id (CloudEvents `id` and
//! `Nats-Msg-Id`) so consumers can dedupe what JetStream no longer does.
//!
//! The test runs a `nats-server -js` of its own on a free port, with its own store
//! directory, so it can kill and restart it; the relay uses the SPEC's default stream
//! and subjects, created beforehand with a one-second dedupe window.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use adapters_nats::{JetStreamPublisher, DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX};
use adapters_pg::relay::Relay;
use domain::ids::{ProfileKey, ProfileValue, TenantId};
use domain::relay::RelayOutbox;
use domain::usecases::Caller;
use server::relay::run_relay;
use sqlx::Row;
use tests::harness::{user_of, Harness};
use tests::nats::{PrivateNats, TestStream};
use tests::pg::TestDb;

const DUPLICATE_WINDOW: Duration = Duration::from_secs(1);

/// Every outbox event id and whether it is marked published, read as the owner.
async fn outbox(db: &TestDb) -> BTreeMap<String, bool> {
    let mut owner = db.owner_connection().await;
    sqlx::query(
        "select event_id::text as id, published_at is not null as published \
         from outbox_events",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap()
    .into_iter()
    .map(|row| (row.get("id"), row.get("published")))
    .collect()
}

/// `count` profile writes, one `profile.value_set` event each.
async fn write(harness: &Harness, tenant: &TenantId, admin: &Caller, label: &str, count: usize) {
    let title = ProfileKey::parse("title").unwrap();
    for n in 0..count {
        let value = ProfileValue::parse(&serde_json::json!(format!("{label}-{n}"))).unwrap();
        harness
            .engine
            .write_member_value(admin, tenant, &user_of(admin), &title, Some(value), None)
            .await
            .unwrap();
    }
}

async fn wait_until_published(relay: &Relay, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    while relay.backlog().await.unwrap().0 > 0 {
        assert!(
            Instant::now() < deadline,
            "{what}: the outbox is not drained"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn events_committed_while_nats_is_down_past_the_dedupe_window_all_arrive_once_it_is_back() {
    tests::pg::run(async {
        let mut nats = PrivateNats::start();
        let stream = TestStream::create_named(
            &nats.url(),
            DEFAULT_STREAM,
            DEFAULT_SUBJECT_PREFIX,
            DUPLICATE_WINDOW,
        )
        .await;
        let db = TestDb::create().await;
        let store = db.store(4).await;
        let harness = Harness::new(Arc::new(store.clone()));
        let root = harness.root().await;
        let (tenant, admin) = harness.tenant(&root, "outage").await;

        let relay = Relay::new(&store);
        let publisher = Arc::new(JetStreamPublisher::connect(&nats.url()).await.unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let relay_task = tokio::spawn({
            let relay = relay.clone();
            let publisher = publisher.clone();
            async move {
                run_relay(&relay, publisher.as_ref(), None, async {
                    let _ = stopped.await;
                })
                .await;
            }
        });

        write(&harness, &tenant, &admin, "before", 20).await;
        wait_until_published(&relay, Duration::from_secs(20), "before the outage").await;
        let before = outbox(&db).await;

        nats.kill();
        let down = Instant::now();
        write(&harness, &tenant, &admin, "during", 30).await;
        harness
            .member(&root, &admin, &tenant, "late@outage.example", &["member"])
            .await;
        // Past the dedupe window, so JetStream no longer recognises anything the relay
        // sent before or during the outage.
        tokio::time::sleep((DUPLICATE_WINDOW * 2).saturating_sub(down.elapsed())).await;
        let during = outbox(&db).await;
        let unpublished: BTreeSet<&String> = during
            .iter()
            .filter(|(_, published)| !**published)
            .map(|(id, _)| id)
            .collect();
        let written_during: BTreeSet<&String> = during
            .keys()
            .filter(|id| !before.contains_key(*id))
            .collect();
        assert!(written_during.len() >= 32, "{written_during:?}");
        assert_eq!(
            unpublished, written_during,
            "nothing written while NATS is down is marked published"
        );
        assert!(!relay_task.is_finished(), "the relay keeps retrying");

        nats.restart();
        let outage = down.elapsed();
        wait_until_published(&relay, Duration::from_secs(60), "after the outage").await;
        let drained = down.elapsed();
        let _ = stop.send(());
        relay_task.await.unwrap();

        let committed = outbox(&db).await;
        assert!(committed.values().all(|published| *published));
        let delivered = stream.messages().await;
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for message in &delivered {
            // The id consumers dedupe on travels in the event and in the header.
            assert_eq!(message.msg_id.as_deref(), Some(message.id()));
            assert!(
                ["outage", "_platform"].contains(&message.event["tenant"].as_str().unwrap()),
                "{message:?}"
            );
            *counts.entry(message.id().to_owned()).or_default() += 1;
        }
        let committed_ids: BTreeSet<&String> = committed.keys().collect();
        let delivered_ids: BTreeSet<&String> = counts.keys().collect();
        assert_eq!(
            delivered_ids, committed_ids,
            "deduplicated by id, the stream holds exactly the committed events"
        );
        println!(
            "{} events, {} messages ({} duplicates); NATS down {:.1} s, outbox drained \
             {:.1} s after the kill",
            committed.len(),
            delivered.len(),
            delivered.len() - delivered_ids.len(),
            outage.as_secs_f64(),
            drained.as_secs_f64(),
        );
    });
}
