//! The model-based isolation test: the random scenarios of `tests::scenario` on the
//! in-memory store; after every step the store is checked against the rules of SPEC §3
//! and a small reference model of who may do what.

use std::collections::{BTreeMap, BTreeSet};

use domain::audit::{verify_chain, Outcome, Partition};
use domain::fakes::{MemState, MemStore};
use domain::ids::{Assurance, ProfileKey, ProfileValue, RoleName, ScopeName, TenantId, UserId};
use domain::model::{AccountState, PlatformRole, ProfileSource, TenantState, UserState};
use domain::usecases::{Caller, Principal};
use domain::Error;
use proptest::prelude::*;
use tests::harness::Harness;
use tests::scenario::{setup, step, Action, Observed, Step, World};

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
    Vec<(
        &'a (TenantId, UserId),
        &'a domain::scim::model::ScimIdentity,
    )>,
    Vec<(&'a (TenantId, RoleName), &'a domain::scim::model::ScimGroup)>,
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
        state
            .scim_identities
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .collect(),
        state
            .scim_groups
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .collect(),
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
        && before.sessions == after.sessions
        && before.password_resets == after.password_resets
        && before.credentials == after.credentials
        && before.erased == after.erased
        && before.email_verifications == after.email_verifications
        && before.recovery_codes == after.recovery_codes
        && before.mails == after.mails
        && before.webhooks == after.webhooks
        && before.deliveries == after.deliveries
        && before.scim_identities == after.scim_identities
        && before.scim_groups == after.scim_groups
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
        // A client's token stands while its client is registered.
        Principal::Client {
            client,
            tenant: client_tenant,
            ..
        } => Standing {
            platform_roles: BTreeSet::new(),
            suspended: false,
            in_tenant: tenant == Some(client_tenant),
            is_root: false,
            revoked: !state.oauth_clients.contains_key(client),
        },
    }
}

