//! The facts of one decision, assembled once from the row both stores return.
//!
//! PostgreSQL reads the row with its SQL function `authz_facts_rows` (also inside
//! `authorize_snapshot`), SQLite with one statement of its own; both return the columns
//! of [`FactsRow`] with the same meaning, and [`FactsRow::into_facts`] turns either into
//! the domain's [`AuthzFacts`]. The roles that grant the scope are those the account
//! holds among the tenant's roles bound to it (`scope_roles`), intersected here, not in
//! SQL, so the two stores cannot disagree about them.

use std::sync::Arc;

use domain::authz::{AccountFacts, AuthzFacts, RoleSet, SubjectFacts, TargetFacts};
use domain::ids::UserId;
use domain::ports::{StoreError, SubjectRef, TxScope};

use crate::rows::{
    account_state, platform_roles, roles, scopes, tenant_id, tenant_state, user_state, ScopeRow,
    Shape,
};
use crate::Columns;

/// What one decision reads. A list column is `NULL` when its row does not exist (no
/// such user, key or target user), an empty list when the row has no names.
#[derive(Debug)]
pub struct FactsRow {
    /// The tenant's state, when the query names an existing tenant.
    pub tenant_state: Option<String>,
    /// The subject user's state and platform roles, when the subject is an existing user.
    pub user_state: Option<String>,
    pub user_platform_roles: Option<Vec<String>>,
    /// The subject key's tenant, scopes and whether it is revoked, when the subject is a
    /// key the store shows this transaction.
    pub key_tenant: Option<String>,
    pub key_scopes: Option<Vec<String>>,
    pub key_revoked: Option<bool>,
    /// The subject's account in the tenant and its roles.
    pub account_state: Option<String>,
    pub account_roles: Vec<String>,
    /// The tenant's roles bound to the scope.
    pub scope_roles: Vec<String>,
    /// The scope's catalog entry, when it is in the catalog.
    pub scope: Option<ScopeRow>,
    /// Whether the tenant enabled the scope.
    pub scope_enabled: bool,
    /// The target user's platform roles, when the target user exists.
    pub target_platform_roles: Option<Vec<String>>,
    /// The target's account state in the tenant.
    pub target_account_state: Option<String>,
}

