//! Random scenarios shared by the model-based test and the differential test: random
//! actors (two platform roots, a platform auditor, tenant admins, members holding
//! `members:write` or `api_keys:write` without being admins, outsiders, tenant API keys,
//! each tenant's SCIM key holding only `scim:write`) at `aal1` or `aal2`, calling random
//! use cases — the `/v1` ones and SCIM's — across three tenants, on any store.

use std::collections::BTreeSet;

use crate::harness::{email, scope, tenant_id, user_of, Harness};
use domain::audit::Partition;
use domain::ids::{
    Assurance, DisplayName, Email, KeyId, ProfileKey, ProfileValue, RoleName, ScopeName, TenantId,
    UserId,
};
use domain::model::{AccountState, PlatformRole, ResolvedProfile, TenantState, UserState};
use domain::ports::AuditFilter;
use domain::usecases::{
    AddMember, AuthzCheck, Caller, CheckSubject, CreateTenant, MemberChange, NewApiKey, Principal,
    TenantChange, UserRef,
};
use domain::Error;
use proptest::prelude::*;
use serde_json::json;

pub const TENANTS: [&str; 3] = ["acme", "globex", "initech"];
pub const ROLE_POOL: [&str; 6] = [
    "tenant_admin",
    "member",
    "editor",
    "ghost",
    "recruiter",
    "keymaker",
];
/// What the setup binds the non-admin roles of [`ROLE_POOL`] to in every tenant.
pub const RECRUITER_SCOPES: [&str; 2] = ["members:write", "accounts:write"];
pub const KEYMAKER_SCOPES: [&str; 1] = ["api_keys:write"];
/// Extra users the setup makes a second platform root, a recruiter and a keymaker (in
/// every tenant, with `member` too); the rest start as outsiders.
pub const SECOND_ROOT: usize = 5;
pub const RECRUITER: usize = 6;
pub const KEYMAKER: usize = 7;
pub const SCOPE_POOL: [&str; 8] = [
    "members:read",
    "members:write",
    "roles:read",
    "tenant:read",
    "authz:check",
    "audit:read",
    "profiles:write",
    "platform:users:read",
];
pub const KEY_POOL: [&str; 3] = ["display_name", "title", "locale"];
/// Users beyond the root, the auditor and the three first admins.
pub const EXTRA_USERS: usize = 6;

/// One random step: who acts (an index into the actors), at which assurance, doing what.
#[derive(Debug, Clone)]
pub struct Step {
    pub actor: usize,
    pub aal2: bool,
    pub action: Action,
}

#[derive(Debug, Clone)]
pub enum Action {
    AddMember {
        tenant: usize,
        user: usize,
        roles: u8,
    },
    InviteMember {
        tenant: usize,
        serial: u8,
    },
    SetRoles {
        tenant: usize,
        user: usize,
        roles: u8,
    },
    SetAccountState {
        tenant: usize,
        user: usize,
        active: bool,
    },
    RemoveMember {
        tenant: usize,
        user: usize,
    },
    PutRole {
        tenant: usize,
        role: usize,
        scopes: u8,
    },
    DeleteRole {
        tenant: usize,
        role: usize,
    },
    SetTenantState {
        tenant: usize,
        active: bool,
    },
    RenameTenant {
        tenant: usize,
    },
    SetEnabledScopes {
        tenant: usize,
        without: usize,
    },
    WriteMemberValue {
        tenant: usize,
        user: usize,
        key: usize,
        set: bool,
    },
    WriteTenantDefault {
        tenant: usize,
        key: usize,
        set: bool,
    },
    WritePlatformValue {
        user: usize,
        key: usize,
        set: bool,
    },
    SetUserState {
        user: usize,
        active: bool,
    },
    SetPlatformRoles {
        user: usize,
        roles: u8,
    },
    /// A platform administrator ends every session of a user.
    RevokeUserSessions {
        user: usize,
    },
    /// A platform administrator issues a password reset token for a user.
    IssuePasswordReset {
        user: usize,
    },
    /// A platform administrator removes a user's TOTP factor.
    RemoveTotp {
        user: usize,
    },
    /// A platform administrator erases a user (never the root actor).
    EraseUser {
        user: usize,
    },
    /// A tenant admin creates or replaces a webhook.
    PutWebhook {
        tenant: usize,
        name: u8,
        all: bool,
    },
    DeleteWebhook {
        tenant: usize,
        name: u8,
    },
    /// Anyone asks for a self-service password reset of a user's email.
    RequestPasswordReset {
        user: usize,
    },
    CreateApiKey {
        tenant: usize,
        scopes: u8,
    },
    RevokeApiKey {
        tenant: usize,
        key: usize,
    },
    CreateTenant {
        serial: u8,
        user: usize,
    },
    ListMembers {
        tenant: usize,
    },
    GetMember {
        tenant: usize,
        user: usize,
    },
    ReadProfile {
        tenant: usize,
        user: usize,
    },
    ReadAudit {
        tenant: usize,
    },
    ReadEvents {
        tenant: usize,
    },
    Authorize {
        tenant: usize,
        user: usize,
        scope: usize,
    },
    GetTenant {
        tenant: usize,
    },
    /// SCIM: provision a user by their email (an existing user joins as `member`).
    ScimCreateUser {
        tenant: usize,
        user: usize,
        active: bool,
    },
    /// SCIM: provision a new email (an invited user).
    ScimInvite {
        tenant: usize,
        serial: u8,
    },
    /// SCIM: Entra's deactivate / reactivate PATCH.
    ScimSetActive {
        tenant: usize,
        user: usize,
        active: bool,
    },
    /// SCIM: deprovision (remove the membership).
    ScimDeleteUser {
        tenant: usize,
        user: usize,
    },
    /// SCIM: a group PATCH adding or removing a member of a role.
    ScimGroupMember {
        tenant: usize,
        role: usize,
        user: usize,
        add: bool,
    },
    /// SCIM: create a group (a role bound to nothing).
    ScimCreateGroup {
        tenant: usize,
        serial: u8,
    },
    /// SCIM: list active members by filter.
    ScimListUsers {
        tenant: usize,
    },
}

