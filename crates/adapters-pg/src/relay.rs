//! The outbox relay's store side (SPEC §6): claims unpublished outbox rows, hands each
//! event to a publisher as CloudEvents JSON, and marks the rows published only once
//! every publish was acknowledged.
//!
//! The publisher is a trait so this crate does not depend on NATS: the binary plugs in
//! JetStream, tests plug in fakes. Delivery is at least once: a relay that dies after a
//! publish but before the commit leaves its rows unpublished, and the next claim sends
//! them again with the same `Nats-Msg-Id` (the event id), which JetStream and consumers
//! dedupe on.

use async_trait::async_trait;
use domain::ports::StoreError;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::errors::store_error;
use crate::tx::EventRow;
use crate::PgStore;

/// One event on its way out: its SPEC subject, its id (the `Nats-Msg-Id`) and its
/// CloudEvents JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEvent {
    pub subject: String,
    pub msg_id: String,
    pub payload: Vec<u8>,
}

/// Why a batch was not wholly acknowledged: the first event that failed, by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishFailure {
    pub msg_id: String,
    pub message: String,
}

/// Where the relay sends events.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes one message and returns once the broker acknowledged it as stored.
    ///
    /// # Errors
    /// When the broker is unreachable or refuses the message; the text is for logs.
    async fn publish(&self, subject: &str, msg_id: &str, payload: Vec<u8>) -> Result<(), String>;

    /// Publishes a claimed batch, in order, and returns once the broker acknowledged
    /// every message. The default publishes one at a time; a publisher that can keep
    /// several messages in flight SHOULD override it, since waiting for each
    /// acknowledgement before the next send bounds throughput by the round trip.
    ///
    /// # Errors
    /// MUST fail when any message was not acknowledged, naming one that was not: the
    /// relay then marks nothing of the batch.
    async fn publish_batch(&self, batch: Vec<OutgoingEvent>) -> Result<(), PublishFailure> {
        for event in batch {
            self.publish(&event.subject, &event.msg_id, event.payload)
                .await
                .map_err(|message| PublishFailure {
                    msg_id: event.msg_id,
                    message,
                })?;
        }
        Ok(())
    }
}

/// Why a relay pass stopped; nothing it claimed was marked published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayError {
    Store(StoreError),
    /// The publisher refused or failed one event (named by its id).
    Publish {
        event_id: String,
        message: String,
    },
}

impl std::fmt::Display for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store(error) => write!(f, "{error}"),
            Self::Publish { event_id, message } => {
                write!(f, "publishing event {event_id} failed: {message}")
            }
        }
    }
}

impl std::error::Error for RelayError {}

impl From<StoreError> for RelayError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<RelayError> for StoreError {
    /// A failed publish reads as an unavailable dependency to callers that only know
    /// store errors.
    fn from(error: RelayError) -> Self {
        match error {
            RelayError::Store(error) => error,
            publish @ RelayError::Publish { .. } => StoreError::Unavailable(publish.to_string()),
        }
    }
}

/// The outbox relay over the store's pool (connections act as the service role).
#[derive(Debug, Clone)]
pub struct Relay {
    pool: PgPool,
}

/// Platform mode: the relay drains every tenant's feed and the platform feed.
const BEGIN_PLATFORM: &str = "begin; select set_config('app.platform', 'on', true)";

impl Relay {
    pub fn new(store: &PgStore) -> Self {
        Self {
            pool: store.pool().clone(),
        }
    }

    /// Claims up to `batch` unpublished events, publishes them in order (as one
    /// [`EventPublisher::publish_batch`]), and marks them published once every one was
    /// acknowledged, all in one transaction; returns how many were published.
    ///
    /// `FOR UPDATE SKIP LOCKED` lets several relays run at once without sending the same
    /// row concurrently: each claims rows the others have not locked.
    ///
    /// # Errors
    /// When the database fails or any publish fails; the transaction is then rolled
    /// back, so every claimed row stays unpublished for the next pass.
    pub async fn relay_once(
        &self,
        publisher: &dyn EventPublisher,
        batch: usize,
    ) -> Result<usize, RelayError> {
        let mut tx = self
            .pool
            .begin_with(BEGIN_PLATFORM)
            .await
            .map_err(store_error)?;
        let rows: Vec<EventRow> = sqlx::query_as(
            "select position, tenant_id, event_id, event_type, subject, time, data \
             from outbox_events where published_at is null \
             order by time, partition, position limit $1 for update skip locked",
        )
        .bind(i64::try_from(batch).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await
        .map_err(store_error)?;
        if rows.is_empty() {
            tx.rollback().await.map_err(store_error)?;
            return Ok(0);
        }
        let mut partitions = Vec::with_capacity(rows.len());
        let mut positions = Vec::with_capacity(rows.len());
        let mut batch = Vec::with_capacity(rows.len());
        for row in rows {
            let event = row.into_event()?;
            let payload = serde_json::to_vec(&event.to_cloudevent())
                .map_err(|error| StoreError::Unavailable(error.to_string()))?;
            batch.push(OutgoingEvent {
                subject: event.nats_subject(),
                msg_id: event.id.to_string(),
                payload,
            });
            partitions.push(event.partition.name().to_owned());
            positions.push(i64::try_from(event.position).unwrap_or(i64::MAX));
        }
        // Dropping `tx` on this early return rolls back, releasing the claims.
        publisher
            .publish_batch(batch)
            .await
            .map_err(|failure| RelayError::Publish {
                event_id: failure.msg_id,
                message: failure.message,
            })?;
        let published = positions.len();
        sqlx::query(
            "update outbox_events o set published_at = now() \
             from unnest($1::text[], $2::bigint[]) as claimed(partition, position) \
             where o.partition = claimed.partition and o.position = claimed.position",
        )
        .bind(&partitions)
        .bind(&positions)
        .execute(&mut *tx)
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(published)
    }

    /// How many events wait to be published, and the time of the oldest (for metrics
    /// and diagnostics).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn backlog(&self) -> Result<(u64, Option<OffsetDateTime>), StoreError> {
        let mut tx = self
            .pool
            .begin_with(BEGIN_PLATFORM)
            .await
            .map_err(store_error)?;
        let (count, oldest): (i64, Option<OffsetDateTime>) = sqlx::query_as(
            "select count(*), min(time) from outbox_events where published_at is null",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok((u64::try_from(count).unwrap_or(0), oldest))
    }
}
