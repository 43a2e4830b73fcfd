//! Role binding use cases: list, put and delete a tenant's role → scopes bindings.

use std::collections::BTreeSet;

use super::tenants::tenant_check;
use super::{Caller, Engine, Op};
use crate::audit::{AuditTarget, Partition};
use crate::authz::Reason;
use crate::catalog::scopes;
use crate::error::Error;
use crate::event::EventData;
use crate::ids::{Assurance, RoleName, ScopeName, TenantId};
use crate::model::RoleBinding;
use crate::ports::TxScope;

fn role_target(role: &RoleName) -> AuditTarget {
    AuditTarget {
        kind: "role",
        id: role.to_string(),
    }
}

impl Engine {
    /// The tenant's bindings, with `tenant_admin` shown bound to every enabled scope.
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `roles:read`; `internal` when the store fails.
    pub async fn list_roles(
        &self,
        caller: &Caller,
        tenant: &TenantId,
    ) -> Result<Vec<RoleBinding>, Error> {
        let mut op = self.op(
            caller,
            "role.list",
            super::tenant_target(tenant),
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
            let mut bindings = vec![RoleBinding {
                role: RoleName::tenant_admin(),
                scopes: tx.enabled_scopes(tenant).await?,
            }];
            bindings.extend(tx.list_bindings(tenant).await?);
            Ok(bindings)
        }
        .await;
        self.finish(op, result).await
    }

    /// Binding changes need `roles:write` and `aal2`, whatever the catalog says.
    fn require_aal2_for_bindings(op: &mut Op<'_>) -> Result<(), Error> {
        if op.caller.principal.assurance() < Assurance::Aal2 {
            op.denied_by = Some(Reason::InsufficientAssurance.as_str());
            return Err(Error::Forbidden(Reason::InsufficientAssurance));
        }
        Ok(())
    }

    /// Sets the scopes a role grants. Each scope must be in the catalog, assignable, and
    /// enabled for the tenant; `tenant_admin` cannot be bound (it holds every enabled scope).
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `roles:write`, below `aal2` (`insufficient_assurance`, even for a root), or
    /// (`exceeds_caller`) for newly bound scopes the caller does not hold;
    /// `invalid_request` for `tenant_admin`; `unknown_scope`, `scope_not_assignable` or
    /// `scope_not_enabled` for a scope a binding cannot list; `internal` when the store
    /// fails.
    pub async fn put_role(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        role: &RoleName,
        scope_names: BTreeSet<ScopeName>,
    ) -> Result<RoleBinding, Error> {
        let mut op = self.op(
            caller,
            "role.put",
            role_target(role),
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                tenant_check(tenant, scopes::ROLES_WRITE),
            )
            .await?;
            Self::require_aal2_for_bindings(&mut op)?;
            if role.is_tenant_admin() {
                return Err(Error::InvalidRequest(
                    "tenant_admin is bound implicitly to every enabled scope".to_owned(),
                ));
            }
            let partition = Partition::Tenant(tenant.clone());
            tx.lock_partition(&partition).await?;
            super::api_keys::credential_scopes_assignable(tx.as_mut(), tenant, &scope_names)
                .await?;
            let binding = RoleBinding {
                role: role.clone(),
                scopes: scope_names,
            };
            let current = tx
                .list_bindings(tenant)
                .await?
                .into_iter()
                .find(|existing| &existing.role == role);
            // A binding grants its scopes to every holder of the role: nobody binds a
            // scope they are not allowed themselves (SPEC §3.3).
            let added: BTreeSet<ScopeName> = binding
                .scopes
                .iter()
                .filter(|scope| {
                    current
                        .as_ref()
                        .is_none_or(|current| !current.scopes.contains(*scope))
                })
                .cloned()
                .collect();
            self.require_caller_holds(tx.as_mut(), &mut op, tenant, &added)
                .await?;
            let mut events = Vec::new();
            if current.as_ref() != Some(&binding) {
                tx.put_binding(tenant, &binding).await?;
                events.push(self.event(
                    partition,
                    role.to_string(),
                    EventData::RoleBindingChanged {
                        role: role.clone(),
                        scopes: Some(binding.scopes.clone()),
                    },
                ));
            }
            self.commit(tx, &op, events).await?;
            Ok(binding)
        }
        .await;
        self.finish(op, result).await
    }

    /// Deletes a role's binding; members keep the role, which then grants nothing.
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `roles:write` or below `aal2`; `not_found` when the role has no binding (always for
    /// `tenant_admin`); `internal` when the store fails.
    pub async fn delete_role(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        role: &RoleName,
    ) -> Result<(), Error> {
        let mut op = self.op(
            caller,
            "role.delete",
            role_target(role),
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                tenant_check(tenant, scopes::ROLES_WRITE),
            )
            .await?;
            Self::require_aal2_for_bindings(&mut op)?;
            let partition = Partition::Tenant(tenant.clone());
            tx.lock_partition(&partition).await?;
            if !tx.delete_binding(tenant, role).await? {
                return Err(Error::NotFound);
            }
            let event = self.event(
                partition,
                role.to_string(),
                EventData::RoleBindingChanged {
                    role: role.clone(),
                    scopes: None,
                },
            );
            self.commit(tx, &op, vec![event]).await
        }
        .await;
        self.finish(op, result).await
    }
}
