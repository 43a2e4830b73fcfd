//! [`ApiKeys`] on the in-memory state.

use super::*;

#[async_trait]
impl ApiKeys for MemTx {
    async fn insert_api_key(&mut self, key: &ApiKey, secret_hash: &str) -> Result<(), StoreError> {
        self.scope.allow(&key.tenant)?;
        if self.working.api_keys.contains_key(&key.id) {
            return Err(StoreError::Duplicate("api_key"));
        }
        if let Some(creator) = &key.created_by {
            if !self
                .working
                .members
                .contains_key(&(key.tenant.clone(), *creator))
            {
                return Err(StoreError::Missing("member"));
            }
        }
        self.working
            .api_keys
            .insert(key.id, (key.clone(), secret_hash.to_owned()));
        Ok(())
    }

    async fn list_api_keys(&mut self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .api_keys
            .values()
            .filter(|(key, _)| &key.tenant == tenant)
            .map(|(key, _)| key.clone())
            .collect())
    }

    async fn get_api_key(
        &mut self,
        tenant: &TenantId,
        key: &KeyId,
    ) -> Result<Option<ApiKey>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .api_keys
            .get(key)
            .filter(|(stored, _)| &stored.tenant == tenant)
            .map(|(stored, _)| stored.clone()))
    }

    async fn revoke_api_key(
        &mut self,
        tenant: &TenantId,
        key: &KeyId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        match self.working.api_keys.get_mut(key) {
            Some((stored, _)) if &stored.tenant == tenant => {
                stored.revoked_at = Some(at);
                Ok(())
            }
            _ => Err(StoreError::Missing("api_key")),
        }
    }

    async fn find_api_key_by_hash(
        &mut self,
        secret_hash: &str,
    ) -> Result<Option<ApiKey>, StoreError> {
        Ok(self
            .working
            .api_keys
            .values()
            .find(|(key, hash)| hash == secret_hash && self.scope.sees(&key.tenant))
            .map(|(key, _)| key.clone()))
    }
}
