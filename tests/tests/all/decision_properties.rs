//! Property tests of the decision function: arbitrary well-formed facts and requests go
//! into `decide`, and every decision must respect the rules of SPEC §3.2.
//!
//! The generators draw from small pools (three tenants, three users, four roles, seven
//! scopes) and are biased towards members, enabled scopes and bound roles, so that every
//! branch of `decide` is reached often; `the_generators_reach_every_reason` proves it.
//! Each property forces the facts it is about (a suspended tenant, a non-member, …) and
//! leaves everything else arbitrary, so that removing the rule it checks makes it fail.
//! Set `PROPTEST_CASES` to run more (or fewer) than 512 cases per property.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "tests: the pools are fixed and valid, so a failed parse is a broken test"
)]

use std::collections::BTreeSet;
use std::sync::Arc;

use domain::authz::{
    decide, AccountFacts, AuthzFacts, AuthzRequest, Decision, Reason, SubjectFacts, TargetFacts,
};
use domain::ids::{Assurance, KeyId, RoleName, ScopeName, TenantId, UserId};
use domain::model::{AccountState, CatalogScope, PlatformRole, TenantState, UserState};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{TestCaseError, TestRunner};

const TENANTS: &[&str] = &["acme", "globex", "initech"];
const ROLES: &[&str] = &["tenant_admin", "member", "editor", "viewer"];
/// Read and write scopes, tenant and platform ones; whether a scope is platform-only is
/// drawn independently of its name, so the decision cannot lean on naming.
const SCOPES: &[&str] = &[
    "members:read",
    "members:write",
    "roles:write",
    "docs:edit",
    "docs:read",
    "platform:tenants:write",
    "platform:audit:read",
];

/// The case count of every property: `PROPTEST_CASES` if set, else 512.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(512);
    ProptestConfig::with_cases(cases)
}

// ---------------------------------------------------------------------------------------
// Values.

fn user_id(tail: u64) -> UserId {
    UserId::parse(&format!("0190a5b2-7c4e-7d3a-8f1e-{tail:012x}")).expect("a uuid v7")
}

fn key_id(tail: u64) -> KeyId {
    KeyId::parse(&format!("0190a5b2-7c4e-7d3a-9f1e-{tail:012x}")).expect("a uuid v7")
}

fn tenant(slug: &str) -> TenantId {
    TenantId::parse(slug).expect("a tenant slug")
}

fn role(name: &str) -> RoleName {
    RoleName::parse(name).expect("a role name")
}

fn scope(name: &str) -> ScopeName {
    ScopeName::parse(name).expect("a scope name")
}

/// A tenant other than `slug`, so a key can be sent somewhere it does not belong.
fn other_tenant(id: &TenantId) -> TenantId {
    let other = TENANTS
        .iter()
        .find(|slug| **slug != id.as_str())
        .expect("more than one tenant in the pool");
    tenant(other)
}

// ---------------------------------------------------------------------------------------
// Strategies.

fn tenant_id() -> impl Strategy<Value = TenantId> {
    // Skewed towards one tenant so that a key's tenant often is the request's tenant.
    prop_oneof![
        6 => Just(TENANTS[0]),
        2 => Just(TENANTS[1]),
        1 => Just(TENANTS[2]),
    ]
    .prop_map(tenant)
}

fn any_user_id() -> impl Strategy<Value = UserId> {
    (1_u64..=3).prop_map(user_id)
}

fn role_set() -> impl Strategy<Value = BTreeSet<RoleName>> {
    proptest::sample::subsequence(ROLES, 0..=ROLES.len())
        .prop_map(|names| names.into_iter().map(role).collect())
}

fn scope_name() -> impl Strategy<Value = ScopeName> {
    proptest::sample::select(SCOPES).prop_map(scope)
}

fn scope_set() -> impl Strategy<Value = BTreeSet<ScopeName>> {
    proptest::sample::subsequence(SCOPES, 0..=SCOPES.len())
        .prop_map(|names| names.into_iter().map(scope).collect())
}

