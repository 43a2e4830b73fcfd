//! Profile use cases: member overrides, tenant defaults, platform values, and the resolved
//! profile with the precedence of SPEC §3.4.

use sha2::{Digest, Sha256};

use super::tenants::member_or_self_check;
use super::{user_target, Caller, Check, Engine, Op};
use crate::audit::{AuditTarget, Partition};
use crate::catalog::scopes;
use crate::error::Error;
use crate::event::{EventData, ProfileLayer};
use crate::ids::{ProfileKey, ProfileValue, TenantId, UserId};
use crate::model::{resolve_profile, ResolvedProfile, SchemaEntry};
use crate::ports::{Catalog, Profiles, TxScope};

/// A strong validator of a resolved profile, for `ETag`/`If-Match`.
pub fn profile_etag(profile: &ResolvedProfile) -> String {
    let mut hasher = Sha256::new();
    for (key, resolved) in &profile.values {
        hasher.update(key.as_str().as_bytes());
        hasher.update([0]);
        hasher.update(resolved.value.as_json().to_string().as_bytes());
        hasher.update([0]);
        hasher.update(resolved.source.as_str().as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize().get(..16).unwrap_or_default())
}

/// Which layer a profile write goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    TenantMember,
    TenantDefault,
    Platform,
}

fn key_target(layer: Layer, owner: &str, key: &ProfileKey) -> AuditTarget {
    AuditTarget {
        kind: match layer {
            Layer::TenantMember => "member_profile",
            Layer::TenantDefault => "tenant_profile",
            Layer::Platform => "user_profile",
        },
        id: format!("{owner}/{key}"),
    }
}

async fn schema_entry(
    tx: &mut (impl Catalog + ?Sized),
    key: &ProfileKey,
) -> Result<Option<SchemaEntry>, Error> {
    Ok(tx
        .list_schema()
        .await?
        .into_iter()
        .find(|entry| &entry.key == key))
}

/// The key must exist, accept the layer, and (for a write) the value must have its type.
fn validate_write(
    entry: Option<SchemaEntry>,
    key: &ProfileKey,
    layer: Layer,
    value: Option<&ProfileValue>,
) -> Result<SchemaEntry, Error> {
    let entry = entry.ok_or_else(|| Error::UnknownProfileKey(key.to_string()))?;
    if layer != Layer::Platform && !entry.tenant_overridable {
        return Err(Error::InvalidRequest(format!(
            "profile key {key} is not tenant-overridable"
        )));
    }
    if let Some(value) = value {
        if value.value_type() != entry.value_type {
            return Err(Error::InvalidProfileValue(format!(
                "profile key {key} takes a {}",
                entry.value_type.as_str()
            )));
        }
    }
    Ok(entry)
}

