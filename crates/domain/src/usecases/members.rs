//! Membership use cases: list, read, add (existing user or new email), change roles and
//! account state, remove — with the last-admin invariant and `aal2` for admin grants.

use std::collections::BTreeSet;

use super::tenants::{member_or_self_check, tenant_check};
use super::{hash_token, paginate, user_target, Caller, Check, Engine, Op};
use crate::audit::Partition;
use crate::authz::{DecisionFacts, Reason};
use crate::catalog::scopes;
use crate::cursor::{self, List};
use crate::error::Error;
use crate::event::{EventData, EventDraft};
use crate::ids::{Assurance, Email, RoleName, ScopeName, TenantId, UserId};
use crate::mail::MailKind;
use crate::model::{AccountState, Credentials, Invitation, Member, PlatformRole, User, UserState};
use crate::ports::{Authentication, Mailbox, Page, StoreError, StoreTx, Tenants, TxScope, Users};

/// A user named by id (must exist) or by email (created as `invited` when new).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRef {
    Id(UserId),
    Email(Email),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddMember {
    pub user: UserRef,
    /// Defaults to `member` when empty.
    pub roles: BTreeSet<RoleName>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddedMember {
    pub member: Member,
    /// Present when a new user was invited: the one-time token the calling service
    /// delivers (stored only as a hash, valid for the invitation TTL).
    pub invitation_token: Option<String>,
}

/// A partial update of a member; `expected_version` carries `If-Match`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberChange {
    /// Needs `members:write`, and `aal2` when `tenant_admin` is granted or revoked.
    pub roles: Option<BTreeSet<RoleName>>,
    /// Needs `accounts:write`.
    pub state: Option<AccountState>,
    pub expected_version: Option<u64>,
}

/// Finds the user a reference names, or creates an invited user for a new email, invited
/// into `tenant`. Returns the user, the invitation token if one was made and not mailed,
/// and the events to publish.
pub(super) async fn resolve_or_invite(
    engine: &Engine,
    tx: &mut (impl Users + Authentication + Tenants + Mailbox + ?Sized),
    user: &UserRef,
    tenant: &TenantId,
) -> Result<(User, Option<String>, Vec<EventDraft>), Error> {
    match user {
        UserRef::Id(user_id) => {
            let user = tx.get_user(user_id).await?.ok_or(Error::UserNotFound)?;
            Ok((user, None, Vec::new()))
        }
        UserRef::Email(email) => {
            if let Some(user) = tx.find_user_by_email(email).await? {
                return Ok((user, None, Vec::new()));
            }
            let (user, token, events) = engine
                .insert_user(tx, email.clone(), None, Some(tenant))
                .await?;
            Ok((user, token, events))
        }
    }
}

impl Engine {
    /// Inserts a user: active with a password, or invited with a new invitation (into
    /// `tenant`, when one invites). With mail on, the invitation is mailed, naming the
    /// tenant, and no token is returned; without, the token is returned for the calling
    /// service to deliver.
    pub(super) async fn insert_user(
        &self,
        tx: &mut (impl Users + Authentication + Tenants + Mailbox + ?Sized),
        email: Email,
        password_hash: Option<String>,
        tenant: Option<&TenantId>,
    ) -> Result<(User, Option<String>, Vec<EventDraft>), Error> {
        let now = self.now();
        let user_id = UserId::from_generated(self.new_uuid());
        let user = User {
            id: user_id,
            email,
            state: if password_hash.is_some() {
                UserState::Active
            } else {
                UserState::Invited
            },
            platform_roles: BTreeSet::new(),
            has_totp: false,
            email_verified: false,
            created_at: now,
            updated_at: now,
        };
        let invited = password_hash.is_none();
        let credentials = Credentials {
            password_hash,
            totp: None,
        };
        tx.insert_user(&user, &credentials)
            .await
            .map_err(|error| match error {
                StoreError::Duplicate(_) => Error::EmailTaken,
                other => Error::Store(other),
            })?;
        let token = if invited {
            let token = self.ports.secrets.token();
            tx.insert_invitation(&Invitation {
                token_hash: hash_token(&token),
                user_id,
                expires_at: now + self.config.invitation_ttl,
                used_at: None,
            })
            .await?;
            match &self.config.mail {
                Some(settings) => {
                    let inviter = match tenant {
                        Some(tenant) => tx
                            .get_tenant(tenant)
                            .await?
                            .map(|tenant| tenant.display_name.as_str().to_owned()),
                        None => None,
                    }
                    .unwrap_or_else(|| settings.product.clone());
                    let kind = MailKind::Invitation {
                        tenant: inviter,
                        token,
                    };
                    self.queue_mail(tx, &kind, &user.email, Some(user_id))
                        .await?;
                    None
                }
                None => Some(token),
            }
        } else {
            None
        };
        let event = self.event(
            Partition::Platform,
            user_id.to_string(),
            EventData::UserCreated {
                id: user_id,
                email: user.email.clone(),
                state: user.state,
            },
        );
        Ok((user, token, vec![event]))
    }

