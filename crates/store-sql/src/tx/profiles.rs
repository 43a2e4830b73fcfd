//! [`Profiles`]: profile values at their three layers, as JSON (member, tenant, user
//! and schema key checked before a write where the backend asks).

use std::collections::BTreeMap;

use async_trait::async_trait;
use domain::ids::{ProfileKey, ProfileValue, TenantId, UserId};
use domain::ports::{Profiles, StoreError};

use super::SqlTx;
use crate::{Backend, Statement};

#[async_trait]
impl<B: Backend> Profiles for SqlTx<B> {
    async fn member_values(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
        self.scope.allow(tenant)?;
        self.values(
            Statement::new(
                "select key, value from member_profile_values \
                 where tenant_id = $1 and user_id = $2",
            )
            .text(tenant.as_str())
            .id(user.as_uuid()),
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
        self.scope.allow(tenant)?;
        self.require_member(tenant, user).await?;
        self.require_profile_key(key).await?;
        self.execute(
            Statement::new(
                "insert into member_profile_values (tenant_id, user_id, key, value) \
                 values ($1, $2, $3, $4) on conflict (tenant_id, user_id, key) \
                 do update set value = excluded.value",
            )
            .text(tenant.as_str())
            .id(user.as_uuid())
            .text(key.as_str())
            .json(value.as_json()),
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
        self.scope.allow(tenant)?;
        self.execute(
            Statement::new(
                "delete from member_profile_values \
                 where tenant_id = $1 and user_id = $2 and key = $3",
            )
            .text(tenant.as_str())
            .id(user.as_uuid())
            .text(key.as_str()),
        )
        .await
        .map(|deleted| deleted > 0)
    }

    async fn tenant_defaults(
        &mut self,
        tenant: &TenantId,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
        self.scope.allow(tenant)?;
        self.values(
            Statement::new("select key, value from tenant_profile_defaults where tenant_id = $1")
                .text(tenant.as_str()),
        )
        .await
    }

    async fn put_tenant_default(
        &mut self,
        tenant: &TenantId,
        key: &ProfileKey,
        value: &ProfileValue,
    ) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        self.require_tenant(tenant).await?;
        self.require_profile_key(key).await?;
        self.execute(
            Statement::new(
                "insert into tenant_profile_defaults (tenant_id, key, value) values ($1, $2, $3) \
                 on conflict (tenant_id, key) do update set value = excluded.value",
            )
            .text(tenant.as_str())
            .text(key.as_str())
            .json(value.as_json()),
        )
        .await
        .map(|_| ())
    }

    async fn delete_tenant_default(
        &mut self,
        tenant: &TenantId,
        key: &ProfileKey,
    ) -> Result<bool, StoreError> {
        self.scope.allow(tenant)?;
        self.execute(
            Statement::new("delete from tenant_profile_defaults where tenant_id = $1 and key = $2")
                .text(tenant.as_str())
                .text(key.as_str()),
        )
        .await
        .map(|deleted| deleted > 0)
    }

    async fn platform_values(
        &mut self,
        user: &UserId,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
        self.values(
            Statement::new("select key, value from platform_profile_values where user_id = $1")
                .id(user.as_uuid()),
        )
        .await
    }

    async fn put_platform_value(
        &mut self,
        user: &UserId,
        key: &ProfileKey,
        value: &ProfileValue,
    ) -> Result<(), StoreError> {
        self.require_user(user).await?;
        self.require_profile_key(key).await?;
        self.execute(
            Statement::new(
                "insert into platform_profile_values (user_id, key, value) values ($1, $2, $3) \
                 on conflict (user_id, key) do update set value = excluded.value",
            )
            .id(user.as_uuid())
            .text(key.as_str())
            .json(value.as_json()),
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
            Statement::new("delete from platform_profile_values where user_id = $1 and key = $2")
                .id(user.as_uuid())
                .text(key.as_str()),
        )
        .await
        .map(|deleted| deleted > 0)
    }
}