impl Action {
    /// The tenant the action names, if any.
    pub fn tenant(&self) -> Option<usize> {
        match self {
            Self::AddMember { tenant, .. }
            | Self::InviteMember { tenant, .. }
            | Self::SetRoles { tenant, .. }
            | Self::SetAccountState { tenant, .. }
            | Self::RemoveMember { tenant, .. }
            | Self::PutRole { tenant, .. }
            | Self::DeleteRole { tenant, .. }
            | Self::SetTenantState { tenant, .. }
            | Self::RenameTenant { tenant }
            | Self::SetEnabledScopes { tenant, .. }
            | Self::WriteMemberValue { tenant, .. }
            | Self::WriteTenantDefault { tenant, .. }
            | Self::CreateApiKey { tenant, .. }
            | Self::RevokeApiKey { tenant, .. }
            | Self::ListMembers { tenant }
            | Self::GetMember { tenant, .. }
            | Self::ReadProfile { tenant, .. }
            | Self::ReadAudit { tenant }
            | Self::ReadEvents { tenant }
            | Self::Authorize { tenant, .. }
            | Self::PutWebhook { tenant, .. }
            | Self::DeleteWebhook { tenant, .. }
            | Self::GetTenant { tenant }
            | Self::ScimCreateUser { tenant, .. }
            | Self::ScimInvite { tenant, .. }
            | Self::ScimSetActive { tenant, .. }
            | Self::ScimDeleteUser { tenant, .. }
            | Self::ScimGroupMember { tenant, .. }
            | Self::ScimCreateGroup { tenant, .. }
            | Self::ScimListUsers { tenant } => Some(*tenant),
            Self::WritePlatformValue { .. }
            | Self::SetUserState { .. }
            | Self::SetPlatformRoles { .. }
            | Self::RevokeUserSessions { .. }
            | Self::IssuePasswordReset { .. }
            | Self::RemoveTotp { .. }
            | Self::EraseUser { .. }
            | Self::RequestPasswordReset { .. }
            | Self::CreateTenant { .. } => None,
        }
    }

    /// The tenant the action names, to point it elsewhere.
    pub fn tenant_mut(&mut self) -> Option<&mut usize> {
        match self {
            Self::AddMember { tenant, .. }
            | Self::InviteMember { tenant, .. }
            | Self::SetRoles { tenant, .. }
            | Self::SetAccountState { tenant, .. }
            | Self::RemoveMember { tenant, .. }
            | Self::PutRole { tenant, .. }
            | Self::DeleteRole { tenant, .. }
            | Self::SetTenantState { tenant, .. }
            | Self::RenameTenant { tenant }
            | Self::SetEnabledScopes { tenant, .. }
            | Self::WriteMemberValue { tenant, .. }
            | Self::WriteTenantDefault { tenant, .. }
            | Self::CreateApiKey { tenant, .. }
            | Self::RevokeApiKey { tenant, .. }
            | Self::ListMembers { tenant }
            | Self::GetMember { tenant, .. }
            | Self::ReadProfile { tenant, .. }
            | Self::ReadAudit { tenant }
            | Self::ReadEvents { tenant }
            | Self::Authorize { tenant, .. }
            | Self::PutWebhook { tenant, .. }
            | Self::DeleteWebhook { tenant, .. }
            | Self::GetTenant { tenant }
            | Self::ScimCreateUser { tenant, .. }
            | Self::ScimInvite { tenant, .. }
            | Self::ScimSetActive { tenant, .. }
            | Self::ScimDeleteUser { tenant, .. }
            | Self::ScimGroupMember { tenant, .. }
            | Self::ScimCreateGroup { tenant, .. }
            | Self::ScimListUsers { tenant } => Some(tenant),
            Self::WritePlatformValue { .. }
            | Self::SetUserState { .. }
            | Self::SetPlatformRoles { .. }
            | Self::RevokeUserSessions { .. }
            | Self::IssuePasswordReset { .. }
            | Self::RemoveTotp { .. }
            | Self::EraseUser { .. }
            | Self::RequestPasswordReset { .. }
            | Self::CreateTenant { .. } => None,
        }
    }

