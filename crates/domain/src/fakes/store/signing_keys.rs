//! [`SigningKeys`] on the in-memory state: one map by kid, platform transactions only
//! (as the SQL store refuses a tenant-scoped one).

use super::*;
use crate::ports::SigningKeys;
use crate::signing::SigningKey;

#[async_trait]
impl SigningKeys for MemTx {
    async fn insert_signing_key(&mut self, key: &SigningKey) -> Result<(), StoreError> {
        self.require_platform()?;
        if self.working.signing_keys.contains_key(&key.kid) {
            return Err(StoreError::Duplicate("signing key"));
        }
        self.working
            .signing_keys
            .insert(key.kid.clone(), key.clone());
        Ok(())
    }

    async fn list_signing_keys(&mut self) -> Result<Vec<SigningKey>, StoreError> {
        self.require_platform()?;
        let mut keys: Vec<SigningKey> = self.working.signing_keys.values().cloned().collect();
        keys.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.kid.cmp(&b.kid)));
        Ok(keys)
    }

    async fn retire_signing_keys(&mut self, at: OffsetDateTime) -> Result<u64, StoreError> {
        self.require_platform()?;
        let mut retired = 0;
        for key in self.working.signing_keys.values_mut() {
            if key.retired_at.is_none() {
                key.retired_at = Some(at);
                retired += 1;
            }
        }
        Ok(retired)
    }
}