    /// Every role must be built in or bound in the tenant.
    pub(super) async fn validate_roles(
        tx: &mut (impl Tenants + ?Sized),
        tenant: &TenantId,
        roles: &BTreeSet<RoleName>,
    ) -> Result<(), Error> {
        let bound: BTreeSet<RoleName> = tx
            .list_bindings(tenant)
            .await?
            .into_iter()
            .map(|binding| binding.role)
            .collect();
        match roles
            .iter()
            .find(|role| !role.is_builtin() && !bound.contains(*role))
        {
            Some(role) => Err(Error::UnknownRole(role.to_string())),
            None => Ok(()),
        }
    }

    /// The scopes `roles` bind in the tenant: every enabled scope for `tenant_admin`,
    /// the binding's scopes for any other role.
    async fn scopes_of_roles(
        tx: &mut (impl Tenants + ?Sized),
        tenant: &TenantId,
        roles: &BTreeSet<RoleName>,
    ) -> Result<BTreeSet<ScopeName>, Error> {
        let mut granted = BTreeSet::new();
        if roles.is_empty() {
            return Ok(granted);
        }
        if roles.iter().any(RoleName::is_tenant_admin) {
            granted.extend(tx.enabled_scopes(tenant).await?);
        }
        for binding in tx.list_bindings(tenant).await? {
            if roles.contains(&binding.role) {
                granted.extend(binding.scopes);
            }
        }
        Ok(granted)
    }

    /// Who holds `tenant_admin` changes only by a tenant admin (an active account holding
    /// it) or a platform root, at `aal2` (SPEC §3.3): granting it, demoting, removing or
    /// suspending an active admin, reactivating a suspended one.
    pub(super) fn require_admin_right(
        op: &mut Op<'_>,
        caller: &DecisionFacts,
    ) -> Result<(), Error> {
        let root = caller.platform_roles.contains(&PlatformRole::Root);
        let admin = caller.account_state == Some(AccountState::Active)
            && caller.roles.iter().any(RoleName::is_tenant_admin);
        let reason = if !root && !admin {
            Reason::ExceedsCaller
        } else if op.caller.principal.assurance() < Assurance::Aal2 {
            Reason::InsufficientAssurance
        } else {
            return Ok(());
        };
        op.denied_by = Some(reason.as_str());
        Err(Error::Forbidden(reason))
    }

    /// What a change of roles or state grants: `tenant_admin`'s right (when who holds it
    /// changes) and every scope the added roles bind.
    pub(super) async fn require_grant_right(
        &self,
        tx: &mut dyn StoreTx,
        op: &mut Op<'_>,
        caller: &DecisionFacts,
        tenant: &TenantId,
        before: Option<&Member>,
        after: &Member,
    ) -> Result<(), Error> {
        let holds_admin = |member: &Member| member.roles.iter().any(RoleName::is_tenant_admin);
        let admin_changed = match before {
            None => holds_admin(after),
            Some(before) => {
                holds_admin(before) != holds_admin(after)
                    || before.is_active_admin() != after.is_active_admin()
            }
        };
        if admin_changed {
            Self::require_admin_right(op, caller)?;
        }
        let added: BTreeSet<RoleName> = after
            .roles
            .iter()
            .filter(|role| before.is_none_or(|before| !before.roles.contains(*role)))
            .cloned()
            .collect();
        let granted = Self::scopes_of_roles(tx, tenant, &added).await?;
        self.require_caller_holds(tx, op, tenant, &granted).await
    }

    /// A page of a tenant's members in user id order (`members:read`).
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `members:read`; `invalid_cursor` for a cursor this list did not give out; `internal`
    /// when the store fails.
    pub async fn list_members(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Member>, Error> {
        let mut op = self.op(
            caller,
            "member.list",
            super::tenant_target(tenant),
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                tenant_check(tenant, scopes::MEMBERS_READ),
            )
            .await?;
            // Decoded after the check: an outsider learns nothing from a cursor either.
            let after = after
                .map(|after| {
                    let position = cursor::decode(List::Members, tenant.as_str(), after)?;
                    UserId::parse(&position).map_err(|_| Error::InvalidCursor)
                })
                .transpose()?;
            let rows = tx.list_members(tenant, after, limit + 1).await?;
            Ok(paginate(rows, limit, |member: &Member| {
                cursor::encode(List::Members, tenant.as_str(), &member.user_id.to_string())
            }))
        }
        .await;
        self.finish(op, result).await
    }

