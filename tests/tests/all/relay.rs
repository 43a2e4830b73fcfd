//! The outbox relay against real PostgreSQL and real NATS JetStream (127.0.0.1:4222, as
//! `.ci/run` starts it): a mutation's events reach a JetStream consumer on their SPEC §6
//! subjects as CloudEvents with the tenant extension and `Nats-Msg-Id` = event id, and
//! are then marked published; a failing publish marks nothing.
//!
//! Each test uses a stream and subject root of its own (JetStream forbids two streams
//! over overlapping subjects), so tests and a developer's running service do not meet.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use adapters_nats::JetStreamPublisher;
use adapters_pg::relay::Relay;
use async_nats::jetstream::{self, consumer, stream};
use async_trait::async_trait;
use domain::event::Event;
use domain::relay::{relay_once, EventPublisher, RelayError, RelayOutbox};
use futures::StreamExt;
use sqlx::Row;
use tests::harness::Harness;
use tests::pg::TestDb;
use uuid::Uuid;

const NATS_URL: &str = "nats://127.0.0.1:4222";

/// One outbox row as the owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OutboxRow {
    partition: String,
    position: i64,
    event_type: String,
    published: bool,
}

/// Every outbox row by event id, read as the owner (below row-level security).
async fn outbox(db: &TestDb) -> BTreeMap<String, OutboxRow> {
    let mut owner = db.owner_connection().await;
    sqlx::query(
        "select event_id::text as id, partition, position, event_type, \
         published_at is not null as published from outbox_events",
    )
    .fetch_all(&mut owner)
    .await
    .expect("outbox rows")
    .into_iter()
    .map(|row| {
        (
            row.get("id"),
            OutboxRow {
                partition: row.get("partition"),
                position: row.get("position"),
                event_type: row.get("event_type"),
                published: row.get("published"),
            },
        )
    })
    .collect()
}

/// A database with events in both kinds of partition: the root and the tenant admin are
/// platform users (`_platform`), the tenant and its first membership are the tenant's.
async fn database_with_events() -> (TestDb, Relay) {
    let db = TestDb::create().await;
    let store = db.store(4).await;
    let relay = Relay::new(&store);
    let harness = Harness::new(Arc::new(store));
    let root = harness.root().await;
    harness.tenant(&root, "relay-t").await;
    (db, relay)
}

#[test]
fn a_mutations_events_reach_jetstream_as_cloudevents_and_are_marked_published() {
    tests::pg::run(async {
        let (db, relay) = database_with_events().await;
        let rows = outbox(&db).await;
        assert!(rows.values().any(|row| row.event_type == "tenant.created"));
        assert!(rows
            .values()
            .any(|row| row.event_type == "membership.added"));
        assert!(rows.values().any(|row| row.event_type == "user.created"));
        assert!(rows.values().all(|row| !row.published));
        assert_eq!(relay.backlog().await.unwrap().0, rows.len() as u64);

        let unique = Uuid::now_v7().simple().to_string();
        let stream_name = format!("UE_TEST_{unique}");
        let prefix = format!("uetest{unique}");
        let client = async_nats::connect(NATS_URL)
            .await
            .expect("NATS at 127.0.0.1:4222");
        let js = jetstream::new(client);
        // Created here with a max age so a test that dies midway leaves nothing for long;
        // the publisher then finds it and uses it.
        js.create_stream(stream::Config {
            name: stream_name.clone(),
            subjects: vec![format!("{prefix}.>")],
            max_age: Duration::from_secs(600),
            ..Default::default()
        })
        .await
        .expect("test stream");

        let publisher = JetStreamPublisher::connect_to(NATS_URL, &stream_name, &prefix)
            .await
            .unwrap();
        let mut relayed = 0;
        // Small batches, so several passes each claim, publish and mark.
        loop {
            let published = relay_once(&relay, &publisher, 2).await.unwrap();
            if published == 0 {
                break;
            }
            relayed += published;
        }
        assert_eq!(relayed, rows.len());
        assert_eq!(relay.backlog().await.unwrap(), (0, None));
        assert_eq!(relay_once(&relay, &publisher, 100).await.unwrap(), 0);
        assert!(outbox(&db).await.values().all(|row| row.published));

        let stream = js.get_stream(&stream_name).await.unwrap();
        let consumer = stream
            .create_consumer(consumer::pull::Config {
                deliver_policy: consumer::DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut messages = consumer
            .batch()
            .max_messages(rows.len() + 10)
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .unwrap();
        let mut seen = BTreeMap::new();
        let mut last_sequence: BTreeMap<String, u64> = BTreeMap::new();
        while let Some(message) = messages.next().await {
            let message = message.unwrap();
            let event: serde_json::Value = serde_json::from_slice(&message.payload).unwrap();
            let id = event["id"].as_str().unwrap().to_owned();
            let row = rows
                .get(&id)
                .unwrap_or_else(|| panic!("unknown event {id}"));
            assert_eq!(
                message.subject.as_str(),
                format!("{prefix}.{}.{}", row.partition, row.event_type)
            );
            let msg_id = message
                .headers
                .as_ref()
                .and_then(|headers| headers.get(async_nats::header::NATS_MESSAGE_ID))
                .map(|value| value.as_str().to_owned());
            assert_eq!(msg_id.as_deref(), Some(id.as_str()));
            assert_eq!(event["specversion"], "1.0");
            assert_eq!(event["source"], "user-engine");
            assert_eq!(event["type"], row.event_type.as_str());
            assert_eq!(event["tenant"], row.partition.as_str());
            assert!(event["subject"].as_str().is_some_and(|s| !s.is_empty()));
            assert!(event["time"].as_str().is_some());
            assert!(event["data"].is_object());
            // Each feed arrives in its commit order.
            let sequence = event["sequence"].as_u64().unwrap();
            assert_eq!(sequence, u64::try_from(row.position).unwrap());
            let previous = last_sequence.insert(row.partition.clone(), sequence);
            assert!(previous.is_none_or(|previous| previous < sequence));
            message.ack().await.unwrap();
            assert!(seen.insert(id, ()).is_none(), "delivered twice");
            if seen.len() == rows.len() {
                break;
            }
        }
        assert_eq!(seen.len(), rows.len());
        assert!(seen.keys().all(|id| rows.contains_key(id)));
        js.delete_stream(&stream_name).await.unwrap();
    });
}

/// Succeeds once, then fails: the failure comes after a publish already went out.
#[derive(Debug, Default)]
struct FailingPublisher {
    calls: AtomicUsize,
}

#[async_trait]
impl EventPublisher for FailingPublisher {
    async fn publish(&self, _event: &Event) -> Result<(), String> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            Ok(())
        } else {
            Err("broker unavailable".to_owned())
        }
    }
}

#[test]
fn a_failing_publish_leaves_every_row_unpublished() {
    tests::pg::run(async {
        let (db, relay) = database_with_events().await;
        let before = outbox(&db).await;
        assert!(before.len() >= 2);
        let publisher = FailingPublisher::default();
        let error = relay_once(&relay, &publisher, 100).await.unwrap_err();
        assert!(
            matches!(&error, RelayError::Publish { message, .. } if message == "broker unavailable"),
            "{error}"
        );
        assert_eq!(publisher.calls.load(Ordering::SeqCst), 2);
        let after = outbox(&db).await;
        assert_eq!(after, before);
        assert!(after.values().all(|row| !row.published));
        let (count, oldest) = relay.backlog().await.unwrap();
        assert_eq!(count, before.len() as u64);
        assert!(oldest.is_some());
    });
}
