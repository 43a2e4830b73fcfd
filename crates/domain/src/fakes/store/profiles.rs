//! [`Profiles`] on the in-memory state.

use super::*;

#[async_trait]
impl Profiles for MemTx {
    async fn member_values(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(values_where(
            &self.working.member_values,
            |(value_tenant, value_user, key)| {
                (value_tenant == tenant && value_user == user).then(|| key.clone())
            },
        ))
    }

    async fn put_member_value(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        key: &ProfileKey,
        value: &ProfileValue,
    ) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        if !self.working.members.contains_key(&(tenant.clone(), *user)) {
            return Err(StoreError::Missing("member"));
        }
        self.working
            .member_values
            .insert((tenant.clone(), *user, key.clone()), value.clone());
        Ok(())
    }

    async fn delete_member_value(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        key: &ProfileKey,
    ) -> Result<bool, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .member_values
            .remove(&(tenant.clone(), *user, key.clone()))
            .is_some())
    }

    async fn tenant_defaults(
        &mut self,
        tenant: &TenantId,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(values_where(
            &self.working.tenant_defaults,
            |(value_tenant, key)| (value_tenant == tenant).then(|| key.clone()),
        ))
    }

    async fn put_tenant_default(
        &mut self,
        tenant: &TenantId,
        key: &ProfileKey,
        value: &ProfileValue,
    ) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        if !self.working.tenants.contains_key(tenant) {
            return Err(StoreError::Missing("tenant"));
        }
        self.working
            .tenant_defaults
            .insert((tenant.clone(), key.clone()), value.clone());
        Ok(())
    }

    async fn delete_tenant_default(
        &mut self,
        tenant: &TenantId,
        key: &ProfileKey,
    ) -> Result<bool, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .tenant_defaults
            .remove(&(tenant.clone(), key.clone()))
            .is_some())
    }

    async fn platform_values(
        &mut self,
        user: &UserId,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
        Ok(values_where(
            &self.working.platform_values,
            |(value_user, key)| (value_user == user).then(|| key.clone()),
        ))
    }

    async fn put_platform_value(
        &mut self,
        user: &UserId,
        key: &ProfileKey,
        value: &ProfileValue,
    ) -> Result<(), StoreError> {
        if !self.working.users.contains_key(user) {
            return Err(StoreError::Missing("user"));
        }
        self.working
            .platform_values
            .insert((*user, key.clone()), value.clone());
        Ok(())
    }

    async fn delete_platform_value(
        &mut self,
        user: &UserId,
        key: &ProfileKey,
    ) -> Result<bool, StoreError> {
        Ok(self
            .working
            .platform_values
            .remove(&(*user, key.clone()))
            .is_some())
    }
}
