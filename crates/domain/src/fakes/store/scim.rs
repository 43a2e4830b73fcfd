//! [`Scim`] on the in-memory state: identities by tenant and user, groups by tenant and
//! role; a User filter is evaluated with the reference evaluator itself.

use super::*;
use crate::ports::Scim;
use crate::scim::filter::matches;
use crate::scim::model::{name_key, ScimGroup, ScimIdentity, UserQuery, UserRecord};

#[async_trait]
impl Scim for MemTx {
    async fn get_scim_identity(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Option<ScimIdentity>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .scim_identities
            .get(&(tenant.clone(), *user))
            .cloned())
    }

    async fn put_scim_identity(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        identity: &ScimIdentity,
    ) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        if !self.working.members.contains_key(&(tenant.clone(), *user)) {
            return Err(StoreError::Missing("member"));
        }
        let key = name_key(&identity.user_name);
        let taken =
            self.working
                .scim_identities
                .iter()
                .any(|((other_tenant, other_user), other)| {
                    other_tenant == tenant
                        && other_user != user
                        && name_key(&other.user_name) == key
                });
        if taken {
            return Err(StoreError::Duplicate("scim user name"));
        }
        self.working
            .scim_identities
            .insert((tenant.clone(), *user), identity.clone());
        Ok(())
    }

    async fn find_scim_users(
        &mut self,
        tenant: &TenantId,
        query: &UserQuery,
    ) -> Result<(u64, Vec<UserId>), StoreError> {
        self.scope.allow(tenant)?;
        let display_key = ProfileKey::parse("display_name").ok();
        let selected: Vec<UserId> = self
            .working
            .members_of(tenant)
            .iter()
            .filter(|member| {
                let identity = self
                    .working
                    .scim_identities
                    .get(&(tenant.clone(), member.user_id));
                let display_name = display_key.as_ref().and_then(|key| {
                    self.working
                        .member_values
                        .get(&(tenant.clone(), member.user_id, key.clone()))
                        .and_then(|value| value.as_json().as_str())
                });
                let record = UserRecord {
                    member,
                    identity,
                    display_name,
                };
                query
                    .filter
                    .as_ref()
                    .is_none_or(|filter| matches(filter, &record))
            })
            .map(|member| member.user_id)
            .collect();
        let total = selected.len() as u64;
        let page = selected
            .into_iter()
            .skip(usize::try_from(query.offset).unwrap_or(usize::MAX))
            .take(usize::try_from(query.count).unwrap_or(usize::MAX))
            .collect();
        Ok((total, page))
    }

    async fn list_scim_groups(&mut self, tenant: &TenantId) -> Result<Vec<ScimGroup>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .scim_groups
            .iter()
            .filter(|((group_tenant, _), _)| group_tenant == tenant)
            .map(|(_, group)| group.clone())
            .collect())
    }

    async fn put_scim_group(&mut self, group: &ScimGroup) -> Result<(), StoreError> {
        self.scope.allow(&group.tenant)?;
        if !self
            .working
            .bindings
            .contains_key(&(group.tenant.clone(), group.role.clone()))
        {
            return Err(StoreError::Missing("role"));
        }
        let key = name_key(&group.display_name);
        let taken = self
            .working
            .scim_groups
            .iter()
            .any(|((tenant, role), other)| {
                tenant == &group.tenant
                    && role != &group.role
                    && name_key(&other.display_name) == key
            });
        if taken {
            return Err(StoreError::Duplicate("scim group name"));
        }
        self.working
            .scim_groups
            .insert((group.tenant.clone(), group.role.clone()), group.clone());
        Ok(())
    }

    async fn role_holders(
        &mut self,
        tenant: &TenantId,
        role: &RoleName,
    ) -> Result<Vec<(UserId, String)>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .members
            .iter()
            .filter(|((member_tenant, _), row)| member_tenant == tenant && row.roles.contains(role))
            .filter_map(|((_, user), _)| {
                let user_name = match self.working.scim_identities.get(&(tenant.clone(), *user)) {
                    Some(identity) => identity.user_name.clone(),
                    None => self.working.users.get(user)?.email.as_str().to_owned(),
                };
                Some((*user, user_name))
            })
            .collect())
    }
}
