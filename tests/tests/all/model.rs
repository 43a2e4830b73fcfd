//! The model-based isolation test: random actors (platform root, platform auditor,
//! tenant admins, members, outsiders, tenant API keys) call random use cases across
//! three tenants; after every step the store is checked against the rules of SPEC §3
//! and a small reference model of who may do what.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use domain::audit::{verify_chain, Outcome, Partition};
use domain::fakes::{MemState, MemStore};
use domain::ids::{
    Assurance, DisplayName, KeyId, ProfileKey, ProfileValue, RoleName, ScopeName, TenantId, UserId,
};
use domain::model::{AccountState, PlatformRole, ProfileSource, TenantState, UserState};
use domain::ports::AuditFilter;
use domain::usecases::{
    AddMember, AuthzCheck, Caller, CheckSubject, CreateTenant, MemberChange, NewApiKey, Principal,
    TenantChange, UserRef,
};
use domain::Error;
use proptest::prelude::*;
use serde_json::json;
use tests::harness::{email, scope, tenant_id, user_of, Harness};

const TENANTS: [&str; 3] = ["acme", "globex", "initech"];
const ROLE_POOL: [&str; 4] = ["tenant_admin", "member", "editor", "ghost"];
const SCOPE_POOL: [&str; 8] = [
    "members:read",
    "members:write",
    "roles:read",
    "tenant:read",
    "authz:check",
    "audit:read",
    "profiles:write",
    "platform:users:read",
];
const KEY_POOL: [&str; 3] = ["display_name", "title", "locale"];
/// Users beyond the root, the auditor and the three first admins.
const EXTRA_USERS: usize = 6;

/// One random step: who acts (an index into the actors), at which assurance, doing what.
#[derive(Debug, Clone)]
struct Step {
    actor: usize,
    aal2: bool,
    action: Action,
}

#[derive(Debug, Clone)]
enum Action {
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
}

impl Action {
    /// The tenant the action names, if any.
    fn tenant(&self) -> Option<usize> {
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
            | Self::GetTenant { tenant } => Some(*tenant),
            Self::WritePlatformValue { .. }
            | Self::SetUserState { .. }
            | Self::SetPlatformRoles { .. }
            | Self::CreateTenant { .. } => None,
        }
    }

    /// The tenant the action names, to point it elsewhere.
    fn tenant_mut(&mut self) -> Option<&mut usize> {
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
            | Self::GetTenant { tenant } => Some(tenant),
            Self::WritePlatformValue { .. }
            | Self::SetUserState { .. }
            | Self::SetPlatformRoles { .. }
            | Self::CreateTenant { .. } => None,
        }
    }

    /// Only platform roots may do these, whoever else asks.
    fn platform_only(&self) -> bool {
        matches!(
            self,
            Self::SetTenantState { .. }
                | Self::SetEnabledScopes { .. }
                | Self::SetUserState { .. }
                | Self::SetPlatformRoles { .. }
                | Self::CreateTenant { .. }
        )
    }

    fn is_read(&self) -> bool {
        matches!(
            self,
            Self::ListMembers { .. }
                | Self::GetMember { .. }
                | Self::ReadProfile { .. }
                | Self::ReadAudit { .. }
                | Self::ReadEvents { .. }
                | Self::Authorize { .. }
                | Self::GetTenant { .. }
        )
    }
}

