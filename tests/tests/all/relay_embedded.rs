//! The outbox relay on the embedded store (SPEC §6): the same use case as on PostgreSQL,
//! `domain::relay::relay_once`, over SQLite's `RelayOutbox`. Every event is published once,
//! in feed order, and marked only after its batch was acknowledged; concurrent claims
//! never hand out the same event twice.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use adapters_sqlite::SqliteStore;
use async_trait::async_trait;
use domain::event::Event;
use domain::relay::{relay_once, EventPublisher, RelayError, RelayOutbox};
use tests::harness::Harness;
use tests::sqlite::TestFile;

/// Records every acknowledged event, in order; optionally slow, to widen races.
#[derive(Debug, Default)]
struct Recorder {
    published: Mutex<Vec<Event>>,
    pause: Option<Duration>,
}

#[async_trait]
impl EventPublisher for Recorder {
    async fn publish(&self, event: &Event) -> Result<(), String> {
        if let Some(pause) = self.pause {
            tokio::time::sleep(pause).await;
        }
        self.published.lock().unwrap().push(event.clone());
        Ok(())
    }
}

/// Acknowledges the first event, then fails.
#[derive(Debug, Default)]
struct FailsSecond {
    calls: AtomicUsize,
}

#[async_trait]
impl EventPublisher for FailsSecond {
    async fn publish(&self, _event: &Event) -> Result<(), String> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            Ok(())
        } else {
            Err("broker unavailable".to_owned())
        }
    }
}

/// A file with events in the platform's feed and a tenant's.
async fn store_with_events() -> (TestFile, SqliteStore, u64) {
    let file = TestFile::new();
    let store = file.store().await;
    let harness = Harness::new(Arc::new(store.clone()));
    let root = harness.root().await;
    harness.tenant(&root, "relay-e").await;
    harness.tenant(&root, "relay-f").await;
    let (waiting, oldest) = store.backlog().await.unwrap();
    assert!(waiting >= 4, "{waiting} events");
    assert!(oldest.is_some());
    (file, store, waiting)
}

#[test]
fn the_embedded_store_relays_every_event_once_in_feed_order_and_marks_it_published() {
    tests::pg::run(async {
        let (_file, store, waiting) = store_with_events().await;
        let publisher = Recorder::default();
        let mut relayed = 0;
        // Small batches, so several passes each claim, publish and mark.
        loop {
            match relay_once(&store, &publisher, 3).await.unwrap() {
                0 => break,
                count => relayed += count,
            }
        }
        assert_eq!(relayed as u64, waiting);
        assert_eq!(store.backlog().await.unwrap(), (0, None));
        assert_eq!(relay_once(&store, &publisher, 100).await.unwrap(), 0);
        let published = publisher.published.lock().unwrap().clone();
        let mut feeds: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for event in &published {
            feeds
                .entry(event.partition.name().to_owned())
                .or_default()
                .push(event.position);
        }
        assert!(feeds.contains_key("_platform") && feeds.contains_key("relay-e"));
        for (feed, positions) in feeds {
            let expected: Vec<u64> = (1..=positions.len() as u64).collect();
            assert_eq!(positions, expected, "feed {feed} in order, each once");
        }
    });
}

#[test]
fn a_failing_publish_leaves_every_embedded_event_unpublished() {
    tests::pg::run(async {
        let (_file, store, waiting) = store_with_events().await;
        let publisher = FailsSecond::default();
        let error = relay_once(&store, &publisher, 100).await.unwrap_err();
        assert!(
            matches!(&error, RelayError::Publish { message, .. } if message == "broker unavailable"),
            "{error}"
        );
        assert_eq!(publisher.calls.load(Ordering::SeqCst), 2);
        assert_eq!(store.backlog().await.unwrap().0, waiting);
        // The released claim leaves the store writable and the events claimable.
        let recorder = Recorder::default();
        let mut relayed = 0;
        while let count @ 1.. = relay_once(&store, &recorder, 100).await.unwrap() {
            relayed += count;
        }
        assert_eq!(relayed as u64, waiting);
        assert_eq!(store.backlog().await.unwrap(), (0, None));
    });
}

#[test]
fn concurrent_embedded_relays_never_publish_an_event_twice() {
    tests::pg::run(async {
        let (_file, store, waiting) = store_with_events().await;
        let publisher = Arc::new(Recorder {
            published: Mutex::default(),
            pause: Some(Duration::from_millis(2)),
        });
        let relays: Vec<_> = (0..4)
            .map(|_| {
                let (store, publisher) = (store.clone(), publisher.clone());
                tokio::spawn(async move {
                    let mut relayed = 0;
                    for _ in 0..100 {
                        match relay_once(&store, publisher.as_ref(), 2).await.unwrap() {
                            0 => break,
                            count => relayed += count,
                        }
                    }
                    relayed
                })
            })
            .collect();
        let mut relayed = 0;
        for relay in relays {
            relayed += relay.await.unwrap();
        }
        assert_eq!(relayed as u64, waiting);
        let published = publisher.published.lock().unwrap().clone();
        let mut ids: Vec<String> = published.iter().map(|event| event.id.to_string()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(
            ids.len() as u64,
            waiting,
            "each event published exactly once"
        );
        assert_eq!(store.backlog().await.unwrap(), (0, None));
    });
}