fn assurance() -> impl Strategy<Value = Assurance> {
    prop_oneof![Just(Assurance::Aal1), Just(Assurance::Aal2)]
}

fn user_state() -> impl Strategy<Value = UserState> {
    prop_oneof![
        7 => Just(UserState::Active),
        1 => Just(UserState::Invited),
        2 => Just(UserState::Suspended),
    ]
}

fn account_state() -> impl Strategy<Value = AccountState> {
    prop_oneof![
        5 => Just(AccountState::Active),
        1 => Just(AccountState::Suspended),
    ]
}

fn tenant_state() -> impl Strategy<Value = Option<TenantState>> {
    prop_oneof![
        8 => Just(Some(TenantState::Active)),
        2 => Just(Some(TenantState::Suspended)),
        1 => Just(None),
    ]
}

fn platform_roles() -> impl Strategy<Value = BTreeSet<PlatformRole>> {
    prop_oneof![
        6 => Just(BTreeSet::new()),
        2 => Just(BTreeSet::from([PlatformRole::Auditor])),
        1 => Just(BTreeSet::from([PlatformRole::Root])),
        1 => Just(BTreeSet::from([PlatformRole::Root, PlatformRole::Auditor])),
    ]
}

fn user_subject() -> impl Strategy<Value = SubjectFacts> {
    (any_user_id(), user_state(), platform_roles()).prop_map(|(user_id, state, platform_roles)| {
        SubjectFacts::User {
            user_id,
            state,
            platform_roles,
        }
    })
}

fn api_key_subject() -> impl Strategy<Value = SubjectFacts> {
    ((1_u64..=2).prop_map(key_id), tenant_id(), scope_set()).prop_map(|(key_id, tenant, scopes)| {
        SubjectFacts::ApiKey {
            key_id,
            tenant,
            scopes,
        }
    })
}

fn subject() -> impl Strategy<Value = SubjectFacts> {
    prop_oneof![3 => user_subject(), 1 => api_key_subject()]
}

fn account() -> impl Strategy<Value = AccountFacts> {
    (account_state(), role_set()).prop_map(|(state, roles)| AccountFacts {
        state,
        roles: roles.into(),
    })
}

/// Whom the request names as its target.
#[derive(Debug, Clone)]
enum TargetPick {
    Nobody,
    /// The subject itself (for a key, some user of the pool).
    Subject,
    Other(UserId),
}

fn target_pick() -> impl Strategy<Value = TargetPick> {
    prop_oneof![
        4 => Just(TargetPick::Nobody),
        3 => Just(TargetPick::Subject),
        2 => any_user_id().prop_map(TargetPick::Other),
    ]
}

/// One decision's input.
#[derive(Debug, Clone)]
struct Case {
    facts: AuthzFacts,
    request: AuthzRequest,
}

impl Case {
    fn decide(&self) -> Decision {
        decide(&self.facts, &self.request)
    }
}