impl Engine {
    async fn resolve_in(
        tx: &mut (impl Profiles + Catalog + ?Sized),
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<ResolvedProfile, Error> {
        let schema = tx.list_schema().await?;
        let member_values = tx.member_values(tenant, user).await?;
        let platform_values = tx.platform_values(user).await?;
        let defaults = tx.tenant_defaults(tenant).await?;
        Ok(resolve_profile(
            &schema,
            &member_values,
            &platform_values,
            &defaults,
        ))
    }

    /// A member's resolved profile (`profiles:read`, or the member themselves).
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `profiles:read` (for another member); `member_not_found` when `user` has no account
    /// in the tenant; `internal` when the store fails.
    pub async fn member_profile(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<ResolvedProfile, Error> {
        let mut op = self.op(
            caller,
            "profile.read",
            user_target("member_profile", user),
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                member_or_self_check(tenant, scopes::PROFILES_READ, user),
            )
            .await?;
            if tx.get_member(tenant, user).await?.is_none() {
                return Err(Error::MemberNotFound);
            }
            Self::resolve_in(tx.as_mut(), tenant, user).await
        }
        .await;
        self.finish(op, result).await
    }

    /// Sets (`Some`) or deletes (`None`) a member's tenant value of one key
    /// (`profiles:write`, or the member for `user_editable` keys). `if_match` is the
    /// profile's current ETag.
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `profiles:write` (the member needs none for a `user_editable` key) or for a target
    /// holding a platform role; `member_not_found` when `user` has no account in the
    /// tenant; `unknown_profile_key`; `invalid_request` for a key that is not
    /// tenant-overridable; `invalid_profile_value` for a value of the wrong type;
    /// `precondition_failed` when `if_match` is stale; `not_found` to delete a value that
    /// is not set; `internal` when the store fails.
    pub async fn write_member_value(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        user: &UserId,
        key: &ProfileKey,
        value: Option<ProfileValue>,
        if_match: Option<&str>,
    ) -> Result<ResolvedProfile, Error> {
        let mut op = self.op(
            caller,
            if value.is_some() {
                "profile.member.set"
            } else {
                "profile.member.delete"
            },
            key_target(Layer::TenantMember, &format!("{tenant}/{user}"), key),
            Partition::Tenant(tenant.clone()),
        );
        let result = self
            .write_member_value_in(&mut op, tenant, user, key, value, if_match)
            .await;
        self.finish(op, result).await
    }

    async fn write_member_value_in(
        &self,
        op: &mut Op<'_>,
        tenant: &TenantId,
        user: &UserId,
        key: &ProfileKey,
        value: Option<ProfileValue>,
        if_match: Option<&str>,
    ) -> Result<ResolvedProfile, Error> {
        let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
        let entry = schema_entry(tx.as_mut(), key).await?;
        let user_editable = entry.as_ref().is_some_and(|entry| entry.user_editable);
        self.check(
            tx.as_mut(),
            op,
            Check {
                tenant: Some(tenant),
                scope: scopes::PROFILES_WRITE,
                target: Some(user),
                self_service: user_editable,
            },
        )
        .await?;
        validate_write(entry, key, Layer::TenantMember, value.as_ref())?;
        let partition = Partition::Tenant(tenant.clone());
        tx.lock_partition(&partition).await?;
        if tx.get_member(tenant, user).await?.is_none() {
            return Err(Error::MemberNotFound);
        }
        if let Some(expected) = if_match {
            let current = Self::resolve_in(tx.as_mut(), tenant, user).await?;
            if profile_etag(&current) != expected {
                return Err(Error::PreconditionFailed);
            }
        }
        let current = tx.member_values(tenant, user).await?.remove(key);
        let data = match (&value, current) {
            // Writing the value already there is audited but changes and publishes nothing.
            (Some(value), Some(current)) if *value == current => None,
            (Some(value), _) => {
                tx.put_member_value(tenant, user, key, value).await?;
                Some(EventData::ProfileValueSet {
                    layer: ProfileLayer::TenantMember { user_id: *user },
                    key: key.clone(),
                    value: value.clone(),
                })
            }
            (None, None) => return Err(Error::NotFound),
            (None, Some(_)) => {
                tx.delete_member_value(tenant, user, key).await?;
                Some(EventData::ProfileValueDeleted {
                    layer: ProfileLayer::TenantMember { user_id: *user },
                    key: key.clone(),
                })
            }
        };
        let events: Vec<_> = data
            .into_iter()
            .map(|data| self.event(partition.clone(), user.to_string(), data))
            .collect();
        let resolved = Self::resolve_in(tx.as_mut(), tenant, user).await?;
        self.commit(tx, op, events).await?;
        Ok(resolved)
    }

    /// Sets (`Some`) or deletes (`None`) a tenant default (`tenant:write`).
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `tenant:write`; `unknown_profile_key`; `invalid_request` for a key that is not
    /// tenant-overridable; `invalid_profile_value` for a value of the wrong type;
    /// `not_found` to delete a default that is not set; `internal` when the store fails.
    pub async fn write_tenant_default(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        key: &ProfileKey,
        value: Option<ProfileValue>,
    ) -> Result<(), Error> {
        let mut op = self.op(
            caller,
            if value.is_some() {
                "profile.default.set"
            } else {
                "profile.default.delete"
            },
            key_target(Layer::TenantDefault, tenant.as_str(), key),
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                super::tenants::tenant_check(tenant, scopes::TENANT_WRITE),
            )
            .await?;
            let entry = schema_entry(tx.as_mut(), key).await?;
            validate_write(entry, key, Layer::TenantDefault, value.as_ref())?;
            let partition = Partition::Tenant(tenant.clone());
            tx.lock_partition(&partition).await?;
            let current = tx.tenant_defaults(tenant).await?.remove(key);
            let data = match (&value, current) {
                // Writing the value already there is audited but changes and publishes nothing.
                (Some(value), Some(current)) if *value == current => None,
                (Some(value), _) => {
                    tx.put_tenant_default(tenant, key, value).await?;
                    Some(EventData::ProfileValueSet {
                        layer: ProfileLayer::TenantDefault,
                        key: key.clone(),
                        value: value.clone(),
                    })
                }
                (None, None) => return Err(Error::NotFound),
                (None, Some(_)) => {
                    tx.delete_tenant_default(tenant, key).await?;
                    Some(EventData::ProfileValueDeleted {
                        layer: ProfileLayer::TenantDefault,
                        key: key.clone(),
                    })
                }
            };
            let events: Vec<_> = data
                .into_iter()
                .map(|data| self.event(partition.clone(), tenant.to_string(), data))
                .collect();
            self.commit(tx, &op, events).await
        }
        .await;
        self.finish(op, result).await
    }

