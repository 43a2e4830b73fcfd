//! [`AuditLog`] over PostgreSQL: the partition heads (locked until commit; they
//! serialise a partition's writers and hold the chain's end) and the audit trail.

use async_trait::async_trait;
use domain::audit::{AuditDraft, AuditRecord, Partition};
use domain::ids::TenantId;
use domain::ports::{AuditFilter, AuditLog, StoreError};
use store_sql::rows::{audit_texts, AuditRow, AUDIT_COLUMNS};
use store_sql::{after_bound, from_sql_int, to_sql_int, to_sql_limit};

use super::PgTx;
use crate::errors::store_error;

#[async_trait]
impl AuditLog for PgTx {
    async fn lock_partition(&mut self, partition: &Partition) -> Result<(), StoreError> {
        self.lock_head(partition).await.map(|_| ())
    }

    async fn append_audit(&mut self, draft: AuditDraft) -> Result<AuditRecord, StoreError> {
        let mut head = self.lock_head(&draft.partition).await?;
        let seq = from_sql_int(head.audit_seq, "audit seq")? + 1;
        let record = AuditRecord::seal(draft, seq, &head.audit_hash);
        let sql = format!(
            "with head as (update partition_heads set audit_seq = $2, audit_hash = $15 \
                           where partition = $1) \
             insert into audit_records ({AUDIT_COLUMNS}) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        );
        let query = sqlx::query(&sql)
            .bind(record.partition.name())
            .bind(to_sql_int(record.seq, "audit seq")?)
            .bind(record.tenant().map(TenantId::as_str))
            .bind(record.id.as_uuid())
            .bind(record.at);
        audit_texts(&record)
            .into_iter()
            .fold(query, |query, text| query.bind(text))
            .execute(&mut *self.tx)
            .await
            .map_err(store_error)?;
        head.audit_seq += 1;
        head.audit_hash.clone_from(&record.hash);
        self.heads.insert(record.partition.name().to_owned(), head);
        Ok(record)
    }

    async fn list_audit(
        &mut self,
        partition: &Partition,
        filter: &AuditFilter,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let Some(after_seq) = after_bound(after_seq) else {
            return Ok(Vec::new());
        };
        self.fetch_all::<AuditRow>(
            sqlx::query(&format!(
                "select {AUDIT_COLUMNS} \
             from audit_records where partition = $1 and seq > $2 \
               and ($3::text is null or actor_id = $3) \
               and ($4::text is null or action = $4) \
               and ($5::text is null or outcome = $5) \
               and ($6::timestamptz is null or at >= $6) \
               and ($7::timestamptz is null or at < $7) \
             order by seq limit $8"
            ))
            .bind(partition.name())
            .bind(after_seq)
            .bind(filter.actor_id.as_deref())
            .bind(filter.action.as_deref())
            .bind(filter.outcome.map(|outcome| outcome.as_str()))
            .bind(filter.from)
            .bind(filter.until)
            .bind(to_sql_limit(limit)?),
        )
        .await
    }
}