prop_compose! {
    /// Arbitrary well-formed facts and request: the catalog entry, when there is one, is
    /// the requested scope's, and the target's facts, when there are any, are the
    /// requested target's; everything else is drawn independently.
    fn case()(
        (subject, account, scope_name, catalog_entry) in (
            proptest::option::weighted(0.95, subject()),
            proptest::option::weighted(0.8, account()),
            scope_name(),
            proptest::option::weighted(0.93, (proptest::bool::weighted(0.3), assurance())),
        ),
        (scope_enabled, bound_roles, tenant_state, request_tenant) in (
            proptest::bool::weighted(0.85),
            role_set(),
            tenant_state(),
            proptest::option::weighted(0.85, tenant_id()),
        ),
        (assurance, self_service, target_pick, target_facts) in (
            assurance(),
            proptest::bool::weighted(0.3),
            target_pick(),
            proptest::option::weighted(
                0.85,
                (
                    proptest::option::weighted(0.8, account_state()),
                    prop_oneof![
                        7 => Just(BTreeSet::new()),
                        2 => Just(BTreeSet::from([PlatformRole::Auditor])),
                        1 => Just(BTreeSet::from([PlatformRole::Root])),
                    ],
                ),
            ),
        ),
    ) -> Case {
        let target = match target_pick {
            TargetPick::Nobody => None,
            TargetPick::Subject => match &subject {
                Some(SubjectFacts::User { user_id, .. }) => Some(*user_id),
                _ => Some(user_id(1)),
            },
            TargetPick::Other(other) => Some(other),
        };
        let facts = AuthzFacts {
            tenant_state,
            subject,
            account,
            scope: catalog_entry.map(|(platform_only, min_assurance)| {
                Arc::new(CatalogScope {
                    name: scope_name.clone(),
                    description: "generated".to_owned(),
                    platform_only,
                    min_assurance,
                })
            }),
            scope_enabled,
            bound_roles: bound_roles.into(),
            target: target.and_then(|user_id| {
                target_facts.map(|(account_state, platform_roles)| TargetFacts {
                    user_id,
                    account_state,
                    platform_roles,
                })
            }),
        };
        let request = AuthzRequest {
            tenant: request_tenant,
            scope: scope_name,
            assurance,
            target,
            self_service,
        };
        Case { facts, request }
    }
}

// ---------------------------------------------------------------------------------------
// Helpers over facts.

/// The subject's platform roles; a key or a missing subject holds none.
fn platform_roles_of(subject: Option<&SubjectFacts>) -> BTreeSet<PlatformRole> {
    match subject {
        Some(SubjectFacts::User { platform_roles, .. }) => platform_roles.clone(),
        Some(SubjectFacts::ApiKey { .. }) | None => BTreeSet::new(),
    }
}

fn holds(subject: Option<&SubjectFacts>, role: PlatformRole) -> bool {
    platform_roles_of(subject).contains(&role)
}

fn holds_any_platform_role(subject: Option<&SubjectFacts>) -> bool {
    !platform_roles_of(subject).is_empty()
}

/// The request is one a platform role allows outright (step 2), whatever the tenant says.
fn platform_role_allows(case: &Case) -> bool {
    let subject = case.facts.subject.as_ref();
    holds(subject, PlatformRole::Root)
        || (holds(subject, PlatformRole::Auditor) && case.request.scope.is_read())
}

/// Makes the subject an active user (neither suspended nor invited) with no platform role.
fn plain_user(subject: SubjectFacts) -> SubjectFacts {
    match subject {
        SubjectFacts::User { user_id, .. } => SubjectFacts::User {
            user_id,
            state: UserState::Active,
            platform_roles: BTreeSet::new(),
        },
        key @ SubjectFacts::ApiKey { .. } => key,
    }
}

