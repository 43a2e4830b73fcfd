//! Tenant API key use cases: create (secret shown once), list, revoke.

use std::collections::BTreeSet;

use super::tenants::tenant_check;
use super::{hash_token, Caller, Check, Engine, Op};
use crate::audit::{AuditTarget, Partition};
use crate::catalog::scopes;
use crate::error::Error;
use crate::event::EventData;
use crate::ids::{DisplayName, KeyId, ScopeName, TenantId};
use crate::model::ApiKey;
use crate::ports::TxScope;

/// Every API key secret starts with this prefix, so tokens can be told apart.
pub const API_KEY_PREFIX: &str = "uek_";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    pub name: DisplayName,
    pub scopes: BTreeSet<ScopeName>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedApiKey {
    pub key: ApiKey,
    /// The secret, shown this once; only its hash is stored.
    pub secret: String,
}

fn key_target(key: &KeyId) -> AuditTarget {
    AuditTarget {
        kind: "api_key",
        id: key.to_string(),
    }
}

impl Engine {
    /// Creates a key restricted to `scopes` (`api_keys:write`). Each scope must be in the
    /// catalog, assignable and enabled, and the caller must hold it: a key never carries
    /// more than its creator could do.
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `api_keys:write`, or (`exceeds_caller`) when the caller does not hold one of
    /// `scopes`; `invalid_request` for no scopes; `unknown_scope`, `scope_not_assignable`
    /// or `scope_not_enabled` for a scope a key cannot carry; `internal` when the store
    /// fails.
    pub async fn create_api_key(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        input: NewApiKey,
    ) -> Result<CreatedApiKey, Error> {
        let key_id = KeyId::from_generated(self.new_uuid());
        let mut op = self.op(
            caller,
            "api_key.create",
            key_target(&key_id),
            Partition::Tenant(tenant.clone()),
        );
        let result = self.create_api_key_in(&mut op, tenant, key_id, input).await;
        self.finish(op, result).await
    }

    async fn create_api_key_in(
        &self,
        op: &mut Op<'_>,
        tenant: &TenantId,
        key_id: KeyId,
        input: NewApiKey,
    ) -> Result<CreatedApiKey, Error> {
        let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
        let granted = self
            .check(
                tx.as_mut(),
                op,
                tenant_check(tenant, scopes::API_KEYS_WRITE),
            )
            .await?;
        if input.scopes.is_empty() {
            return Err(Error::InvalidRequest(
                "an API key needs at least one scope".to_owned(),
            ));
        }
        credential_scopes_assignable(tx.as_mut(), tenant, &input.scopes).await?;
        self.require_caller_holds(tx.as_mut(), op, tenant, &input.scopes)
            .await?;
        op.allowed_by = Some(granted.reason.as_str());
        let partition = Partition::Tenant(tenant.clone());
        tx.lock_partition(&partition).await?;
        // The creator is recorded while they are a member (a platform root need not be).
        let created_by = match op.caller.principal.user_id() {
            Some(user) if tx.get_member(tenant, user).await?.is_some() => Some(*user),
            _ => None,
        };
        let secret = format!("{API_KEY_PREFIX}{}", self.ports.secrets.token());
        let key = ApiKey {
            id: key_id,
            tenant: tenant.clone(),
            name: input.name,
            scopes: input.scopes,
            created_by,
            created_at: self.now(),
            revoked_at: None,
        };
        tx.insert_api_key(&key, &hash_token(&secret)).await?;
        let event = self.event(
            partition,
            key_id.to_string(),
            EventData::ApiKeyCreated {
                id: key_id,
                name: key.name.clone(),
                scopes: key.scopes.clone(),
            },
        );
        self.commit(tx, op, vec![event]).await?;
        Ok(CreatedApiKey { key, secret })
    }

    /// The tenant's keys that are not revoked (`api_keys:write`).
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `api_keys:write`; `internal` when the store fails.
    pub async fn list_api_keys(
        &self,
        caller: &Caller,
        tenant: &TenantId,
    ) -> Result<Vec<ApiKey>, Error> {
        let mut op = self.op(
            caller,
            "api_key.list",
            super::tenant_target(tenant),
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                tenant_check(tenant, scopes::API_KEYS_WRITE),
            )
            .await?;
            let keys = tx.list_api_keys(tenant).await?;
            Ok(keys
                .into_iter()
                .filter(|key| key.revoked_at.is_none())
                .collect())
        }
        .await;
        self.finish(op, result).await
    }

    /// Revokes a key at once (`api_keys:write`).
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `api_keys:write`; `not_found` when the tenant has no such key or it is already
    /// revoked; `internal` when the store fails.
    pub async fn revoke_api_key(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        key_id: &KeyId,
    ) -> Result<(), Error> {
        let mut op = self.op(
            caller,
            "api_key.revoke",
            key_target(key_id),
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                Check {
                    tenant: Some(tenant),
                    scope: scopes::API_KEYS_WRITE,
                    target: None,
                    self_service: false,
                },
            )
            .await?;
            let partition = Partition::Tenant(tenant.clone());
            tx.lock_partition(&partition).await?;
            match tx.get_api_key(tenant, key_id).await? {
                Some(key) if key.revoked_at.is_none() => {}
                _ => return Err(Error::NotFound),
            }
            tx.revoke_api_key(tenant, key_id, self.now()).await?;
            let event = self.event(
                partition,
                key_id.to_string(),
                EventData::ApiKeyRevoked { id: *key_id },
            );
            self.commit(tx, &op, vec![event]).await
        }
        .await;
        self.finish(op, result).await
    }
}

/// Whether `scopes` may be granted in `tenant` (a role binding, an API key, a client's
/// `client_credentials`): each in the catalog, assignable and enabled for the tenant.
///
/// # Errors
/// `unknown_scope`, `scope_not_assignable`, `scope_not_enabled`; `internal`.
pub(super) async fn credential_scopes_assignable(
    tx: &mut (impl crate::ports::Tenants + crate::ports::Catalog + ?Sized),
    tenant: &TenantId,
    scopes: &std::collections::BTreeSet<crate::ids::ScopeName>,
) -> Result<(), Error> {
    let enabled = tx.enabled_scopes(tenant).await?;
    for name in scopes {
        let entry = tx
            .get_catalog_scope(name)
            .await?
            .ok_or_else(|| Error::UnknownScope(name.to_string()))?;
        if entry.platform_only {
            return Err(Error::ScopeNotAssignable(name.to_string()));
        }
        if !enabled.contains(name) {
            return Err(Error::ScopeNotEnabled(name.to_string()));
        }
    }
    Ok(())
}
