//! The outbox relay's store side (SPEC §6): the domain's [`RelayOutbox`] over PostgreSQL. A
//! claim is a transaction that locks unpublished rows (`FOR UPDATE SKIP LOCKED`, so
//! several relays run at once without sending the same row concurrently) until they are
//! marked published or the claim is dropped and rolls back.

use async_trait::async_trait;
use domain::event::Event;
use domain::ports::StoreError;
use domain::relay::{ClaimedEvents, RelayOutbox};
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;

use crate::errors::store_error;
use crate::tx::EventRow;
use crate::PgStore;

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
}

/// The rows one claim holds, locked by its open transaction.
struct PgClaim {
    tx: Transaction<'static, Postgres>,
    events: Vec<Event>,
}

impl std::fmt::Debug for PgClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgClaim")
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

fn position(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::Unavailable(format!("position {value} out of range")))
}

#[async_trait]
impl RelayOutbox for Relay {
    async fn claim(&self, limit: usize) -> Result<Box<dyn ClaimedEvents>, StoreError> {
        let limit = i64::try_from(limit)
            .map_err(|_| StoreError::Unavailable(format!("claim limit {limit} out of range")))?;
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
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(store_error)?;
        let events = rows
            .into_iter()
            .map(EventRow::into_event)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Box::new(PgClaim { tx, events }))
    }

    async fn backlog(&self) -> Result<(u64, Option<OffsetDateTime>), StoreError> {
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
        let count = u64::try_from(count)
            .map_err(|_| StoreError::Unavailable(format!("backlog count {count} out of range")))?;
        Ok((count, oldest))
    }
}

#[async_trait]
impl ClaimedEvents for PgClaim {
    fn events(&self) -> &[Event] {
        &self.events
    }

    async fn mark_published(self: Box<Self>) -> Result<(), StoreError> {
        let PgClaim { mut tx, events } = *self;
        let partitions: Vec<&str> = events.iter().map(|event| event.partition.name()).collect();
        let positions = events
            .iter()
            .map(|event| position(event.position))
            .collect::<Result<Vec<_>, _>>()?;
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
        tx.commit().await.map_err(store_error)
    }
}
