//! [`ApiKeys`]: a tenant's keys (how their scopes are kept is the backend's:
//! [`Backend::KEY_SELECT`], [`Backend::insert_key`]); another tenant's key filtered from
//! a lookup by hash.

use async_trait::async_trait;
use domain::ids::{KeyId, ScopeName, TenantId};
use domain::model::ApiKey;
use domain::ports::{ApiKeys, StoreError};
use time::OffsetDateTime;

use super::SqlTx;
use crate::rows::KeyRow;
use crate::{require_changed, Backend, Statement};

#[async_trait]
impl<B: Backend> ApiKeys for SqlTx<B> {
    async fn insert_api_key(&mut self, key: &ApiKey, secret_hash: &str) -> Result<(), StoreError> {
        self.scope.allow(&key.tenant)?;
        self.refuse_duplicate(
            "api_key",
            Statement::new("select 1 as one from api_keys where key_id = $1 or secret_hash = $2")
                .id(key.id.as_uuid())
                .text(secret_hash),
        )
        .await?;
        self.require_tenant(&key.tenant).await?;
        if let Some(creator) = &key.created_by {
            self.require_member(&key.tenant, creator).await?;
        }
        self.require_scopes(key.scopes.iter().map(ScopeName::as_str))
            .await?;
        for statement in B::insert_key(key, secret_hash) {
            self.execute(statement).await?;
        }
        Ok(())
    }

    async fn list_api_keys(&mut self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError> {
        self.scope.allow(tenant)?;
        self.all::<KeyRow>(
            Statement::new(format!(
                "{} where k.tenant_id = $1 order by k.key_id",
                B::KEY_SELECT
            ))
            .text(tenant.as_str()),
        )
        .await
    }

    async fn get_api_key(
        &mut self,
        tenant: &TenantId,
        key: &KeyId,
    ) -> Result<Option<ApiKey>, StoreError> {
        self.scope.allow(tenant)?;
        self.optional::<KeyRow>(
            Statement::new(format!(
                "{} where k.tenant_id = $1 and k.key_id = $2",
                B::KEY_SELECT
            ))
            .text(tenant.as_str())
            .id(key.as_uuid()),
        )
        .await
    }

    async fn revoke_api_key(
        &mut self,
        tenant: &TenantId,
        key: &KeyId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        let updated = self
            .execute(
                Statement::new(
                    "update api_keys set revoked_at = $3 where tenant_id = $1 and key_id = $2",
                )
                .text(tenant.as_str())
                .id(key.as_uuid())
                .time(at),
            )
            .await?;
        require_changed(updated, "api_key")
    }

    async fn find_api_key_by_hash(
        &mut self,
        secret_hash: &str,
    ) -> Result<Option<ApiKey>, StoreError> {
        let key = self
            .optional::<KeyRow>(
                Statement::new(format!("{} where k.secret_hash = $1", B::KEY_SELECT))
                    .text(secret_hash),
            )
            .await?;
        Ok(key.filter(|key| self.scope.sees(&key.tenant)))
    }
}
