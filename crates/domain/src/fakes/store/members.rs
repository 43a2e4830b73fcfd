//! [`Members`] on the in-memory state.

use super::*;

#[async_trait]
impl Members for MemTx {
    async fn get_member(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Option<Member>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self.working.member(tenant, user))
    }

    async fn list_members(
        &mut self,
        tenant: &TenantId,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .members_of(tenant)
            .into_iter()
            .filter(|member| after.is_none_or(|after| member.user_id > after))
            .take(limit)
            .collect())
    }

    async fn insert_member(&mut self, member: &Member) -> Result<(), StoreError> {
        self.scope.allow(&member.tenant)?;
        if !self.working.tenants.contains_key(&member.tenant) {
            return Err(StoreError::Missing("tenant"));
        }
        if !self.working.users.contains_key(&member.user_id) {
            return Err(StoreError::Missing("user"));
        }
        let key = (member.tenant.clone(), member.user_id);
        if self.working.members.contains_key(&key) {
            return Err(StoreError::Duplicate("member"));
        }
        self.working.members.insert(
            key,
            MemberRow {
                roles: member.roles.clone(),
                state: member.state,
                created_at: member.created_at,
                updated_at: member.updated_at,
                version: member.version,
            },
        );
        Ok(())
    }

    async fn update_member(&mut self, member: &Member) -> Result<(), StoreError> {
        self.scope.allow(&member.tenant)?;
        match self
            .working
            .members
            .get_mut(&(member.tenant.clone(), member.user_id))
        {
            Some(row) => {
                row.roles.clone_from(&member.roles);
                row.state = member.state;
                row.updated_at = member.updated_at;
                row.version = member.version;
                Ok(())
            }
            None => Err(StoreError::Missing("member")),
        }
    }

    async fn delete_member(&mut self, tenant: &TenantId, user: &UserId) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        if self
            .working
            .members
            .remove(&(tenant.clone(), *user))
            .is_none()
        {
            return Err(StoreError::Missing("member"));
        }
        self.working
            .member_values
            .retain(|(value_tenant, value_user, _), _| {
                !(value_tenant == tenant && value_user == user)
            });
        self.working
            .scim_identities
            .remove(&(tenant.clone(), *user));
        // Grants and consents reference the account, as in the schema (cascade).
        self.working
            .grants
            .retain(|_, grant| !(&grant.tenant == tenant && &grant.user == user));
        self.working
            .consents
            .retain(|(consent_tenant, consent_user, _), _| {
                !(consent_tenant == tenant && consent_user == user)
            });
        // A key outlives its creator's membership; it only forgets who made it.
        for (key, _) in self.working.api_keys.values_mut() {
            if &key.tenant == tenant && key.created_by.as_ref() == Some(user) {
                key.created_by = None;
            }
        }
        Ok(())
    }

    async fn count_active_admins(&mut self, tenant: &TenantId) -> Result<u64, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .members
            .iter()
            .filter(|((member_tenant, _), row)| {
                member_tenant == tenant
                    && row.state == AccountState::Active
                    && row.roles.iter().any(RoleName::is_tenant_admin)
            })
            .count() as u64)
    }

    async fn memberships_of(&mut self, user: &UserId) -> Result<Vec<Member>, StoreError> {
        self.scope.require_platform()?;
        Ok(self
            .working
            .members
            .keys()
            .filter(|(_, member_user)| member_user == user)
            .filter_map(|(tenant, member_user)| self.working.member(tenant, member_user))
            .collect())
    }
}
