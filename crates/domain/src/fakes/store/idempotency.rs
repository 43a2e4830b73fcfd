//! [`Idempotency`] on the in-memory state: one map, its claims serialised by the store's
//! one lock.

use super::*;
use crate::ports::{Idempotency, IdempotencyRecord};

#[async_trait]
impl Idempotency for MemTx {
    async fn claim_idempotency_key(
        &mut self,
        key: &str,
        body_tag: &str,
        now: OffsetDateTime,
        running_until: OffsetDateTime,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let records = &mut self.working.idempotency;
        records.retain(|_, (_, expires_at)| *expires_at > now);
        if let Some((record, _)) = records.get(key) {
            return Ok(Some(record.clone()));
        }
        records.insert(
            key.to_owned(),
            (
                IdempotencyRecord {
                    body_tag: body_tag.to_owned(),
                    response: None,
                },
                running_until,
            ),
        );
        Ok(None)
    }

    async fn finish_idempotency_key(
        &mut self,
        key: &str,
        response: Option<Vec<u8>>,
        keep_until: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let records = &mut self.working.idempotency;
        match (response, records.get_mut(key)) {
            (Some(response), Some((record, expires_at))) => {
                record.response = Some(response);
                *expires_at = keep_until;
            }
            (None, _) => {
                records.remove(key);
            }
            (Some(_), None) => {}
        }
        Ok(())
    }
}