fn action() -> impl Strategy<Value = Action> {
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
        1 => tenant.prop_map(|tenant| Action::GetTenant { tenant }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
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

/// Role sets: mostly built-in roles, sometimes `editor` (bound only after a `PutRole`)
/// or the never-bound `ghost`.
fn roles_mask() -> impl Strategy<Value = u8> {
    prop_oneof![4 => 1..4_u8, 1 => any::<u8>()]
}

/// Scope sets: mostly assignable ones, sometimes a platform-only one.
fn scopes_mask() -> impl Strategy<Value = u8> {
    prop_oneof![4 => 1..128_u8, 1 => any::<u8>()]
}

/// The world a case runs in.
struct World {
    h: Harness,
    store: Arc<MemStore>,
    tenants: Vec<TenantId>,
    /// Root, auditor, three first admins, extra users: targets and actors.
    users: Vec<UserId>,
    /// API keys as (key id, tenant).
    keys: Vec<(KeyId, TenantId)>,
}

fn bits<T: Clone>(mask: u8, pool: &[T]) -> Vec<T> {
    pool.iter()
        .enumerate()
        .filter(|(index, _)| mask & (1 << index) != 0)
        .map(|(_, item)| item.clone())
        .collect()
}

fn role_set(mask: u8) -> BTreeSet<RoleName> {
    bits(mask, &ROLE_POOL)
        .into_iter()
        .map(|role| RoleName::parse(role).expect("role"))
        .collect()
}

fn scope_set(mask: u8) -> BTreeSet<ScopeName> {
    bits(mask, &SCOPE_POOL).into_iter().map(scope).collect()
}

fn key_name(index: usize) -> ProfileKey {
    ProfileKey::parse(KEY_POOL[index]).expect("key")
}

async fn setup() -> World {
    let (h, store) = Harness::fake();
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
        keys.push((key.key.id, tenant.clone()));
        tenants.push(tenant);
    }
    for index in 0..EXTRA_USERS {
        users.push(h.user(&root, &format!("user{index}@example.com")).await);
    }
    World {
        h,
        store,
        tenants,
        users,
        keys,
    }
}

impl World {
    fn caller(&self, step: &Step) -> Caller {
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
            let (key_id, tenant) = &self.keys[(step.actor - self.users.len()) % self.keys.len()];
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

    /// Runs one step; returns the error code on failure, and the tenant a read returned
    /// data of (every item is checked to belong to it).
    async fn run(&mut self, step: &Step, caller: &Caller) -> Result<(), Error> {
        let engine = &self.h.engine;
        let tenant = |index: usize| self.tenants[index].clone();
        let user = |index: usize| self.users[index];
        let mut new_key = None;
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
                new_key = Some((created.key.id, tenant(*t)));
                Ok(())
            }
            Action::RevokeApiKey { tenant: t, key } => {
                let (key_id, _) = self.keys[*key % self.keys.len()].clone();
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
                assert!(
                    page.items.iter().all(|member| member.tenant == tenant(*t)),
                    "leak: {page:?}"
                );
                Ok(())
            }
            Action::GetMember { tenant: t, user: u } => {
                let member = engine.get_member(caller, &tenant(*t), &user(*u)).await?;
                assert_eq!((member.tenant, member.user_id), (tenant(*t), user(*u)));
                Ok(())
            }
            Action::ReadProfile { tenant: t, user: u } => {
                let profile = engine
                    .member_profile(caller, &tenant(*t), &user(*u))
                    .await?;
                let state = self.store.snapshot().await;
                assert_eq!(
                    reference_profile(&state, &tenant(*t), &user(*u)),
                    profile
                        .values
                        .iter()
                        .map(|(key, resolved)| (
                            key.clone(),
                            (resolved.value.clone(), resolved.source)
                        ))
                        .collect::<BTreeMap<_, _>>(),
                    "precedence: member, then platform, then tenant default"
                );
                Ok(())
            }
            Action::ReadAudit { tenant: t } => {
                let page = engine
                    .tenant_audit(caller, &tenant(*t), &AuditFilter::default(), 0, 200)
                    .await?;
                assert!(page
                    .items
                    .iter()
                    .all(|record| record.tenant() == Some(&tenant(*t))));
                Ok(())
            }
            Action::ReadEvents { tenant: t } => {
                let page = engine.tenant_events(caller, &tenant(*t), 0, 200).await?;
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
                Ok(())
            }
            Action::GetTenant { tenant: t } => {
                let read = engine.get_tenant(caller, &tenant(*t)).await?;
                assert_eq!(read.id, tenant(*t));
                Ok(())
            }
        };
        if let Some(key) = new_key {
            if self.keys.len() < 12 {
                self.keys.push(key);
            }
        }
        result
    }
}

/// The precedence of SPEC §3.4, written independently of the engine's resolver.
fn reference_profile(
    state: &MemState,
    tenant: &TenantId,
    user: &UserId,
) -> BTreeMap<ProfileKey, (ProfileValue, ProfileSource)> {
    let mut resolved = BTreeMap::new();
    for (key, entry) in &state.schema {
        let member = state
            .member_values
            .get(&(tenant.clone(), *user, key.clone()));
        let platform = state.platform_values.get(&(*user, key.clone()));
        let default = state.tenant_defaults.get(&(tenant.clone(), key.clone()));
        let value = match (member, platform, default) {
            (Some(value), _, _) if entry.tenant_overridable => {
                Some((value, ProfileSource::TenantMember))
            }
            (_, Some(value), _) => Some((value, ProfileSource::Platform)),
            (_, _, Some(value)) if entry.tenant_overridable => {
                Some((value, ProfileSource::TenantDefault))
            }
            _ => None,
        };
        if let Some((value, source)) = value {
            resolved.insert(key.clone(), (value.clone(), source));
        }
    }
    resolved
}

