//! [`Profiles`] over PostgreSQL: profile values at their three layers, as `jsonb`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use domain::ids::{ProfileKey, ProfileValue, TenantId, UserId};
use domain::ports::{Profiles, StoreError};

use super::PgTx;

#[async_trait]
impl Profiles for PgTx {
    async fn member_values(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
        self.values(
            sqlx::query(
                "select key, value from member_profile_values \
                 where tenant_id = $1 and user_id = $2",
            )
            .bind(tenant.as_str())
            .bind(user.as_uuid()),
        )
        .await
    }

    async fn put_member_value(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        key: &ProfileKey,
        value: &ProfileValue,
    ) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "insert into member_profile_values (tenant_id, user_id, key, value) \
                 values ($1, $2, $3, $4) on conflict (tenant_id, user_id, key) \
                 do update set value = excluded.value",
            )
            .bind(tenant.as_str())
            .bind(user.as_uuid())
            .bind(key.as_str())
            .bind(value.as_json()),
        )
        .await
        .map(|_| ())
    }

    async fn delete_member_value(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        key: &ProfileKey,
    ) -> Result<bool, StoreError> {
        self.execute(
            sqlx::query(
                "delete from member_profile_values where tenant_id = $1 and user_id = $2 and key = $3",
            )
            .bind(tenant.as_str())
            .bind(user.as_uuid())
            .bind(key.as_str()),
        )
        .await
        .map(|deleted| deleted > 0)
    }

    async fn tenant_defaults(
        &mut self,
        tenant: &TenantId,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
        self.values(
            sqlx::query("select key, value from tenant_profile_defaults where tenant_id = $1")
                .bind(tenant.as_str()),
        )
        .await
    }

    async fn put_tenant_default(
        &mut self,
        tenant: &TenantId,
        key: &ProfileKey,
        value: &ProfileValue,
    ) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "insert into tenant_profile_defaults (tenant_id, key, value) values ($1, $2, $3) \
                 on conflict (tenant_id, key) do update set value = excluded.value",
            )
            .bind(tenant.as_str())
            .bind(key.as_str())
            .bind(value.as_json()),
        )
        .await
        .map(|_| ())
    }

    async fn delete_tenant_default(
        &mut self,
        tenant: &TenantId,
        key: &ProfileKey,
    ) -> Result<bool, StoreError> {
        self.execute(
            sqlx::query("delete from tenant_profile_defaults where tenant_id = $1 and key = $2")
                .bind(tenant.as_str())
                .bind(key.as_str()),
        )
        .await
        .map(|deleted| deleted > 0)
    }

    async fn platform_values(
        &mut self,
        user: &UserId,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
        self.values(
            sqlx::query("select key, value from platform_profile_values where user_id = $1")
                .bind(user.as_uuid()),
        )
        .await
    }

    async fn put_platform_value(
        &mut self,
        user: &UserId,
        key: &ProfileKey,
        value: &ProfileValue,
    ) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "insert into platform_profile_values (user_id, key, value) values ($1, $2, $3) \
                 on conflict (user_id, key) do update set value = excluded.value",
            )
            .bind(user.as_uuid())
            .bind(key.as_str())
            .bind(value.as_json()),
        )
        .await
        .map(|_| ())
    }

    async fn delete_platform_value(
        &mut self,
        user: &UserId,
        key: &ProfileKey,
    ) -> Result<bool, StoreError> {
        self.execute(
            sqlx::query("delete from platform_profile_values where user_id = $1 and key = $2")
                .bind(user.as_uuid())
                .bind(key.as_str()),
        )
        .await
        .map(|deleted| deleted > 0)
    }
}
