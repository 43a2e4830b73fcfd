//! Tenant use cases: create with a first admin, list, read, update, enabled scopes.

use std::collections::BTreeSet;

use super::members::{resolve_or_invite, UserRef};
use super::{paginate, tenant_target, Caller, Check, Engine, Op};
use crate::audit::Partition;
use crate::catalog::{default_bindings, default_enabled_scopes, scopes};
use crate::cursor::{self, List};
use crate::error::Error;
use crate::event::EventData;
use crate::ids::{DisplayName, RoleName, ScopeName, TenantId, UserId};
use crate::model::{AccountState, Member, Tenant, TenantState};
use crate::ports::{FactsQuery, Page, StoreError, TxScope};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTenant {
    pub id: TenantId,
    pub display_name: DisplayName,
    pub admin: UserRef,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedTenant {
    pub tenant: Tenant,
    pub admin: Member,
    /// Present when the admin was a new email: the one-time invitation token.
    pub invitation_token: Option<String>,
}

/// A partial update of a tenant; each field needs its own scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantChange {
    /// Needs `tenant:write`.
    pub display_name: Option<DisplayName>,
    /// Needs `platform:tenants:write`.
    pub state: Option<TenantState>,
}

impl Engine {
    /// Creates a tenant with its first admin: tenant, account, membership, enabled scopes
    /// and default bindings in one transaction. The first admin is granted by a platform
    /// root and does not need `aal2` (there is no admin yet whose grant it changes).
    ///
    /// # Errors
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `platform:tenants:write`; `tenant_exists`; `user_not_found` when the admin is an
    /// unknown user id; `email_taken` only when a concurrent request took the admin's new
    /// email first; `internal` when the store fails.
    pub async fn create_tenant(
        &self,
        caller: &Caller,
        input: CreateTenant,
    ) -> Result<CreatedTenant, Error> {
        let mut op = self.op(
            caller,
            "tenant.create",
            tenant_target(&input.id),
            Partition::Platform,
        );
        let result = self.create_tenant_in(&mut op, input).await;
        self.finish(op, result).await
    }