    /// Only platform roots may do these, whoever else asks.
    pub fn platform_only(&self) -> bool {
        matches!(
            self,
            Self::SetTenantState { .. }
                | Self::SetEnabledScopes { .. }
                | Self::SetUserState { .. }
                | Self::SetPlatformRoles { .. }
                | Self::RevokeUserSessions { .. }
                | Self::IssuePasswordReset { .. }
                | Self::RemoveTotp { .. }
                | Self::EraseUser { .. }
                | Self::CreateTenant { .. }
        )
    }

    /// Anyone may do these: the caller does not matter.
    pub fn is_public(&self) -> bool {
        matches!(self, Self::RequestPasswordReset { .. })
    }

    pub fn is_read(&self) -> bool {
        matches!(
            self,
            Self::ListMembers { .. }
                | Self::GetMember { .. }
                | Self::ReadProfile { .. }
                | Self::ReadAudit { .. }
                | Self::ReadEvents { .. }
                | Self::Authorize { .. }
                | Self::GetTenant { .. }
                | Self::ScimListUsers { .. }
        )
    }

    /// A SCIM provisioning that makes an account `member` (SPEC §8), the one grant
    /// `scim:write` makes without holding what `member` binds.
    pub fn provisions_member(&self) -> bool {
        matches!(self, Self::ScimCreateUser { .. } | Self::ScimInvite { .. })
    }
}

pub fn action() -> impl Strategy<Value = Action> {
    let tenant = 0..TENANTS.len();
    let user = 0..(5 + EXTRA_USERS);
    prop_oneof![
        4 => (tenant.clone(), user.clone(), roles_mask())
            .prop_map(|(tenant, user, roles)| Action::AddMember { tenant, user, roles }),
        1 => (tenant.clone(), any::<u8>()).prop_map(|(tenant, serial)| Action::InviteMember { tenant, serial }),
        3 => (tenant.clone(), user.clone(), roles_mask())
            .prop_map(|(tenant, user, roles)| Action::SetRoles { tenant, user, roles }),
        2 => (tenant.clone(), user.clone(), any::<bool>())
            .prop_map(|(tenant, user, active)| Action::SetAccountState { tenant, user, active }),
        2 => (tenant.clone(), user.clone()).prop_map(|(tenant, user)| Action::RemoveMember { tenant, user }),
        2 => (tenant.clone(), 1..ROLE_POOL.len(), scopes_mask())
            .prop_map(|(tenant, role, scopes)| Action::PutRole { tenant, role, scopes }),
        1 => (tenant.clone(), 1..ROLE_POOL.len()).prop_map(|(tenant, role)| Action::DeleteRole { tenant, role }),
        1 => (tenant.clone(), prop::bool::weighted(0.7))
            .prop_map(|(tenant, active)| Action::SetTenantState { tenant, active }),
        1 => tenant.clone().prop_map(|tenant| Action::RenameTenant { tenant }),
        1 => (tenant.clone(), 0..SCOPE_POOL.len())
            .prop_map(|(tenant, without)| Action::SetEnabledScopes { tenant, without }),
        2 => (tenant.clone(), user.clone(), 0..KEY_POOL.len(), any::<bool>())
            .prop_map(|(tenant, user, key, set)| Action::WriteMemberValue { tenant, user, key, set }),
        1 => (tenant.clone(), 0..KEY_POOL.len(), any::<bool>())
            .prop_map(|(tenant, key, set)| Action::WriteTenantDefault { tenant, key, set }),
        1 => (user.clone(), 0..KEY_POOL.len(), any::<bool>())
            .prop_map(|(user, key, set)| Action::WritePlatformValue { user, key, set }),
        1 => (user.clone(), prop::bool::weighted(0.7))
            .prop_map(|(user, active)| Action::SetUserState { user, active }),
        1 => (user.clone(), any::<u8>()).prop_map(|(user, roles)| Action::SetPlatformRoles { user, roles }),
        1 => user.clone().prop_map(|user| Action::RevokeUserSessions { user }),
        1 => user.clone().prop_map(|user| Action::IssuePasswordReset { user }),
        1 => user.clone().prop_map(|user| Action::RemoveTotp { user }),
        1 => (1..(5 + EXTRA_USERS)).prop_map(|user| Action::EraseUser { user }),
        1 => user.clone().prop_map(|user| Action::RequestPasswordReset { user }),
        1 => (tenant.clone(), 0..2_u8, any::<bool>())
            .prop_map(|(tenant, name, all)| Action::PutWebhook { tenant, name, all }),
        1 => (tenant.clone(), 0..2_u8).prop_map(|(tenant, name)| Action::DeleteWebhook { tenant, name }),
        1 => (tenant.clone(), scopes_mask()).prop_map(|(tenant, scopes)| Action::CreateApiKey { tenant, scopes }),
        1 => (tenant.clone(), 0..4_usize).prop_map(|(tenant, key)| Action::RevokeApiKey { tenant, key }),
        1 => (any::<u8>(), user.clone()).prop_map(|(serial, user)| Action::CreateTenant { serial, user }),
        2 => tenant.clone().prop_map(|tenant| Action::ListMembers { tenant }),
        2 => (tenant.clone(), user.clone()).prop_map(|(tenant, user)| Action::GetMember { tenant, user }),
        2 => (tenant.clone(), user.clone()).prop_map(|(tenant, user)| Action::ReadProfile { tenant, user }),
        1 => tenant.clone().prop_map(|tenant| Action::ReadAudit { tenant }),
        1 => tenant.clone().prop_map(|tenant| Action::ReadEvents { tenant }),
        2 => (tenant.clone(), user.clone(), 0..SCOPE_POOL.len())
            .prop_map(|(tenant, user, scope)| Action::Authorize { tenant, user, scope }),
        1 => tenant.clone().prop_map(|tenant| Action::GetTenant { tenant }),
        2 => (tenant.clone(), user.clone(), prop::bool::weighted(0.8))
            .prop_map(|(tenant, user, active)| Action::ScimCreateUser { tenant, user, active }),
        1 => (tenant.clone(), any::<u8>()).prop_map(|(tenant, serial)| Action::ScimInvite { tenant, serial }),
        2 => (tenant.clone(), user.clone(), any::<bool>())
            .prop_map(|(tenant, user, active)| Action::ScimSetActive { tenant, user, active }),
        1 => (tenant.clone(), user.clone()).prop_map(|(tenant, user)| Action::ScimDeleteUser { tenant, user }),
        2 => (tenant.clone(), 0..ROLE_POOL.len(), user.clone(), any::<bool>())
            .prop_map(|(tenant, role, user, add)| Action::ScimGroupMember { tenant, role, user, add }),
        1 => (tenant.clone(), 0..3_u8).prop_map(|(tenant, serial)| Action::ScimCreateGroup { tenant, serial }),
        1 => tenant.prop_map(|tenant| Action::ScimListUsers { tenant }),
    ]
}

