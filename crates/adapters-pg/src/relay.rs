//! The outbox relay's store side (SPEC §6): the domain's [`RelayOutbox`] over PostgreSQL. A
//! claim is a transaction that locks unpublished rows (`FOR UPDATE SKIP LOCKED`, so
//! several relays run at once without sending the same row concurrently) until they are
//! marked published or the claim is dropped and rolls back.

use async_trait::async_trait;
use domain::event::Event;
use domain::ports::StoreError;
use domain::relay::{ClaimedEvents, RelayOutbox};
use sqlx::{Postgres, Transaction};
use time::OffsetDateTime;

use store_sql::rows::{BacklogRow, EventRow, Shape, EVENT_COLUMNS};
use store_sql::{to_sql_int, to_sql_limit};

use crate::columns::Pg;
use crate::errors::store_error;
use crate::pooling::{Db, Pooling};
use crate::PgStore;

/// The outbox relay over the store's pool (connections act as the service role).
#[derive(Debug, Clone)]
pub struct Relay {
    db: Db,
}

/// Platform mode: the relay drains every tenant's feed and the platform feed.
const PLATFORM: &str = "select set_config('app.platform', 'on', true)";

impl Relay {
    pub fn new(store: &PgStore) -> Self {
        Self {
            db: store.db.clone(),
        }
    }
}

/// The rows one claim holds, locked by its open transaction.
struct PgClaim {
    tx: Transaction<'static, Postgres>,
    pooling: Pooling,
    events: Vec<Event>,
}

impl std::fmt::Debug for PgClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgClaim")
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl RelayOutbox for Relay {
    async fn claim(&self, limit: usize) -> Result<Box<dyn ClaimedEvents>, StoreError> {
        let limit = to_sql_limit(limit)?;
        let mut tx = self.db.begin(PLATFORM).await.map_err(store_error)?;
        let sql = format!(
            "select {EVENT_COLUMNS} from outbox_events where published_at is null \
             order by time, partition, position limit $1 for update skip locked"
        );
        let rows = Db::query(self.db.pooling, &sql)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .map_err(store_error)?;
        let events = rows
            .iter()
            .map(|row| EventRow::decode(&Pg(row)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Box::new(PgClaim {
            tx,
            pooling: self.db.pooling,
            events,
        }))
    }

    async fn backlog(&self) -> Result<(u64, Option<OffsetDateTime>), StoreError> {
        let mut tx = self.db.begin(PLATFORM).await.map_err(store_error)?;
        let row = Db::query(
            self.db.pooling,
            "select count(*) as waiting, min(time) as oldest from outbox_events \
             where published_at is null",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        let backlog = BacklogRow::decode(&Pg(&row))?;
        Ok((backlog.waiting, backlog.oldest))
    }
}

#[async_trait]
impl ClaimedEvents for PgClaim {
    fn events(&self) -> &[Event] {
        &self.events
    }

    async fn mark_published(self: Box<Self>) -> Result<(), StoreError> {
        let PgClaim {
            mut tx,
            pooling,
            events,
        } = *self;
        let partitions: Vec<&str> = events.iter().map(|event| event.partition.name()).collect();
        let positions = events
            .iter()
            .map(|event| to_sql_int(event.position, "event position"))
            .collect::<Result<Vec<_>, _>>()?;
        Db::query(
            pooling,
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
