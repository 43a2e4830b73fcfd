//! Platform user use cases: create, read, change platform state, platform roles, `me`,
//! and the first-start bootstrap of a platform root.

use std::collections::BTreeSet;

use super::{user_target, Caller, Check, Engine, Op, Principal};
use crate::audit::{Actor, ActorType, AuditTarget, Outcome, Partition};
use crate::authz::Reason;
use crate::catalog::scopes;
use crate::error::Error;
use crate::event::EventData;
use crate::ids::{Assurance, Email, Password, UserId};
use crate::model::{ApiKey, Member, PlatformRole, User, UserState};
use crate::ports::TxScope;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub email: Email,
    /// With a password the user is `active`; without, `invited` with an invitation token.
    pub password: Option<Password>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedUser {
    pub user: User,
    pub invitation_token: Option<String>,
}

/// What `GET /v1/me` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Me {
    /// The user, for a session; `None` for an API key.
    pub user: Option<User>,
    pub api_key: Option<ApiKey>,
    pub assurance: Assurance,
    pub memberships: Vec<Member>,
}

pub(super) fn platform_check<'a>(
    scope: &'static str,
    target: Option<&'a UserId>,
    self_service: bool,
) -> Check<'a> {
    Check {
        tenant: None,
        scope,
        target,
        self_service,
    }
}

/// An active user holding `platform_root`: the kind the platform must keep one of.
fn is_active_root(user: &User) -> bool {
    user.state == UserState::Active && user.platform_roles.contains(&PlatformRole::Root)
}

impl Engine {
    /// Creates a platform user: `active` with a password, otherwise `invited` with an
    /// invitation token (`platform:users:write`).
    ///
    /// # Errors
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `platform:users:write`; `email_taken`; `internal` when the store or the password
    /// hasher fails.
    pub async fn create_user(&self, caller: &Caller, input: NewUser) -> Result<CreatedUser, Error> {
        let mut op = self.op(
            caller,
            "user.create",
            // The new user's id once it exists; never the email.
            AuditTarget {
                kind: "user",
                id: super::UNRESOLVED_EMAIL.to_owned(),
            },
            Partition::Platform,
        );
        let result = self.create_user_in(&mut op, input).await;
        self.finish(op, result).await
    }

    async fn create_user_in(&self, op: &mut Op<'_>, input: NewUser) -> Result<CreatedUser, Error> {
        let mut tx = self.begin(TxScope::Platform).await?;
        self.check(
            tx.as_mut(),
            op,
            platform_check(scopes::PLATFORM_USERS_WRITE, None, false),
        )
        .await?;
        tx.lock_partition(&Partition::Platform).await?;
        if tx.find_user_by_email(&input.email).await?.is_some() {
            return Err(Error::EmailTaken);
        }
        let password_hash = match &input.password {
            Some(password) => Some(self.ports.passwords.hash(password.expose()).await?),
            None => None,
        };
        let (user, invitation_token, events) = self
            .insert_user(tx.as_mut(), input.email, password_hash, None)
            .await?;
        op.target.id = user.id.to_string();
        self.commit(tx, op, events).await?;
        Ok(CreatedUser {
            user,
            invitation_token,
        })
    }

