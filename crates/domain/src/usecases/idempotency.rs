//! `Idempotency-Key` records (SPEC §4): claimed and finished in the shared store, each
//! in a transaction of its own, so a retry that reaches another node replays the first
//! answer. What a key, a body tag and a response are is the API's business; here is how
//! long a record lives.

use time::Duration;

use super::Engine;
use crate::error::Error;
use crate::ports::{IdempotencyRecord, TxScope};

/// How long a finished request's answer is replayed.
pub const IDEMPOTENCY_KEEP_FOR: Duration = Duration::hours(24);

/// How long a claim whose request never finished (its node died, its client left) holds
/// the key before a retry may run again.
pub const IDEMPOTENCY_RUNNING_AT_MOST: Duration = Duration::minutes(5);

impl Engine {
    /// Claims `key` for a request whose body has `body_tag`: `None` when the request may
    /// run (the key is now held as running), else the record a first request left.
    ///
    /// # Errors
    /// `Store` when the store fails.
    pub async fn claim_idempotency_key(
        &self,
        key: &str,
        body_tag: &str,
    ) -> Result<Option<IdempotencyRecord>, Error> {
        let now = self.now();
        let mut tx = self.begin(TxScope::Platform).await?;
        let record = tx
            .claim_idempotency_key(key, body_tag, now, now + IDEMPOTENCY_RUNNING_AT_MOST)
            .await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Stores the answer of the request that claimed `key`, replayed for
    /// [`IDEMPOTENCY_KEEP_FOR`]; with `None`, frees the key for a retry.
    ///
    /// # Errors
    /// `Store` when the store fails.
    pub async fn finish_idempotency_key(
        &self,
        key: &str,
        response: Option<Vec<u8>>,
    ) -> Result<(), Error> {
        let keep_until = self.now() + IDEMPOTENCY_KEEP_FOR;
        let mut tx = self.begin(TxScope::Platform).await?;
        tx.finish_idempotency_key(key, response, keep_until).await?;
        tx.commit().await?;
        Ok(())
    }
}