    async fn create_tenant_in(
        &self,
        op: &mut Op<'_>,
        input: CreateTenant,
    ) -> Result<CreatedTenant, Error> {
        let mut tx = self.begin(TxScope::Tenant(input.id.clone())).await?;
        self.check(
            tx.as_mut(),
            op,
            Check {
                tenant: None,
                scope: scopes::PLATFORM_TENANTS_WRITE,
                target: None,
                self_service: false,
            },
        )
        .await?;
        let partition = Partition::Tenant(input.id.clone());
        tx.lock_partition(&partition).await?;
        if tx.get_tenant(&input.id).await?.is_some() {
            return Err(Error::TenantExists);
        }
        let now = self.now();
        let tenant = Tenant {
            id: input.id.clone(),
            display_name: input.display_name,
            state: TenantState::Active,
            created_at: now,
            updated_at: now,
        };
        tx.insert_tenant(&tenant)
            .await
            .map_err(|error| match error {
                StoreError::Duplicate(_) => Error::TenantExists,
                other => Error::Store(other),
            })?;
        let (user, invitation_token, mut events) =
            resolve_or_invite(self, tx.as_mut(), &input.admin, &input.id).await?;
        let admin = Member {
            tenant: input.id.clone(),
            user_id: user.id,
            email: user.email.clone(),
            roles: BTreeSet::from([RoleName::tenant_admin()]),
            state: AccountState::Active,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        tx.insert_member(&admin).await?;
        let enabled: BTreeSet<ScopeName> = default_enabled_scopes().into_iter().collect();
        tx.set_enabled_scopes(&input.id, &enabled).await?;
        for binding in default_bindings() {
            tx.put_binding(&input.id, &binding).await?;
        }
        op.partition = partition.clone();
        events.insert(
            0,
            self.event(
                partition.clone(),
                input.id.to_string(),
                EventData::TenantCreated {
                    id: input.id.clone(),
                    display_name: tenant.display_name.clone(),
                },
            ),
        );
        events.push(self.event(
            partition,
            user.id.to_string(),
            EventData::MembershipAdded {
                user_id: user.id,
                roles: BTreeSet::from([RoleName::tenant_admin()]),
            },
        ));
        self.commit(tx, op, events).await?;
        Ok(CreatedTenant {
            tenant,
            admin,
            invitation_token,
        })
    }

    /// The tenants the caller may see: all of them for platform role holders, the
    /// caller's own for members, the key's tenant for an API key.
    ///
    /// # Errors
    /// `forbidden` (`subject_suspended`) when the caller's user is platform-suspended;
    /// `invalid_cursor` for a cursor this list did not give out; `unauthenticated` when the
    /// caller's user is gone; `internal` when the store fails.
    pub async fn list_tenants(
        &self,
        caller: &Caller,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Tenant>, Error> {
        let after = after
            .map(|cursor| {
                let position = cursor::decode(List::Tenants, Partition::Platform.name(), cursor)?;
                TenantId::parse(&position).map_err(|_| Error::InvalidCursor)
            })
            .transpose()?;
        let after = after.as_ref();
        let mut tx = self.begin(TxScope::Platform).await?;
        let rows = match &caller.principal {
            super::Principal::ApiKey { tenant, .. } | super::Principal::Client { tenant, .. } => {
                let tenant = tx.get_tenant(tenant).await?;
                tenant
                    .into_iter()
                    .filter(|tenant| after.is_none_or(|after| &tenant.id > after))
                    .collect()
            }
            super::Principal::User { user_id, .. } => {
                let user = tx.get_user(user_id).await?.ok_or(Error::Unauthenticated)?;
                Self::refuse_suspended(&user)?;
                if user.platform_roles.is_empty() {
                    let mut tenants = Vec::new();
                    for member in tx.memberships_of(user_id).await? {
                        if after.is_none_or(|after| &member.tenant > after) {
                            if let Some(tenant) = tx.get_tenant(&member.tenant).await? {
                                tenants.push(tenant);
                            }
                        }
                    }
                    tenants.sort_by(|left, right| left.id.cmp(&right.id));
                    tenants.truncate(limit + 1);
                    tenants
                } else {
                    tx.list_tenants(after.cloned(), limit + 1).await?
                }
            }
        };
        Ok(paginate(rows, limit, |tenant: &Tenant| {
            cursor::encode(
                List::Tenants,
                Partition::Platform.name(),
                tenant.id.as_str(),
            )
        }))
    }

    /// Whether the caller may learn that the tenant exists: a member (in any account
    /// state), a platform role holder, or one of the tenant's keys. For everyone else a
    /// malformed header, precondition or body on a tenant route must answer like a
    /// missing tenant (SPEC §3.6); the HTTP layer asks only when a request fails so.
    ///
    /// # Errors
    /// Only a failing store (`internal`).
    pub async fn sees_tenant(&self, caller: &Caller, tenant: &TenantId) -> Result<bool, Error> {
        let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
        let facts = self
            .facts_of(
                tx.as_mut(),
                &caller.principal,
                &FactsQuery {
                    tenant: Some(tenant.clone()),
                    subject: caller.principal.subject(),
                    scope: ScopeName::parse(scopes::TENANT_READ)?,
                    target: None,
                },
            )
            .await?;
        Ok(facts.tenant_state.is_some() && !super::outsider(&facts, tenant))
    }

    /// Reads a tenant (`tenant:read`).
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `tenant:read`; `internal` when the store fails.
    pub async fn get_tenant(&self, caller: &Caller, tenant: &TenantId) -> Result<Tenant, Error> {
        let mut op = self.op(
            caller,
            "tenant.read",
            tenant_target(tenant),
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                Check {
                    tenant: Some(tenant),
                    scope: scopes::TENANT_READ,
                    target: None,
                    self_service: false,
                },
            )
            .await?;
            tx.get_tenant(tenant).await?.ok_or(Error::TenantNotFound)
        }
        .await;
        self.finish(op, result).await
    }

    /// Changes the display name (`tenant:write`) and/or the state (`platform:tenants:write`).
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `tenant:write` (for a display name or an empty change) or `platform:tenants:write`
    /// (for a state); `last_tenant_admin` for reactivating a tenant with no active admin;
    /// `internal` when the store fails.
    pub async fn update_tenant(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        change: TenantChange,
    ) -> Result<Tenant, Error> {
        let mut op = self.op(
            caller,
            "tenant.update",
            tenant_target(tenant),
            Partition::Tenant(tenant.clone()),
        );
        let result = self.update_tenant_in(&mut op, tenant, change).await;
        self.finish(op, result).await
    }

    async fn update_tenant_in(
        &self,
        op: &mut Op<'_>,
        tenant_id: &TenantId,
        change: TenantChange,
    ) -> Result<Tenant, Error> {
        let mut tx = self.begin(TxScope::Tenant(tenant_id.clone())).await?;
        if change.display_name.is_none() && change.state.is_none() {
            // Nothing to change: still a read that needs the caller to see the tenant.
            self.check(
                tx.as_mut(),
                op,
                tenant_check(tenant_id, scopes::TENANT_WRITE),
            )
            .await?;
        }
        if change.display_name.is_some() {
            self.check(
                tx.as_mut(),
                op,
                tenant_check(tenant_id, scopes::TENANT_WRITE),
            )
            .await?;
        }
        if change.state.is_some() {
            self.check(
                tx.as_mut(),
                op,
                tenant_check(tenant_id, scopes::PLATFORM_TENANTS_WRITE),
            )
            .await?;
        }
        let partition = Partition::Tenant(tenant_id.clone());
        tx.lock_partition(&partition).await?;
        let mut tenant = tx
            .get_tenant(tenant_id)
            .await?
            .ok_or(Error::TenantNotFound)?;
        let display_name = change
            .display_name
            .filter(|display_name| *display_name != tenant.display_name);
        let state = change.state.filter(|state| *state != tenant.state);
        if let Some(display_name) = &display_name {
            tenant.display_name = display_name.clone();
        }
        // An active tenant keeps an active admin (SPEC §3.3): while it was suspended its
        // admins may have gone, and reactivating it then would break that; the partition
        // lock holds off a concurrent removal.
        if state == Some(TenantState::Active) && tx.count_active_admins(tenant_id).await? == 0 {
            return Err(Error::LastTenantAdmin);
        }
        if let Some(state) = state {
            tenant.state = state;
        }
        // Setting what is already set is audited but changes and publishes nothing.
        let mut events = Vec::new();
        if display_name.is_some() || state.is_some() {
            tenant.updated_at = self.now();
            tx.update_tenant(&tenant).await?;
            events.push(self.event(
                partition,
                tenant_id.to_string(),
                EventData::TenantUpdated {
                    display_name,
                    state,
                },
            ));
        }
        self.commit(tx, op, events).await?;
        Ok(tenant)
    }

    /// The scopes enabled for a tenant (`roles:read`).
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `roles:read`; `internal` when the store fails.
    pub async fn enabled_scopes(
        &self,
        caller: &Caller,
        tenant: &TenantId,
    ) -> Result<BTreeSet<ScopeName>, Error> {
        let mut op = self.op(
            caller,
            "tenant.scopes.read",
            tenant_target(tenant),
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                tenant_check(tenant, scopes::ROLES_READ),
            )
            .await?;
            Ok(tx.enabled_scopes(tenant).await?)
        }
        .await;
        self.finish(op, result).await
    }

