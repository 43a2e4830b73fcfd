//! [`Tenants`] over SQLite: tenants (tombstones checked before an insert), their
//! enabled scopes and role bindings (child tables written from JSON arrays).

use std::collections::BTreeSet;

use async_trait::async_trait;
use domain::ids::{RoleName, ScopeName, TenantId};
use domain::model::{RoleBinding, Tenant};
use domain::ports::{StoreError, Tenants};
use store_sql::rows::{scopes, BindingRow, TenantRow, TENANT_COLUMNS};
use store_sql::{require_changed, to_sql_limit};

use super::SqliteTx;
use crate::columns::{json_names, micros};
use crate::errors::store_error;

#[async_trait]
impl Tenants for SqliteTx {
    async fn get_tenant(&mut self, tenant: &TenantId) -> Result<Option<Tenant>, StoreError> {
        if !self.scope.sees(tenant) {
            return Ok(None);
        }
        self.fetch_optional::<TenantRow>(
            sqlx::query(&format!(
                "select {TENANT_COLUMNS} from tenants where tenant_id = ?1"
            ))
            .bind(tenant.as_str()),
        )
        .await
    }

    async fn insert_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        self.scope.allow(&tenant.id)?;
        if self
            .exists(
                "select 1 from tenant_tombstones where tenant_id = ?1",
                &[tenant.id.as_str()],
            )
            .await?
        {
            return Err(StoreError::Duplicate("tenant"));
        }
        self.execute(
            sqlx::query(
                "insert into tenants (tenant_id, display_name, state, created_at, updated_at) \
                 values (?1, ?2, ?3, ?4, ?5)",
            )
            .bind(tenant.id.as_str())
            .bind(tenant.display_name.as_str())
            .bind(tenant.state.as_str())
            .bind(micros(tenant.created_at)?)
            .bind(micros(tenant.updated_at)?),
        )
        .await
        .map(|_| ())
    }

    async fn update_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        self.scope.allow(&tenant.id)?;
        let updated = self
            .execute(
                sqlx::query(
                    "update tenants set display_name = ?2, state = ?3, updated_at = ?4 \
                     where tenant_id = ?1",
                )
                .bind(tenant.id.as_str())
                .bind(tenant.display_name.as_str())
                .bind(tenant.state.as_str())
                .bind(micros(tenant.updated_at)?),
            )
            .await?;
        require_changed(updated, "tenant")
    }

    async fn list_tenants(
        &mut self,
        after: Option<TenantId>,
        limit_to: usize,
    ) -> Result<Vec<Tenant>, StoreError> {
        self.scope.require_platform()?;
        self.fetch_all::<TenantRow>(
            sqlx::query(&format!(
                "select {TENANT_COLUMNS} from tenants \
             where ?1 is null or tenant_id > ?1 order by tenant_id limit ?2"
            ))
            .bind(after.as_ref().map(TenantId::as_str))
            .bind(to_sql_limit(limit_to)?),
        )
        .await
    }

    async fn enabled_scopes(
        &mut self,
        tenant: &TenantId,
    ) -> Result<BTreeSet<ScopeName>, StoreError> {
        self.scope.allow(tenant)?;
        let connection = self.read().await?;
        let names: Vec<String> =
            sqlx::query_scalar("select scope from tenant_scopes where tenant_id = ?1")
                .bind(tenant.as_str())
                .fetch_all(connection)
                .await
                .map_err(store_error)?;
        scopes(&names)
    }

    async fn set_enabled_scopes(
        &mut self,
        tenant: &TenantId,
        scope_names: &BTreeSet<ScopeName>,
    ) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        self.require_tenant(tenant).await?;
        let names = json_names(scope_names.iter().map(ScopeName::as_str));
        self.require_scopes(&names).await?;
        self.execute(
            sqlx::query("delete from tenant_scopes where tenant_id = ?1").bind(tenant.as_str()),
        )
        .await?;
        self.execute(
            sqlx::query(
                "insert into tenant_scopes (tenant_id, scope) select ?1, value from json_each(?2)",
            )
            .bind(tenant.as_str())
            .bind(&names),
        )
        .await
        .map(|_| ())
    }

    async fn list_bindings(&mut self, tenant: &TenantId) -> Result<Vec<RoleBinding>, StoreError> {
        self.scope.allow(tenant)?;
        self.fetch_all::<BindingRow>(
            sqlx::query(
                "select b.role, (select json_group_array(s.scope) from role_binding_scopes s \
                                 where s.tenant_id = b.tenant_id and s.role = b.role) as scopes \
                 from role_bindings b where b.tenant_id = ?1 order by b.role",
            )
            .bind(tenant.as_str()),
        )
        .await
    }

    async fn put_binding(
        &mut self,
        tenant: &TenantId,
        binding: &RoleBinding,
    ) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        self.require_tenant(tenant).await?;
        let names = json_names(binding.scopes.iter().map(ScopeName::as_str));
        self.require_scopes(&names).await?;
        self.execute(
            sqlx::query(
                "insert into role_bindings (tenant_id, role) values (?1, ?2) \
                 on conflict (tenant_id, role) do nothing",
            )
            .bind(tenant.as_str())
            .bind(binding.role.as_str()),
        )
        .await?;
        self.execute(
            sqlx::query("delete from role_binding_scopes where tenant_id = ?1 and role = ?2")
                .bind(tenant.as_str())
                .bind(binding.role.as_str()),
        )
        .await?;
        self.execute(
            sqlx::query(
                "insert into role_binding_scopes (tenant_id, role, scope) \
                 select ?1, ?2, value from json_each(?3)",
            )
            .bind(tenant.as_str())
            .bind(binding.role.as_str())
            .bind(&names),
        )
        .await
        .map(|_| ())
    }

    async fn delete_binding(
        &mut self,
        tenant: &TenantId,
        role: &RoleName,
    ) -> Result<bool, StoreError> {
        self.scope.allow(tenant)?;
        self.execute(
            sqlx::query("delete from role_bindings where tenant_id = ?1 and role = ?2")
                .bind(tenant.as_str())
                .bind(role.as_str()),
        )
        .await
        .map(|deleted| deleted > 0)
    }
}
