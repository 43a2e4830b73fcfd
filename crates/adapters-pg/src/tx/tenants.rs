//! [`Tenants`] over PostgreSQL: tenants, their enabled scopes and role bindings (scopes
//! as `text[]`, written with `unnest`).

use std::collections::BTreeSet;

use async_trait::async_trait;
use domain::ids::{RoleName, ScopeName, TenantId};
use domain::model::{RoleBinding, Tenant};
use domain::ports::{StoreError, Tenants};
use store_sql::rows::{scopes, BindingRow, TenantRow, TENANT_COLUMNS};
use store_sql::{require_changed, to_sql_limit};

use super::PgTx;
use crate::errors::store_error;

#[async_trait]
impl Tenants for PgTx {
    async fn get_tenant(&mut self, tenant: &TenantId) -> Result<Option<Tenant>, StoreError> {
        self.fetch_optional::<TenantRow>(
            sqlx::query(&format!(
                "select {TENANT_COLUMNS} from tenants where tenant_id = $1"
            ))
            .bind(tenant.as_str()),
        )
        .await
    }

    async fn insert_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "insert into tenants (tenant_id, display_name, state, created_at, updated_at) \
                 values ($1, $2, $3, $4, $5)",
            )
            .bind(tenant.id.as_str())
            .bind(tenant.display_name.as_str())
            .bind(tenant.state.as_str())
            .bind(tenant.created_at)
            .bind(tenant.updated_at),
        )
        .await
        .map(|_| ())
    }

    async fn update_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        let updated = self
            .execute(
                sqlx::query(
                    "update tenants set display_name = $2, state = $3, updated_at = $4 \
                     where tenant_id = $1",
                )
                .bind(tenant.id.as_str())
                .bind(tenant.display_name.as_str())
                .bind(tenant.state.as_str())
                .bind(tenant.updated_at),
            )
            .await?;
        require_changed(updated, "tenant")
    }

    async fn list_tenants(
        &mut self,
        after: Option<TenantId>,
        limit: usize,
    ) -> Result<Vec<Tenant>, StoreError> {
        self.fetch_all::<TenantRow>(
            sqlx::query(&format!(
                "select {TENANT_COLUMNS} from tenants \
             where $1::text is null or tenant_id > $1 collate \"C\" \
             order by tenant_id collate \"C\" limit $2"
            ))
            .bind(after.as_ref().map(TenantId::as_str))
            .bind(to_sql_limit(limit)?),
        )
        .await
    }

    async fn enabled_scopes(
        &mut self,
        tenant: &TenantId,
    ) -> Result<BTreeSet<ScopeName>, StoreError> {
        let names: Vec<String> =
            sqlx::query_scalar("select scope from tenant_scopes where tenant_id = $1")
                .bind(tenant.as_str())
                .fetch_all(&mut *self.tx)
                .await
                .map_err(store_error)?;
        scopes(&names)
    }

    async fn set_enabled_scopes(
        &mut self,
        tenant: &TenantId,
        scope_names: &BTreeSet<ScopeName>,
    ) -> Result<(), StoreError> {
        let names: Vec<&str> = scope_names.iter().map(ScopeName::as_str).collect();
        self.execute(
            sqlx::query("delete from tenant_scopes where tenant_id = $1").bind(tenant.as_str()),
        )
        .await?;
        self.execute(
            sqlx::query(
                "insert into tenant_scopes (tenant_id, scope) select $1, unnest($2::text[])",
            )
            .bind(tenant.as_str())
            .bind(&names),
        )
        .await
        .map(|_| ())
    }

    async fn list_bindings(&mut self, tenant: &TenantId) -> Result<Vec<RoleBinding>, StoreError> {
        self.fetch_all::<BindingRow>(
            sqlx::query(
                "select b.role, array(select s.scope from role_binding_scopes s \
                                      where s.tenant_id = b.tenant_id and s.role = b.role) \
                     as scopes \
                 from role_bindings b where b.tenant_id = $1 order by b.role collate \"C\"",
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
        let names: Vec<&str> = binding.scopes.iter().map(ScopeName::as_str).collect();
        self.execute(
            sqlx::query(
                "insert into role_bindings (tenant_id, role) values ($1, $2) \
                 on conflict (tenant_id, role) do nothing",
            )
            .bind(tenant.as_str())
            .bind(binding.role.as_str()),
        )
        .await?;
        self.execute(
            sqlx::query("delete from role_binding_scopes where tenant_id = $1 and role = $2")
                .bind(tenant.as_str())
                .bind(binding.role.as_str()),
        )
        .await?;
        self.execute(
            sqlx::query(
                "insert into role_binding_scopes (tenant_id, role, scope) \
                 select $1, $2, unnest($3::text[])",
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
        self.execute(
            sqlx::query("delete from role_bindings where tenant_id = $1 and role = $2")
                .bind(tenant.as_str())
                .bind(role.as_str()),
        )
        .await
        .map(|deleted| deleted > 0)
    }
}