pub fn step() -> impl Strategy<Value = Step> {
    // Actors: 0 root, 1 auditor, 2..=4 first admins, then extra users, then up to 12
    // API keys (indices past the end wrap around the keys that exist). Weighted so that
    // every kind of actor acts often and admins, who may do most, act most.
    let users = 5 + EXTRA_USERS;
    let actor = prop_oneof![
        3 => Just(0_usize),
        1 => Just(1_usize),
        6 => 2..5_usize,
        4 => 5..users,
        3 => users..(users + 12),
    ];
    // Most steps of a tenant admin or a first key act in its own tenant, so that the
    // operations succeed often enough to move the state; the rest probe other tenants.
    (
        actor,
        prop::bool::weighted(0.7),
        action(),
        prop::bool::weighted(0.6),
    )
        .prop_map(move |(actor, aal2, mut action, at_home)| {
            let home = match actor {
                2..=4 => Some(actor - 2),
                key if key >= users && key < users + 3 => Some(key - users),
                // The SCIM keys (see `setup`).
                key if key >= users + 3 && key < users + 6 => Some(key - users - 3),
                _ => None,
            };
            if let (true, Some(home), Some(tenant)) = (at_home, home, action.tenant_mut()) {
                *tenant = home;
            }
            Step {
                actor,
                aal2,
                action,
            }
        })
}

/// Role sets: mostly built-in roles, sometimes `editor` (bound only after a `PutRole`),
/// the never-bound `ghost`, or the setup's `recruiter` and `keymaker`.
pub fn roles_mask() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => 1..4_u8,
        2 => (0..4_u8, 4..6_u8).prop_map(|(low, role)| low | (1 << role)),
        1 => any::<u8>(),
    ]
}

/// Scope sets: mostly assignable ones, sometimes a platform-only one.
pub fn scopes_mask() -> impl Strategy<Value = u8> {
    prop_oneof![4 => 1..128_u8, 1 => any::<u8>()]
}

/// The world a case runs in.
#[derive(Debug)]
pub struct World {
    pub h: Harness,
    pub tenants: Vec<TenantId>,
    /// Root, auditor, three first admins, extra users: targets and actors.
    pub users: Vec<UserId>,
    /// API keys as (key id, tenant, secret); the first ones are each tenant's seed key.
    pub keys: Vec<(KeyId, TenantId, String)>,
}

/// What a step returned, beyond success: the data a read saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    Done,
    /// A read's result, in its `Debug` form (comparable across stores).
    Read(String),
    Profile(ResolvedProfile),
}

pub fn bits<T: Clone>(mask: u8, pool: &[T]) -> Vec<T> {
    pool.iter()
        .enumerate()
        .filter(|(index, _)| mask & (1 << index) != 0)
        .map(|(_, item)| item.clone())
        .collect()
}

pub fn role_set(mask: u8) -> BTreeSet<RoleName> {
    bits(mask, &ROLE_POOL)
        .into_iter()
        .map(|role| RoleName::parse(role).expect("role"))
        .collect()
}

