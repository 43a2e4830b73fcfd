//! SCIM 2.0 provisioning (SPEC §8): Users are members, Groups are tenant roles. Every
//! operation needs `scim:write`, is decided by `decide` like the `/v1` routes, and
//! commits with one audit record and its events; refusals leave one `denied` record.
//!
//! The rules the `/v1` routes keep hold here through the same helpers: the last active
//! `tenant_admin` is never suspended or removed (`last_tenant_admin`); who holds
//! `tenant_admin` changes only by a tenant admin or root at `aal2`, which no API key is,
//! so SCIM can neither grant nor take it; a group's role is granted only when its bound
//! scopes are all the caller's own (`exceeds_caller`). Joining a tenant as `member` is
//! what SPEC §8 makes of a SCIM create, so that role is granted without the last check.
//!
//! A person's email is their platform identity. SCIM changes it only for a user who
//! belongs to this tenant alone and holds no platform role (a person the tenant's
//! directory owns); anyone else's email is `mutability`.
//!
//! PATCH runs in one transaction: the resource is rendered, the operations applied to it
//! ([`crate::scim::apply::apply_patch`]), and the result stored as a replacement.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use time::OffsetDateTime;

use super::members::resolve_or_invite;
use super::{hash_token, user_target, Caller, Check, Engine, Op, UserRef, UNRESOLVED_EMAIL};
use crate::audit::{AuditTarget, Partition};
use crate::authz::Decision;
use crate::catalog::scopes;
use crate::error::Error;
use crate::event::{EventData, EventDraft, ProfileLayer};
use crate::ids::{Email, ProfileKey, ProfileValue, RoleName, TenantId, UserId};
use crate::model::{AccountState, Member, RoleBinding};
use crate::ports::{StoreError, StoreTx, TxScope};
use crate::scim::filter::{self, AttrPath, Attributes, Filter};
use crate::scim::group::{parse_group, role_candidates, GroupInput};
use crate::scim::model::{
    name_key, unsupported_attribute, ScimGroup, ScimIdentity, UserQuery, GROUP_FILTER_ATTRIBUTES,
    USER_FILTER_ATTRIBUTES,
};
use crate::scim::patch::PatchOperation;
use crate::scim::user::{parse_user, user_resource, UserInput, UserView, PROFILE_ATTRIBUTES};

/// The most resources one list answers (`ServiceProviderConfig`'s `filter.maxResults`).
pub const SCIM_MAX_RESULTS: u64 = 200;

/// A member as a SCIM User.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimUser {
    pub member: Member,
    pub identity: Option<ScimIdentity>,
    /// The member's tenant profile values SCIM maps, by profile key.
    pub values: BTreeMap<String, String>,
}

impl ScimUser {
    /// The member's `userName`: their SCIM identity's, else their email.
    pub fn user_name(&self) -> &str {
        self.identity
            .as_ref()
            .map_or(self.member.email.as_str(), |identity| {
                identity.user_name.as_str()
            })
    }

    /// `active` as the User shows it: the account's state, except that an active
    /// account whose provider removed `active` shows none.
    fn active(&self) -> Option<bool> {
        let active = self.member.state == AccountState::Active;
        match &self.identity {
            Some(identity) if !identity.active_set && active => None,
            _ => Some(active),
        }
    }

    /// The `emails` the provider sent, while they hold the user's email.
    fn emails(&self) -> Option<&Value> {
        let emails = self.identity.as_ref()?.emails.as_ref()?;
        let holds = emails.as_array()?.iter().any(|email| {
            email["value"]
                .as_str()
                .is_some_and(|value| value.eq_ignore_ascii_case(self.member.email.as_str()))
        });
        holds.then_some(emails)
    }

    /// The member as a User resource, `meta` from the given strings.
    pub fn resource(&self, location: String) -> Value {
        user_resource(&UserView {
            id: self.member.user_id.to_string(),
            user_name: self.user_name(),
            email: &self.member.email,
            external_id: self
                .identity
                .as_ref()
                .and_then(|identity| identity.external_id.as_deref()),
            active: self.active(),
            emails: self.emails(),
            values: &self.values,
            created: crate::audit::format_timestamp(self.member.created_at),
            last_modified: crate::audit::format_timestamp(self.member.updated_at),
            version: format!("W/\"{}\"", self.member.version),
            location,
        })
    }
}

/// A page of Users: how many the filter selects, and the page.
#[derive(Debug, Clone, PartialEq)]
pub struct ScimUsers {
    pub total: u64,
    pub users: Vec<ScimUser>,
}

/// A tenant role as a SCIM Group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimRole {
    pub role: RoleName,
    pub display_name: String,
    pub external_id: Option<String>,
    /// The members holding the role with their `userName`, in user id order (empty when
    /// not asked for).
    pub members: Vec<(UserId, String)>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Created through SCIM (only such groups are deleted or renamed through it).
    pub provisioned: bool,
}

impl ScimRole {
    /// The group's ETag: a hash of everything its resource says, so any change — by
    /// SCIM or by `/v1` — gives a new one.
    pub fn etag(&self) -> String {
        let mut content = format!(
            "{}\n{}\n{}\n",
            self.role,
            self.display_name,
            self.external_id.as_deref().unwrap_or("")
        );
        for (user, user_name) in &self.members {
            content.push_str(&format!("{user} {user_name}\n"));
        }
        format!("W/\"{}\"", hash_token(&content).get(..16).unwrap_or("0"))
    }
}

