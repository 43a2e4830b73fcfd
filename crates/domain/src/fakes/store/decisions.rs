//! [`Decisions`] on the in-memory state: the facts of a decision, read as the SQL stores read them.

use std::sync::Arc;

use super::*;
use crate::authz::RoleSet;

#[async_trait]
impl Decisions for MemTx {
    async fn authz_facts(&mut self, query: &FactsQuery) -> Result<AuthzFacts, StoreError> {
        if let Some(tenant) = &query.tenant {
            self.scope.allow(tenant)?;
        }
        let state = &self.working;
        let tenant_state = query
            .tenant
            .as_ref()
            .and_then(|tenant| state.tenants.get(tenant))
            .map(|tenant| tenant.state);
        let (subject, subject_user) = match &query.subject {
            SubjectRef::User(user_id) => (
                state.users.get(user_id).map(|user| SubjectFacts::User {
                    user_id: *user_id,
                    state: user.state,
                    platform_roles: user.platform_roles.clone(),
                }),
                Some(*user_id),
            ),
            SubjectRef::ApiKey(key_id) => (
                state
                    .api_keys
                    .get(key_id)
                    .filter(|(key, _)| key.revoked_at.is_none() && self.scope.sees(&key.tenant))
                    .map(|(key, _)| SubjectFacts::ApiKey {
                        key_id: key.id,
                        tenant: key.tenant.clone(),
                        scopes: key.scopes.clone(),
                    }),
                None,
            ),
        };
        let account = match (&query.tenant, subject_user) {
            (Some(tenant), Some(user)) => {
                state
                    .members
                    .get(&(tenant.clone(), user))
                    .map(|row| AccountFacts {
                        state: row.state,
                        roles: RoleSet::new(row.roles.iter().cloned()),
                    })
            }
            _ => None,
        };
        let bound_roles = match (&query.tenant, &account) {
            (Some(tenant), Some(account)) => account
                .roles
                .iter()
                .filter(|role| {
                    state
                        .bindings
                        .get(&(tenant.clone(), (*role).clone()))
                        .is_some_and(|scopes| scopes.contains(&query.scope))
                })
                .cloned()
                .collect(),
            _ => RoleSet::default(),
        };
        let scope_enabled = query.tenant.as_ref().is_some_and(|tenant| {
            state
                .enabled
                .get(tenant)
                .is_some_and(|scopes| scopes.contains(&query.scope))
        });
        let target = query.target.and_then(|target| {
            let user = state.users.get(&target)?;
            Some(TargetFacts {
                user_id: target,
                account_state: query.tenant.as_ref().and_then(|tenant| {
                    state
                        .members
                        .get(&(tenant.clone(), target))
                        .map(|row| row.state)
                }),
                platform_roles: user.platform_roles.clone(),
            })
        });
        Ok(AuthzFacts {
            tenant_state,
            subject,
            account,
            scope: state.catalog.get(&query.scope).cloned().map(Arc::new),
            scope_enabled,
            bound_roles,
            target,
        })
    }
}