pub fn scope_set(mask: u8) -> BTreeSet<ScopeName> {
    bits(mask, &SCOPE_POOL).into_iter().map(scope).collect()
}

pub fn key_name(index: usize) -> ProfileKey {
    ProfileKey::parse(KEY_POOL[index]).expect("key")
}

/// Bootstraps a root, an auditor, three tenants with an admin and a key each, and six
/// more users, through the public use cases.
pub async fn setup(h: Harness) -> World {
    let root = h.root().await;
    let mut users = vec![user_of(&root)];
    let auditor = h.user(&root, "auditor@example.com").await;
    h.engine
        .set_platform_roles(&root, &auditor, BTreeSet::from([PlatformRole::Auditor]))
        .await
        .expect("auditor");
    users.push(auditor);
    let mut tenants = Vec::new();
    let mut keys = Vec::new();
    for name in TENANTS {
        let (tenant, admin) = h.tenant(&root, name).await;
        users.push(user_of(&admin));
        let key = h
            .engine
            .create_api_key(
                &admin,
                &tenant,
                NewApiKey {
                    name: DisplayName::parse("seed").expect("name"),
                    scopes: scope_set(0b0011_0111),
                },
            )
            .await
            .expect("key");
        keys.push((key.key.id, tenant.clone(), key.secret));
        tenants.push((tenant, admin));
    }
    // Each tenant's SCIM key, holding only `scim:write`, after the three seed keys.
    for (tenant, admin) in &tenants {
        let key = h
            .engine
            .create_api_key(
                admin,
                tenant,
                NewApiKey {
                    name: DisplayName::parse("scim").expect("name"),
                    scopes: BTreeSet::from([scope("scim:write")]),
                },
            )
            .await
            .expect("SCIM key");
        keys.push((key.key.id, tenant.clone(), key.secret));
    }
    let tenants: Vec<TenantId> = tenants.into_iter().map(|(tenant, _)| tenant).collect();
    for index in 0..EXTRA_USERS {
        let address = format!("user{index}@example.com");
        users.push(h.user(&root, &address).await);
        // A session each, for a platform administrator to end.
        h.engine
            .login(&email(&address), crate::harness::PASSWORD, "setup")
            .await
            .expect("login");
    }
    h.engine
        .set_platform_roles(
            &root,
            &users[SECOND_ROOT],
            BTreeSet::from([PlatformRole::Root]),
        )
        .await
        .expect("a second root");
    for tenant in &tenants {
        for (role, scopes, holder) in [
            ("recruiter", &RECRUITER_SCOPES[..], RECRUITER),
            ("keymaker", &KEYMAKER_SCOPES[..], KEYMAKER),
        ] {
            let role = RoleName::parse(role).expect("role");
            h.engine
                .put_role(
                    &root,
                    tenant,
                    &role,
                    scopes.iter().map(|name| scope(name)).collect(),
                )
                .await
                .expect("bound");
            h.engine
                .add_member(
                    &root,
                    tenant,
                    AddMember {
                        user: UserRef::Id(users[holder]),
                        roles: BTreeSet::from([RoleName::member(), role]),
                    },
                )
                .await
                .expect("a non-admin holder");
        }
    }
    World {
        h,
        tenants,
        users,
        keys,
    }
}

impl World {
    /// What the authorize API's common path (`Engine::authorize_fast`) answers right now
    /// for each tenant's seed key, in its own tenant and in the next one, about every
    /// user for a few scopes (some naming a target), in `Debug` form: compared across
    /// stores after every step, it shows a store serving facts from before a change
    /// (the PostgreSQL store's facts cache) as a difference from the in-memory store.
    /// Wherever it answers, the general path must give the same decisions.
    pub async fn fast_decisions(&self) -> Vec<String> {
        let scopes = [
            "members:read",
            "members:write",
            "authz:check",
            "platform:users:read",
        ];
        let checks: Vec<AuthzCheck> = self
            .users
            .iter()
            .enumerate()
            .flat_map(|(index, user)| {
                scopes
                    .iter()
                    .enumerate()
                    .map(move |(nth, name)| AuthzCheck {
                        subject: CheckSubject::User {
                            user_id: *user,
                            assurance: Assurance::Aal1,
                        },
                        scope: scope(name),
                        target: (nth % 2 == 1).then(|| self.users[(index + 1) % self.users.len()]),
                    })
            })
            .collect();
        let mut seen = Vec::new();
        // Another node, when the harness has one: its cache must see every change at once.
        let node = self.h.other_node.as_ref().unwrap_or(&self.h.engine);
        for (index, (key_id, own, secret)) in self.keys.iter().take(TENANTS.len()).enumerate() {
            let next = &self.tenants[(index + 1) % self.tenants.len()];
            for tenant in [own, next] {
                let fast = node
                    .authorize_fast(tenant, secret, &checks)
                    .await
                    .expect("store");
                if let Some(decisions) = &fast {
                    assert_eq!(tenant, own, "a key answered in another tenant");
                    let caller = Caller {
                        principal: Principal::ApiKey {
                            key_id: *key_id,
                            tenant: own.clone(),
                        },
                        request_id: "fast".to_owned(),
                    };
                    let general = self
                        .h
                        .engine
                        .authorize_batch(&caller, tenant, checks.clone())
                        .await
                        .expect("the general path allows what the fast path answered");
                    assert_eq!(decisions, &general);
                }
                seen.push(format!("{tenant}: {fast:?}"));
            }
        }
        seen
    }

