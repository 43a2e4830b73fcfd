//! The outbox relay's broker side: a NATS JetStream [`EventPublisher`]. Each event goes
//! out as its CloudEvents 1.0 JSON on `user_engine.<tenant or _platform>.<type>` (SPEC §6),
//! with its id as `Nats-Msg-Id`, so JetStream dedupes a redelivery within the stream's
//! window and consumers can dedupe by id beyond it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_trait::async_trait;
use domain::audit::format_timestamp;
use domain::event::Event;
use domain::relay::{EventPublisher, PublishFailure};

/// The stream of SPEC §6.
pub const DEFAULT_STREAM: &str = "USER_ENGINE";
/// The subject root of SPEC §6 (`user_engine.<tenant or _platform>.<type>`).
pub const DEFAULT_SUBJECT_PREFIX: &str = "user_engine";
/// JetStream's dedupe window for `Nats-Msg-Id`.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
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

    /// The event's subject under this publisher's root:
    /// `<prefix>.<tenant or _platform>.<type>` (SPEC §6 with the default prefix).
    pub fn subject(&self, event: &Event) -> String {
        format!(
            "{}.{}.{}",
            self.prefix,
            event.partition.name(),
            event.event_type
        )
    }
}

#[async_trait]
impl EventPublisher for JetStreamPublisher {
    async fn publish(&self, event: &Event) -> Result<(), String> {
        self.publish_batch(std::slice::from_ref(event))
            .await
            .map_err(|failure| failure.message)
    }

    /// Sends the whole batch before awaiting any PubAck, so a batch costs about one
    /// round trip rather than one per event. One connection keeps the publishes in
    /// order, and JetStream stores them in that order.
    async fn publish_batch(&self, events: &[Event]) -> Result<(), PublishFailure> {
        let Some(first) = events.first() else {
            return Ok(());
        };
        if !self.stream_ready.load(Ordering::Acquire) {
            self.ensure_stream()
                .await
                .map_err(|message| PublishFailure {
                    event_id: first.id.to_string(),
                    message,
                })?;
        }
        let failure =
            |event: &Event, subject: &str, error: &dyn std::fmt::Display| PublishFailure {
                event_id: event.id.to_string(),
                message: format!("publishing to {subject} failed: {error}"),
            };
        let acked = async {
            let mut in_flight = Vec::with_capacity(events.len());
            for event in events {
                let subject = self.subject(event);
                let payload = serde_json::to_vec(&cloudevent(event))
                    .map_err(|error| failure(event, &subject, &error))?;
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(
                    async_nats::header::NATS_MESSAGE_ID,
                    event.id.to_string().as_str(),
                );
                let ack = self
                    .context
                    .publish_with_headers(subject.clone(), headers, payload.into())
                    .await
                    .map_err(|error| failure(event, &subject, &error))?;
                in_flight.push((event, subject, ack));
            }
            for (event, subject, ack) in in_flight {
                ack.await
                    .map_err(|error| failure(event, &subject, &error))?;
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

/// The CloudEvents 1.0 JSON form of SPEC §6, with the `tenant` extension (`_platform` for
/// the platform's feed) and the feed position as `sequence`.
pub fn cloudevent(event: &Event) -> serde_json::Value {
    serde_json::json!({
        "specversion": "1.0",
        "id": event.id.to_string(),
        "source": "user-engine",
        "type": event.event_type,
        "subject": event.subject,
        "time": format_timestamp(event.time),
        "datacontenttype": "application/json",
        "tenant": event.partition.name(),
        "sequence": event.position,
        "data": event.data,
    })
}
