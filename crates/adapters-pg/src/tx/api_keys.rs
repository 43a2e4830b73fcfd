//! [`ApiKeys`] over PostgreSQL: a tenant's keys, their scopes as a `text[]` column.

use async_trait::async_trait;
use domain::ids::{KeyId, ScopeName, TenantId};
use domain::model::ApiKey;
use domain::ports::{ApiKeys, StoreError};
use store_sql::rows::KeyRow;
use time::OffsetDateTime;

use store_sql::require_changed;

use super::PgTx;

const KEY_COLUMNS: &str = "tenant_id, key_id, name, scopes, created_by, created_at, revoked_at";

#[async_trait]
impl ApiKeys for PgTx {
    async fn insert_api_key(&mut self, key: &ApiKey, secret_hash: &str) -> Result<(), StoreError> {
        let names: Vec<&str> = key.scopes.iter().map(ScopeName::as_str).collect();
        self.execute(
            sqlx::query(
                "insert into api_keys (tenant_id, key_id, name, scopes, secret_hash, created_by, created_at, revoked_at) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(key.tenant.as_str())
            .bind(key.id.as_uuid())
            .bind(key.name.as_str())
            .bind(&names)
            .bind(secret_hash)
            .bind(key.created_by.map(|user| *user.as_uuid()))
            .bind(key.created_at)
            .bind(key.revoked_at),
        )
        .await
        .map(|_| ())
    }

    async fn list_api_keys(&mut self, tenant: &TenantId) -> Result<Vec<ApiKey>, StoreError> {
        self.fetch_all::<KeyRow>(
            sqlx::query(&format!(
                "select {KEY_COLUMNS} from api_keys where tenant_id = $1 order by key_id"
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
        self.fetch_optional::<KeyRow>(
            sqlx::query(&format!(
                "select {KEY_COLUMNS} from api_keys where tenant_id = $1 and key_id = $2"
            ))
            .bind(tenant.as_str())
            .bind(key.as_uuid()),
        )
        .await
    }

    async fn revoke_api_key(
        &mut self,
        tenant: &TenantId,
        key: &KeyId,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let updated = self
            .execute(
                sqlx::query(
                    "update api_keys set revoked_at = $3 where tenant_id = $1 and key_id = $2",
                )
                .bind(tenant.as_str())
                .bind(key.as_uuid())
                .bind(at),
            )
            .await?;
        require_changed(updated, "api_key")
    }

    async fn find_api_key_by_hash(
        &mut self,
        secret_hash: &str,
    ) -> Result<Option<ApiKey>, StoreError> {
        self.fetch_optional::<KeyRow>(
            sqlx::query(&format!(
                "select {KEY_COLUMNS} from api_keys where secret_hash = $1"
            ))
            .bind(secret_hash),
        )
        .await
    }
}