/// Every row of one tenant except its audit trail (which may grow with refusals).
#[allow(
    clippy::type_complexity,
    reason = "a tuple of borrowed rows, compared whole"
)]
fn tenant_rows<'a>(
    state: &'a MemState,
    tenant: &TenantId,
) -> (
    Option<&'a domain::model::Tenant>,
    Option<&'a BTreeSet<ScopeName>>,
    Vec<(&'a (TenantId, RoleName), &'a BTreeSet<ScopeName>)>,
    Vec<(&'a (TenantId, UserId), &'a domain::fakes::MemberRow)>,
    Vec<(&'a (TenantId, UserId, ProfileKey), &'a ProfileValue)>,
    Vec<(&'a (TenantId, ProfileKey), &'a ProfileValue)>,
    Vec<&'a (domain::model::ApiKey, String)>,
    &'a [domain::event::Event],
) {
    (
        state.tenants.get(tenant),
        state.enabled.get(tenant),
        state
            .bindings
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .collect(),
        state
            .members
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .collect(),
        state
            .member_values
            .iter()
            .filter(|((t, _, _), _)| t == tenant)
            .collect(),
        state
            .tenant_defaults
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .collect(),
        state
            .api_keys
            .values()
            .filter(|(key, _)| &key.tenant == tenant)
            .collect(),
        state.events_of(&Partition::Tenant(tenant.clone())),
    )
}

/// The platform-root resources: the tenant collection and lifecycle, existing users'
/// platform state and roles, the catalog and the schema.
fn same_platform_rows(before: &MemState, after: &MemState, users: &BTreeSet<UserId>) -> bool {
    let tenants = |state: &MemState| {
        state
            .tenants
            .values()
            .map(|tenant| (tenant.id.clone(), tenant.state))
            .collect::<Vec<_>>()
    };
    let users_of = |state: &MemState| {
        state
            .users
            .values()
            .filter(|user| users.contains(&user.id))
            .map(|user| (user.id, user.state, user.platform_roles.clone()))
            .collect::<Vec<_>>()
    };
    tenants(before) == tenants(after)
        && users_of(before) == users_of(after)
        && before.catalog == after.catalog
        && before.schema == after.schema
}

/// Every row a change could touch, audit trails aside.
fn same_data(before: &MemState, after: &MemState) -> bool {
    before.tenants == after.tenants
        && before.enabled == after.enabled
        && before.bindings == after.bindings
        && before.members == after.members
        && before.users == after.users
        && before.catalog == after.catalog
        && before.schema == after.schema
        && before.member_values == after.member_values
        && before.tenant_defaults == after.tenant_defaults
        && before.platform_values == after.platform_values
        && before.api_keys == after.api_keys
}

fn audit_count(state: &MemState) -> usize {
    state.audit.values().map(Vec::len).sum()
}

fn event_count(state: &MemState) -> usize {
    state.events.values().map(Vec::len).sum()
}

/// The actor's standing, from the state before the step.
struct Standing {
    platform_roles: BTreeSet<PlatformRole>,
    suspended: bool,
    /// Has an account in (or is a key of) the step's tenant.
    in_tenant: bool,
    is_root: bool,
    /// A revoked API key: nothing it asks gets past authentication.
    revoked: bool,
}

fn standing(state: &MemState, caller: &Caller, tenant: Option<&TenantId>) -> Standing {
    match &caller.principal {
        Principal::User { user_id, .. } => {
            let user = state.users.get(user_id).expect("actor exists");
            Standing {
                platform_roles: user.platform_roles.clone(),
                suspended: user.state == UserState::Suspended,
                in_tenant: tenant
                    .is_some_and(|tenant| state.members.contains_key(&(tenant.clone(), *user_id))),
                is_root: user.platform_roles.contains(&PlatformRole::Root),
                revoked: false,
            }
        }
        Principal::ApiKey {
            key_id,
            tenant: key_tenant,
        } => Standing {
            platform_roles: BTreeSet::new(),
            suspended: false,
            in_tenant: tenant == Some(key_tenant),
            is_root: false,
            revoked: state
                .api_keys
                .get(key_id)
                .is_none_or(|(key, _)| key.revoked_at.is_some()),
        },
    }
}

