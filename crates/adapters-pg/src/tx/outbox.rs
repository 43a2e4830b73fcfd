//! [`Outbox`] over PostgreSQL: the event feed of each partition, positioned by its
//! head, and what waits for the relay.

use async_trait::async_trait;
use domain::audit::Partition;
use domain::event::{Event, EventDraft};
use domain::ids::TenantId;
use domain::ports::{Outbox, OutboxBacklog, StoreError};
use store_sql::rows::{BacklogRow, EventRow, EVENT_COLUMNS};
use store_sql::{after_bound, from_sql_int, to_sql_limit};

use super::PgTx;
use crate::errors::store_error;

#[async_trait]
impl Outbox for PgTx {
    /// No `RETURNING` on the event row: a tenant transaction may append to the platform
    /// feed but not read it back (row-level security).
    async fn append_event(&mut self, draft: EventDraft) -> Result<Event, StoreError> {
        let mut head = self.lock_head(&draft.partition).await?;
        let position = head.event_position + 1;
        sqlx::query(
            "with head as (update partition_heads set event_position = $2 where partition = $1) \
             insert into outbox_events (partition, position, tenant_id, event_id, event_type, \
                 subject, time, data) \
             values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(draft.partition.name())
        .bind(position)
        .bind(draft.partition.tenant().map(TenantId::as_str))
        .bind(draft.id.as_uuid())
        .bind(draft.event_type)
        .bind(&draft.subject)
        .bind(domain::audit::truncate_to_micros(draft.time))
        .bind(&draft.data)
        .execute(&mut *self.tx)
        .await
        .map_err(store_error)?;
        head.event_position = position;
        self.heads.insert(draft.partition.name().to_owned(), head);
        Ok(Event::place(
            draft,
            from_sql_int(position, "event position")?,
        ))
    }

    async fn list_events(
        &mut self,
        partition: &Partition,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let Some(after) = after_bound(after) else {
            return Ok(Vec::new());
        };
        self.fetch_all::<EventRow>(
            sqlx::query(&format!(
                "select {EVENT_COLUMNS} \
             from outbox_events where partition = $1 and position > $2 \
             order by position limit $3"
            ))
            .bind(partition.name())
            .bind(after)
            .bind(to_sql_limit(limit)?),
        )
        .await
    }

    /// Served by the partial index `outbox_events_unpublished`; row-level security
    /// would hide another tenant's rows anyway, the partition filter says which feed.
    async fn outbox_backlog(&mut self, tenant: &TenantId) -> Result<OutboxBacklog, StoreError> {
        self.fetch_one::<BacklogRow>(
            sqlx::query(
                "select count(*) as waiting, min(time) as oldest from outbox_events \
                 where partition = $1 and published_at is null",
            )
            .bind(tenant.as_str()),
        )
        .await
    }
}
