//! [`Tenants`] on the in-memory state.

use super::*;

#[async_trait]
impl Tenants for MemTx {
    async fn get_tenant(&mut self, tenant: &TenantId) -> Result<Option<Tenant>, StoreError> {
        if matches!(&self.scope, TxScope::Tenant(scoped) if scoped != tenant) {
            // RLS hides other tenants' rows.
            return Ok(None);
        }
        Ok(self.working.tenants.get(tenant).cloned())
    }

    async fn insert_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        self.scope.allow(&tenant.id)?;
        if !self.working.used_tenant_ids.insert(tenant.id.clone()) {
            return Err(StoreError::Duplicate("tenant"));
        }
        self.working
            .tenants
            .insert(tenant.id.clone(), tenant.clone());
        Ok(())
    }

    async fn update_tenant(&mut self, tenant: &Tenant) -> Result<(), StoreError> {
        self.scope.allow(&tenant.id)?;
        match self.working.tenants.get_mut(&tenant.id) {
            Some(stored) => {
                *stored = tenant.clone();
                Ok(())
            }
            None => Err(StoreError::Missing("tenant")),
        }
    }

    async fn list_tenants(
        &mut self,
        after: Option<TenantId>,
        limit: usize,
    ) -> Result<Vec<Tenant>, StoreError> {
        self.scope.require_platform()?;
        Ok(self
            .working
            .tenants
            .values()
            .filter(|tenant| after.as_ref().is_none_or(|after| &tenant.id > after))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn enabled_scopes(
        &mut self,
        tenant: &TenantId,
    ) -> Result<BTreeSet<ScopeName>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .enabled
            .get(tenant)
            .cloned()
            .unwrap_or_default())
    }

    async fn set_enabled_scopes(
        &mut self,
        tenant: &TenantId,
        scopes: &BTreeSet<ScopeName>,
    ) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        if !self.working.tenants.contains_key(tenant) {
            return Err(StoreError::Missing("tenant"));
        }
        self.working.enabled.insert(tenant.clone(), scopes.clone());
        Ok(())
    }

    async fn list_bindings(&mut self, tenant: &TenantId) -> Result<Vec<RoleBinding>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .bindings
            .iter()
            .filter(|((binding_tenant, _), _)| binding_tenant == tenant)
            .map(|((_, role), scopes)| RoleBinding {
                role: role.clone(),
                scopes: scopes.clone(),
            })
            .collect())
    }

    async fn put_binding(
        &mut self,
        tenant: &TenantId,
        binding: &RoleBinding,
    ) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        if !self.working.tenants.contains_key(tenant) {
            return Err(StoreError::Missing("tenant"));
        }
        self.working.bindings.insert(
            (tenant.clone(), binding.role.clone()),
            binding.scopes.clone(),
        );
        Ok(())
    }

    async fn delete_binding(
        &mut self,
        tenant: &TenantId,
        role: &RoleName,
    ) -> Result<bool, StoreError> {
        self.scope.allow(tenant)?;
        // A SCIM group is a row of its role's binding, as in the schema (cascade).
        self.working
            .scim_groups
            .remove(&(tenant.clone(), role.clone()));
        Ok(self
            .working
            .bindings
            .remove(&(tenant.clone(), role.clone()))
            .is_some())
    }
}