    /// Reads a member (`members:read`, or the member themselves).
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `members:read` (for another member); `member_not_found` when `user` has no account
    /// in the tenant; `internal` when the store fails.
    pub async fn get_member(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Member, Error> {
        let mut op = self.op(
            caller,
            "member.read",
            user_target("member", user),
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                member_or_self_check(tenant, scopes::MEMBERS_READ, user),
            )
            .await?;
            tx.get_member(tenant, user)
                .await?
                .ok_or(Error::MemberNotFound)
        }
        .await;
        self.finish(op, result).await
    }

    /// Adds a user, named by id or by email (a new email is invited), to a tenant with
    /// `roles` (`member` when empty) (`members:write`).
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `members:write`, for granting `tenant_admin` without being a tenant admin or root at
    /// `aal2`, or (`exceeds_caller`) for roles binding scopes the caller does not hold;
    /// `unknown_role`; `user_not_found` for an unknown user id; `member_exists`;
    /// `email_taken` only when a concurrent request took the new email first; `internal`
    /// when the store fails.
    pub async fn add_member(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        input: AddMember,
    ) -> Result<AddedMember, Error> {
        let target_id = match &input.user {
            UserRef::Id(user) => user.to_string(),
            // The user's id once resolved; never the email.
            UserRef::Email(_) => super::UNRESOLVED_EMAIL.to_owned(),
        };
        let mut op = self.op(
            caller,
            "member.add",
            crate::audit::AuditTarget {
                kind: "member",
                id: target_id,
            },
            Partition::Tenant(tenant.clone()),
        );
        let result = self.add_member_in(&mut op, tenant, input).await;
        self.finish(op, result).await
    }

