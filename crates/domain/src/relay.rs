//! The outbox relay (SPEC §6) as a use case over two ports: the store's [`RelayOutbox`] and a
//! broker's [`EventPublisher`]. A pass claims unpublished events, publishes them in order
//! and marks them published only once every one was acknowledged.
//!
//! Delivery is at least once: a relay that dies after a publish but before marking leaves
//! its events unpublished, and the next claim sends them again with the same event id,
//! which brokers and consumers dedupe on. The loop around passes (idling, back-off) needs
//! a runtime and lives with the binary.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::event::Event;
use crate::ports::StoreError;

/// The store side of the relay, implemented by both SQL stores (so the embedded one
/// relays too).
#[async_trait]
pub trait RelayOutbox: Send + Sync {
    /// Claims up to `limit` unpublished events of every feed, oldest first (by time, then
    /// feed and position), and holds the claim until the returned batch is marked or
    /// dropped.
    ///
    /// An adapter MUST NOT hand an event to a second claim while the first holds it
    /// (PostgreSQL: `FOR UPDATE SKIP LOCKED`; one writer: the claim holds it), and
    /// dropping the batch unmarked MUST leave every claimed event unpublished.
    ///
    /// # Errors
    /// `StoreError::Unavailable` when the store fails; nothing is claimed then.
    async fn claim(&self, limit: usize) -> Result<Box<dyn ClaimedEvents>, StoreError>;

    /// How many events wait to be published, and the time of the oldest.
    ///
    /// # Errors
    /// `StoreError::Unavailable` when the store fails.
    async fn backlog(&self) -> Result<(u64, Option<OffsetDateTime>), StoreError>;
}

/// Events one claim holds.
#[async_trait]
pub trait ClaimedEvents: Send {
    /// The claimed events, in the order they are to be published.
    fn events(&self) -> &[Event];

    /// Marks every claimed event published and ends the claim, atomically: all or none.
    ///
    /// # Errors
    /// `StoreError::Unavailable` when the store fails; every event then stays unpublished.
    async fn mark_published(self: Box<Self>) -> Result<(), StoreError>;
}

/// Why a batch was not wholly acknowledged: the first event that failed, by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishFailure {
    pub event_id: String,
    pub message: String,
}

/// Where the relay sends events.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes one event and returns once the broker acknowledged it as stored.
    ///
    /// # Errors
    /// When the broker is unreachable or refuses the event; the text is for logs.
    async fn publish(&self, event: &Event) -> Result<(), String>;

    /// Publishes a claimed batch, in order, and returns once the broker acknowledged
    /// every event. The default publishes one at a time; a publisher that can keep
    /// several messages in flight SHOULD override it, since waiting for each
    /// acknowledgement before the next send bounds throughput by the round trip.
    ///
    /// # Errors
    /// MUST fail when any event was not acknowledged, naming one that was not: the
    /// relay then marks nothing of the batch.
    async fn publish_batch(&self, events: &[Event]) -> Result<(), PublishFailure> {
        for event in events {
            self.publish(event)
                .await
                .map_err(|message| PublishFailure {
                    event_id: event.id.to_string(),
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

/// One relay pass: claims up to `batch` unpublished events, publishes them in order (as
/// one [`EventPublisher::publish_batch`]), and marks them published once every one was
/// acknowledged; returns how many were published.
///
/// # Errors
/// When the store fails or any publish fails; the claim is then released unmarked, so
/// every claimed event stays unpublished for the next pass.
pub async fn relay_once(
    outbox: &dyn RelayOutbox,
    publisher: &dyn EventPublisher,
    batch: usize,
) -> Result<usize, RelayError> {
    let claimed = outbox.claim(batch).await?;
    let count = claimed.events().len();
    if count == 0 {
        return Ok(0);
    }
    // Dropping `claimed` on this early return releases the claim.
    publisher
        .publish_batch(claimed.events())
        .await
        .map_err(|failure| RelayError::Publish {
            event_id: failure.event_id,
            message: failure.message,
        })?;
    claimed.mark_published().await?;
    Ok(count)
}