/// What the caller is allowed in the tenant, after SPEC §3.2 but written independently of
/// `decide`; `None` for an active platform root, whom the grant rules exempt.
fn allowed_scopes(
    state: &MemState,
    caller: &Caller,
    tenant: &TenantId,
) -> Option<BTreeSet<ScopeName>> {
    let Some(tenant_row) = state.tenants.get(tenant) else {
        return Some(BTreeSet::new());
    };
    let enabled = state.enabled.get(tenant).cloned().unwrap_or_default();
    let reachable = |name: &ScopeName, assurance: Assurance| {
        state
            .catalog
            .get(name)
            .is_some_and(|scope| scope.min_assurance <= assurance)
    };
    let active_tenant = tenant_row.state == TenantState::Active;
    match &caller.principal {
        Principal::User {
            user_id, assurance, ..
        } => {
            let user = state.users.get(user_id).expect("actor exists");
            if user.state != UserState::Active {
                return Some(BTreeSet::new());
            }
            if user.platform_roles.contains(&PlatformRole::Root) {
                return None;
            }
            let mut allowed = BTreeSet::new();
            if user.platform_roles.contains(&PlatformRole::Auditor) {
                allowed.extend(
                    state
                        .catalog
                        .keys()
                        .filter(|name| name.is_read() && reachable(name, *assurance))
                        .cloned(),
                );
            }
            let account = state
                .members
                .get(&(tenant.clone(), *user_id))
                .filter(|row| active_tenant && row.state == AccountState::Active);
            if let Some(row) = account {
                let bound: BTreeSet<ScopeName> = if row.roles.iter().any(RoleName::is_tenant_admin)
                {
                    enabled.clone()
                } else {
                    row.roles
                        .iter()
                        .filter_map(|role| state.bindings.get(&(tenant.clone(), role.clone())))
                        .flatten()
                        .filter(|name| enabled.contains(*name))
                        .cloned()
                        .collect()
                };
                allowed.extend(bound.into_iter().filter(|name| reachable(name, *assurance)));
            }
            Some(allowed)
        }
        Principal::ApiKey {
            key_id,
            tenant: key_tenant,
        } => Some(
            state
                .api_keys
                .get(key_id)
                .filter(|(key, _)| {
                    active_tenant && key_tenant == tenant && key.revoked_at.is_none()
                })
                .map(|(key, _)| {
                    key.scopes
                        .iter()
                        .filter(|name| enabled.contains(*name) && reachable(name, Assurance::Aal1))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default(),
        ),
        Principal::Client {
            client,
            tenant: client_tenant,
            scopes,
        } => Some(
            if active_tenant && client_tenant == tenant && state.oauth_clients.contains_key(client)
            {
                scopes
                    .iter()
                    .filter(|name| enabled.contains(*name) && reachable(name, Assurance::Aal1))
                    .cloned()
                    .collect()
            } else {
                BTreeSet::new()
            },
        ),
    }
}

/// The scopes a role binds in the tenant; every enabled scope for `tenant_admin`.
fn role_scopes(state: &MemState, tenant: &TenantId, role: &RoleName) -> BTreeSet<ScopeName> {
    if role.is_tenant_admin() {
        state.enabled.get(tenant).cloned().unwrap_or_default()
    } else {
        state
            .bindings
            .get(&(tenant.clone(), role.clone()))
            .cloned()
            .unwrap_or_default()
    }
}

/// SPEC §3.3 after a successful step in `tenant`: nothing granted (roles by their scopes
/// at that moment, key scopes, binding scopes) exceeds what the caller was allowed, and
/// who holds `tenant_admin` changed only by an admin or a root at `aal2`.
fn check_grants(
    before: &MemState,
    after: &MemState,
    caller: &Caller,
    tenant: &TenantId,
    provisions_member: bool,
    context: &str,
) {
    if let Some(allowed) = allowed_scopes(before, caller, tenant) {
        for (key, row) in after.members.iter().filter(|((t, _), _)| t == tenant) {
            let had = before
                .members
                .get(key)
                .map(|row| row.roles.clone())
                .unwrap_or_default();
            for role in row.roles.difference(&had) {
                // SPEC §8: a SCIM create makes the account `member`, whatever it binds.
                if provisions_member && had.is_empty() && *role == RoleName::member() {
                    continue;
                }
                let granted = role_scopes(before, tenant, role);
                assert!(
                    granted.is_subset(&allowed),
                    "granted {role} ({granted:?}) beyond what the granter holds ({allowed:?}): {context}"
                );
            }
        }
        for (id, (key, _)) in &after.api_keys {
            if &key.tenant == tenant && !before.api_keys.contains_key(id) {
                assert!(
                    key.scopes.is_subset(&allowed),
                    "a key with {:?} beyond its creator's {allowed:?}: {context}",
                    key.scopes
                );
            }
        }
        for ((t, role), scopes) in after.bindings.iter().filter(|((t, _), _)| t == tenant) {
            let had = before.bindings.get(&(t.clone(), role.clone()));
            let added: BTreeSet<&ScopeName> = scopes
                .iter()
                .filter(|name| had.is_none_or(|had| !had.contains(*name)))
                .collect();
            assert!(
                added.iter().all(|name| allowed.contains(*name)),
                "bound {added:?} to {role} beyond the binder's {allowed:?}: {context}"
            );
        }
    }
    let holds_admin = |row: Option<&domain::fakes::MemberRow>| {
        row.is_some_and(|row| row.roles.iter().any(RoleName::is_tenant_admin))
    };
    let active_admin = |row: Option<&domain::fakes::MemberRow>| {
        row.is_some_and(|row| {
            row.state == AccountState::Active && row.roles.iter().any(RoleName::is_tenant_admin)
        })
    };
    let accounts: BTreeSet<&(TenantId, UserId)> = before
        .members
        .keys()
        .chain(after.members.keys())
        .filter(|(t, _)| t == tenant)
        .collect();
    let admin_changed = accounts.into_iter().any(|key| {
        holds_admin(before.members.get(key)) != holds_admin(after.members.get(key))
            || active_admin(before.members.get(key)) != active_admin(after.members.get(key))
    });
    if admin_changed {
        let Principal::User {
            user_id, assurance, ..
        } = &caller.principal
        else {
            panic!("a key changed who holds tenant_admin: {context}");
        };
        assert_eq!(
            *assurance,
            Assurance::Aal2,
            "tenant_admin changed hands without aal2: {context}"
        );
        let root = before
            .users
            .get(user_id)
            .is_some_and(|user| user.platform_roles.contains(&PlatformRole::Root));
        assert!(
            root || active_admin(before.members.get(&(tenant.clone(), *user_id))),
            "tenant_admin changed hands by a non-admin: {context}"
        );
    }
}

async fn check_step(world: &mut World, store: &MemStore, step: &Step) {
    let caller = world.caller(step);
    let tenant = step
        .action
        .tenant()
        .map(|index| world.tenants[index].clone());
    let before = store.snapshot().await;
    let who = standing(&before, &caller, tenant.as_ref());
    let known_users: BTreeSet<UserId> = before.users.keys().copied().collect();
    let result = world.run(step, &caller).await;
    let after = store.snapshot().await;
    let context = format!("step {step:?} by {:?} gave {result:?}", caller.principal);

    if let (Ok(Observed::Profile(profile)), Action::ReadProfile { tenant: t, user: u }) =
        (&result, &step.action)
    {
        let resolved: BTreeMap<_, _> = profile
            .values
            .iter()
            .map(|(key, value)| (key.clone(), (value.value.clone(), value.source)))
            .collect();
        assert_eq!(
            reference_profile(&after, &world.tenants[*t], &world.users[*u]),
            resolved,
            "precedence: member, then platform, then tenant default: {context}"
        );
    }

    // The reference model's predictions.
    if who.suspended && !step.action.is_public() {
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
    if who.revoked && !step.action.is_public() {
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
        Ok(_) if step.action.is_read() => {
            assert_eq!(
                (audit_delta, event_delta),
                (0, 0),
                "a read writes nothing: {context}"
            );
            assert!(!data_changed, "a read changes nothing: {context}");
        }
        Ok(_) => {
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

    // Isolation of writes: no tenant other than the one named changes. Erasing a user
    // names none and changes every tenant the user was in, but only the user's rows
    // there (and their events, redacted or added): checked without them.
    let erased = match (&result, &step.action) {
        (Ok(_), Action::EraseUser { user }) => Some(world.users[*user]),
        _ => None,
    };
    if let Some(user) = erased {
        assert!(
            after.erased.contains(&user) && !after.members.keys().any(|(_, u)| *u == user),
            "an erased user keeps no membership: {context}"
        );
        let without = |state: &MemState| {
            let mut state = state.clone();
            state.members.retain(|(_, u), _| *u != user);
            state.member_values.retain(|(_, u, _), _| *u != user);
            state.scim_identities.retain(|(_, u), _| *u != user);
            // As removing a member: the keys the user made forget their creator.
            for (key, _) in state.api_keys.values_mut() {
                if key.created_by == Some(user) {
                    key.created_by = None;
                }
            }
            for events in state.events.values_mut() {
                events.retain(|event| event.subject != user.to_string());
                for (index, event) in events.iter_mut().enumerate() {
                    event.position = index as u64 + 1;
                }
            }
            state
        };
        let (before_without, after_without) = (without(&before), without(&after));
        for other in before.tenants.keys() {
            assert!(
                tenant_rows(&before_without, other) == tenant_rows(&after_without, other),
                "tenant {other} changed beyond the erased user's rows: {context}"
            );
        }
    }
    for other in before.tenants.keys() {
        if Some(other) != tenant.as_ref() && erased.is_none() {
            assert!(
                tenant_rows(&before, other) == tenant_rows(&after, other),
                "tenant {other} changed: {context}"
            );
            assert_eq!(
                before.audit_of(&Partition::Tenant(other.clone())),
                after.audit_of(&Partition::Tenant(other.clone())),
                "tenant {other}'s trail changed: {context}"
            );
            let hooks = |state: &MemState| {
                state
                    .webhooks
                    .iter()
                    .filter(|((t, _), _)| t == other)
                    .map(|(key, hook)| (key.clone(), hook.clone()))
                    .collect::<Vec<_>>()
            };
            assert!(
                hooks(&before) == hooks(&after),
                "tenant {other}'s webhooks changed: {context}"
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

    if let (Ok(_), Some(tenant)) = (&result, &tenant) {
        if !step.action.is_read() {
            check_grants(
                &before,
                &after,
                &caller,
                tenant,
                step.action.provisions_member(),
                &context,
            );
        }
    }

    // The platform keeps an active platform root.
    assert!(
        after.users.values().any(|user| {
            user.state == UserState::Active && user.platform_roles.contains(&PlatformRole::Root)
        }),
        "the last active platform root went: {context}"
    );

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
            let (harness, store) = Harness::fake();
            let mut world = setup(harness).await;
            for step in &steps {
                check_step(&mut world, &store, step).await;
            }
        });
    }
}
