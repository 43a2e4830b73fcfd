//! The outbox relay's store side on the embedded store: the domain's [`RelayOutbox`]. A claim
//! holds the one writer (`BEGIN IMMEDIATE`) until its events are marked published or it
//! is dropped and rolls back, so no other claim or write can touch them meanwhile. An
//! idle pass only reads: it looks for unpublished events on a reader first.

use async_trait::async_trait;
use domain::event::Event;
use domain::ports::StoreError;
use domain::relay::{ClaimedEvents, RelayOutbox};
use time::OffsetDateTime;
use tokio::sync::OwnedMutexGuard;

use store_sql::rows::{BacklogRow, EventRow, Shape, EVENT_COLUMNS};
use store_sql::{to_sql_int, to_sql_limit};

use crate::columns::{micros, Lite};
use crate::errors::store_error;
use crate::tx::rollback;
use crate::{SqliteStore, Writer};

/// The events one claim holds, with the writer inside its transaction.
struct SqliteClaim {
    writer: Option<OwnedMutexGuard<Writer>>,
    events: Vec<Event>,
}

impl std::fmt::Debug for SqliteClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteClaim")
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl Drop for SqliteClaim {
    fn drop(&mut self) {
        // As a dropped transaction: roll back now when a runtime is there, else the next
        // writer does it first (`Writer::open` stays set).
        if let Some(writer) = self.writer.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let mut writer = writer;
                    rollback(&mut writer).await;
                });
            }
        }
    }
}

#[async_trait]
impl RelayOutbox for SqliteStore {
    async fn claim(&self, limit: usize) -> Result<Box<dyn ClaimedEvents>, StoreError> {
        let limit = to_sql_limit(limit)?;
        let waiting: bool = sqlx::query_scalar(
            "select exists (select 1 from outbox_events where published_at is null)",
        )
        .fetch_one(&self.readers)
        .await
        .map_err(store_error)?;
        if !waiting {
            return Ok(Box::new(SqliteClaim {
                writer: None,
                events: Vec::new(),
            }));
        }
        let mut writer = self.writer.clone().lock_owned().await;
        if writer.open {
            rollback(&mut writer).await;
        }
        sqlx::query("begin immediate")
            .execute(&mut writer.connection)
            .await
            .map_err(store_error)?;
        writer.open = true;
        let mut claim = SqliteClaim {
            writer: Some(writer),
            events: Vec::new(),
        };
        let Some(connection) = claim.writer.as_mut().map(|writer| &mut writer.connection) else {
            return Err(StoreError::Unavailable(
                "the claim lost its writer".to_owned(),
            ));
        };
        let rows = sqlx::query(&format!(
            "select {EVENT_COLUMNS} from outbox_events where published_at is null \
             order by time, partition, position limit ?1"
        ))
        .bind(limit)
        .fetch_all(connection)
        .await
        .map_err(store_error)?;
        claim.events = rows
            .iter()
            .map(|row| EventRow::decode(&Lite(row)))
            .collect::<Result<_, _>>()?;
        Ok(Box::new(claim))
    }

    async fn backlog(&self) -> Result<(u64, Option<OffsetDateTime>), StoreError> {
        let row = sqlx::query(
            "select count(*) as waiting, min(time) as oldest from outbox_events \
             where published_at is null",
        )
        .fetch_one(&self.readers)
        .await
        .map_err(store_error)?;
        let backlog = BacklogRow::decode(&Lite(&row))?;
        Ok((backlog.waiting, backlog.oldest))
    }
}

#[async_trait]
impl ClaimedEvents for SqliteClaim {
    fn events(&self) -> &[Event] {
        &self.events
    }

    async fn mark_published(mut self: Box<Self>) -> Result<(), StoreError> {
        let Some(mut writer) = self.writer.take() else {
            // An empty claim holds nothing.
            return Ok(());
        };
        let now = micros(OffsetDateTime::now_utc())?;
        let marked = async {
            for event in &self.events {
                let position = to_sql_int(event.position, "event position")?;
                sqlx::query(
                    "update outbox_events set published_at = ?1 \
                     where partition = ?2 and position = ?3",
                )
                .bind(now)
                .bind(event.partition.name())
                .bind(position)
                .execute(&mut writer.connection)
                .await
                .map_err(store_error)?;
            }
            sqlx::query("commit")
                .execute(&mut writer.connection)
                .await
                .map_err(store_error)?;
            Ok(())
        }
        .await;
        match marked {
            Ok(()) => {
                writer.open = false;
                Ok(())
            }
            Err(error) => {
                rollback(&mut writer).await;
                Err(error)
            }
        }
    }
}
