//! [`ApiKeys`] over SQLite: a tenant's keys, their scopes in a table of their own; the
//! duplicate, tenant, creator and scopes checked before the insert, another tenant's key
//! filtered from a lookup by hash.

use async_trait::async_trait;
use domain::ids::{KeyId, ScopeName, TenantId};
use domain::model::ApiKey;
use domain::ports::{ApiKeys, StoreError};
use store_sql::rows::KeyRow;
use time::OffsetDateTime;

use store_sql::require_changed;

use super::SqliteTx;
use crate::columns::{json_names, micros, micros_opt};

const KEY_SELECT: &str = "select k.tenant_id, k.key_id, k.name, \
     (select json_group_array(s.scope) from api_key_scopes s \
      where s.tenant_id = k.tenant_id and s.key_id = k.key_id) as scopes, \
     k.created_by, k.created_at, k.revoked_at from api_keys k";

#[async_trait]
impl ApiKeys for SqliteTx {
    async fn insert_api_key(&mut self, key: &ApiKey, secret_hash: &str) -> Result<(), StoreError> {
        self.scope.allow(&key.tenant)?;
        let id = key.id.to_string();
        if self
            .exists(
                "select 1 from api_keys where key_id = ?1 or secret_hash = ?2",
                &[&id, secret_hash],
            )
            .await?
        {
            return Err(StoreError::Duplicate("api_key"));
        }
        self.require_tenant(&key.tenant).await?;
        if let Some(creator) = &key.created_by {
            self.require_member(&key.tenant, creator).await?;
        }
        let names = json_names(key.scopes.iter().map(ScopeName::as_str));
        self.require_scopes(&names).await?;
        self.execute(
            sqlx::query(
                "insert into api_keys (tenant_id, key_id, name, secret_hash, created_by, created_at, revoked_at) \
                 values (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .bind(key.tenant.as_str())
            .bind(&id)
            .bind(key.name.as_str())
            .bind(secret_hash)
            .bind(key.created_by.map(|user| user.to_string()))
            .bind(micros(key.created_at)?)
            .bind(micros_opt(key.revoked_at)?),
        )
        .await?;
        self.execute(
            sqlx::query(
                "insert into api_key_scopes (tenant_id, key_id, scope) \
                 select ?1, ?2, value from json_each(?3)",
            )
            .bind(key.tenant.as_str())
            .bind(&id)
            .bind(&names),
        )
        .await
        .map(|_| ())
    }

    async fn list_api_keys(&mut self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError> {
        self.scope.allow(tenant)?;
        self.fetch_all::<KeyRow>(
            sqlx::query(&format!(
                "{KEY_SELECT} where k.tenant_id = ?1 order by k.key_id"
            ))
            .bind(tenant.as_str()),
        )
        .await
    }

    async fn get_api_key(
        &mut self,
        tenant: &TenantId,
        key: &KeyId,
    ) -> Result<Option<ApiKey>, StoreError> {
        self.scope.allow(tenant)?;
        self.fetch_optional::<KeyRow>(
            sqlx::query(&format!(
                "{KEY_SELECT} where k.tenant_id = ?1 and k.key_id = ?2"
            ))
            .bind(tenant.as_str())
            .bind(key.to_string()),
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
                sqlx::query(
                    "update api_keys set revoked_at = ?3 where tenant_id = ?1 and key_id = ?2",
                )
                .bind(tenant.as_str())
                .bind(key.to_string())
                .bind(micros(at)?),
            )
            .await?;
        require_changed(updated, "api_key")
    }

    async fn find_api_key_by_hash(
        &mut self,
        secret_hash: &str,
    ) -> Result<Option<ApiKey>, StoreError> {
        let key = self
            .fetch_optional::<KeyRow>(
                sqlx::query(&format!("{KEY_SELECT} where k.secret_hash = ?1")).bind(secret_hash),
            )
            .await?;
        Ok(key.filter(|key| self.scope.sees(&key.tenant)))
    }
}