impl ScimRole {
    /// The role as a Group resource under the tenant's SCIM `base` URL, with its
    /// `members` when `with_members`.
    pub fn resource(&self, base: &str, with_members: bool) -> Value {
        let members: Vec<(String, String)> = self
            .members
            .iter()
            .map(|(user, user_name)| (user.to_string(), user_name.clone()))
            .collect();
        crate::scim::group::group_resource(&crate::scim::group::GroupView {
            id: self.role.as_str(),
            display_name: &self.display_name,
            external_id: self.external_id.as_deref(),
            members: with_members.then_some(members.as_slice()),
            created: crate::audit::format_timestamp(self.created_at),
            last_modified: crate::audit::format_timestamp(self.updated_at),
            version: self.etag(),
            location: format!("{base}/Groups/{}", self.role),
            users: &format!("{base}/Users"),
        })
    }
}

/// A page of Groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimRoles {
    pub total: u64,
    pub groups: Vec<ScimRole>,
}

/// What a list asks: the filter as sent, `startIndex` (1-based) and `count`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimListQuery {
    pub filter: Option<String>,
    pub start_index: u64,
    pub count: u64,
}

fn invalid(scim_type: &'static str, detail: impl Into<String>) -> Error {
    Error::ScimInvalid {
        scim_type,
        detail: detail.into(),
    }
}

/// The filter of a list, parsed and checked against what the resource can be
/// filtered on.
fn parse_filter(filter: Option<&str>, allowed: &[&str]) -> Result<Option<Filter>, Error> {
    let Some(filter) = filter else {
        return Ok(None);
    };
    let parsed =
        filter::parse(filter).map_err(|error| invalid("invalidFilter", error.message()))?;
    if let Some(attribute) = unsupported_attribute(&parsed, allowed) {
        return Err(invalid(
            "invalidFilter",
            format!("the filter names {attribute}, which cannot be filtered on"),
        ));
    }
    Ok(Some(parsed))
}

fn scim_target(tenant: &TenantId) -> AuditTarget {
    AuditTarget {
        kind: "tenant",
        id: tenant.to_string(),
    }
}

fn write_check<'a>(tenant: &'a TenantId, user: Option<&'a UserId>) -> Check<'a> {
    Check {
        tenant: Some(tenant),
        scope: scopes::SCIM_WRITE,
        target: user,
        self_service: false,
    }
}

/// The store's uniqueness errors as SCIM's.
fn uniqueness(error: StoreError) -> Error {
    match error {
        StoreError::Duplicate("scim user name") => {
            Error::ScimConflict("another member of the tenant has this userName".to_owned())
        }
        StoreError::Duplicate("scim group name") => {
            Error::ScimConflict("another group of the tenant has this displayName".to_owned())
        }
        StoreError::Duplicate("email") => {
            Error::ScimConflict("another user has this email address".to_owned())
        }
        StoreError::Duplicate("member") => {
            Error::ScimConflict("the user is already a member of the tenant".to_owned())
        }
        other => Error::Store(other),
    }
}

/// A member's values SCIM maps, by profile key (strings only).
fn scim_values(values: BTreeMap<ProfileKey, ProfileValue>) -> BTreeMap<String, String> {
    values
        .into_iter()
        .filter(|(key, _)| {
            PROFILE_ATTRIBUTES
                .iter()
                .any(|(_, mapped)| *mapped == key.as_str())
        })
        .filter_map(|(key, value)| {
            value
                .as_json()
                .as_str()
                .map(|text| (key.as_str().to_owned(), text.to_owned()))
        })
        .collect()
}

async fn load_user(
    tx: &mut dyn StoreTx,
    tenant: &TenantId,
    user: &UserId,
) -> Result<Option<ScimUser>, Error> {
    let Some(member) = tx.get_member(tenant, user).await? else {
        return Ok(None);
    };
    let identity = tx.get_scim_identity(tenant, user).await?;
    let values = scim_values(tx.member_values(tenant, user).await?);
    Ok(Some(ScimUser {
        member,
        identity,
        values,
    }))
}

/// Every role of the tenant as a group: the built-in ones, then the bound ones, in
/// role order; members only when `with_members`.
async fn load_roles(
    tx: &mut dyn StoreTx,
    tenant: &TenantId,
    with_members: bool,
) -> Result<Vec<ScimRole>, Error> {
    let created = tx
        .get_tenant(tenant)
        .await?
        .map_or(OffsetDateTime::UNIX_EPOCH, |tenant| tenant.created_at);
    let provisioned: BTreeMap<RoleName, ScimGroup> = tx
        .list_scim_groups(tenant)
        .await?
        .into_iter()
        .map(|group| (group.role.clone(), group))
        .collect();
    let mut roles: BTreeSet<RoleName> =
        BTreeSet::from([RoleName::tenant_admin(), RoleName::member()]);
    roles.extend(
        tx.list_bindings(tenant)
            .await?
            .into_iter()
            .map(|binding| binding.role),
    );
    let mut groups = Vec::with_capacity(roles.len());
    for role in roles {
        let members = if with_members {
            tx.role_holders(tenant, &role).await?
        } else {
            Vec::new()
        };
        groups.push(match provisioned.get(&role) {
            Some(group) => ScimRole {
                role,
                display_name: group.display_name.clone(),
                external_id: group.external_id.clone(),
                members,
                created_at: group.created_at,
                updated_at: group.updated_at,
                provisioned: true,
            },
            None => ScimRole {
                display_name: role.to_string(),
                role,
                external_id: None,
                members,
                created_at: created,
                updated_at: created,
                provisioned: false,
            },
        });
    }
    Ok(groups)
}

