//! The outbox relay's NATS side: a JetStream [`EventPublisher`] and the loop that drains
//! the outbox into it, run inside `serve` or alone as `user-engine relay`.
//!
//! Nothing is dropped: a pass that fails leaves its rows unpublished and the loop backs
//! off and retries, however long NATS stays away. Redelivery after a crash carries the
//! same `Nats-Msg-Id` (the event id), so JetStream dedupes it within the stream's window
//! and consumers can dedupe by id beyond it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use adapters_pg::relay::{EventPublisher, OutgoingEvent, PublishFailure, Relay};
use async_nats::jetstream::{self, stream};
use async_trait::async_trait;

/// The stream of SPEC §6.
pub const DEFAULT_STREAM: &str = "USER_ENGINE";
/// The subject root of SPEC §6 (`user_engine.<tenant or _platform>.<type>`).
pub const DEFAULT_SUBJECT_PREFIX: &str = "user_engine";
/// Events per relay transaction: enough that its commit and the acknowledgement round
/// trip are shared by many events (a backlog drains 1.2 to 1.5 times as fast as with
/// batches of 256; BENCHMARKS.md).
pub const BATCH: usize = 1024;
/// JetStream's dedupe window for `Nats-Msg-Id`.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Pause when the outbox is empty. It bounds the lag of an event committed into an idle
/// outbox, and an empty pass costs one index probe, so it is short.
const IDLE: Duration = Duration::from_millis(50);
/// Pause after a short batch: the relay has caught up, and letting events gather for a
/// moment makes the next pass carry many rather than spend a transaction on a handful,
/// which took the database from the writers (BENCHMARKS.md).
const GATHER: Duration = Duration::from_millis(10);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Publishes to one JetStream stream: a batch goes out whole, then every PubAck is
/// awaited.
#[derive(Debug)]
pub struct JetStreamPublisher {
    context: jetstream::Context,
    stream: String,
    prefix: String,
    /// Whether the stream is known to exist; cleared after a failure so the next
    /// publish checks again (NATS may have restarted without its store).
    stream_ready: AtomicBool,
}

impl JetStreamPublisher {
    /// Connects to `url` with the SPEC's stream and subjects.
    ///
    /// # Errors
    /// When the URL is invalid. An unreachable server is not an error: the client keeps
    /// reconnecting and publishing fails (and is retried) until it is back.
    pub async fn connect(url: &str) -> Result<Self, String> {
        Self::connect_to(url, DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX).await
    }

    /// Connects with another stream name and subject root, so tests can use streams of
    /// their own (JetStream forbids two streams over overlapping subjects).
    ///
    /// # Errors
    /// As [`JetStreamPublisher::connect`].
    pub async fn connect_to(url: &str, stream: &str, prefix: &str) -> Result<Self, String> {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(url)
            .await
            .map_err(|error| format!("cannot connect to NATS at {url}: {error}"))?;
        Ok(Self {
            context: jetstream::new(client),
            stream: stream.to_owned(),
            prefix: prefix.to_owned(),
            stream_ready: AtomicBool::new(false),
        })
    }

    /// Creates the stream over `<prefix>.>` unless it exists.
    ///
    /// # Errors
    /// When JetStream is unreachable or refuses the stream.
    pub async fn ensure_stream(&self) -> Result<(), String> {
        self.context
            .get_or_create_stream(stream::Config {
                name: self.stream.clone(),
                subjects: vec![format!("{}.>", self.prefix)],
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|error| format!("cannot create JetStream stream {}: {error}", self.stream))?;
        self.stream_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// The event's SPEC subject under this publisher's root.
    fn subject(&self, subject: &str) -> String {
        match subject.strip_prefix(DEFAULT_SUBJECT_PREFIX) {
            Some(rest) if rest.starts_with('.') => format!("{}{rest}", self.prefix),
            _ => subject.to_owned(),
        }
    }
}

#[async_trait]
impl EventPublisher for JetStreamPublisher {
    async fn publish(&self, subject: &str, msg_id: &str, payload: Vec<u8>) -> Result<(), String> {
        self.publish_batch(vec![OutgoingEvent {
            subject: subject.to_owned(),
            msg_id: msg_id.to_owned(),
            payload,
        }])
        .await
        .map_err(|failure| failure.message)
    }

    /// Sends the whole batch before awaiting any PubAck, so a batch costs about one
    /// round trip rather than one per event. One connection keeps the publishes in
    /// order, and JetStream stores them in that order.
    async fn publish_batch(&self, batch: Vec<OutgoingEvent>) -> Result<(), PublishFailure> {
        let Some(first) = batch.first() else {
            return Ok(());
        };
        if !self.stream_ready.load(Ordering::Acquire) {
            self.ensure_stream()
                .await
                .map_err(|message| PublishFailure {
                    msg_id: first.msg_id.clone(),
                    message,
                })?;
        }
        let failure = |msg_id: &str, subject: &str, error: &dyn std::fmt::Display| PublishFailure {
            msg_id: msg_id.to_owned(),
            message: format!("publishing to {subject} failed: {error}"),
        };
        let acked = async {
            let mut in_flight = Vec::with_capacity(batch.len());
            for event in batch {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(async_nats::header::NATS_MESSAGE_ID, event.msg_id.as_str());
                let ack = self
                    .context
                    .publish_with_headers(
                        self.subject(&event.subject),
                        headers,
                        event.payload.into(),
                    )
                    .await
                    .map_err(|error| failure(&event.msg_id, &event.subject, &error))?;
                in_flight.push((event.msg_id, event.subject, ack));
            }
            for (msg_id, subject, ack) in in_flight {
                ack.await
                    .map_err(|error| failure(&msg_id, &subject, &error))?;
            }
            Ok(())
        }
        .await;
        if acked.is_err() {
            self.stream_ready.store(false, Ordering::Release);
        }
        acked
    }
}

/// Drains the outbox into `publisher` until `shutdown` resolves: idles briefly when the
/// outbox is empty and backs off exponentially (100 ms to 5 s) while passes fail.
pub async fn run_relay(
    relay: Relay,
    publisher: &dyn EventPublisher,
    metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let work = async {
        let mut backoff = BACKOFF_MIN;
        loop {
            let pass = relay.relay_once(publisher, BATCH).await;
            if let Some(metrics) = &metrics {
                metrics.relay_pass(pass.as_ref().map(|published| *published).map_err(|_| ()));
                if let Ok((unpublished, oldest)) = relay.backlog().await {
                    let age = oldest.map_or(0.0, |oldest| {
                        (time::OffsetDateTime::now_utc() - oldest)
                            .as_seconds_f64()
                            .max(0.0)
                    });
                    metrics.relay_backlog(unpublished, age);
                }
            }
            match pass {
                Ok(0) => {
                    backoff = BACKOFF_MIN;
                    tokio::time::sleep(IDLE).await;
                }
                Ok(published) => {
                    backoff = BACKOFF_MIN;
                    tracing::debug!(published, "relayed outbox events");
                    if published < BATCH {
                        tokio::time::sleep(GATHER).await;
                    }
                }
                Err(error) => {
                    tracing::warn!(
                        %error,
                        retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                        "relay pass failed; the events stay in the outbox and will be retried"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    };
    // Stopping mid-pass is safe: the dropped transaction rolls back its claims.
    tokio::select! {
        () = work => {}
        () = shutdown => tracing::info!("relay stopped"),
    }
}
