//! [`Outbox`]: the event feed of each partition (its end found and kept by the backend:
//! [`Backend::event_head`]) and what waits for a relay.

use async_trait::async_trait;
use domain::audit::Partition;
use domain::event::{Event, EventDraft};
use domain::ids::TenantId;
use domain::ports::{Outbox, OutboxBacklog, StoreError};

use super::SqlTx;
use crate::rows::{BacklogRow, EventRow, Shape, EVENT_COLUMNS};
use crate::{after_bound, Backend, Statement};

#[async_trait]
impl<B: Backend> Outbox for SqlTx<B> {
    /// No `returning` on the event row: a tenant transaction may append to the platform
    /// feed but not read it back (PostgreSQL's row-level security).
    async fn append_event(&mut self, draft: EventDraft) -> Result<Event, StoreError> {
        self.scope.allow_partition(&draft.partition)?;
        let position = self.backend.event_head(&draft.partition).await? + 1;
        let event = Event::place(draft, position);
        self.execute(
            Statement::new(format!(
                "{}insert into outbox_events (partition, {EVENT_COLUMNS}) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8)",
                B::EVENT_HEAD_UPDATE
            ))
            .text(event.partition.name())
            .count(event.position, "event position")?
            .text_opt(event.partition.tenant().map(TenantId::as_str))
            .id(event.id.as_uuid())
            .text(&event.event_type)
            .text(&event.subject)
            .time(event.time)
            .json(&event.data),
        )
        .await?;
        self.backend.event_appended(&event.partition, position);
        Ok(event)
    }

    async fn list_events(
        &mut self,
        partition: &Partition,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.scope.allow_partition(partition)?;
        let Some(after) = after_bound(after) else {
            return Ok(Vec::new());
        };
        self.all::<EventRow>(
            Statement::new(format!(
                "select {EVENT_COLUMNS} from outbox_events \
                 where partition = $1 and position > $2 order by position limit $3"
            ))
            .text(partition.name())
            .int(after)
            .limit(limit)?,
        )
        .await
    }

    /// A scan of the feeds: erasure is rare, and an index on `subject` would cost every
    /// append.
    async fn events_with_subject(&mut self, subject: &str) -> Result<Vec<Event>, StoreError> {
        let events = self
            .all::<EventRow>(
                Statement::new(format!(
                    "select {EVENT_COLUMNS} from outbox_events where subject = $1 \
                     order by partition{}, position",
                    B::BYTEWISE
                ))
                .text(subject),
            )
            .await?;
        Ok(events
            .into_iter()
            .filter(|event| self.scope.allow_partition(&event.partition).is_ok())
            .collect())
    }

    async fn replace_event_data(
        &mut self,
        partition: &Partition,
        position: u64,
        data: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.scope.allow_partition(partition)?;
        let replaced = self
            .execute(
                Statement::new(
                    "update outbox_events set data = $3 where partition = $1 and position = $2",
                )
                .text(partition.name())
                .count(position, "event position")?
                .json(data),
            )
            .await?;
        if replaced == 1 {
            Ok(())
        } else {
            Err(StoreError::Missing("event"))
        }
    }

    /// Served by the partial index `outbox_events_unpublished`; the partition filter
    /// says which feed.
    async fn outbox_backlog(&mut self, tenant: &TenantId) -> Result<OutboxBacklog, StoreError> {
        self.scope.allow(tenant)?;
        let rows = self
            .backend
            .fetch(
                Statement::new(
                    "select count(*) as waiting, min(time) as oldest from outbox_events \
                     where partition = $1 and published_at is null",
                )
                .text(tenant.as_str()),
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| crate::corrupt("outbox backlog"))?;
        BacklogRow::decode(row)
    }
}