async fn check_step(world: &mut World, step: &Step) {
    let caller = world.caller(step);
    let tenant = step
        .action
        .tenant()
        .map(|index| world.tenants[index].clone());
    let before = world.store.snapshot().await;
    let who = standing(&before, &caller, tenant.as_ref());
    let known_users: BTreeSet<UserId> = before.users.keys().copied().collect();
    let result = world.run(step, &caller).await;
    let after = world.store.snapshot().await;
    let context = format!("step {step:?} by {:?} gave {result:?}", caller.principal);

    // The reference model's predictions.
    if who.suspended {
        assert!(
            result.is_err(),
            "a platform-suspended subject is refused: {context}"
        );
    }
    if step.action.platform_only() && !who.is_root {
        assert!(
            result.is_err(),
            "platform-only operations need platform_root: {context}"
        );
    }
    if who.revoked {
        // Another tenant is hidden before the key is even looked at.
        let expected = if tenant.is_some() && !who.in_tenant {
            Error::TenantNotFound
        } else {
            Error::Unauthenticated
        };
        assert_eq!(result, Err(expected), "a revoked key is refused: {context}");
    } else if tenant
        .as_ref()
        .is_some_and(|t| before.tenants.contains_key(t))
        && who.platform_roles.is_empty()
        && !who.in_tenant
    {
        assert_eq!(
            result,
            Err(Error::TenantNotFound),
            "outsiders see no tenant: {context}"
        );
    }

    // Audit: one record per mutation, allowed or denied; reads audit only refusals.
    let audit_delta = audit_count(&after) - audit_count(&before);
    let event_delta = event_count(&after) - event_count(&before);
    let data_changed = !same_data(&before, &after);
    match &result {
        Ok(()) if step.action.is_read() => {
            assert_eq!(
                (audit_delta, event_delta),
                (0, 0),
                "a read writes nothing: {context}"
            );
            assert!(!data_changed, "a read changes nothing: {context}");
        }
        Ok(()) => {
            assert_eq!(audit_delta, 1, "one audit record per mutation: {context}");
            assert_eq!(
                data_changed,
                event_delta > 0,
                "a change has events, events have a change: {context}"
            );
        }
        Err(Error::Store(error)) => panic!("the fake store failed: {error} in {context}"),
        Err(_) => {
            assert_eq!(audit_delta, 1, "one denied record per refusal: {context}");
            assert_eq!(event_delta, 0, "a refusal publishes nothing: {context}");
            assert!(!data_changed, "a refusal changes nothing: {context}");
            let denied = after
                .audit
                .values()
                .flat_map(|trail| trail.iter())
                .filter(|record| record.outcome == Outcome::Denied)
                .count()
                - before
                    .audit
                    .values()
                    .flat_map(|trail| trail.iter())
                    .filter(|record| record.outcome == Outcome::Denied)
                    .count();
            assert_eq!(denied, 1, "the record is a denied one: {context}");
        }
    }

    // Isolation of writes: no tenant other than the one named changes.
    for other in before.tenants.keys() {
        if Some(other) != tenant.as_ref() {
            assert!(
                tenant_rows(&before, other) == tenant_rows(&after, other),
                "tenant {other} changed: {context}"
            );
            assert_eq!(
                before.audit_of(&Partition::Tenant(other.clone())),
                after.audit_of(&Partition::Tenant(other.clone())),
                "tenant {other}'s trail changed: {context}"
            );
        }
    }

    // Platform-root resources, and platform role holders' accounts, change only for roots.
    if !who.is_root {
        assert!(
            same_platform_rows(&before, &after, &known_users),
            "a non-root changed a platform-root resource: {context}"
        );
        if who.platform_roles.is_empty() {
            // Accounts of platform role holders are never changed or removed by them;
            // adding such a user to a tenant creates a tenant resource, not a platform one.
            for (key, row) in &before.members {
                let holder = before
                    .users
                    .get(&key.1)
                    .is_some_and(|user| !user.platform_roles.is_empty());
                if holder {
                    assert_eq!(
                        after.members.get(key),
                        Some(row),
                        "target_protected: {context}"
                    );
                }
            }
        }
    }

    // Every active tenant keeps an active admin.
    for (id, tenant_row) in &after.tenants {
        if tenant_row.state == TenantState::Active {
            let admins = after
                .members
                .iter()
                .filter(|((t, _), row)| {
                    t == id
                        && row.state == AccountState::Active
                        && row.roles.iter().any(RoleName::is_tenant_admin)
                })
                .count();
            assert!(admins >= 1, "tenant {id} lost its last admin: {context}");
        }
    }

    // Every chain verifies; events keep their feed positions gapless.
    for (partition, trail) in &after.audit {
        assert_eq!(
            verify_chain(trail),
            Ok(()),
            "chain of {partition:?}: {context}"
        );
    }
    for events in after.events.values() {
        for (index, event) in events.iter().enumerate() {
            assert_eq!(event.position, index as u64 + 1);
        }
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 500,
        max_shrink_time: 60_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_actors_never_break_isolation_audit_or_admin_invariants(
        steps in prop::collection::vec(step(), 200)
    ) {
        futures::executor::block_on(async {
            let mut world = setup().await;
            for step in &steps {
                check_step(&mut world, step).await;
            }
        });
    }
}
