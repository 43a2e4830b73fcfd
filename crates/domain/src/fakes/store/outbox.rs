//! [`Outbox`] on the in-memory state.

use super::*;

#[async_trait]
impl Outbox for MemTx {
    async fn append_event(&mut self, draft: EventDraft) -> Result<Event, StoreError> {
        self.scope.allow_partition(&draft.partition)?;
        let feed = self
            .working
            .events
            .entry(draft.partition.clone())
            .or_default();
        let event = Event::place(draft, feed.len() as u64 + 1);
        feed.push(event.clone());
        Ok(event)
    }

    async fn list_events(
        &mut self,
        partition: &Partition,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        self.scope.allow_partition(partition)?;
        Ok(self
            .working
            .events_of(partition)
            .iter()
            .filter(|event| event.position > after)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn events_with_subject(&mut self, subject: &str) -> Result<Vec<Event>, StoreError> {
        Ok(self
            .working
            .events
            .iter()
            .filter(|(partition, _)| self.scope.allow_partition(partition).is_ok())
            .flat_map(|(_, events)| events.iter())
            .filter(|event| event.subject == subject)
            .cloned()
            .collect())
    }

    async fn replace_event_data(
        &mut self,
        partition: &Partition,
        position: u64,
        data: &serde_json::Value,
    ) -> Result<(), StoreError> {
        self.scope.allow_partition(partition)?;
        let event = self
            .working
            .events
            .get_mut(partition)
            .and_then(|events| events.iter_mut().find(|event| event.position == position))
            .ok_or(StoreError::Missing("event"))?;
        event.data = data.clone();
        Ok(())
    }

    async fn outbox_backlog(&mut self, tenant: &TenantId) -> Result<OutboxBacklog, StoreError> {
        self.scope.allow(tenant)?;
        let mut backlog = OutboxBacklog::default();
        for event in self
            .working
            .events_of(&Partition::Tenant(tenant.clone()))
            .iter()
            .filter(|event| !self.working.published.contains(&event.id))
        {
            backlog.waiting += 1;
            backlog.oldest = Some(backlog.oldest.map_or(event.time, |at| at.min(event.time)));
        }
        Ok(backlog)
    }
}
