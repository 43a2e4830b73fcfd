//! [`AuditLog`]: the partition lock, the hash-chained trail (its end found and kept by
//! the backend: [`Backend::audit_head`]) and its filtered reads.

use async_trait::async_trait;
use domain::audit::{AuditDraft, AuditRecord, Partition};
use domain::ids::TenantId;
use domain::ports::{AuditFilter, AuditLog, StoreError};

use super::SqlTx;
use crate::rows::{audit_texts, AuditRow, AUDIT_COLUMNS};
use crate::{after_bound, Backend, Statement};

#[async_trait]
impl<B: Backend> AuditLog for SqlTx<B> {
    async fn lock_partition(&mut self, partition: &Partition) -> Result<(), StoreError> {
        self.scope.allow_partition(partition)?;
        self.backend.lock_partition(partition).await
    }

    async fn append_audit(&mut self, draft: AuditDraft) -> Result<AuditRecord, StoreError> {
        self.scope.allow_partition(&draft.partition)?;
        let (seq, prev_hash) = self.backend.audit_head(&draft.partition).await?;
        let record = AuditRecord::seal(draft, seq + 1, &prev_hash);
        let statement = Statement::new(format!(
            "{}insert into audit_records ({AUDIT_COLUMNS}) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            B::AUDIT_HEAD_UPDATE
        ))
        .text(record.partition.name())
        .count(record.seq, "audit seq")?
        .text_opt(record.tenant().map(TenantId::as_str))
        .id(record.id.as_uuid())
        .time(record.at);
        let statement = audit_texts(&record)
            .into_iter()
            .fold(statement, Statement::text);
        self.execute(statement).await?;
        self.backend.audit_appended(&record);
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
        let Some(after_seq) = after_bound(after_seq) else {
            return Ok(Vec::new());
        };
        self.all::<AuditRow>(
            Statement::new(format!(
                "select {AUDIT_COLUMNS} \
                 from audit_records where partition = $1 and seq > $2 \
                   and ($3 is null or actor_id = $3) \
                   and ($4 is null or action = $4) \
                   and ($5 is null or outcome = $5) \
                   and ($6 is null or at >= $6) \
                   and ($7 is null or at < $7) \
                 order by seq limit $8"
            ))
            .text(partition.name())
            .int(after_seq)
            .text_opt(filter.actor_id.as_deref())
            .text_opt(filter.action.as_deref())
            .text_opt(filter.outcome.map(|outcome| outcome.as_str()))
            .time_opt(filter.from)
            .time_opt(filter.until)
            .limit(limit)?,
        )
        .await
    }
}