    async fn add_member_in(
        &self,
        op: &mut Op<'_>,
        tenant: &TenantId,
        input: AddMember,
    ) -> Result<AddedMember, Error> {
        let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
        let granted = self
            .check(tx.as_mut(), op, tenant_check(tenant, scopes::MEMBERS_WRITE))
            .await?;
        let partition = Partition::Tenant(tenant.clone());
        tx.lock_partition(&partition).await?;
        let roles = if input.roles.is_empty() {
            BTreeSet::from([RoleName::member()])
        } else {
            input.roles
        };
        Self::validate_roles(tx.as_mut(), tenant, &roles).await?;
        let (user, invitation_token, mut events) =
            resolve_or_invite(self, tx.as_mut(), &input.user, tenant).await?;
        op.target.id = user.id.to_string();
        if tx.get_member(tenant, &user.id).await?.is_some() {
            return Err(Error::MemberExists);
        }
        let now = self.now();
        let member = Member {
            tenant: tenant.clone(),
            user_id: user.id,
            email: user.email.clone(),
            roles,
            state: AccountState::Active,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        self.require_grant_right(tx.as_mut(), op, &granted.facts, tenant, None, &member)
            .await?;
        tx.insert_member(&member)
            .await
            .map_err(|error| match error {
                StoreError::Duplicate(_) => Error::MemberExists,
                other => Error::Store(other),
            })?;
        events.push(self.event(
            partition,
            user.id.to_string(),
            EventData::MembershipAdded {
                user_id: user.id,
                roles: member.roles.clone(),
            },
        ));
        self.commit(tx, op, events).await?;
        Ok(AddedMember {
            member,
            invitation_token,
        })
    }

    /// Changes a member's roles (`members:write`) and/or account state (`accounts:write`),
    /// only at `expected_version` when given.
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `member_not_found` when `user`
    /// has no account in the tenant; `forbidden` without those scopes, for a target holding
    /// a platform role (`target_protected`), when who holds `tenant_admin` changes without
    /// a tenant admin or root at `aal2`, or (`exceeds_caller`) for added roles binding
    /// scopes the caller does not hold; `precondition_failed` on a version mismatch;
    /// `invalid_request` for an empty role set; `unknown_role`; `last_tenant_admin` when
    /// the last active admin would go; `internal` when the store fails.
    pub async fn update_member(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        user: &UserId,
        change: MemberChange,
    ) -> Result<Member, Error> {
        let mut op = self.op(
            caller,
            "member.update",
            user_target("member", user),
            Partition::Tenant(tenant.clone()),
        );
        let result = self.update_member_in(&mut op, tenant, user, change).await;
        self.finish(op, result).await
    }

    async fn update_member_in(
        &self,
        op: &mut Op<'_>,
        tenant: &TenantId,
        user: &UserId,
        change: MemberChange,
    ) -> Result<Member, Error> {
        let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
        let target_check = |scope| Check {
            tenant: Some(tenant),
            scope,
            target: Some(user),
            self_service: false,
        };
        // Roles need `members:write`, state `accounts:write`; the last check's facts
        // describe the caller for the grant rules below.
        if change.roles.is_some() && change.state.is_some() {
            self.check(tx.as_mut(), op, target_check(scopes::MEMBERS_WRITE))
                .await?;
        }
        let scope = if change.state.is_some() {
            scopes::ACCOUNTS_WRITE
        } else {
            scopes::MEMBERS_WRITE
        };
        let granted = self.check(tx.as_mut(), op, target_check(scope)).await?;
        let partition = Partition::Tenant(tenant.clone());
        tx.lock_partition(&partition).await?;
        let before = tx
            .get_member(tenant, user)
            .await?
            .ok_or(Error::MemberNotFound)?;
        if change
            .expected_version
            .is_some_and(|version| version != before.version)
        {
            return Err(Error::PreconditionFailed);
        }
        let mut after = before.clone();
        let mut events = Vec::new();
        if let Some(roles) = change.roles {
            if roles.is_empty() {
                return Err(Error::InvalidRequest(
                    "a member needs at least one role".to_owned(),
                ));
            }
            Self::validate_roles(tx.as_mut(), tenant, &roles).await?;
            if roles != before.roles {
                events.push(self.event(
                    partition.clone(),
                    user.to_string(),
                    EventData::MembershipRolesChanged {
                        user_id: *user,
                        roles: roles.clone(),
                    },
                ));
            }
            after.roles = roles;
        }
        if let Some(state) = change.state {
            if state != before.state {
                events.push(self.event(
                    partition.clone(),
                    user.to_string(),
                    EventData::AccountStateChanged {
                        user_id: *user,
                        state,
                    },
                ));
            }
            after.state = state;
        }
        // Granting or taking the role itself needs aal2 before anything else; then the
        // invariant, refused whoever asks; then the rest of the grant rules.
        let holds_admin = |member: &Member| member.roles.iter().any(RoleName::is_tenant_admin);
        if holds_admin(&before) != holds_admin(&after)
            && op.caller.principal.assurance() < Assurance::Aal2
        {
            op.denied_by = Some(Reason::InsufficientAssurance.as_str());
            return Err(Error::Forbidden(Reason::InsufficientAssurance));
        }
        if before.is_active_admin()
            && !after.is_active_admin()
            && tx.count_active_admins(tenant).await? <= 1
        {
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
        if !events.is_empty() {
            after.updated_at = self.now();
            after.version = before.version + 1;
            tx.update_member(&after).await?;
        }
        self.commit(tx, op, events).await?;
        Ok(after)
    }

    /// Removes a member's account, roles and tenant profile values.
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated` (the caller's user or key is gone); `member_not_found` when `user`
    /// has no account in the tenant; `forbidden` without `members:write`, for a target
    /// holding a platform role (`target_protected`), or to remove a `tenant_admin` without
    /// being a tenant admin or root at `aal2`; `precondition_failed` on a version mismatch;
    /// `last_tenant_admin` for the last active admin, whoever asks; `internal` when the
    /// store fails.
    pub async fn remove_member(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        user: &UserId,
        expected_version: Option<u64>,
    ) -> Result<(), Error> {
        let mut op = self.op(
            caller,
            "member.remove",
            user_target("member", user),
            Partition::Tenant(tenant.clone()),
        );
        let result = self
            .remove_member_in(
                &mut op,
                tenant,
                user,
                expected_version,
                scopes::MEMBERS_WRITE,
            )
            .await;
        self.finish(op, result).await
    }

    /// Removes a member under `scope` (`members:write`, or `scim:write` for a SCIM
    /// DELETE), with every rule of [`Engine::remove_member`].
    pub(super) async fn remove_member_in(
        &self,
        op: &mut Op<'_>,
        tenant: &TenantId,
        user: &UserId,
        expected_version: Option<u64>,
        scope: &'static str,
    ) -> Result<(), Error> {
        let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
        let granted = self
            .check(
                tx.as_mut(),
                op,
                Check {
                    tenant: Some(tenant),
                    scope,
                    target: Some(user),
                    self_service: false,
                },
            )
            .await?;
        let partition = Partition::Tenant(tenant.clone());
        tx.lock_partition(&partition).await?;
        let member = tx
            .get_member(tenant, user)
            .await?
            .ok_or(Error::MemberNotFound)?;
        if expected_version.is_some_and(|version| version != member.version) {
            return Err(Error::PreconditionFailed);
        }
        if member.is_active_admin() && tx.count_active_admins(tenant).await? <= 1 {
            return Err(Error::LastTenantAdmin);
        }
        // Removing an admin revokes `tenant_admin` (SPEC §3.3), as demoting does.
        if member.roles.iter().any(RoleName::is_tenant_admin) {
            Self::require_admin_right(op, &granted.facts)?;
        }
        tx.delete_member(tenant, user).await?;
        let event = self.event(
            partition,
            user.to_string(),
            EventData::MembershipRemoved { user_id: *user },
        );
        self.commit(tx, op, vec![event]).await
    }
}