async fn load_role(
    tx: &mut dyn StoreTx,
    tenant: &TenantId,
    id: &str,
    with_members: bool,
) -> Result<ScimRole, Error> {
    let role = RoleName::parse(id).map_err(|_| Error::NotFound)?;
    let exists = role.is_builtin()
        || tx
            .list_bindings(tenant)
            .await?
            .iter()
            .any(|binding| binding.role == role);
    if !exists {
        return Err(Error::NotFound);
    }
    let created = tx
        .get_tenant(tenant)
        .await?
        .map_or(OffsetDateTime::UNIX_EPOCH, |tenant| tenant.created_at);
    let members = if with_members {
        tx.role_holders(tenant, &role).await?
    } else {
        Vec::new()
    };
    let group = tx
        .list_scim_groups(tenant)
        .await?
        .into_iter()
        .find(|group| group.role == role);
    Ok(match group {
        Some(group) => ScimRole {
            role,
            display_name: group.display_name,
            external_id: group.external_id,
            members,
            created_at: group.created_at,
            updated_at: group.updated_at,
            provisioned: true,
        },
        None => ScimRole {
            display_name: role.to_string(),
            role,
            external_id: None,
            members,
            created_at: created,
            updated_at: created,
            provisioned: false,
        },
    })
}

/// A group as a Group filter sees it.
struct GroupRecord<'a>(&'a ScimRole);

impl Attributes for GroupRecord<'_> {
    fn values(&self, path: &AttrPath) -> Vec<filter::Value> {
        let text = |value: &str| {
            if value.is_empty() {
                Vec::new()
            } else {
                vec![filter::Value::Str(value.to_owned())]
            }
        };
        if path.is("displayName") {
            text(&self.0.display_name)
        } else if path.is("externalId") {
            self.0.external_id.as_deref().map(text).unwrap_or_default()
        } else if path.is("members") || path.is("members.value") {
            self.0
                .members
                .iter()
                .map(|(user, _)| filter::Value::Str(user.to_string()))
                .collect()
        } else if path.is("meta.lastModified") {
            vec![filter::Value::DateTime(self.0.updated_at)]
        } else {
            Vec::new()
        }
    }

    fn elements(&self, path: &AttrPath) -> Vec<Box<dyn Attributes + '_>> {
        if !path.is("members") {
            return Vec::new();
        }
        self.0
            .members
            .iter()
            .map(|(user, user_name)| {
                Box::new(MemberElement(user.to_string(), user_name)) as Box<dyn Attributes + '_>
            })
            .collect()
    }
}

/// One of a group's members as an element: `value`, `display`, `type`.
struct MemberElement<'a>(String, &'a str);

impl Attributes for MemberElement<'_> {
    fn values(&self, path: &AttrPath) -> Vec<filter::Value> {
        if path.is("value") {
            vec![filter::Value::Str(self.0.clone())]
        } else if path.is("display") {
            vec![filter::Value::Str(self.1.to_owned())]
        } else if path.is("type") {
            vec![filter::Value::Str("User".to_owned())]
        } else {
            Vec::new()
        }
    }

    fn elements(&self, _: &AttrPath) -> Vec<Box<dyn Attributes + '_>> {
        Vec::new()
    }
}

impl Engine {
    /// Lets a caller read the tenant's SCIM discovery documents (`scim:write`).
    ///
    /// # Errors
    /// `tenant_not_found`; `unauthenticated`; `forbidden` without `scim:write`;
    /// `internal`.
    pub async fn scim_discover(&self, caller: &Caller, tenant: &TenantId) -> Result<(), Error> {
        let mut op = self.op(
            caller,
            "scim.discover",
            scim_target(tenant),
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(tx.as_mut(), &mut op, write_check(tenant, None))
                .await
                .map(|_| ())
        }
        .await;
        self.finish(op, result).await
    }