/// Checks that an allow is explained by the facts its reason claims (property 4).
fn allow_is_explained(case: &Case, decision: &Decision) -> Result<(), TestCaseError> {
    let Case { facts, request } = case;
    prop_assert_eq!(decision.allowed, decision.reason.is_allow());
    let user_subject = matches!(facts.subject, Some(SubjectFacts::User { .. }));
    if decision.reason == Reason::RoleBinding && user_subject {
        prop_assert!(
            decision.matched_role.is_some(),
            "a user's role binding names its role"
        );
    } else {
        prop_assert_eq!(
            &decision.matched_role,
            &None,
            "only a user's role binding names a role"
        );
    }
    if !decision.allowed {
        return Ok(());
    }

    let Some(subject) = &facts.subject else {
        return Err(TestCaseError::fail("allowed a subject that does not exist"));
    };
    let Some(scope) = &facts.scope else {
        return Err(TestCaseError::fail(
            "allowed a scope that is not in the catalog",
        ));
    };
    prop_assert!(
        request.assurance >= scope.min_assurance,
        "allowed below min_assurance"
    );
    prop_assert!(
        !matches!(
            subject,
            SubjectFacts::User {
                state: UserState::Suspended | UserState::Invited,
                ..
            }
        ),
        "allowed a platform-suspended or invited user"
    );

    match decision.reason {
        Reason::PlatformRoot => {
            prop_assert!(holds(Some(subject), PlatformRole::Root));
        }
        Reason::PlatformAuditor => {
            prop_assert!(holds(Some(subject), PlatformRole::Auditor));
            prop_assert!(scope.name.is_read(), "an auditor was allowed a write");
        }
        Reason::SelfService => {
            let SubjectFacts::User { user_id, .. } = subject else {
                return Err(TestCaseError::fail("self-service allowed to an api key"));
            };
            prop_assert!(
                request.self_service,
                "self-service allowed for a non-self-service operation"
            );
            prop_assert_eq!(
                request.target.as_ref(),
                Some(user_id),
                "self-service on someone else"
            );
            if request.tenant.is_some() {
                prop_assert_eq!(facts.tenant_state, Some(TenantState::Active));
                prop_assert_eq!(
                    facts.account.as_ref().map(|account| account.state),
                    Some(AccountState::Active),
                    "self-service in a tenant the user does not actively belong to"
                );
            }
        }
        Reason::RoleBinding => {
            prop_assert!(
                !scope.platform_only,
                "a role binding granted a platform-only scope"
            );
            let Some(request_tenant) = &request.tenant else {
                return Err(TestCaseError::fail(
                    "a role binding granted a platform request",
                ));
            };
            prop_assert_eq!(facts.tenant_state, Some(TenantState::Active));
            prop_assert!(
                facts.scope_enabled,
                "a role binding granted a scope not enabled"
            );
            match subject {
                SubjectFacts::User { .. } => {
                    let Some(account) = &facts.account else {
                        return Err(TestCaseError::fail("a role binding granted a non-member"));
                    };
                    prop_assert_eq!(account.state, AccountState::Active);
                    let Some(matched) = &decision.matched_role else {
                        return Err(TestCaseError::fail("no matched role"));
                    };
                    prop_assert!(
                        account.roles.contains(matched),
                        "matched a role the user lacks"
                    );
                    prop_assert!(
                        matched.is_tenant_admin() || facts.bound_roles.contains(matched),
                        "matched a role that does not bind the scope"
                    );
                }
                SubjectFacts::ApiKey { tenant, scopes, .. } => {
                    prop_assert_eq!(tenant, request_tenant, "a key acted outside its tenant");
                    prop_assert!(scopes.contains(&scope.name), "a key used a scope it lacks");
                }
            }
            if request.target.is_some() {
                let Some(target) = &facts.target else {
                    return Err(TestCaseError::fail("allowed on a target with no facts"));
                };
                prop_assert!(
                    target.account_state.is_some(),
                    "allowed on a target outside the tenant"
                );
                if !target.platform_roles.is_empty() && !scope.name.is_read() {
                    prop_assert!(
                        holds_any_platform_role(Some(subject)),
                        "a write on a platform role holder by a subject holding none"
                    );
                }
            }
        }
        denial => {
            return Err(TestCaseError::fail(format!(
                "allowed with deny reason {denial:?}"
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(config())]

    /// Property 1 (step 3). With `self_service == false`, a platform-only scope is allowed
    /// only to a `platform_root`, or to a `platform_auditor` when the scope is a read.
    ///
    /// The one other way in is self-service, deliberately checked before step 3: a user
    /// reading their own user (`platform:users:read`, a platform-only scope) is allowed
    /// with `reason: self`. The engine sets `self_service` only for reads of one's own
    /// account, membership and profile and writes of one's own `user_editable` profile
    /// keys, and the authorize API never sets it, so the property holds it false.
    #[test]
    fn no_subject_without_platform_root_is_allowed_a_platform_only_scope(mut case in case()) {
        case.request.self_service = false;
        if let Some(scope) = &mut case.facts.scope {
            Arc::make_mut(scope).platform_only = true;
        }
        let decision = case.decide();
        let subject = case.facts.subject.as_ref();
        if decision.allowed {
            prop_assert!(platform_role_allows(&case), "allowed with {:?}", decision.reason);
            prop_assert!(
                matches!(decision.reason, Reason::PlatformRoot | Reason::PlatformAuditor),
                "a platform-only scope allowed for {:?}", decision.reason
            );
            if !holds(subject, PlatformRole::Root) {
                prop_assert_eq!(decision.reason, Reason::PlatformAuditor);
            }
        }
        if !platform_role_allows(&case) {
            prop_assert!(
                matches!(
                    decision.reason,
                    Reason::SubjectNotFound
                        | Reason::UnknownScope
                        | Reason::SubjectSuspended
                        | Reason::SubjectInvited
                        | Reason::PlatformRootRequired
                ),
                "expected platform_root_required, got {:?}", decision.reason
            );
        }
    }

    /// Property 2 (step 5). A user with no account in the tenant and no platform role is
    /// allowed nothing there, not even self-service (which needs membership too).
    #[test]
    fn a_non_member_is_never_allowed_anything_in_a_tenant(
        mut case in case(),
        user in user_subject(),
        request_tenant in tenant_id(),
    ) {
        let SubjectFacts::User { user_id, state, .. } = user else {
            return Err(TestCaseError::fail("user_subject made a key"));
        };
        case.facts.subject = Some(SubjectFacts::User {
            user_id,
            state,
            platform_roles: BTreeSet::new(),
        });
        case.facts.account = None;
        case.request.tenant = Some(request_tenant);
        let decision = case.decide();
        prop_assert!(!decision.allowed, "a non-member was allowed with {:?}", decision.reason);
        prop_assert!(
            matches!(
                decision.reason,
                Reason::UnknownScope
                    | Reason::SubjectSuspended
                    | Reason::SubjectInvited
                    | Reason::PlatformRootRequired
                    | Reason::TenantSuspended
                    | Reason::NotAMember
            ),
            "a non-member got {:?}", decision.reason
        );
    }

    /// Property 2, for keys (SPEC §3.1). A tenant API key acts only in its own tenant:
    /// never in another tenant, never at platform level.
    #[test]
    fn an_api_key_is_never_allowed_outside_its_own_tenant(
        mut case in case(),
        key in api_key_subject(),
        platform_level in proptest::bool::weighted(0.25),
    ) {
        let SubjectFacts::ApiKey { tenant: key_tenant, .. } = &key else {
            return Err(TestCaseError::fail("api_key_subject made a user"));
        };
        case.request.tenant = (!platform_level).then(|| other_tenant(key_tenant));
        case.facts.subject = Some(key);
        let decision = case.decide();
        prop_assert!(!decision.allowed, "a key was allowed elsewhere with {:?}", decision.reason);
    }

    /// Property 3 (step 1). A platform-suspended user is refused everything, platform
    /// roots included.
    #[test]
    fn a_suspended_subject_is_denied_everything_even_as_platform_root(
        mut case in case(),
        user in user_subject(),
    ) {
        let SubjectFacts::User { user_id, platform_roles, .. } = user else {
            return Err(TestCaseError::fail("user_subject made a key"));
        };
        case.facts.subject = Some(SubjectFacts::User {
            user_id,
            state: UserState::Suspended,
            platform_roles,
        });
        let decision = case.decide();
        let expected = if case.facts.scope.is_some() {
            Reason::SubjectSuspended
        } else {
            Reason::UnknownScope
        };
        prop_assert!(!decision.allowed);
        prop_assert_eq!(decision.reason, expected);
    }

    /// Property 3 (step 4). A suspended tenant refuses everyone below platform roles:
    /// only a root (anything) or an auditor (reads) gets through, self-service included.
    #[test]
    fn a_suspended_tenant_denies_everyone_below_platform_roles(
        mut case in case(),
        request_tenant in tenant_id(),
    ) {
        case.request.tenant = Some(request_tenant);
        case.facts.tenant_state = Some(TenantState::Suspended);
        let decision = case.decide();
        if decision.allowed {
            prop_assert!(
                matches!(decision.reason, Reason::PlatformRoot | Reason::PlatformAuditor),
                "a suspended tenant allowed {:?}", decision.reason
            );
        }
        if !platform_role_allows(&case) {
            prop_assert!(
                matches!(
                    decision.reason,
                    Reason::SubjectNotFound
                        | Reason::UnknownScope
                        | Reason::SubjectSuspended
                        | Reason::SubjectInvited
                        | Reason::PlatformRootRequired
                        | Reason::TenantSuspended
                ),
                "a suspended tenant answered {:?}", decision.reason
            );
        }
    }

    /// Property 3 (step 5). A suspended tenant account refuses its user everything in the
    /// tenant, self-service included; only platform roles get through.
    #[test]
    fn a_suspended_account_denies_its_user_below_platform_roles(
        mut case in case(),
        user in user_subject(),
        roles in role_set(),
        request_tenant in tenant_id(),
    ) {
        case.facts.subject = Some(user);
        case.facts.account = Some(AccountFacts {
            state: AccountState::Suspended,
            roles: roles.into(),
        });
        case.request.tenant = Some(request_tenant);
        let decision = case.decide();
        if decision.allowed {
            prop_assert!(
                matches!(decision.reason, Reason::PlatformRoot | Reason::PlatformAuditor),
                "a suspended account allowed {:?}", decision.reason
            );
        }
        if !platform_role_allows(&case) {
            prop_assert!(
                matches!(
                    decision.reason,
                    Reason::UnknownScope
                        | Reason::SubjectSuspended
                        | Reason::SubjectInvited
                        | Reason::PlatformRootRequired
                        | Reason::TenantSuspended
                        | Reason::NotAMember
                        | Reason::AccountSuspended
                ),
                "a suspended account answered {:?}", decision.reason
            );
        }
    }

    /// Property 4. Every allow is explained by its reason: the scope is in the catalog,
    /// the assurance suffices, and the facts behind the reason hold (root, auditor on a
    /// read, self-service on oneself, or an enabled scope bound to one of the member's
    /// roles / in the key's own list and tenant). `allowed` is exactly `reason.is_allow()`
    /// and only a user's role binding names a matched role.
    #[test]
    fn every_allow_is_explained_by_its_reason(case in case()) {
        let decision = case.decide();
        allow_is_explained(&case, &decision)?;
    }

    /// Property 5. `decide` is total and deterministic: it never panics, and deciding
    /// twice on clones of the input gives equal decisions.
    #[test]
    fn deciding_twice_on_clones_gives_the_same_decision(case in case()) {
        let first = case.decide();
        let second = decide(&case.facts.clone(), &case.request.clone());
        prop_assert_eq!(first, second);
    }

    /// Property 6 (step 3). A tenant admin with no platform role is refused a
    /// platform-only scope even when everything else would allow it: an active account in
    /// an active tenant, every role bound, the scope enabled, `aal2`. Flipping only
    /// `platform_only` (and dropping the target) turns the same request into an allow,
    /// so the deny is step 3's doing.
    #[test]
    fn tenant_admins_are_never_allowed_a_platform_only_scope_whatever_their_bindings_say(
        mut case in case(),
        user in user_subject(),
        roles in role_set(),
        request_tenant in tenant_id(),
        min_assurance in assurance(),
    ) {
        let mut roles = roles;
        roles.insert(RoleName::tenant_admin());
        case.facts.subject = Some(plain_user(user));
        case.facts.account = Some(AccountFacts {
            state: AccountState::Active,
            roles: roles.into(),
        });
        case.facts.bound_roles = ROLES.iter().copied().map(role).collect();
        case.facts.scope = Some(Arc::new(CatalogScope {
            name: case.request.scope.clone(),
            description: "generated".to_owned(),
            platform_only: true,
            min_assurance,
        }));
        case.facts.scope_enabled = true;
        case.facts.tenant_state = Some(TenantState::Active);
        case.request.tenant = Some(request_tenant);
        case.request.assurance = Assurance::Aal2;
        case.request.self_service = false;

        let decision = case.decide();
        prop_assert!(!decision.allowed);
        prop_assert_eq!(decision.reason, Reason::PlatformRootRequired);

        let mut tenant_scope = case.clone();
        if let Some(scope) = &mut tenant_scope.facts.scope {
            Arc::make_mut(scope).platform_only = false;
        }
        tenant_scope.request.target = None;
        tenant_scope.facts.target = None;
        let counterfactual = tenant_scope.decide();
        prop_assert_eq!(counterfactual.reason, Reason::RoleBinding);
        prop_assert_eq!(counterfactual.matched_role, Some(RoleName::tenant_admin()));
    }

    /// Property 7. The decision echoes the facts it used, so callers can see why.
    #[test]
    fn the_decision_echoes_the_facts_it_used(case in case()) {
        let decision = case.decide();
        let echoed = &decision.facts;
        let facts = &case.facts;
        prop_assert_eq!(echoed.tenant_state, facts.tenant_state);
        prop_assert_eq!(echoed.assurance, case.request.assurance);
        let account = facts.account.as_ref();
        prop_assert_eq!(echoed.account_state, account.map(|account| account.state));
        prop_assert_eq!(
            &echoed.roles,
            &account.map(|account| account.roles.clone()).unwrap_or_default()
        );
        let catalog_entry = facts.scope.as_ref();
        prop_assert_eq!(echoed.scope_enabled, facts.scope_enabled);
        prop_assert_eq!(echoed.platform_only, catalog_entry.map(|scope| scope.platform_only));
        prop_assert_eq!(echoed.min_assurance, catalog_entry.map(|scope| scope.min_assurance));
        match &facts.subject {
            Some(SubjectFacts::User { state, platform_roles, .. }) => {
                prop_assert_eq!(echoed.user_state, Some(*state));
                prop_assert_eq!(&echoed.platform_roles, platform_roles);
                prop_assert_eq!(&echoed.credential_scopes, &None);
            }
            Some(SubjectFacts::ApiKey { scopes, .. }) => {
                prop_assert_eq!(echoed.user_state, None);
                prop_assert!(echoed.platform_roles.is_empty());
                prop_assert_eq!(echoed.credential_scopes.as_ref(), Some(scopes));
            }
            None => {
                prop_assert_eq!(echoed.user_state, None);
                prop_assert!(echoed.platform_roles.is_empty());
                prop_assert_eq!(&echoed.credential_scopes, &None);
            }
        }
        prop_assert_eq!(
            echoed.target_account_state,
            facts.target.as_ref().and_then(|target| target.account_state)
        );
        prop_assert_eq!(
            &echoed.target_platform_roles,
            &facts.target.as_ref().map(|target| target.platform_roles.clone()).unwrap_or_default()
        );
    }

    /// The other side of the rules: they do not deny everything. An active member whose
    /// role binds an enabled tenant scope, or a key of the tenant listing that scope, at
    /// sufficient assurance and with no target, is allowed by role binding.
    #[test]
    fn a_member_whose_role_binds_an_enabled_scope_is_allowed(
        mut case in case(),
        subject in subject(),
        roles in role_set(),
        bound_role in proptest::sample::select(ROLES),
        request_tenant in tenant_id(),
    ) {
        let subject = match plain_user(subject) {
            SubjectFacts::ApiKey { key_id, mut scopes, .. } => {
                scopes.insert(case.request.scope.clone());
                SubjectFacts::ApiKey { key_id, tenant: request_tenant.clone(), scopes }
            }
            user @ SubjectFacts::User { .. } => user,
        };
        let bound_role = role(bound_role);
        let mut roles = roles;
        roles.insert(bound_role.clone());
        case.facts.subject = Some(subject);
        case.facts.account = Some(AccountFacts {
            state: AccountState::Active,
            roles: roles.clone().into(),
        });
        let mut bound = case.facts.bound_roles.to_names();
        bound.insert(bound_role);
        case.facts.bound_roles = bound.into();
        case.facts.scope = Some(Arc::new(CatalogScope {
            name: case.request.scope.clone(),
            description: "generated".to_owned(),
            platform_only: false,
            min_assurance: case.request.assurance,
        }));
        case.facts.scope_enabled = true;
        case.facts.tenant_state = Some(TenantState::Active);
        case.facts.target = None;
        case.request.tenant = Some(request_tenant);
        case.request.target = None;

        let decision = case.decide();
        prop_assert_eq!(decision.reason, Reason::RoleBinding);
        prop_assert!(decision.allowed);
        if matches!(case.facts.subject, Some(SubjectFacts::User { .. })) {
            let Some(matched) = &decision.matched_role else {
                return Err(TestCaseError::fail("no matched role"));
            };
            prop_assert!(roles.contains(matched));
        }
    }
}

/// Every reason `decide` can give, in declaration order. The `match` below stops the
/// build when a variant is added without being listed here.
const ALL_REASONS: [Reason; 18] = [
    Reason::SubjectNotFound,
    Reason::UnknownScope,
    Reason::SubjectSuspended,
    Reason::SubjectInvited,
    Reason::PlatformRootRequired,
    Reason::TenantSuspended,
    Reason::NotAMember,
    Reason::AccountSuspended,
    Reason::ScopeNotEnabled,
    Reason::MissingScope,
    Reason::InsufficientAssurance,
    Reason::CredentialScopeMissing,
    Reason::TargetNotInTenant,
    Reason::TargetProtected,
    Reason::PlatformRoot,
    Reason::PlatformAuditor,
    Reason::SelfService,
    Reason::RoleBinding,
];

const fn listed(reason: Reason) -> bool {
    match reason {
        Reason::SubjectNotFound
        | Reason::UnknownScope
        | Reason::SubjectSuspended
        | Reason::SubjectInvited
        | Reason::PlatformRootRequired
        | Reason::TenantSuspended
        | Reason::NotAMember
        | Reason::AccountSuspended
        | Reason::ScopeNotEnabled
        | Reason::MissingScope
        | Reason::InsufficientAssurance
        | Reason::CredentialScopeMissing
        | Reason::TargetNotInTenant
        | Reason::TargetProtected
        | Reason::PlatformRoot
        | Reason::PlatformAuditor
        | Reason::SelfService
        | Reason::RoleBinding => true,
        // Given by the grant rules of the use cases, never by `decide`.
        Reason::ExceedsCaller => false,
    }
}

/// The generators are not vacuous: over a few thousand cases of the general strategy
/// every reason comes up, so every branch of `decide` is exercised by the properties.
#[test]
fn the_generators_reach_every_reason() {
    assert!(ALL_REASONS.iter().all(|reason| listed(*reason)));
    let strategy = case();
    let mut runner = TestRunner::deterministic();
    let mut reached = BTreeSet::new();
    for _ in 0..4000 {
        let case = strategy
            .new_tree(&mut runner)
            .expect("the case strategy never rejects")
            .current();
        reached.insert(case.decide().reason);
    }
    let missing: Vec<Reason> = ALL_REASONS
        .into_iter()
        .filter(|reason| !reached.contains(reason))
        .collect();
    assert!(missing.is_empty(), "never reached: {missing:?}");
}