    /// Sets (`Some`) or deletes (`None`) a user's platform value (`platform:users:write`,
    /// or the user for `user_editable` keys).
    ///
    /// # Errors
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `platform:users:write` (the user needs none for a `user_editable` key);
    /// `unknown_profile_key`; `invalid_profile_value` for a value of the wrong type;
    /// `user_not_found`; `not_found` to delete a value that is not set; `internal` when the
    /// store fails.
    pub async fn write_platform_value(
        &self,
        caller: &Caller,
        user: &UserId,
        key: &ProfileKey,
        value: Option<ProfileValue>,
    ) -> Result<(), Error> {
        let mut op = self.op(
            caller,
            if value.is_some() {
                "profile.platform.set"
            } else {
                "profile.platform.delete"
            },
            key_target(Layer::Platform, &user.to_string(), key),
            Partition::Platform,
        );
        let result = async {
            let mut tx = self.begin(TxScope::Platform).await?;
            let entry = schema_entry(tx.as_mut(), key).await?;
            let user_editable = entry.as_ref().is_some_and(|entry| entry.user_editable);
            self.check(
                tx.as_mut(),
                &mut op,
                Check {
                    tenant: None,
                    scope: scopes::PLATFORM_USERS_WRITE,
                    target: Some(user),
                    self_service: user_editable,
                },
            )
            .await?;
            validate_write(entry, key, Layer::Platform, value.as_ref())?;
            tx.lock_partition(&Partition::Platform).await?;
            if tx.get_user(user).await?.is_none() {
                return Err(Error::UserNotFound);
            }
            let current = tx.platform_values(user).await?.remove(key);
            let data = match (&value, current) {
                // Writing the value already there is audited but changes and publishes nothing.
                (Some(value), Some(current)) if *value == current => None,
                (Some(value), _) => {
                    tx.put_platform_value(user, key, value).await?;
                    Some(EventData::ProfileValueSet {
                        layer: ProfileLayer::Platform { user_id: *user },
                        key: key.clone(),
                        value: value.clone(),
                    })
                }
                (None, None) => return Err(Error::NotFound),
                (None, Some(_)) => {
                    tx.delete_platform_value(user, key).await?;
                    Some(EventData::ProfileValueDeleted {
                        layer: ProfileLayer::Platform { user_id: *user },
                        key: key.clone(),
                    })
                }
            };
            let events: Vec<_> = data
                .into_iter()
                .map(|data| self.event(Partition::Platform, user.to_string(), data))
                .collect();
            self.commit(tx, &op, events).await
        }
        .await;
        self.finish(op, result).await
    }
}
