//! [`Idempotency`]: one row per key (`idempotency_keys`, platform-wide, no tenant). A
//! claim is one upsert that takes the key only when no live row holds it; of concurrent
//! claims the database lets one insert (or replace an expired row) and makes the others
//! wait for it and find its row.

use async_trait::async_trait;
use domain::ports::{Idempotency, IdempotencyRecord, StoreError};
use time::OffsetDateTime;

use super::SqlTx;
use crate::{Backend, Columns, Statement};

/// How many expired records one claim removes: enough to keep up with the rate records
/// expire at (one per claim), small enough to cost little.
const SWEEP: i64 = 8;

#[async_trait]
impl<B: Backend> Idempotency for SqlTx<B> {
    async fn claim_idempotency_key(
        &mut self,
        key: &str,
        body_tag: &str,
        now: OffsetDateTime,
        running_until: OffsetDateTime,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let claimed = self
            .backend
            .fetch_writing(
                Statement::new(
                    "insert into idempotency_keys (key, body_tag, response, expires_at) \
                     values ($1, $2, null, $4) \
                     on conflict (key) do update set body_tag = excluded.body_tag, \
                         response = null, expires_at = excluded.expires_at \
                     where idempotency_keys.expires_at <= $3 \
                     returning key",
                )
                .text(key)
                .text(body_tag)
                .time(now)
                .time(running_until),
            )
            .await?;
        if !claimed.is_empty() {
            self.execute(
                Statement::new(
                    "delete from idempotency_keys where key in (select key from idempotency_keys \
                     where expires_at <= $1 limit $2)",
                )
                .time(now)
                .int(SWEEP),
            )
            .await?;
            return Ok(None);
        }
        // A live row holds the key; the upsert has waited for its writer, so this read
        // sees it as committed.
        let rows = self
            .backend
            .fetch_writing(
                Statement::new("select body_tag, response from idempotency_keys where key = $1")
                    .text(key),
            )
            .await?;
        let row = rows.first().ok_or(StoreError::Conflict)?;
        Ok(Some(IdempotencyRecord {
            body_tag: row.text("body_tag")?,
            response: row.bytes_opt("response")?,
        }))
    }

    async fn finish_idempotency_key(
        &mut self,
        key: &str,
        response: Option<Vec<u8>>,
        keep_until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let statement = match response {
            Some(response) => Statement::new(
                "update idempotency_keys set response = $2, expires_at = $3 where key = $1",
            )
            .text(key)
            .bytes(response)
            .time(keep_until),
            None => Statement::new("delete from idempotency_keys where key = $1").text(key),
        };
        self.execute(statement).await.map(|_| ())
    }
}
