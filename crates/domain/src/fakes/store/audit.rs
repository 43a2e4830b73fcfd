//! [`AuditLog`] on the in-memory state: the store-wide lock is the partition lock.

use super::*;

#[async_trait]
impl AuditLog for MemTx {
    async fn lock_partition(&mut self, partition: &Partition) -> Result<(), StoreError> {
        // The store-wide lock is already held for the whole transaction.
        self.scope.allow_partition(partition)
    }

    async fn append_audit(&mut self, draft: AuditDraft) -> Result<AuditRecord, StoreError> {
        self.scope.allow_partition(&draft.partition)?;
        let trail = self
            .working
            .audit
            .entry(draft.partition.clone())
            .or_default();
        let prev_hash = trail
            .last()
            .map_or_else(|| GENESIS_HASH.to_owned(), |last| last.hash.clone());
        let record = AuditRecord::seal(draft, trail.len() as u64 + 1, &prev_hash);
        trail.push(record.clone());
        Ok(record)
    }

    async fn list_audit(
        &mut self,
        partition: &Partition,
        filter: &AuditFilter,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.scope.allow_partition(partition)?;
        Ok(self
            .working
            .audit_of(partition)
            .iter()
            .filter(|record| record.seq > after_seq)
            .filter(|record| {
                filter
                    .actor_id
                    .as_ref()
                    .is_none_or(|actor| &record.actor.id == actor)
                    && filter
                        .action
                        .as_ref()
                        .is_none_or(|action| &record.action == action)
                    && filter
                        .outcome
                        .is_none_or(|outcome| record.outcome == outcome)
                    && filter.from.is_none_or(|from| record.at >= from)
                    && filter.until.is_none_or(|until| record.at < until)
            })
            .take(limit)
            .cloned()
            .collect())
    }
}