    pub fn caller(&self, step: &Step) -> Caller {
        let assurance = if step.aal2 {
            Assurance::Aal2
        } else {
            Assurance::Aal1
        };
        let principal = if step.actor < self.users.len() {
            Principal::User {
                user_id: self.users[step.actor],
                assurance,
                session: None,
            }
        } else {
            let (key_id, tenant, _) = &self.keys[(step.actor - self.users.len()) % self.keys.len()];
            Principal::ApiKey {
                key_id: *key_id,
                tenant: tenant.clone(),
            }
        };
        Caller {
            principal,
            request_id: "model".to_owned(),
        }
    }

    /// Runs one step. Every item a read returns is checked to belong to the tenant asked.
    pub async fn run(&mut self, step: &Step, caller: &Caller) -> Result<Observed, Error> {
        let engine = &self.h.engine;
        let tenant = |index: usize| self.tenants[index].clone();
        let user = |index: usize| self.users[index];
        let mut new_key = None;
        let mut observed = Observed::Done;
        let result = match &step.action {
            Action::AddMember {
                tenant: t,
                user: u,
                roles,
            } => engine
                .add_member(
                    caller,
                    &tenant(*t),
                    AddMember {
                        user: UserRef::Id(user(*u)),
                        roles: role_set(*roles),
                    },
                )
                .await
                .map(|added| assert_eq!(added.member.tenant, tenant(*t))),
            Action::InviteMember { tenant: t, serial } => engine
                .add_member(
                    caller,
                    &tenant(*t),
                    AddMember {
                        user: UserRef::Email(email(&format!("invitee{serial}@example.com"))),
                        roles: BTreeSet::new(),
                    },
                )
                .await
                .map(|_| ()),
            Action::SetRoles {
                tenant: t,
                user: u,
                roles,
            } => engine
                .update_member(
                    caller,
                    &tenant(*t),
                    &user(*u),
                    MemberChange {
                        roles: Some(role_set(*roles)),
                        ..MemberChange::default()
                    },
                )
                .await
                .map(|member| assert_eq!(member.tenant, tenant(*t))),
            Action::SetAccountState {
                tenant: t,
                user: u,
                active,
            } => engine
                .update_member(
                    caller,
                    &tenant(*t),
                    &user(*u),
                    MemberChange {
                        state: Some(if *active {
                            AccountState::Active
                        } else {
                            AccountState::Suspended
                        }),
                        ..MemberChange::default()
                    },
                )
                .await
                .map(|_| ()),
            Action::RemoveMember { tenant: t, user: u } => {
                engine
                    .remove_member(caller, &tenant(*t), &user(*u), None)
                    .await
            }
            Action::PutRole {
                tenant: t,
                role,
                scopes,
            } => engine
                .put_role(
                    caller,
                    &tenant(*t),
                    &RoleName::parse(ROLE_POOL[*role]).expect("role"),
                    scope_set(*scopes),
                )
                .await
                .map(|_| ()),
            Action::DeleteRole { tenant: t, role } => {
                engine
                    .delete_role(
                        caller,
                        &tenant(*t),
                        &RoleName::parse(ROLE_POOL[*role]).expect("role"),
                    )
                    .await
            }
            Action::SetTenantState { tenant: t, active } => engine
                .update_tenant(
                    caller,
                    &tenant(*t),
                    TenantChange {
                        state: Some(if *active {
                            TenantState::Active
                        } else {
                            TenantState::Suspended
                        }),
                        ..TenantChange::default()
                    },
                )
                .await
                .map(|_| ()),
            Action::RenameTenant { tenant: t } => engine
                .update_tenant(
                    caller,
                    &tenant(*t),
                    TenantChange {
                        display_name: Some(DisplayName::parse("Renamed").expect("name")),
                        ..TenantChange::default()
                    },
                )
                .await
                .map(|_| ()),
            Action::SetEnabledScopes { tenant: t, without } => {
                let scopes = domain::catalog::default_enabled_scopes()
                    .into_iter()
                    .filter(|name| name.as_str() != SCOPE_POOL[*without])
                    .collect();
                engine
                    .set_enabled_scopes(caller, &tenant(*t), scopes)
                    .await
                    .map(|_| ())
            }
            Action::WriteMemberValue {
                tenant: t,
                user: u,
                key,
                set,
            } => engine
                .write_member_value(
                    caller,
                    &tenant(*t),
                    &user(*u),
                    &key_name(*key),
                    set.then(|| ProfileValue::parse(&json!(format!("member {u}"))).expect("value")),
                    None,
                )
                .await
                .map(|_| ()),
            Action::WriteTenantDefault {
                tenant: t,
                key,
                set,
            } => {
                engine
                    .write_tenant_default(
                        caller,
                        &tenant(*t),
                        &key_name(*key),
                        set.then(|| {
                            ProfileValue::parse(&json!(format!("default {t}"))).expect("value")
                        }),
                    )
                    .await
            }
            Action::WritePlatformValue { user: u, key, set } => {
                engine
                    .write_platform_value(
                        caller,
                        &user(*u),
                        &key_name(*key),
                        set.then(|| {
                            ProfileValue::parse(&json!(format!("platform {u}"))).expect("value")
                        }),
                    )
                    .await
            }
            Action::SetUserState { user: u, active } => engine
                .set_user_state(
                    caller,
                    &user(*u),
                    if *active {
                        UserState::Active
                    } else {
                        UserState::Suspended
                    },
                )
                .await
                .map(|_| ()),
            Action::RevokeUserSessions { user: u } => engine
                .revoke_user_sessions(caller, &user(*u))
                .await
                .map(|_| ()),
            Action::IssuePasswordReset { user: u } => engine
                .issue_password_reset(caller, &user(*u))
                .await
                .map(|_| ()),
            Action::RemoveTotp { user: u } => engine.remove_totp(caller, &user(*u)).await,
            Action::EraseUser { user: u } => engine.erase_user(caller, &user(*u)).await,
            Action::PutWebhook {
                tenant: t,
                name,
                all,
            } => {
                let types = if *all { "*" } else { "membership.added" };
                engine
                    .put_webhook(
                        caller,
                        &tenant(*t),
                        &format!("hook-{name}"),
                        &format!("https://hooks.example.com/{t}"),
                        [types.to_owned()].into_iter().collect(),
                    )
                    .await
                    .map(|put| assert_eq!(put.hook.tenant, tenant(*t)))
            }
            Action::DeleteWebhook { tenant: t, name } => {
                engine
                    .delete_webhook(caller, &tenant(*t), &format!("hook-{name}"))
                    .await
            }
            Action::RequestPasswordReset { user: u } => {
                let address = format!("reset-{u}@example.com");
                let found = self.h.store.begin(domain::ports::TxScope::Platform).await;
                let email = match found {
                    Ok(mut tx) => domain::ports::Users::get_user(tx.as_mut(), &user(*u))
                        .await
                        .ok()
                        .flatten()
                        .map(|record| record.email),
                    Err(_) => None,
                }
                .unwrap_or_else(|| Email::parse(&address).expect("email"));
                engine
                    .request_password_reset(
                        &email,
                        None,
                        domain::usecases::ThrottleRule {
                            limit: 1000,
                            window: time::Duration::minutes(1),
                        },
                        "reset",
                    )
                    .await
            }
            Action::SetPlatformRoles { user: u, roles } => {
                // Never strip the root actor itself, so the world keeps a root.
                let mut granted: BTreeSet<PlatformRole> =
                    bits(*roles, &[PlatformRole::Root, PlatformRole::Auditor])
                        .into_iter()
                        .collect();
                if *u == 0 {
                    granted.insert(PlatformRole::Root);
                }
                engine
                    .set_platform_roles(caller, &user(*u), granted)
                    .await
                    .map(|_| ())
            }
            Action::CreateApiKey { tenant: t, scopes } => {
                let created = engine
                    .create_api_key(
                        caller,
                        &tenant(*t),
                        NewApiKey {
                            name: DisplayName::parse("random").expect("name"),
                            scopes: scope_set(*scopes),
                        },
                    )
                    .await?;
                assert_eq!(created.key.tenant, tenant(*t));
                new_key = Some((created.key.id, tenant(*t), created.secret));
                Ok(())
            }
            Action::RevokeApiKey { tenant: t, key } => {
                let key_id = self.keys[*key % self.keys.len()].0;
                engine.revoke_api_key(caller, &tenant(*t), &key_id).await
            }
            Action::CreateTenant { serial, user: u } => engine
                .create_tenant(
                    caller,
                    CreateTenant {
                        id: tenant_id(&format!("extra-{serial}")),
                        display_name: DisplayName::parse("Extra").expect("name"),
                        admin: UserRef::Id(user(*u)),
                    },
                )
                .await
                .map(|_| ()),
            Action::ListMembers { tenant: t } => {
                let page = engine.list_members(caller, &tenant(*t), None, 200).await?;
                observed = Observed::Read(format!("{page:?}"));
                assert!(
                    page.items.iter().all(|member| member.tenant == tenant(*t)),
                    "leak: {page:?}"
                );
                Ok(())
            }
            Action::GetMember { tenant: t, user: u } => {
                let member = engine.get_member(caller, &tenant(*t), &user(*u)).await?;
                observed = Observed::Read(format!("{member:?}"));
                assert_eq!((member.tenant, member.user_id), (tenant(*t), user(*u)));
                Ok(())
            }
            Action::ReadProfile { tenant: t, user: u } => {
                let profile = engine
                    .member_profile(caller, &tenant(*t), &user(*u))
                    .await?;
                observed = Observed::Profile(profile);
                Ok(())
            }
            Action::ReadAudit { tenant: t } => {
                let page = engine
                    .tenant_audit(caller, &tenant(*t), &AuditFilter::default(), None, 200)
                    .await?;
                observed = Observed::Read(format!("{page:?}"));
                assert!(page
                    .items
                    .iter()
                    .all(|record| record.tenant() == Some(&tenant(*t))));
                Ok(())
            }
            Action::ReadEvents { tenant: t } => {
                let page = engine.tenant_events(caller, &tenant(*t), None, 200).await?;
                observed = Observed::Read(format!("{page:?}"));
                assert!(page
                    .items
                    .iter()
                    .all(|event| event.partition == Partition::Tenant(tenant(*t))));
                Ok(())
            }
            Action::Authorize {
                tenant: t,
                user: u,
                scope: s,
            } => {
                let decision = engine
                    .authorize(
                        caller,
                        &tenant(*t),
                        AuthzCheck {
                            subject: CheckSubject::User {
                                user_id: user(*u),
                                assurance: Assurance::Aal1,
                            },
                            scope: scope(SCOPE_POOL[*s]),
                            target: None,
                        },
                    )
                    .await?;
                assert_eq!(decision.allowed, decision.reason.is_allow());
                observed = Observed::Read(format!("{decision:?}"));
                Ok(())
            }
            Action::GetTenant { tenant: t } => {
                let read = engine.get_tenant(caller, &tenant(*t)).await?;
                observed = Observed::Read(format!("{read:?}"));
                assert_eq!(read.id, tenant(*t));
                Ok(())
            }
            Action::ScimCreateUser {
                tenant: t,
                user: u,
                active,
            } => {
                let email = {
                    let mut tx = self
                        .h
                        .store
                        .begin(domain::ports::TxScope::Platform)
                        .await
                        .expect("tx");
                    tx.get_user(&user(*u)).await.expect("store").map_or_else(
                        || "gone@example.com".to_owned(),
                        |found| found.email.as_str().to_owned(),
                    )
                };
                let created = engine
                    .scim_create_user(
                        caller,
                        &tenant(*t),
                        &json!({
                            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                            "userName": email,
                            "externalId": format!("ext-{u}"),
                            "displayName": format!("User {u}"),
                            "active": active,
                        }),
                    )
                    .await?;
                assert_eq!(created.member.tenant, tenant(*t));
                Ok(())
            }
            Action::ScimInvite { tenant: t, serial } => {
                let created = engine
                    .scim_create_user(
                        caller,
                        &tenant(*t),
                        &json!({
                            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                            "userName": format!("login{serial}"),
                            "emails": [{ "value": format!("scim{serial}@example.com"), "primary": true }],
                        }),
                    )
                    .await?;
                assert_eq!(created.member.tenant, tenant(*t));
                Ok(())
            }
            Action::ScimSetActive {
                tenant: t,
                user: u,
                active,
            } => {
                let operations = domain::scim::patch::parse_patch(&json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{ "op": "Replace", "path": "active",
                                     "value": if *active { "True" } else { "False" } }],
                }))
                .expect("Entra's PATCH");
                engine
                    .scim_patch_user(caller, &tenant(*t), &user(*u), &operations, None)
                    .await
                    .map(|patched| assert_eq!(patched.member.tenant, tenant(*t)))
            }
            Action::ScimDeleteUser { tenant: t, user: u } => {
                engine
                    .scim_delete_user(caller, &tenant(*t), &user(*u), None)
                    .await
            }
            Action::ScimGroupMember {
                tenant: t,
                role,
                user: u,
                add,
            } => {
                let operation = if *add {
                    json!({ "op": "add", "path": "members", "value": [{ "value": user(*u).to_string() }] })
                } else {
                    json!({ "op": "remove", "path": format!("members[value eq \"{}\"]", user(*u)) })
                };
                let operations = domain::scim::patch::parse_patch(&json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [operation],
                }))
                .expect("a group PATCH");
                engine
                    .scim_patch_group(caller, &tenant(*t), ROLE_POOL[*role], &operations, None)
                    .await
                    .map(|_| ())
            }
            Action::ScimCreateGroup { tenant: t, serial } => engine
                .scim_create_group(
                    caller,
                    &tenant(*t),
                    &json!({
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                        "displayName": format!("Team {serial}"),
                    }),
                )
                .await
                .map(|_| ()),
            Action::ScimListUsers { tenant: t } => {
                let page = engine
                    .scim_list_users(
                        caller,
                        &tenant(*t),
                        domain::usecases::ScimListQuery {
                            filter: Some("active eq true and userName pr".to_owned()),
                            start_index: 1,
                            count: 50,
                        },
                    )
                    .await?;
                assert!(page
                    .users
                    .iter()
                    .all(|user| user.member.tenant == tenant(*t)
                        && user.member.state == AccountState::Active));
                observed = Observed::Read(format!("{} {:?}", page.total, page.users));
                Ok(())
            }
        };
        if let Some(key) = new_key {
            if self.keys.len() < 12 {
                self.keys.push(key);
            }
        }
        result.map(|()| observed)
    }
}