impl FactsRow {
    /// Reads the columns `authz_facts_rows` returns (SQLite's facts query names them
    /// alike).
    ///
    /// # Errors
    /// `Unavailable` when a column is missing or of another type.
    pub fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        let scope = match row.text_opt("scope_name")? {
            Some(name) => Some(ScopeRow {
                name,
                description: row.text("scope_description")?,
                platform_only: row.flag("scope_platform_only")?,
                min_assurance: row.text("scope_min_assurance")?,
            }),
            None => None,
        };
        Ok(Self {
            tenant_state: row.text_opt("tenant_state")?,
            user_state: row.text_opt("user_state")?,
            user_platform_roles: row.names_opt("user_platform_roles")?,
            key_tenant: row.text_opt("key_tenant")?,
            key_scopes: row.names_opt("key_scopes")?,
            key_revoked: row.flag_opt("key_revoked")?,
            account_state: row.text_opt("account_state")?,
            account_roles: row.names("account_roles")?,
            scope_roles: row.names("scope_roles")?,
            scope,
            scope_enabled: row.flag("scope_enabled")?,
            target_platform_roles: row.names_opt("target_platform_roles")?,
            target_account_state: row.text_opt("target_account_state")?,
        })
    }

    /// The domain's facts about `subject` (and `target`, when one is named), as the
    /// transaction of `scope` may see them: a key of another tenant is no subject at all,
    /// as row-level security would hide it (a store without row-level security relies
    /// on this; PostgreSQL never returns such a key).
    ///
    /// # Errors
    /// `Unavailable` (corrupt) for a value the domain refuses.
    pub fn into_facts(
        self,
        subject: &SubjectRef,
        target: Option<UserId>,
        scope: &TxScope,
    ) -> Result<AuthzFacts, StoreError> {
        let subject = match subject {
            SubjectRef::User(user_id) => match (self.user_state, self.user_platform_roles) {
                (Some(state), Some(names)) => Some(SubjectFacts::User {
                    user_id: *user_id,
                    state: user_state(&state)?,
                    platform_roles: platform_roles(&names)?,
                }),
                _ => None,
            },
            SubjectRef::ApiKey(key_id) => {
                match (self.key_tenant, self.key_scopes, self.key_revoked) {
                    (Some(tenant), Some(key_scopes), Some(false)) => {
                        let tenant = tenant_id(&tenant)?;
                        if scope.sees(&tenant) {
                            Some(SubjectFacts::ApiKey {
                                key_id: *key_id,
                                tenant,
                                scopes: scopes(&key_scopes)?,
                            })
                        } else {
                            None
                        }
                    }
                    _ => None,
                }
            }
        };
        let account_roles = RoleSet::new(roles(&self.account_roles)?);
        let bound_roles = account_roles.intersection(&RoleSet::new(roles(&self.scope_roles)?));
        let account = match self.account_state {
            Some(state) => Some(AccountFacts {
                state: account_state(&state)?,
                roles: account_roles,
            }),
            None => None,
        };
        let target = match (target, self.target_platform_roles) {
            (Some(user_id), Some(names)) => Some(TargetFacts {
                user_id,
                account_state: self
                    .target_account_state
                    .as_deref()
                    .map(account_state)
                    .transpose()?,
                platform_roles: platform_roles(&names)?,
            }),
            _ => None,
        };
        Ok(AuthzFacts {
            tenant_state: self.tenant_state.as_deref().map(tenant_state).transpose()?,
            subject,
            account,
            scope: self
                .scope
                .map(ScopeRow::into_value)
                .transpose()?
                .map(Arc::new),
            scope_enabled: self.scope_enabled,
            bound_roles,
            target,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use domain::ids::{KeyId, RoleName, TenantId};
    use uuid::Uuid;

    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    fn row() -> FactsRow {
        FactsRow {
            tenant_state: Some("active".to_owned()),
            user_state: Some("active".to_owned()),
            user_platform_roles: Some(Vec::new()),
            key_tenant: Some("acme".to_owned()),
            key_scopes: Some(names(&["tenant:read"])),
            key_revoked: Some(false),
            account_state: Some("active".to_owned()),
            account_roles: names(&["editor", "viewer"]),
            scope_roles: names(&["editor", "auditor"]),
            scope: None,
            scope_enabled: true,
            target_platform_roles: None,
            target_account_state: None,
        }
    }

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    #[test]
    fn the_roles_that_grant_a_scope_are_the_accounts_among_those_bound_to_it() {
        let user = SubjectRef::User(UserId::from_generated(Uuid::nil()));
        let facts = row().into_facts(&user, None, &TxScope::Platform).unwrap();
        assert_eq!(
            facts.bound_roles,
            [RoleName::parse("editor").unwrap()].into_iter().collect()
        );
        assert_eq!(facts.account.unwrap().roles.len(), 2);
    }

    #[test]
    fn a_key_of_another_tenant_is_no_subject_and_a_revoked_key_neither() {
        let key = SubjectRef::ApiKey(KeyId::from_generated(Uuid::nil()));
        let own = row()
            .into_facts(&key, None, &TxScope::Tenant(tenant("acme")))
            .unwrap();
        assert!(own.subject.is_some());
        let other = row()
            .into_facts(&key, None, &TxScope::Tenant(tenant("globex")))
            .unwrap();
        assert_eq!(other.subject, None);
        let revoked = FactsRow {
            key_revoked: Some(true),
            ..row()
        }
        .into_facts(&key, None, &TxScope::Platform)
        .unwrap();
        assert_eq!(revoked.subject, None);
    }

    #[test]
    fn a_missing_user_or_target_is_none_not_an_error() {
        let user_id = UserId::from_generated(Uuid::nil());
        let facts = FactsRow {
            user_state: None,
            user_platform_roles: None,
            account_state: None,
            account_roles: Vec::new(),
            ..row()
        }
        .into_facts(
            &SubjectRef::User(user_id),
            Some(user_id),
            &TxScope::Platform,
        )
        .unwrap();
        assert_eq!(facts.subject, None);
        assert_eq!(facts.account, None);
        assert_eq!(facts.target, None);
        assert!(facts.bound_roles.is_empty());
    }

    #[test]
    fn a_value_the_domain_refuses_is_unavailable() {
        let user = SubjectRef::User(UserId::from_generated(Uuid::nil()));
        let facts = FactsRow {
            tenant_state: Some("bogus".to_owned()),
            ..row()
        }
        .into_facts(&user, None, &TxScope::Platform);
        assert!(matches!(facts, Err(StoreError::Unavailable(_))));
    }
}
