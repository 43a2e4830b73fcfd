//! [`Tenants`]: tenants (an id ever used stays taken: tombstones), their enabled scopes
//! and role bindings (scope lists written through [`Backend::each`]).

use std::collections::BTreeSet;

use async_trait::async_trait;
use domain::ids::{RoleName, ScopeName, TenantId};
use domain::model::{RoleBinding, Tenant};
use domain::ports::{StoreError, Tenants};

use super::SqlTx;
use crate::rows::{scopes, BindingRow, TenantRow, TENANT_COLUMNS};
use crate::{require_changed, Backend, Columns, Statement};

#[async_trait]
impl<B: Backend> Tenants for SqlTx<B> {
    async fn get_tenant(&mut self, tenant: &TenantId) -> Result<Option<Tenant>, StoreError> {
        if !self.scope.sees(tenant) {
            return Ok(None);
        }
        self.optional::<TenantRow>(
            Statement::new(format!(
                "select {TENANT_COLUMNS} from tenants where tenant_id = $1"
            ))
            .text(tenant.as_str()),
        )
        .await
    }

    async fn insert_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        self.scope.allow(&tenant.id)?;
        self.refuse_duplicate(
            "tenant",
            Statement::new("select 1 as one from tenant_tombstones where tenant_id = $1")
                .text(tenant.id.as_str()),
        )
        .await?;
        self.execute(
            Statement::new(
                "insert into tenants (tenant_id, display_name, state, created_at, updated_at) \
                 values ($1, $2, $3, $4, $5)",
            )
            .text(tenant.id.as_str())
            .text(tenant.display_name.as_str())
            .text(tenant.state.as_str())
            .time(tenant.created_at)
            .time(tenant.updated_at),
        )
        .await
        .map(|_| ())
    }

    async fn update_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        self.scope.allow(&tenant.id)?;
        let updated = self
            .execute(
                Statement::new(
                    "update tenants set display_name = $2, state = $3, updated_at = $4 \
                     where tenant_id = $1",
                )
                .text(tenant.id.as_str())
                .text(tenant.display_name.as_str())
                .text(tenant.state.as_str())
                .time(tenant.updated_at),
            )
            .await?;
        require_changed(updated, "tenant")
    }

    async fn list_tenants(
        &mut self,
        after: Option<TenantId>,
        limit: usize,
    ) -> Result<Vec<Tenant>, StoreError> {
        self.scope.require_platform()?;
        let c = B::BYTEWISE;
        self.all::<TenantRow>(
            Statement::new(format!(
                "select {TENANT_COLUMNS} from tenants \
                 where $1 is null or tenant_id > $1{c} order by tenant_id{c} limit $2"
            ))
            .text_opt(after.as_ref().map(TenantId::as_str))
            .limit(limit)?,
        )
        .await
    }

    async fn enabled_scopes(
        &mut self,
        tenant: &TenantId,
    ) -> Result<BTreeSet<ScopeName>, StoreError> {
        self.scope.allow(tenant)?;
        let rows = self
            .backend
            .fetch(
                Statement::new("select scope from tenant_scopes where tenant_id = $1")
                    .text(tenant.as_str()),
            )
            .await?;
        let names = rows
            .iter()
            .map(|row| row.text("scope"))
            .collect::<Result<Vec<_>, _>>()?;
        scopes(&names)
    }

    async fn set_enabled_scopes(
        &mut self,
        tenant: &TenantId,
        scope_names: &BTreeSet<ScopeName>,
    ) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        self.require_tenant(tenant).await?;
        self.require_scopes(scope_names.iter().map(ScopeName::as_str))
            .await?;
        self.execute(
            Statement::new("delete from tenant_scopes where tenant_id = $1").text(tenant.as_str()),
        )
        .await?;
        self.execute(
            Statement::new(format!(
                "insert into tenant_scopes (tenant_id, scope) select $1, {}",
                B::each(2)
            ))
            .text(tenant.as_str())
            .names(scope_names.iter().map(ScopeName::as_str)),
        )
        .await
        .map(|_| ())
    }

    async fn list_bindings(&mut self, tenant: &TenantId) -> Result<Vec<RoleBinding>, StoreError> {
        self.scope.allow(tenant)?;
        let scopes = B::list(
            "s.scope",
            "role_binding_scopes s where s.tenant_id = b.tenant_id and s.role = b.role",
        );
        self.all::<BindingRow>(
            Statement::new(format!(
                "select b.role, {scopes} as scopes from role_bindings b \
                 where b.tenant_id = $1 order by b.role{}",
                B::BYTEWISE
            ))
            .text(tenant.as_str()),
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
        self.require_scopes(binding.scopes.iter().map(ScopeName::as_str))
            .await?;
        self.execute(
            Statement::new(
                "insert into role_bindings (tenant_id, role) values ($1, $2) \
                 on conflict (tenant_id, role) do nothing",
            )
            .text(tenant.as_str())
            .text(binding.role.as_str()),
        )
        .await?;
        self.execute(
            Statement::new("delete from role_binding_scopes where tenant_id = $1 and role = $2")
                .text(tenant.as_str())
                .text(binding.role.as_str()),
        )
        .await?;
        self.execute(
            Statement::new(format!(
                "insert into role_binding_scopes (tenant_id, role, scope) select $1, $2, {}",
                B::each(3)
            ))
            .text(tenant.as_str())
            .text(binding.role.as_str())
            .names(binding.scopes.iter().map(ScopeName::as_str)),
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
            Statement::new("delete from role_bindings where tenant_id = $1 and role = $2")
                .text(tenant.as_str())
                .text(role.as_str()),
        )
        .await
        .map(|deleted| deleted > 0)
    }
}