    /// Lists the tenant's members as Users (`scim:write`): those the filter selects, in
    /// user id order, `count` from `startIndex` (1-based).
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated`; `forbidden` without `scim:write`; SCIM `invalidFilter`;
    /// `internal` when the store fails.
    pub async fn scim_list_users(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        query: ScimListQuery,
    ) -> Result<ScimUsers, Error> {
        let mut op = self.op(
            caller,
            "scim.user.list",
            scim_target(tenant),
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(tx.as_mut(), &mut op, write_check(tenant, None))
                .await?;
            let filter = parse_filter(query.filter.as_deref(), &USER_FILTER_ATTRIBUTES)?;
            let (total, ids) = tx
                .find_scim_users(
                    tenant,
                    &UserQuery {
                        filter,
                        offset: query.start_index.saturating_sub(1),
                        count: query.count.min(SCIM_MAX_RESULTS),
                    },
                )
                .await?;
            let mut users = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(user) = load_user(tx.as_mut(), tenant, &id).await? {
                    users.push(user);
                }
            }
            Ok(ScimUsers { total, users })
        }
        .await;
        self.finish(op, result).await
    }

    /// Reads a member as a User (`scim:write`).
    ///
    /// # Errors
    /// `tenant_not_found`; `unauthenticated`; `forbidden` without `scim:write`;
    /// `member_not_found` when `user` has no account in the tenant; `internal`.
    pub async fn scim_get_user(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<ScimUser, Error> {
        let mut op = self.op(
            caller,
            "scim.user.read",
            user_target("member", user),
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(tx.as_mut(), &mut op, write_check(tenant, None))
                .await?;
            load_user(tx.as_mut(), tenant, user)
                .await?
                .ok_or(Error::MemberNotFound)
        }
        .await;
        self.finish(op, result).await
    }

    /// Provisions a User (`scim:write`): a new email becomes an invited user (mailed an
    /// invitation when mail is on), an existing one joins; either way the account is
    /// the tenant's `member`, in the state `active` says, with the body's profile values
    /// and SCIM identity.
    ///
    /// # Errors
    /// `tenant_not_found`; `unauthenticated`; `forbidden` without `scim:write`; SCIM
    /// `invalidValue`/`invalidSyntax` for a body that is not a User; SCIM `uniqueness`
    /// (`ScimConflict`) when the user is already a member or another member has the
    /// `userName`; `internal`.
    pub async fn scim_create_user(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        body: &Value,
    ) -> Result<ScimUser, Error> {
        let mut op = self.op(
            caller,
            "scim.user.create",
            AuditTarget {
                kind: "member",
                id: UNRESOLVED_EMAIL.to_owned(),
            },
            Partition::Tenant(tenant.clone()),
        );
        let result = self.scim_create_user_in(&mut op, tenant, body).await;
        self.finish(op, result).await
    }

    async fn scim_create_user_in(
        &self,
        op: &mut Op<'_>,
        tenant: &TenantId,
        body: &Value,
    ) -> Result<ScimUser, Error> {
        let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
        self.check(tx.as_mut(), op, write_check(tenant, None))
            .await?;
        let input = parse_user(body).map_err(|error| invalid(error.scim_type, error.detail))?;
        let partition = Partition::Tenant(tenant.clone());
        tx.lock_partition(&partition).await?;
        let (user, _token, mut events) = resolve_or_invite(
            self,
            tx.as_mut(),
            &UserRef::Email(input.email.clone()),
            tenant,
        )
        .await
        .map_err(|error| match error {
            Error::EmailTaken => uniqueness(StoreError::Duplicate("email")),
            other => other,
        })?;
        op.target.id = user.id.to_string();
        if tx.get_member(tenant, &user.id).await?.is_some() {
            return Err(uniqueness(StoreError::Duplicate("member")));
        }
        let now = self.now();
        let member = Member {
            tenant: tenant.clone(),
            user_id: user.id,
            email: user.email.clone(),
            roles: BTreeSet::from([RoleName::member()]),
            state: if input.active == Some(false) {
                AccountState::Suspended
            } else {
                AccountState::Active
            },
            created_at: now,
            updated_at: now,
            version: 1,
        };
        tx.insert_member(&member).await.map_err(uniqueness)?;
        events.push(self.event(
            partition.clone(),
            user.id.to_string(),
            EventData::MembershipAdded {
                user_id: user.id,
                roles: member.roles.clone(),
            },
        ));
        if member.state == AccountState::Suspended {
            events.push(self.event(
                partition.clone(),
                user.id.to_string(),
                EventData::AccountStateChanged {
                    user_id: user.id,
                    state: member.state,
                },
            ));
        }
        self.write_identity(tx.as_mut(), tenant, &user.id, None, &input, &mut events)
            .await?;
        self.write_values(
            tx.as_mut(),
            tenant,
            &user.id,
            &BTreeMap::new(),
            &input,
            &mut events,
        )
        .await?;
        let created = load_user(tx.as_mut(), tenant, &user.id)
            .await?
            .ok_or(Error::MemberNotFound)?;
        self.commit(tx, op, events).await?;
        Ok(created)
    }

    /// Stores the SCIM identity `input` gives, when it differs from `before`.
    async fn write_identity(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &TenantId,
        user: &UserId,
        before: Option<&ScimIdentity>,
        input: &UserInput,
        events: &mut Vec<EventDraft>,
    ) -> Result<bool, Error> {
        let identity = ScimIdentity {
            user_name: input.user_name.clone(),
            external_id: input.external_id.clone(),
            emails: input.emails.clone(),
            active_set: input.active.is_some(),
        };
        if before == Some(&identity) {
            return Ok(false);
        }
        tx.put_scim_identity(tenant, user, &identity)
            .await
            .map_err(uniqueness)?;
        events.push(self.event(
            Partition::Tenant(tenant.clone()),
            user.to_string(),
            EventData::ScimIdentityChanged {
                user_id: *user,
                user_name: identity.user_name,
                external_id: identity.external_id,
            },
        ));
        Ok(true)
    }

    /// Makes the member's mapped profile values those `input` gives (a value it leaves
    /// out is deleted); whether any changed.
    async fn write_values(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &TenantId,
        user: &UserId,
        before: &BTreeMap<String, String>,
        input: &UserInput,
        events: &mut Vec<EventDraft>,
    ) -> Result<bool, Error> {
        let partition = Partition::Tenant(tenant.clone());
        let layer = ProfileLayer::TenantMember { user_id: *user };
        let mut changed = false;
        for (_, key) in PROFILE_ATTRIBUTES {
            let wanted = input.values.get(key);
            if wanted == before.get(key) {
                continue;
            }
            let profile_key = ProfileKey::parse(key)?;
            changed = true;
            match wanted {
                Some(text) => {
                    let value = ProfileValue::parse(&Value::String(text.clone()))
                        .map_err(|error| invalid("invalidValue", format!("{key}: {error}")))?;
                    tx.put_member_value(tenant, user, &profile_key, &value)
                        .await?;
                    events.push(self.event(
                        partition.clone(),
                        user.to_string(),
                        EventData::ProfileValueSet {
                            layer: layer.clone(),
                            key: profile_key,
                            value,
                        },
                    ));
                }
                None => {
                    tx.delete_member_value(tenant, user, &profile_key).await?;
                    events.push(self.event(
                        partition.clone(),
                        user.to_string(),
                        EventData::ProfileValueDeleted {
                            layer: layer.clone(),
                            key: profile_key,
                        },
                    ));
                }
            }
        }
        Ok(changed)
    }

    /// Replaces a User (`scim:write`), only at `expected_version` when given.
    ///
    /// # Errors
    /// `tenant_not_found`; `unauthenticated`; `forbidden` without `scim:write`, for a
    /// target holding a platform role, or when suspending or reactivating an admin;
    /// `member_not_found`; `precondition_failed`; SCIM `invalidValue`/`invalidSyntax`,
    /// `mutability` for another tenant's person's email, `uniqueness`;
    /// `last_tenant_admin`; `internal`.
    pub async fn scim_replace_user(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        user: &UserId,
        body: &Value,
        expected_version: Option<u64>,
    ) -> Result<ScimUser, Error> {
        let mut op = self.op(
            caller,
            "scim.user.replace",
            user_target("member", user),
            Partition::Tenant(tenant.clone()),
        );
        let result = self
            .scim_change_user(&mut op, tenant, user, expected_version, |_| {
                parse_user(body)
                    .map(Some)
                    .map_err(|error| invalid(error.scim_type, error.detail))
            })
            .await;
        self.finish(op, result).await
    }

    /// Patches a User (`scim:write`): the operations applied to its resource, the result
    /// stored as by [`Engine::scim_replace_user`].
    ///
    /// # Errors
    /// As [`Engine::scim_replace_user`], and SCIM `invalidPath`, `noTarget`,
    /// `mutability`, `invalidValue` for operations that do not apply.
    pub async fn scim_patch_user(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        user: &UserId,
        operations: &[PatchOperation],
        expected_version: Option<u64>,
    ) -> Result<ScimUser, Error> {
        let mut op = self.op(
            caller,
            "scim.user.patch",
            user_target("member", user),
            Partition::Tenant(tenant.clone()),
        );
        let result = self
            .scim_change_user(&mut op, tenant, user, expected_version, |current| {
                let before = current.resource(String::new());
                let mut resource = before.clone();
                crate::scim::apply::apply_patch(
                    &mut resource,
                    &[
                        crate::scim::schema::user_schema(),
                        crate::scim::schema::enterprise_user_schema(),
                    ],
                    operations,
                )
                .map_err(|error| invalid(error.scim_type, error.detail))?;
                // Operations that change nothing the User shows change nothing at all.
                if resource == before {
                    return Ok(None);
                }
                parse_user(&resource)
                    .map(Some)
                    .map_err(|error| invalid(error.scim_type, error.detail))
            })
            .await;
        self.finish(op, result).await
    }

    async fn scim_change_user(
        &self,
        op: &mut Op<'_>,
        tenant: &TenantId,
        user: &UserId,
        expected_version: Option<u64>,
        input_of: impl FnOnce(&ScimUser) -> Result<Option<UserInput>, Error>,
    ) -> Result<ScimUser, Error> {
        let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
        let granted = self
            .check(tx.as_mut(), op, write_check(tenant, Some(user)))
            .await?;
        let partition = Partition::Tenant(tenant.clone());
        tx.lock_partition(&partition).await?;
        let current = load_user(tx.as_mut(), tenant, user)
            .await?
            .ok_or(Error::MemberNotFound)?;
        if expected_version.is_some_and(|version| version != current.member.version) {
            return Err(Error::PreconditionFailed);
        }
        let Some(input) = input_of(&current)? else {
            self.commit(tx, op, Vec::new()).await?;
            return Ok(current);
        };
        let mut events = Vec::new();
        let mut changed = false;
        if input.email != current.member.email {
            self.change_email(tx.as_mut(), tenant, user, &input.email, &mut events)
                .await?;
            changed = true;
        }
        let before = current.member.clone();
        let mut after = before.clone();
        // `active` left out (or removed) is the default: active.
        after.state = if input.active == Some(false) {
            AccountState::Suspended
        } else {
            AccountState::Active
        };
        if after.state != before.state {
            if before.is_active_admin() && tx.count_active_admins(tenant).await? <= 1 {
                return Err(Error::LastTenantAdmin);
            }
            self.require_grant_right(
                tx.as_mut(),
                op,
                &granted.facts,
                tenant,
                Some(&before),
                &after,
            )
            .await?;
            events.push(self.event(
                partition.clone(),
                user.to_string(),
                EventData::AccountStateChanged {
                    user_id: *user,
                    state: after.state,
                },
            ));
            changed = true;
        }
        changed |= self
            .write_identity(
                tx.as_mut(),
                tenant,
                user,
                current.identity.as_ref(),
                &input,
                &mut events,
            )
            .await?;
        changed |= self
            .write_values(
                tx.as_mut(),
                tenant,
                user,
                &current.values,
                &input,
                &mut events,
            )
            .await?;
        if changed {
            after.updated_at = self.now();
            after.version = before.version + 1;
            tx.update_member(&after).await?;
        }
        let replaced = load_user(tx.as_mut(), tenant, user)
            .await?
            .ok_or(Error::MemberNotFound)?;
        self.commit(tx, op, events).await?;
        Ok(replaced)
    }

    /// Changes a user's email through SCIM: only for a person of this tenant alone with
    /// no platform role.
    async fn change_email(
        &self,
        tx: &mut dyn StoreTx,
        tenant: &TenantId,
        user: &UserId,
        email: &Email,
        events: &mut Vec<EventDraft>,
    ) -> Result<(), Error> {
        let mut record = tx.get_user(user).await?.ok_or(Error::MemberNotFound)?;
        let elsewhere = {
            // Other tenants' accounts are not visible in this tenant's transaction.
            let mut platform = self.begin(TxScope::Platform).await?;
            platform
                .memberships_of(user)
                .await?
                .iter()
                .any(|member| &member.tenant != tenant)
        };
        if !record.platform_roles.is_empty() || elsewhere {
            return Err(invalid(
                "mutability",
                "this person's email is their identity in other tenants or on the platform; \
                 only they can change it",
            ));
        }
        if tx
            .find_user_by_email(email)
            .await?
            .is_some_and(|other| &other.id != user)
        {
            return Err(uniqueness(StoreError::Duplicate("email")));
        }
        record.email = email.clone();
        record.email_verified = false;
        record.updated_at = self.now();
        tx.update_user(&record).await.map_err(uniqueness)?;
        events.push(self.event(
            Partition::Platform,
            user.to_string(),
            EventData::UserEmailChanged {
                id: *user,
                email: email.clone(),
            },
        ));
        Ok(())
    }

    /// Deprovisions a User (`scim:write`): removes the membership; the platform user
    /// stays.
    ///
    /// # Errors
    /// As [`Engine::remove_member`], under `scim:write`.
    pub async fn scim_delete_user(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        user: &UserId,
        expected_version: Option<u64>,
    ) -> Result<(), Error> {
        let mut op = self.op(
            caller,
            "scim.user.delete",
            user_target("member", user),
            Partition::Tenant(tenant.clone()),
        );
        let result = self
            .remove_member_in(&mut op, tenant, user, expected_version, scopes::SCIM_WRITE)
            .await;
        self.finish(op, result).await
    }

    /// Lists the tenant's roles as Groups (`scim:write`), filtered in memory (a
    /// tenant's roles are few), members only when `with_members`.
    ///
    /// # Errors
    /// `tenant_not_found`; `unauthenticated`; `forbidden` without `scim:write`; SCIM
    /// `invalidFilter`; `internal`.
    pub async fn scim_list_groups(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        query: ScimListQuery,
        with_members: bool,
    ) -> Result<ScimRoles, Error> {
        let mut op = self.op(
            caller,
            "scim.group.list",
            scim_target(tenant),
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(tx.as_mut(), &mut op, write_check(tenant, None))
                .await?;
            let filter = parse_filter(query.filter.as_deref(), &GROUP_FILTER_ATTRIBUTES)?;
            let needs_members = with_members
                || filter.as_ref().is_some_and(|filter| {
                    unsupported_attribute(
                        filter,
                        &["displayName", "externalId", "meta.lastModified"],
                    )
                    .is_some()
                });
            let selected: Vec<ScimRole> = load_roles(tx.as_mut(), tenant, needs_members)
                .await?
                .into_iter()
                .filter(|group| {
                    filter
                        .as_ref()
                        .is_none_or(|filter| filter::matches(filter, &GroupRecord(group)))
                })
                .collect();
            let total = selected.len() as u64;
            let groups = selected
                .into_iter()
                .skip(usize::try_from(query.start_index.saturating_sub(1)).unwrap_or(usize::MAX))
                .take(usize::try_from(query.count.min(SCIM_MAX_RESULTS)).unwrap_or(0))
                .map(|mut group| {
                    if !with_members {
                        group.members.clear();
                    }
                    group
                })
                .collect();
            Ok(ScimRoles { total, groups })
        }
        .await;
        self.finish(op, result).await
    }

    /// Reads a role as a Group (`scim:write`).
    ///
    /// # Errors
    /// `tenant_not_found`; `unauthenticated`; `forbidden` without `scim:write`;
    /// `not_found` for a role the tenant does not have; `internal`.
    pub async fn scim_get_group(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        id: &str,
        with_members: bool,
    ) -> Result<ScimRole, Error> {
        let mut op = self.op(
            caller,
            "scim.group.read",
            scim_target(tenant),
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(tx.as_mut(), &mut op, write_check(tenant, None))
                .await?;
            load_role(tx.as_mut(), tenant, id, with_members).await
        }
        .await;
        self.finish(op, result).await
    }

    /// Creates a Group (`scim:write`): a new role bound to no scope (so it grants
    /// nothing until a tenant admin binds it), named as [`role_candidates`] says, with
    /// the body's members.
    ///
    /// # Errors
    /// `tenant_not_found`; `unauthenticated`; `forbidden` without `scim:write`; SCIM
    /// `invalidValue`/`invalidSyntax`, `uniqueness` for a name the tenant has;
    /// `internal`.
    pub async fn scim_create_group(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        body: &Value,
    ) -> Result<ScimRole, Error> {
        let mut op = self.op(
            caller,
            "scim.group.create",
            scim_target(tenant),
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            let granted = self
                .check(tx.as_mut(), &mut op, write_check(tenant, None))
                .await?;
            let input =
                parse_group(body).map_err(|error| invalid(error.scim_type, error.detail))?;
            let partition = Partition::Tenant(tenant.clone());
            tx.lock_partition(&partition).await?;
            let existing = load_roles(tx.as_mut(), tenant, false).await?;
            let key = name_key(&input.display_name);
            let taken = |name: &str| {
                existing.iter().any(|group| {
                    name_key(&group.display_name) == name || group.role.as_str() == name
                })
            };
            if taken(&key) {
                return Err(uniqueness(StoreError::Duplicate("scim group name")));
            }
            let role = role_candidates(&input.display_name)
                .into_iter()
                .find(|role| !taken(role.as_str()))
                .ok_or_else(|| uniqueness(StoreError::Duplicate("scim group name")))?;
            op.target = AuditTarget {
                kind: "role",
                id: role.to_string(),
            };
            tx.put_binding(
                tenant,
                &RoleBinding {
                    role: role.clone(),
                    scopes: BTreeSet::new(),
                },
            )
            .await?;
            let now = self.now();
            let group = ScimGroup {
                tenant: tenant.clone(),
                role: role.clone(),
                display_name: input.display_name.clone(),
                external_id: input.external_id.clone(),
                created_at: now,
                updated_at: now,
                version: 1,
            };
            tx.put_scim_group(&group).await.map_err(uniqueness)?;
            let mut events = vec![
                self.event(
                    partition.clone(),
                    role.to_string(),
                    EventData::RoleBindingChanged {
                        role: role.clone(),
                        scopes: Some(BTreeSet::new()),
                    },
                ),
                self.event(
                    partition.clone(),
                    role.to_string(),
                    EventData::ScimGroupChanged {
                        role: role.clone(),
                        display_name: group.display_name.clone(),
                        external_id: group.external_id.clone(),
                    },
                ),
            ];
            self.set_holders(
                tx.as_mut(),
                &mut op,
                &granted,
                tenant,
                &role,
                &[],
                &input.members,
                &mut events,
            )
            .await?;
            let created = load_role(tx.as_mut(), tenant, role.as_str(), true).await?;
            self.commit(tx, &op, events).await?;
            Ok(created)
        }
        .await;
        self.finish(op, result).await
    }

    /// Makes the members holding `role` exactly `wanted` (user ids as sent), granting
    /// and revoking it one member at a time under the rules of a `/v1` role change.
    #[allow(clippy::too_many_arguments, reason = "one transaction's whole context")]
    async fn set_holders(
        &self,
        tx: &mut dyn StoreTx,
        op: &mut Op<'_>,
        granted: &Decision,
        tenant: &TenantId,
        role: &RoleName,
        holders: &[(UserId, String)],
        wanted: &[String],
        events: &mut Vec<EventDraft>,
    ) -> Result<(), Error> {
        let mut wanted_ids = BTreeSet::new();
        for value in wanted {
            let user = UserId::parse(value).map_err(|_| {
                invalid(
                    "invalidValue",
                    format!("members: {value} is not a member's id"),
                )
            })?;
            wanted_ids.insert(user);
        }
        let holding: BTreeSet<UserId> = holders.iter().map(|(user, _)| *user).collect();
        let partition = Partition::Tenant(tenant.clone());
        for user in wanted_ids.symmetric_difference(&holding) {
            let Some(before) = tx.get_member(tenant, user).await? else {
                return Err(invalid(
                    "invalidValue",
                    format!("members: {user} is not a member of the tenant"),
                ));
            };
            let mut after = before.clone();
            if wanted_ids.contains(user) {
                after.roles.insert(role.clone());
            } else {
                after.roles.remove(role);
                if after.roles.is_empty() {
                    // An account holds at least one role: one losing its last keeps
                    // `member`, and `member` itself goes only with the membership.
                    if role == &RoleName::member() {
                        return Err(invalid(
                            "mutability",
                            format!(
                                "members: {user} holds no other role; DELETE the User to \
                                 remove them from the tenant"
                            ),
                        ));
                    }
                    after.roles.insert(RoleName::member());
                }
            }
            if before.is_active_admin()
                && !after.is_active_admin()
                && tx.count_active_admins(tenant).await? <= 1
            {
                return Err(Error::LastTenantAdmin);
            }
            // A write on a member holding a platform role is `target_protected`, as in
            // `/v1`.
            self.check(tx, op, write_check(tenant, Some(user))).await?;
            self.require_grant_right(tx, op, &granted.facts, tenant, Some(&before), &after)
                .await?;
            after.updated_at = self.now();
            after.version = before.version + 1;
            tx.update_member(&after).await?;
            events.push(self.event(
                partition.clone(),
                user.to_string(),
                EventData::MembershipRolesChanged {
                    user_id: *user,
                    roles: after.roles.clone(),
                },
            ));
        }
        Ok(())
    }

    /// Replaces a Group (`scim:write`): its name (a group created through SCIM only),
    /// `externalId` and members; only at `expected_etag` when given.
    ///
    /// # Errors
    /// `tenant_not_found`; `unauthenticated`; `forbidden` without `scim:write`, for
    /// `tenant_admin`'s members, for a role binding scopes the caller does not hold, for
    /// a member holding a platform role; `not_found`; `precondition_failed`; SCIM
    /// `invalidValue`, `mutability` (renaming a role SCIM did not create),
    /// `uniqueness`; `last_tenant_admin`; `internal`.
    pub async fn scim_replace_group(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        id: &str,
        body: &Value,
        expected_etag: Option<&str>,
    ) -> Result<ScimRole, Error> {
        let mut op = self.op(
            caller,
            "scim.group.replace",
            AuditTarget {
                kind: "role",
                id: id.to_owned(),
            },
            Partition::Tenant(tenant.clone()),
        );
        let result = self
            .scim_change_group(&mut op, tenant, id, expected_etag, |_| {
                parse_group(body)
                    .map(Some)
                    .map_err(|error| invalid(error.scim_type, error.detail))
            })
            .await;
        self.finish(op, result).await
    }

    /// Patches a Group (`scim:write`): the operations applied to its resource (Entra
    /// and Okta add and remove members this way), the result stored as by
    /// [`Engine::scim_replace_group`].
    ///
    /// # Errors
    /// As [`Engine::scim_replace_group`], and SCIM `invalidPath`, `noTarget`,
    /// `mutability`, `invalidValue` for operations that do not apply.
    pub async fn scim_patch_group(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        id: &str,
        operations: &[PatchOperation],
        expected_etag: Option<&str>,
    ) -> Result<ScimRole, Error> {
        let mut op = self.op(
            caller,
            "scim.group.patch",
            AuditTarget {
                kind: "role",
                id: id.to_owned(),
            },
            Partition::Tenant(tenant.clone()),
        );
        let result = self
            .scim_change_group(&mut op, tenant, id, expected_etag, |current| {
                let before = current.resource("", true);
                let mut resource = before.clone();
                crate::scim::apply::apply_patch(
                    &mut resource,
                    &[crate::scim::schema::group_schema()],
                    operations,
                )
                .map_err(|error| invalid(error.scim_type, error.detail))?;
                if resource == before {
                    return Ok(None);
                }
                parse_group(&resource)
                    .map(Some)
                    .map_err(|error| invalid(error.scim_type, error.detail))
            })
            .await;
        self.finish(op, result).await
    }

    async fn scim_change_group(
        &self,
        op: &mut Op<'_>,
        tenant: &TenantId,
        id: &str,
        expected_etag: Option<&str>,
        input_of: impl FnOnce(&ScimRole) -> Result<Option<GroupInput>, Error>,
    ) -> Result<ScimRole, Error> {
        let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
        let granted = self
            .check(tx.as_mut(), op, write_check(tenant, None))
            .await?;
        let partition = Partition::Tenant(tenant.clone());
        tx.lock_partition(&partition).await?;
        let current = load_role(tx.as_mut(), tenant, id, true).await?;
        if expected_etag.is_some_and(|etag| etag != current.etag()) {
            return Err(Error::PreconditionFailed);
        }
        let Some(input) = input_of(&current)? else {
            self.commit(tx, op, Vec::new()).await?;
            return Ok(current);
        };
        let mut events = Vec::new();
        let renamed =
            input.display_name != current.display_name || input.external_id != current.external_id;
        if renamed {
            if current.role.is_builtin() {
                return Err(invalid(
                    "mutability",
                    format!(
                        "{} is a built-in role: its name cannot change",
                        current.role
                    ),
                ));
            }
            let taken = load_roles(tx.as_mut(), tenant, false)
                .await?
                .iter()
                .any(|group| {
                    group.role != current.role
                        && (name_key(&group.display_name) == name_key(&input.display_name)
                            || group.role.as_str() == name_key(&input.display_name))
                });
            if taken {
                return Err(uniqueness(StoreError::Duplicate("scim group name")));
            }
            let now = self.now();
            let previous = tx
                .list_scim_groups(tenant)
                .await?
                .into_iter()
                .find(|group| group.role == current.role);
            let group = ScimGroup {
                tenant: tenant.clone(),
                role: current.role.clone(),
                display_name: input.display_name.clone(),
                external_id: input.external_id.clone(),
                created_at: previous.as_ref().map_or(now, |group| group.created_at),
                updated_at: now,
                version: previous.as_ref().map_or(1, |group| group.version + 1),
            };
            tx.put_scim_group(&group).await.map_err(uniqueness)?;
            events.push(self.event(
                partition.clone(),
                current.role.to_string(),
                EventData::ScimGroupChanged {
                    role: current.role.clone(),
                    display_name: group.display_name,
                    external_id: group.external_id,
                },
            ));
        }
        self.set_holders(
            tx.as_mut(),
            op,
            &granted,
            tenant,
            &current.role,
            &current.members,
            &input.members,
            &mut events,
        )
        .await?;
        let replaced = load_role(tx.as_mut(), tenant, current.role.as_str(), true).await?;
        self.commit(tx, op, events).await?;
        Ok(replaced)
    }

    /// Deletes a Group created through SCIM (`scim:write`): its members lose the role
    /// (keeping `member` when it was their last) and its binding goes.
    ///
    /// # Errors
    /// `tenant_not_found`; `unauthenticated`; `forbidden` without `scim:write` or for a
    /// member holding a platform role; `not_found`; SCIM `mutability` for a role SCIM
    /// did not create (built-in, or bound through `/v1`); `precondition_failed`;
    /// `internal`.
    pub async fn scim_delete_group(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        id: &str,
        expected_etag: Option<&str>,
    ) -> Result<(), Error> {
        let mut op = self.op(
            caller,
            "scim.group.delete",
            AuditTarget {
                kind: "role",
                id: id.to_owned(),
            },
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            let granted = self
                .check(tx.as_mut(), &mut op, write_check(tenant, None))
                .await?;
            let partition = Partition::Tenant(tenant.clone());
            tx.lock_partition(&partition).await?;
            let current = load_role(tx.as_mut(), tenant, id, true).await?;
            if expected_etag.is_some_and(|etag| etag != current.etag()) {
                return Err(Error::PreconditionFailed);
            }
            if !current.provisioned {
                return Err(invalid(
                    "mutability",
                    format!(
                        "{} was not created through SCIM; a tenant admin removes it through /v1",
                        current.role
                    ),
                ));
            }
            let mut events = Vec::new();
            self.set_holders(
                tx.as_mut(),
                &mut op,
                &granted,
                tenant,
                &current.role,
                &current.members,
                &[],
                &mut events,
            )
            .await?;
            tx.delete_binding(tenant, &current.role).await?;
            events.push(self.event(
                partition,
                current.role.to_string(),
                EventData::RoleBindingChanged {
                    role: current.role.clone(),
                    scopes: None,
                },
            ));
            self.commit(tx, &op, events).await
        }
        .await;
        self.finish(op, result).await
    }
}