    /// Reads a user (`platform:users:read`, or the user themselves).
    ///
    /// # Errors
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `platform:users:read` (for another user); `user_not_found`; `internal` when the
    /// store fails.
    pub async fn get_user(&self, caller: &Caller, user: &UserId) -> Result<User, Error> {
        let mut op = self.op(
            caller,
            "user.read",
            user_target("user", user),
            Partition::Platform,
        );
        let result = async {
            let mut tx = self.begin(TxScope::Platform).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                platform_check(scopes::PLATFORM_USERS_READ, Some(user), true),
            )
            .await?;
            tx.get_user(user).await?.ok_or(Error::UserNotFound)
        }
        .await;
        self.finish(op, result).await
    }

    /// Sets a user's platform state to `active` or `suspended`. An invited user becomes
    /// active only by accepting the invitation.
    ///
    /// # Errors
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `platform:users:write`; `user_not_found`; `invalid_request` for `invited`, or
    /// `active` for a user who has no password yet; `last_platform_root` to suspend the
    /// last active root; `internal` when the store fails.
    pub async fn set_user_state(
        &self,
        caller: &Caller,
        user: &UserId,
        state: UserState,
    ) -> Result<User, Error> {
        let mut op = self.op(
            caller,
            "user.state.set",
            user_target("user", user),
            Partition::Platform,
        );
        let result = async {
            let mut tx = self.begin(TxScope::Platform).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                platform_check(scopes::PLATFORM_USERS_WRITE, Some(user), false),
            )
            .await?;
            tx.lock_partition(&Partition::Platform).await?;
            let mut record = tx.get_user(user).await?.ok_or(Error::UserNotFound)?;
            let has_password = tx.get_credentials(user).await?.password_hash.is_some();
            match state {
                UserState::Invited => {
                    return Err(Error::InvalidRequest(
                        "state must be active or suspended".to_owned(),
                    ))
                }
                UserState::Active if !has_password => {
                    return Err(Error::InvalidRequest(
                        "an invited user becomes active by accepting the invitation".to_owned(),
                    ))
                }
                _ => {}
            }
            if is_active_root(&record)
                && state != UserState::Active
                && tx.count_active_platform_roots().await? <= 1
            {
                return Err(Error::LastPlatformRoot);
            }
            let mut events = Vec::new();
            if record.state != state {
                record.state = state;
                record.updated_at = self.now();
                tx.update_user(&record).await?;
                events.push(self.event(
                    Partition::Platform,
                    user.to_string(),
                    EventData::UserStateChanged { id: *user, state },
                ));
            }
            self.commit(tx, &op, events).await?;
            Ok(record)
        }
        .await;
        self.finish(op, result).await
    }

    /// Ends every session of a user (`platform:users:write`): a stolen session or a
    /// departing person is logged out everywhere at once; returns how many ended. One
    /// audit record always; the event `user.sessions_revoked` only when a session ended.
    ///
    /// # Errors
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `platform:users:write`; `user_not_found`; `internal` when the store fails.
    pub async fn revoke_user_sessions(&self, caller: &Caller, user: &UserId) -> Result<u64, Error> {
        let mut op = self.op(
            caller,
            "user.sessions.revoke",
            user_target("user", user),
            Partition::Platform,
        );
        let result = async {
            let mut tx = self.begin(TxScope::Platform).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                platform_check(scopes::PLATFORM_USERS_WRITE, Some(user), false),
            )
            .await?;
            if tx.get_user(user).await?.is_none() {
                return Err(Error::UserNotFound);
            }
            let sessions = tx.delete_sessions_of(user, None).await?;
            // An event says what changed: none when the user had no session.
            let events = (sessions > 0)
                .then(|| {
                    self.event(
                        Partition::Platform,
                        user.to_string(),
                        EventData::UserSessionsRevoked {
                            id: *user,
                            sessions,
                        },
                    )
                })
                .into_iter()
                .collect();
            self.commit(tx, &op, events).await?;
            Ok(sessions)
        }
        .await;
        self.finish(op, result).await
    }

    /// Removes a user's TOTP factor (`platform:users:write` at `aal2`, whatever the
    /// catalog says): the way back in for someone who lost their authenticator. Their
    /// sessions go on; one raised to `aal2` keeps it until its step-up lapses. Removing
    /// a factor the user does not have is recorded and changes nothing.
    ///
    /// # Errors
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `platform:users:write` or below `aal2` (`insufficient_assurance`, even for a
    /// root); `user_not_found`; `internal` when the store fails.
    pub async fn remove_totp(&self, caller: &Caller, user: &UserId) -> Result<(), Error> {
        let mut op = self.op(
            caller,
            "user.totp.remove",
            user_target("user", user),
            Partition::Platform,
        );
        let result = async {
            let mut tx = self.begin(TxScope::Platform).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                platform_check(scopes::PLATFORM_USERS_WRITE, Some(user), false),
            )
            .await?;
            if op.caller.principal.assurance() < Assurance::Aal2 {
                op.denied_by = Some(Reason::InsufficientAssurance.as_str());
                return Err(Error::Forbidden(Reason::InsufficientAssurance));
            }
            let mut record = tx.get_user(user).await?.ok_or(Error::UserNotFound)?;
            let mut credentials = tx.get_credentials(user).await?;
            let mut events = Vec::new();
            let codes = tx.delete_recovery_codes(user).await?;
            if credentials.totp.take().is_some() || record.has_totp || codes > 0 {
                tx.set_credentials(user, &credentials).await?;
                // The user counts as having no factor (diagnostics' `admins.mfa`, and an
                // `aal1` session may enrol a new one).
                record.has_totp = false;
                record.updated_at = self.now();
                tx.update_user(&record).await?;
                events.push(self.event(
                    Partition::Platform,
                    user.to_string(),
                    EventData::UserTotpRemoved { id: *user },
                ));
            }
            self.commit(tx, &op, events).await?;
            Ok(())
        }
        .await;
        self.finish(op, result).await
    }

    /// Erases a user (SPEC §4 `DELETE /v1/users/{user}`; `platform:users:write` at
    /// `aal2`): their memberships, profile values, sessions, factors, pending tokens and
    /// mails go, the row stays as a tombstone (an address derived from the id, suspended,
    /// no roles) that no lookup finds, and every stored event about the user has its
    /// personal values redacted. Every tenant the user is in is locked first (then the
    /// platform), so no concurrent change can make them the last admin meanwhile.
    ///
    /// # Errors
    /// `unauthenticated`; `forbidden` without the scope or below `aal2`;
    /// `user_not_found` (erased ones included); `last_tenant_admin` when the user is the
    /// last active admin of an active tenant; `last_platform_root` for the last active
    /// root; `internal` when the store fails.
    pub async fn erase_user(&self, caller: &Caller, user: &UserId) -> Result<(), Error> {
        let mut op = self.op(
            caller,
            "user.erase",
            user_target("user", user),
            Partition::Platform,
        );
        let result = async {
            let mut tx = self.begin(TxScope::Platform).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                platform_check(scopes::PLATFORM_USERS_WRITE, Some(user), false),
            )
            .await?;
            if op.caller.principal.assurance() < Assurance::Aal2 {
                op.denied_by = Some(Reason::InsufficientAssurance.as_str());
                return Err(Error::Forbidden(Reason::InsufficientAssurance));
            }
            if tx.get_user(user).await?.is_none() {
                return Err(Error::UserNotFound);
            }
            // Tenants in order, then the platform: the order every writer takes them in.
            for member in tx.memberships_of(user).await? {
                tx.lock_partition(&Partition::Tenant(member.tenant)).await?;
            }
            tx.lock_partition(&Partition::Platform).await?;
            let record = tx.get_user(user).await?.ok_or(Error::UserNotFound)?;
            let memberships = tx.memberships_of(user).await?;
            if record.state == UserState::Active
                && record.platform_roles.contains(&PlatformRole::Root)
                && tx.count_active_platform_roots().await? <= 1
            {
                return Err(Error::LastPlatformRoot);
            }
            for member in &memberships {
                let admin = member.state == crate::model::AccountState::Active
                    && member.roles.contains(&crate::ids::RoleName::tenant_admin());
                if !admin {
                    continue;
                }
                let active = tx
                    .get_tenant(&member.tenant)
                    .await?
                    .is_some_and(|tenant| tenant.state == crate::model::TenantState::Active);
                if active && tx.count_active_admins(&member.tenant).await? <= 1 {
                    return Err(Error::LastTenantAdmin);
                }
            }
            let now = self.now();
            let mut events = Vec::new();
            for member in &memberships {
                tx.delete_member(&member.tenant, user).await?;
                events.push(self.event(
                    Partition::Tenant(member.tenant.clone()),
                    user.to_string(),
                    EventData::MembershipRemoved { user_id: *user },
                ));
            }
            for key in tx.platform_values(user).await?.into_keys() {
                tx.delete_platform_value(user, &key).await?;
            }
            tx.delete_sessions_of(user, None).await?;
            tx.set_credentials(user, &crate::model::Credentials::default())
                .await?;
            tx.delete_recovery_codes(user).await?;
            tx.void_password_resets_of(user, now).await?;
            tx.delete_email_verifications_of(user).await?;
            tx.delete_mails_of(user).await?;
            for event in tx.events_with_subject(&user.to_string()).await? {
                if let Some(data) = crate::event::redacted(&event.data) {
                    tx.replace_event_data(&event.partition, event.position, &data)
                        .await?;
                }
            }
            let tombstone = User {
                id: *user,
                email: Email::parse(&format!("{user}@erased.invalid")).map_err(|_| {
                    Error::Store(crate::ports::StoreError::Unavailable(
                        "a tombstone address was refused".to_owned(),
                    ))
                })?,
                state: UserState::Suspended,
                platform_roles: BTreeSet::new(),
                has_totp: false,
                email_verified: false,
                created_at: record.created_at,
                updated_at: now,
            };
            tx.erase_user(&tombstone, now).await?;
            events.push(self.event(
                Partition::Platform,
                user.to_string(),
                EventData::UserErased { id: *user },
            ));
            self.commit(tx, &op, events).await
        }
        .await;
        self.finish(op, result).await
    }

    /// Replaces a user's platform roles (`platform:roles:write`, `aal2`).
    ///
    /// # Errors
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `platform:roles:write` (or below its assurance); `user_not_found`;
    /// `last_platform_root` to take `platform_root` from the last active root; `internal`
    /// when the store fails.
    pub async fn set_platform_roles(
        &self,
        caller: &Caller,
        user: &UserId,
        roles: BTreeSet<PlatformRole>,
    ) -> Result<User, Error> {
        let mut op = self.op(
            caller,
            "user.platform_roles.set",
            user_target("user", user),
            Partition::Platform,
        );
        let result = async {
            let mut tx = self.begin(TxScope::Platform).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                platform_check(scopes::PLATFORM_ROLES_WRITE, Some(user), false),
            )
            .await?;
            tx.lock_partition(&Partition::Platform).await?;
            let mut record = tx.get_user(user).await?.ok_or(Error::UserNotFound)?;
            if is_active_root(&record)
                && !roles.contains(&PlatformRole::Root)
                && tx.count_active_platform_roots().await? <= 1
            {
                return Err(Error::LastPlatformRoot);
            }
            let mut events = Vec::new();
            if record.platform_roles != roles {
                record.platform_roles = roles;
                record.updated_at = self.now();
                tx.update_user(&record).await?;
                events.push(self.event(
                    Partition::Platform,
                    user.to_string(),
                    EventData::PlatformRolesChanged {
                        id: *user,
                        platform_roles: record.platform_roles.clone(),
                    },
                ));
            }
            self.commit(tx, &op, events).await?;
            Ok(record)
        }
        .await;
        self.finish(op, result).await
    }

    /// The caller: their user, platform roles, assurance and memberships.
    ///
    /// # Errors
    /// `forbidden` (`subject_suspended`) when the caller's user is platform-suspended;
    /// `unauthenticated` when the caller's user is gone; `internal` when the store fails.
    pub async fn me(&self, caller: &Caller) -> Result<Me, Error> {
        let mut tx = self.begin(TxScope::Platform).await?;
        match &caller.principal {
            Principal::User {
                user_id, assurance, ..
            } => {
                let user = tx.get_user(user_id).await?.ok_or(Error::Unauthenticated)?;
                Self::refuse_suspended(&user)?;
                let memberships = tx.memberships_of(user_id).await?;
                Ok(Me {
                    user: Some(user),
                    api_key: None,
                    assurance: *assurance,
                    memberships,
                })
            }
            // A client's token: no user, no key; what it may do is in the token.
            Principal::Client { .. } => Ok(Me {
                user: None,
                api_key: None,
                assurance: Assurance::Aal1,
                memberships: Vec::new(),
            }),
            Principal::ApiKey { key_id, tenant } => {
                let key = tx.get_api_key(tenant, key_id).await?;
                Ok(Me {
                    user: None,
                    api_key: key,
                    assurance: Assurance::Aal1,
                    memberships: Vec::new(),
                })
            }
        }
    }

    /// Creates the first platform root when none exists. Idempotent: with a root present
    /// it changes nothing and returns `None`; it never takes over an existing user.
    ///
    /// # Errors
    /// `email_taken` when no root exists yet and a user has `email`; `internal` when the
    /// store or the password hasher fails.
    pub async fn bootstrap(
        &self,
        email: Email,
        password: Password,
        request_id: &str,
    ) -> Result<Option<User>, Error> {
        let mut tx = self.begin(TxScope::Platform).await?;
        tx.lock_partition(&Partition::Platform).await?;
        if tx.count_platform_roots().await? > 0 {
            return Ok(None);
        }
        if tx.find_user_by_email(&email).await?.is_some() {
            return Err(Error::EmailTaken);
        }
        let hash = self.ports.passwords.hash(password.expose()).await?;
        let (mut user, _, mut events) = self
            .insert_user(tx.as_mut(), email, Some(hash), None)
            .await?;
        user.platform_roles = BTreeSet::from([PlatformRole::Root]);
        tx.update_user(&user).await?;
        events.push(self.event(
            Partition::Platform,
            user.id.to_string(),
            EventData::PlatformRolesChanged {
                id: user.id,
                platform_roles: BTreeSet::from([PlatformRole::Root]),
            },
        ));
        tx.append_audit(crate::audit::AuditDraft {
            id: self.audit_id(),
            partition: Partition::Platform,
            at: self.now(),
            actor: Actor {
                kind: ActorType::System,
                id: "bootstrap".to_owned(),
            },
            action: "user.bootstrap",
            target: user_target("user", &user.id),
            outcome: Outcome::Allowed,
            reason: "bootstrap".to_owned(),
            request_id: request_id.to_owned(),
        })
        .await?;
        for event in events {
            tx.append_event(event).await?;
        }
        tx.commit().await?;
        Ok(Some(user))
    }
}
