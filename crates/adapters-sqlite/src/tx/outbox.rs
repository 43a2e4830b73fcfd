//! [`Outbox`] over SQLite: the event feed of each partition, its next position read
//! from the feed itself on the one writer, and what waits for a relay.

use async_trait::async_trait;
use domain::audit::Partition;
use domain::event::{Event, EventDraft};
use domain::ids::TenantId;
use domain::ports::{Outbox, OutboxBacklog, StoreError};
use store_sql::rows::{BacklogRow, EventRow, EVENT_COLUMNS};
use store_sql::{after_bound, from_sql_int, to_sql_int, to_sql_limit};

use super::SqliteTx;
use crate::columns::micros;
use crate::errors::store_error;

#[async_trait]
impl Outbox for SqliteTx {
    async fn append_event(&mut self, draft: EventDraft) -> Result<Event, StoreError> {
        self.scope.allow_partition(&draft.partition)?;
        let connection = self.write().await?;
        let last: i64 = sqlx::query_scalar(
            "select coalesce(max(position), 0) from outbox_events where partition = ?1",
        )
        .bind(draft.partition.name())
        .fetch_one(&mut *connection)
        .await
        .map_err(store_error)?;
        let next = from_sql_int(last, "event position")? + 1;
        let event = Event::place(draft, next);
        sqlx::query(&format!(
            "insert into outbox_events (partition, {EVENT_COLUMNS}) \
             values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ))
        .bind(event.partition.name())
        .bind(to_sql_int(event.position, "event position")?)
        .bind(event.partition.tenant().map(TenantId::as_str))
        .bind(event.id.to_string())
        .bind(&event.event_type)
        .bind(&event.subject)
        .bind(micros(event.time)?)
        .bind(event.data.to_string())
        .execute(connection)
        .await
        .map_err(store_error)?;
        Ok(event)
    }

    async fn list_events(
        &mut self,
        partition: &Partition,
        after: u64,
        limit_to: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.scope.allow_partition(partition)?;
        let Some(after) = after_bound(after) else {
            return Ok(Vec::new());
        };
        self.fetch_all::<EventRow>(
            sqlx::query(&format!(
                "select {EVENT_COLUMNS} \
             from outbox_events where partition = ?1 and position > ?2 \
             order by position limit ?3"
            ))
            .bind(partition.name())
            .bind(after)
            .bind(to_sql_limit(limit_to)?),
        )
        .await
    }

    async fn outbox_backlog(&mut self, tenant: &TenantId) -> Result<OutboxBacklog, StoreError> {
        self.scope.allow(tenant)?;
        self.fetch_one::<BacklogRow>(
            sqlx::query(
                "select count(*) as waiting, min(time) as oldest from outbox_events \
                 where partition = ?1 and published_at is null",
            )
            .bind(tenant.as_str()),
        )
        .await
    }
}