    /// Replaces the scopes enabled for a tenant (`platform:tenants:write`). Each must be in
    /// the catalog and tenant-assignable. Bindings that name a scope disabled here stay,
    /// inert, and are reported by the diagnostics.
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `platform:tenants:write`; `unknown_scope` or `scope_not_assignable` for a scope that
    /// cannot be enabled; `internal` when the store fails.
    pub async fn set_enabled_scopes(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        scope_names: BTreeSet<ScopeName>,
    ) -> Result<BTreeSet<ScopeName>, Error> {
        let mut op = self.op(
            caller,
            "tenant.scopes.set",
            tenant_target(tenant),
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                tenant_check(tenant, scopes::PLATFORM_TENANTS_WRITE),
            )
            .await?;
            let partition = Partition::Tenant(tenant.clone());
            tx.lock_partition(&partition).await?;
            for name in &scope_names {
                let entry = tx
                    .get_catalog_scope(name)
                    .await?
                    .ok_or_else(|| Error::UnknownScope(name.to_string()))?;
                if entry.platform_only {
                    return Err(Error::ScopeNotAssignable(name.to_string()));
                }
            }
            // Setting what is already set is audited but changes and publishes nothing.
            let mut events = Vec::new();
            if tx.enabled_scopes(tenant).await? != scope_names {
                tx.set_enabled_scopes(tenant, &scope_names).await?;
                events.push(self.event(
                    partition,
                    tenant.to_string(),
                    EventData::TenantScopesChanged {
                        scopes: scope_names.clone(),
                    },
                ));
            }
            self.commit(tx, &op, events).await?;
            Ok(scope_names)
        }
        .await;
        self.finish(op, result).await
    }
}

/// A check of a tenant scope with no target.
pub(super) fn tenant_check<'a>(tenant: &'a TenantId, scope: &'static str) -> Check<'a> {
    Check {
        tenant: Some(tenant),
        scope,
        target: None,
        self_service: false,
    }
}

/// The check of an operation on one member that the member may also do on themselves
/// (`scope` for others, self-service for their own).
pub(super) fn member_or_self_check<'a>(
    tenant: &'a TenantId,
    scope: &'static str,
    member: &'a UserId,
) -> Check<'a> {
    Check {
        tenant: Some(tenant),
        scope,
        target: Some(member),
        self_service: true,
    }
}
