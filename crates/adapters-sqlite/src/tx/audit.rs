//! [`AuditLog`] over SQLite: one writer locks every partition; the next `seq` and the
//! previous hash are read from the trail itself (triggers refuse a record that does not
//! extend its chain by one).

use async_trait::async_trait;
use domain::audit::{AuditDraft, AuditRecord, Partition, GENESIS_HASH};
use domain::ids::TenantId;
use domain::ports::{AuditFilter, AuditLog, StoreError};
use store_sql::rows::{audit_texts, AuditRow, AUDIT_COLUMNS};
use store_sql::{after_bound, from_sql_int, to_sql_int, to_sql_limit};

use super::SqliteTx;
use crate::columns::{micros, micros_opt};
use crate::errors::store_error;

#[async_trait]
impl AuditLog for SqliteTx {
    async fn lock_partition(&mut self, partition: &Partition) -> Result<(), StoreError> {
        // There is one writer: holding it locks every partition.
        self.scope.allow_partition(partition)?;
        self.write().await.map(|_| ())
    }

    async fn append_audit(&mut self, draft: AuditDraft) -> Result<AuditRecord, StoreError> {
        self.scope.allow_partition(&draft.partition)?;
        let connection = self.write().await?;
        // Writers are serialised, so the last record read here stays the last one.
        let last: Option<(i64, String)> = sqlx::query_as(
            "select seq, hash from audit_records where partition = ?1 order by seq desc limit 1",
        )
        .bind(draft.partition.name())
        .fetch_optional(&mut *connection)
        .await
        .map_err(store_error)?;
        let (seq, prev_hash) = match last {
            Some((seq, hash)) => (from_sql_int(seq, "audit seq")? + 1, hash),
            None => (1, GENESIS_HASH.to_owned()),
        };
        let record = AuditRecord::seal(draft, seq, &prev_hash);
        let sql = format!(
            "insert into audit_records ({AUDIT_COLUMNS}) \
             values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
        );
        let query = sqlx::query(&sql)
            .bind(record.partition.name())
            .bind(to_sql_int(record.seq, "audit seq")?)
            .bind(record.tenant().map(TenantId::as_str))
            .bind(record.id.to_string())
            .bind(micros(record.at)?);
        audit_texts(&record)
            .into_iter()
            .fold(query, |query, text| query.bind(text))
            .execute(connection)
            .await
            .map_err(store_error)?;
        Ok(record)
    }

    async fn list_audit(
        &mut self,
        partition: &Partition,
        filter: &AuditFilter,
        after_seq: u64,
        limit_to: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.scope.allow_partition(partition)?;
        let Some(after_seq) = after_bound(after_seq) else {
            return Ok(Vec::new());
        };
        self.fetch_all::<AuditRow>(
            sqlx::query(&format!(
                "select {AUDIT_COLUMNS} \
             from audit_records where partition = ?1 and seq > ?2 \
               and (?3 is null or actor_id = ?3) \
               and (?4 is null or action = ?4) \
               and (?5 is null or outcome = ?5) \
               and (?6 is null or at >= ?6) \
               and (?7 is null or at < ?7) \
             order by seq limit ?8"
            ))
            .bind(partition.name())
            .bind(after_seq)
            .bind(filter.actor_id.as_deref())
            .bind(filter.action.as_deref())
            .bind(filter.outcome.map(|outcome| outcome.as_str()))
            .bind(micros_opt(filter.from)?)
            .bind(micros_opt(filter.until)?)
            .bind(to_sql_limit(limit_to)?),
        )
        .await
    }
}
