//! The authorization decision point: facts in, decision out (SPEC §3.2).
//!
//! [`decide`] is the single place where access is decided, for the engine's own API and
//! for services calling the authorize API. It is pure: everything it needs arrives in
//! [`AuthzFacts`] (gathered by one store call) and [`AuthzRequest`].

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::ids::{Assurance, KeyId, RoleName, ScopeName, TenantId, UserId};
use crate::model::{AccountState, CatalogScope, PlatformRole, TenantState, UserState};

mod roles;

pub use roles::{Bits, RoleSet, RoleTable};

/// Why a decision came out as it did: the reason codes of SPEC §3.2 and §4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    // Denials, in the order `decide` checks them.
    SubjectNotFound,
    UnknownScope,
    SubjectSuspended,
    SubjectInvited,
    PlatformRootRequired,
    TenantSuspended,
    NotAMember,
    AccountSuspended,
    ScopeNotEnabled,
    MissingScope,
    InsufficientAssurance,
    CredentialScopeMissing,
    TargetNotInTenant,
    TargetProtected,
    /// A grant (roles, key scopes, bindings) includes a scope the caller is not allowed
    /// itself (SPEC §3.3); decided by `decide` per scope, reported by the use case.
    ExceedsCaller,
    // Allows.
    PlatformRoot,
    PlatformAuditor,
    SelfService,
    RoleBinding,
}

impl Reason {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::SubjectNotFound => "subject_not_found",
            Self::UnknownScope => "unknown_scope",
            Self::SubjectSuspended => "subject_suspended",
            Self::SubjectInvited => "subject_invited",
            Self::PlatformRootRequired => "platform_root_required",
            Self::TenantSuspended => "tenant_suspended",
            Self::NotAMember => "not_a_member",
            Self::AccountSuspended => "account_suspended",
            Self::ScopeNotEnabled => "scope_not_enabled",
            Self::MissingScope => "missing_scope",
            Self::InsufficientAssurance => "insufficient_assurance",
            Self::CredentialScopeMissing => "credential_scope_missing",
            Self::TargetNotInTenant => "target_not_in_tenant",
            Self::TargetProtected => "target_protected",
            Self::ExceedsCaller => "exceeds_caller",
            Self::PlatformRoot => "platform_root",
            Self::PlatformAuditor => "platform_auditor",
            Self::SelfService => "self",
            Self::RoleBinding => "role_binding",
        }
    }

    pub fn is_allow(&self) -> bool {
        matches!(
            self,
            Self::PlatformRoot | Self::PlatformAuditor | Self::SelfService | Self::RoleBinding
        )
    }
}

/// Who asks, as the store knows them now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectFacts {
    User {
        user_id: UserId,
        state: UserState,
        platform_roles: BTreeSet<PlatformRole>,
    },
    /// A tenant API key acts only in its own tenant, as a principal bound to every scope
    /// enabled there, restricted to its own scope list (step 8) and to `aal1`.
    ApiKey {
        key_id: KeyId,
        tenant: TenantId,
        scopes: BTreeSet<ScopeName>,
    },
}

impl SubjectFacts {
    fn has_platform_role(&self, role: PlatformRole) -> bool {
        matches!(self, Self::User { platform_roles, .. } if platform_roles.contains(&role))
    }

    fn holds_any_platform_role(&self) -> bool {
        matches!(self, Self::User { platform_roles, .. } if !platform_roles.is_empty())
    }
}

/// The subject's tenant account, if they have one in the tenant asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountFacts {
    pub state: AccountState,
    pub roles: RoleSet,
}

/// The target user named by the request, as seen from the tenant asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFacts {
    pub user_id: UserId,
    /// `None` when the target has no account in the tenant.
    pub account_state: Option<AccountState>,
    pub platform_roles: BTreeSet<PlatformRole>,
}

/// Every fact one decision needs; a store gathers them in one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzFacts {
    /// The tenant's state; `None` for a platform-level request or a missing tenant.
    pub tenant_state: Option<TenantState>,
    /// `None` when the subject does not exist (or the key is revoked).
    pub subject: Option<SubjectFacts>,
    /// The subject's account in the tenant.
    pub account: Option<AccountFacts>,
    /// The catalog entry of the requested scope; `None` when it is not in the catalog.
    pub scope: Option<Arc<CatalogScope>>,
    /// The scope is enabled for the tenant.
    pub scope_enabled: bool,
    /// The subject's roles whose binding in the tenant lists the scope (a decision
    /// uses those the account holds).
    pub bound_roles: RoleSet,
    pub target: Option<TargetFacts>,
}

/// What is asked: may the subject use `scope` in the tenant (or platform-wide)?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzRequest {
    /// `None` for a platform-level operation.
    pub tenant: Option<TenantId>,
    pub scope: ScopeName,
    pub assurance: Assurance,
    /// The user the operation acts on, if any.
    pub target: Option<UserId>,
    /// The operation is one a user may always do to themselves (read their own account,
    /// membership or profile; write their own `user_editable` profile keys). It applies
    /// only when the target is the subject.
    pub self_service: bool,
}

/// The facts a decision used, returned with it so callers can see why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionFacts {
    pub tenant_state: Option<TenantState>,
    pub user_state: Option<UserState>,
    pub platform_roles: BTreeSet<PlatformRole>,
    pub account_state: Option<AccountState>,
    pub roles: RoleSet,
    pub assurance: Assurance,
    pub scope_enabled: bool,
    pub platform_only: Option<bool>,
    pub min_assurance: Option<Assurance>,
    pub credential_scopes: Option<BTreeSet<ScopeName>>,
    pub target_account_state: Option<AccountState>,
    pub target_platform_roles: BTreeSet<PlatformRole>,
}

/// A decision value: a deny is a normal result with its reason, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: Reason,
    pub matched_role: Option<RoleName>,
    pub facts: DecisionFacts,
}

fn decision_facts(facts: &AuthzFacts, request: &AuthzRequest) -> DecisionFacts {
    let (user_state, platform_roles, credential_scopes) = match &facts.subject {
        Some(SubjectFacts::User {
            state,
            platform_roles,
            ..
        }) => (Some(*state), platform_roles.clone(), None),
        Some(SubjectFacts::ApiKey { scopes, .. }) => (None, BTreeSet::new(), Some(scopes.clone())),
        None => (None, BTreeSet::new(), None),
    };
    DecisionFacts {
        tenant_state: facts.tenant_state,
        user_state,
        platform_roles,
        account_state: facts.account.as_ref().map(|account| account.state),
        roles: facts
            .account
            .as_ref()
            .map(|account| account.roles.clone())
            .unwrap_or_default(),
        assurance: request.assurance,
        scope_enabled: facts.scope_enabled,
        platform_only: facts.scope.as_ref().map(|scope| scope.platform_only),
        min_assurance: facts.scope.as_ref().map(|scope| scope.min_assurance),
        credential_scopes,
        target_account_state: facts
            .target
            .as_ref()
            .and_then(|target| target.account_state),
        target_platform_roles: facts
            .target
            .as_ref()
            .map(|target| target.platform_roles.clone())
            .unwrap_or_default(),
    }
}

/// Decides a request from its facts, in the order of SPEC §3.2, with the facts it used
/// (see [`verdict`], which decides).
pub fn decide(facts: &AuthzFacts, request: &AuthzRequest) -> Decision {
    let Verdict {
        allowed,
        reason,
        matched_role,
    } = verdict(facts, request);
    Decision {
        allowed,
        reason,
        matched_role,
        facts: decision_facts(facts, request),
    }
}

/// A decision without the facts it used: for callers that only act on it (the authorize
/// API's own check of its caller), which [`decide`] answers the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub reason: Reason,
    pub matched_role: Option<RoleName>,
}

/// Decides a request from its facts, in the order of SPEC §3.2: the one place access
/// is decided.
///
/// Before step 1 the subject must exist (`subject_not_found`) and the scope must be in
/// the catalog (`unknown_scope`). Self-service is checked right after step 2: a user
/// acting on themselves needs only an active tenant and account, and the assurance the
/// scope asks for.
pub fn verdict(facts: &AuthzFacts, request: &AuthzRequest) -> Verdict {
    let verdict = |reason: Reason, matched_role: Option<RoleName>| Verdict {
        allowed: reason.is_allow(),
        reason,
        matched_role,
    };
    let deny = |reason: Reason| verdict(reason, None);

    let Some(subject) = &facts.subject else {
        return deny(Reason::SubjectNotFound);
    };
    let Some(scope) = &facts.scope else {
        return deny(Reason::UnknownScope);
    };
    let assurance_ok = request.assurance >= scope.min_assurance;

    // 1. A platform-suspended user is refused everything, and so is an invited one
    //    until the invitation is accepted.
    if let SubjectFacts::User { state, .. } = subject {
        match state {
            UserState::Suspended => return deny(Reason::SubjectSuspended),
            UserState::Invited => return deny(Reason::SubjectInvited),
            UserState::Active => {}
        }
    }

    // 2. Platform roots may do anything; auditors may read anything.
    if subject.has_platform_role(PlatformRole::Root) {
        return if assurance_ok {
            verdict(Reason::PlatformRoot, None)
        } else {
            deny(Reason::InsufficientAssurance)
        };
    }
    if subject.has_platform_role(PlatformRole::Auditor) && scope.name.is_read() {
        return if assurance_ok {
            verdict(Reason::PlatformAuditor, None)
        } else {
            deny(Reason::InsufficientAssurance)
        };
    }

    // Self-service: a user acting on themselves, in a tenant they belong to.
    if let SubjectFacts::User { user_id, .. } = subject {
        if request.self_service && request.target.as_ref() == Some(user_id) {
            if request.tenant.is_some() {
                match facts.tenant_state {
                    None => return deny(Reason::NotAMember),
                    Some(TenantState::Suspended) => return deny(Reason::TenantSuspended),
                    Some(TenantState::Active) => {}
                }
                match &facts.account {
                    None => return deny(Reason::NotAMember),
                    Some(account) if account.state == AccountState::Suspended => {
                        return deny(Reason::AccountSuspended)
                    }
                    Some(_) => {}
                }
            }
            return if assurance_ok {
                verdict(Reason::SelfService, None)
            } else {
                deny(Reason::InsufficientAssurance)
            };
        }
    }

    // 3. Platform-only scopes belong to platform roots, whatever bindings say.
    if scope.platform_only {
        return deny(Reason::PlatformRootRequired);
    }
    // A tenant scope asked outside any tenant has no tenant to be a member of.
    let Some(tenant) = &request.tenant else {
        return deny(Reason::NotAMember);
    };

    // 4. A suspended tenant refuses everyone below platform roles.
    let Some(tenant_state) = facts.tenant_state else {
        return deny(Reason::NotAMember);
    };
    if tenant_state == TenantState::Suspended {
        return deny(Reason::TenantSuspended);
    }

    // 5–8, per kind of subject.
    let matched_role = match subject {
        SubjectFacts::User { .. } => {
            let Some(account) = &facts.account else {
                return deny(Reason::NotAMember);
            };
            if account.state == AccountState::Suspended {
                return deny(Reason::AccountSuspended);
            }
            if !facts.scope_enabled {
                return deny(Reason::ScopeNotEnabled);
            }
            let matched = if account.roles.holds_tenant_admin() {
                Some(RoleName::tenant_admin())
            } else {
                account.roles.first_common(&facts.bound_roles).cloned()
            };
            let Some(matched) = matched else {
                return deny(Reason::MissingScope);
            };
            if !assurance_ok {
                return deny(Reason::InsufficientAssurance);
            }
            Some(matched)
        }
        SubjectFacts::ApiKey {
            tenant: key_tenant,
            scopes,
            ..
        } => {
            if key_tenant != tenant {
                return deny(Reason::NotAMember);
            }
            if !facts.scope_enabled {
                return deny(Reason::ScopeNotEnabled);
            }
            if !assurance_ok {
                return deny(Reason::InsufficientAssurance);
            }
            if !scopes.contains(&scope.name) {
                return deny(Reason::CredentialScopeMissing);
            }
            None
        }
    };

    // 9. The target must be in the tenant, and platform role holders are protected.
    if request.target.is_some() {
        let Some(target) = facts
            .target
            .as_ref()
            .filter(|target| target.account_state.is_some())
        else {
            return deny(Reason::TargetNotInTenant);
        };
        if !target.platform_roles.is_empty()
            && !subject.holds_any_platform_role()
            && !scope.name.is_read()
        {
            return deny(Reason::TargetProtected);
        }
    }

    verdict(Reason::RoleBinding, matched_role)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests"
)]
mod tests {
    use super::*;

    use uuid::Uuid;

    fn user_id(n: u128) -> UserId {
        UserId::from_generated(Uuid::from_u128(
            0x0189_0a5d_ac96_7000_8000_0000_0000_0000 | n,
        ))
    }

    fn key_id() -> KeyId {
        KeyId::from_generated(Uuid::from_u128(0x0189_0a5d_ac96_7000_8000_0000_0000_00ff))
    }

    fn subject_id() -> UserId {
        user_id(1)
    }

    fn other_user_id() -> UserId {
        user_id(2)
    }

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    fn scope_name(name: &str) -> ScopeName {
        ScopeName::parse(name).unwrap()
    }

    fn roles(names: &[&str]) -> BTreeSet<RoleName> {
        names
            .iter()
            .map(|name| RoleName::parse(name).unwrap())
            .collect()
    }

    fn scopes(names: &[&str]) -> BTreeSet<ScopeName> {
        names.iter().map(|name| scope_name(name)).collect()
    }

    /// A tenant-assignable catalog scope needing `aal1`.
    fn tenant_scope(name: &str) -> CatalogScope {
        CatalogScope {
            name: scope_name(name),
            description: String::new(),
            platform_only: false,
            min_assurance: Assurance::Aal1,
        }
    }

    fn aal2_scope(name: &str) -> CatalogScope {
        CatalogScope {
            min_assurance: Assurance::Aal2,
            ..tenant_scope(name)
        }
    }

    fn platform_scope(name: &str) -> CatalogScope {
        CatalogScope {
            platform_only: true,
            ..tenant_scope(name)
        }
    }

    fn user(state: UserState, platform_roles: &[PlatformRole]) -> SubjectFacts {
        SubjectFacts::User {
            user_id: subject_id(),
            state,
            platform_roles: platform_roles.iter().copied().collect(),
        }
    }

    fn api_key(key_tenant: &str, key_scopes: &[&str]) -> SubjectFacts {
        SubjectFacts::ApiKey {
            key_id: key_id(),
            tenant: tenant(key_tenant),
            scopes: scopes(key_scopes),
        }
    }

    fn account(state: AccountState, names: &[&str]) -> Option<AccountFacts> {
        Some(AccountFacts {
            state,
            roles: roles(names).into(),
        })
    }

    /// The happy path: an active `member` of the active tenant `acme`, whose `member`
    /// binding lists the enabled scope.
    fn member_facts(scope: CatalogScope) -> AuthzFacts {
        AuthzFacts {
            tenant_state: Some(TenantState::Active),
            subject: Some(user(UserState::Active, &[])),
            account: account(AccountState::Active, &["member"]),
            scope: Some(Arc::new(scope)),
            scope_enabled: true,
            bound_roles: roles(&["member"]).into(),
            target: None,
        }
    }

    /// The same facts for a `tenant_admin` with no explicit binding of the scope.
    fn admin_facts(scope: CatalogScope) -> AuthzFacts {
        AuthzFacts {
            account: account(AccountState::Active, &["tenant_admin"]),
            bound_roles: RoleSet::default(),
            ..member_facts(scope)
        }
    }

    fn request(scope: &str) -> AuthzRequest {
        AuthzRequest {
            tenant: Some(tenant("acme")),
            scope: scope_name(scope),
            assurance: Assurance::Aal1,
            target: None,
            self_service: false,
        }
    }

    fn at_aal2(request: AuthzRequest) -> AuthzRequest {
        AuthzRequest {
            assurance: Assurance::Aal2,
            ..request
        }
    }

    fn targeting(request: AuthzRequest, target: UserId) -> AuthzRequest {
        AuthzRequest {
            target: Some(target),
            ..request
        }
    }

    fn self_service(request: AuthzRequest) -> AuthzRequest {
        AuthzRequest {
            target: Some(subject_id()),
            self_service: true,
            ..request
        }
    }

    fn target_facts(
        account_state: Option<AccountState>,
        platform_roles: &[PlatformRole],
    ) -> Option<TargetFacts> {
        Some(TargetFacts {
            user_id: other_user_id(),
            account_state,
            platform_roles: platform_roles.iter().copied().collect(),
        })
    }

    /// Decides and checks that `allowed` agrees with the reason.
    fn outcome(facts: &AuthzFacts, request: &AuthzRequest) -> (bool, Reason) {
        let decision = decide(facts, request);
        assert_eq!(decision.allowed, decision.reason.is_allow());
        (decision.allowed, decision.reason)
    }

    const fn allow(reason: Reason) -> (bool, Reason) {
        (true, reason)
    }

    const fn deny(reason: Reason) -> (bool, Reason) {
        (false, reason)
    }

    // ---- the reason codes ----------------------------------------------------------

    #[test]
    fn reason_codes_are_the_spec_strings() {
        let cases = [
            (Reason::SubjectNotFound, "subject_not_found"),
            (Reason::UnknownScope, "unknown_scope"),
            (Reason::SubjectSuspended, "subject_suspended"),
            (Reason::SubjectInvited, "subject_invited"),
            (Reason::PlatformRootRequired, "platform_root_required"),
            (Reason::TenantSuspended, "tenant_suspended"),
            (Reason::NotAMember, "not_a_member"),
            (Reason::AccountSuspended, "account_suspended"),
            (Reason::ScopeNotEnabled, "scope_not_enabled"),
            (Reason::MissingScope, "missing_scope"),
            (Reason::InsufficientAssurance, "insufficient_assurance"),
            (Reason::CredentialScopeMissing, "credential_scope_missing"),
            (Reason::TargetNotInTenant, "target_not_in_tenant"),
            (Reason::TargetProtected, "target_protected"),
            (Reason::ExceedsCaller, "exceeds_caller"),
            (Reason::PlatformRoot, "platform_root"),
            (Reason::PlatformAuditor, "platform_auditor"),
            (Reason::SelfService, "self"),
            (Reason::RoleBinding, "role_binding"),
        ];
        for (reason, code) in cases {
            assert_eq!(reason.as_str(), code);
            let allows = matches!(
                code,
                "platform_root" | "platform_auditor" | "self" | "role_binding"
            );
            assert_eq!(reason.is_allow(), allows, "{code}");
        }
    }

    // ---- every reason, reached once ------------------------------------------------

    #[test]
    fn a_subject_that_does_not_exist_is_denied_subject_not_found() {
        let facts = AuthzFacts {
            subject: None,
            ..member_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(&facts, &request("members:write")),
            deny(Reason::SubjectNotFound)
        );
    }

    #[test]
    fn a_scope_missing_from_the_catalog_is_denied_unknown_scope() {
        let facts = AuthzFacts {
            scope: None,
            ..member_facts(tenant_scope("docs:edit"))
        };
        assert_eq!(
            outcome(&facts, &request("docs:edit")),
            deny(Reason::UnknownScope)
        );
    }

    #[test]
    fn a_platform_suspended_user_is_denied_subject_suspended() {
        let facts = AuthzFacts {
            subject: Some(user(UserState::Suspended, &[])),
            ..member_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(&facts, &request("members:write")),
            deny(Reason::SubjectSuspended)
        );
    }

    #[test]
    fn an_invited_user_is_denied_subject_invited_until_the_invitation_is_accepted() {
        let facts = AuthzFacts {
            subject: Some(user(UserState::Invited, &[])),
            ..member_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(&facts, &request("members:write")),
            deny(Reason::SubjectInvited)
        );
        // Step 1 comes before the platform roles of step 2.
        let facts = AuthzFacts {
            subject: Some(user(UserState::Invited, &[PlatformRole::Root])),
            ..member_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(&facts, &request("members:write")),
            deny(Reason::SubjectInvited)
        );
        let facts = AuthzFacts {
            subject: Some(user(UserState::Active, &[])),
            ..member_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(&facts, &request("members:write")),
            allow(Reason::RoleBinding)
        );
    }

    #[test]
    fn a_platform_root_without_any_account_is_allowed_as_platform_root() {
        let facts = AuthzFacts {
            subject: Some(user(UserState::Active, &[PlatformRole::Root])),
            account: None,
            scope_enabled: false,
            bound_roles: RoleSet::default(),
            ..member_facts(tenant_scope("members:write"))
        };
        let decision = decide(&facts, &request("members:write"));
        assert!(decision.allowed);
        assert_eq!(decision.reason, Reason::PlatformRoot);
        assert_eq!(decision.matched_role, None);
    }

    #[test]
    fn a_platform_root_is_allowed_a_platform_only_scope_outside_any_tenant() {
        let facts = AuthzFacts {
            tenant_state: None,
            subject: Some(user(UserState::Active, &[PlatformRole::Root])),
            account: None,
            ..member_facts(platform_scope("platform:tenants:write"))
        };
        let request = AuthzRequest {
            tenant: None,
            ..request("platform:tenants:write")
        };
        assert_eq!(outcome(&facts, &request), allow(Reason::PlatformRoot));
    }

    #[test]
    fn a_platform_auditor_is_allowed_read_scopes_as_platform_auditor() {
        for name in [
            "members:read",
            "audit:read",
            "events:read",
            "diagnostics:read",
            "docs:page:read",
        ] {
            let facts = AuthzFacts {
                subject: Some(user(UserState::Active, &[PlatformRole::Auditor])),
                account: None,
                scope_enabled: false,
                ..member_facts(tenant_scope(name))
            };
            assert_eq!(
                outcome(&facts, &request(name)),
                allow(Reason::PlatformAuditor),
                "{name}"
            );
        }
        for name in ["platform:audit:read", "platform:users:read"] {
            let facts = AuthzFacts {
                tenant_state: None,
                subject: Some(user(UserState::Active, &[PlatformRole::Auditor])),
                account: None,
                ..member_facts(platform_scope(name))
            };
            let request = AuthzRequest {
                tenant: None,
                ..request(name)
            };
            assert_eq!(
                outcome(&facts, &request),
                allow(Reason::PlatformAuditor),
                "{name}"
            );
        }
    }

    #[test]
    fn a_user_reading_their_own_account_is_allowed_as_self() {
        let facts = AuthzFacts {
            bound_roles: RoleSet::default(),
            ..member_facts(tenant_scope("members:read"))
        };
        let decision = decide(&facts, &self_service(request("members:read")));
        assert!(decision.allowed);
        assert_eq!(decision.reason, Reason::SelfService);
        assert_eq!(decision.matched_role, None);
    }

    #[test]
    fn a_member_asking_a_platform_only_scope_is_denied_platform_root_required() {
        let facts = member_facts(platform_scope("platform:users:write"));
        assert_eq!(
            outcome(&facts, &request("platform:users:write")),
            deny(Reason::PlatformRootRequired)
        );
    }

    #[test]
    fn a_member_of_a_suspended_tenant_is_denied_tenant_suspended() {
        let facts = AuthzFacts {
            tenant_state: Some(TenantState::Suspended),
            ..member_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(&facts, &request("members:write")),
            deny(Reason::TenantSuspended)
        );
    }

    #[test]
    fn a_user_without_an_account_in_the_tenant_is_denied_not_a_member() {
        let facts = AuthzFacts {
            account: None,
            ..member_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(&facts, &request("members:write")),
            deny(Reason::NotAMember)
        );
    }

    #[test]
    fn a_tenant_scope_asked_outside_any_tenant_is_denied_not_a_member() {
        let facts = member_facts(tenant_scope("members:write"));
        let request = AuthzRequest {
            tenant: None,
            ..request("members:write")
        };
        assert_eq!(outcome(&facts, &request), deny(Reason::NotAMember));
    }

    #[test]
    fn a_tenant_that_was_not_found_is_denied_not_a_member() {
        let facts = AuthzFacts {
            tenant_state: None,
            ..member_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(&facts, &request("members:write")),
            deny(Reason::NotAMember)
        );
    }

    #[test]
    fn a_suspended_tenant_account_is_denied_account_suspended() {
        let facts = AuthzFacts {
            account: account(AccountState::Suspended, &["member"]),
            ..member_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(&facts, &request("members:write")),
            deny(Reason::AccountSuspended)
        );
    }

    #[test]
    fn a_scope_not_enabled_for_the_tenant_is_denied_scope_not_enabled() {
        let facts = AuthzFacts {
            scope_enabled: false,
            ..member_facts(tenant_scope("docs:edit"))
        };
        assert_eq!(
            outcome(&facts, &request("docs:edit")),
            deny(Reason::ScopeNotEnabled)
        );
    }

    #[test]
    fn a_member_whose_roles_bind_no_such_scope_is_denied_missing_scope() {
        let facts = AuthzFacts {
            bound_roles: RoleSet::default(),
            ..member_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(&facts, &request("members:write")),
            deny(Reason::MissingScope)
        );
    }

    #[test]
    fn a_binding_of_a_role_the_subject_does_not_hold_does_not_count() {
        let facts = AuthzFacts {
            bound_roles: roles(&["editor"]).into(),
            ..member_facts(tenant_scope("docs:edit"))
        };
        assert_eq!(
            outcome(&facts, &request("docs:edit")),
            deny(Reason::MissingScope)
        );
    }

    #[test]
    fn an_aal1_session_asking_an_aal2_scope_is_denied_insufficient_assurance() {
        let facts = member_facts(aal2_scope("roles:write"));
        assert_eq!(
            outcome(&facts, &request("roles:write")),
            deny(Reason::InsufficientAssurance)
        );
        assert_eq!(
            outcome(&facts, &at_aal2(request("roles:write"))),
            allow(Reason::RoleBinding)
        );
    }

    #[test]
    fn an_api_key_whose_list_lacks_the_scope_is_denied_credential_scope_missing() {
        let facts = AuthzFacts {
            subject: Some(api_key("acme", &["members:read"])),
            account: None,
            bound_roles: RoleSet::default(),
            ..member_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(&facts, &request("members:write")),
            deny(Reason::CredentialScopeMissing)
        );
    }

    #[test]
    fn a_target_without_an_account_in_the_tenant_is_denied_target_not_in_tenant() {
        let request = targeting(request("members:write"), other_user_id());
        let no_account = AuthzFacts {
            target: target_facts(None, &[]),
            ..member_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(&no_account, &request),
            deny(Reason::TargetNotInTenant)
        );
        // A target the store could not find at all is not in the tenant either.
        let unknown = AuthzFacts {
            target: None,
            ..member_facts(tenant_scope("members:write"))
        };
        assert_eq!(outcome(&unknown, &request), deny(Reason::TargetNotInTenant));
    }

    #[test]
    fn a_member_writing_to_a_platform_role_holder_is_denied_target_protected() {
        for role in [PlatformRole::Root, PlatformRole::Auditor] {
            let facts = AuthzFacts {
                target: target_facts(Some(AccountState::Active), &[role]),
                ..admin_facts(tenant_scope("members:write"))
            };
            assert_eq!(
                outcome(
                    &facts,
                    &targeting(request("members:write"), other_user_id())
                ),
                deny(Reason::TargetProtected),
                "{role:?}"
            );
        }
    }

    #[test]
    fn a_member_whose_role_binds_the_scope_is_allowed_by_role_binding() {
        let decision = decide(
            &member_facts(tenant_scope("members:write")),
            &request("members:write"),
        );
        assert!(decision.allowed);
        assert_eq!(decision.reason, Reason::RoleBinding);
        assert_eq!(decision.matched_role, RoleName::parse("member").ok());
    }

    // ---- the order of the checks (SPEC §3.2) ---------------------------------------

    #[test]
    fn a_missing_subject_is_reported_before_an_unknown_scope() {
        let facts = AuthzFacts {
            subject: None,
            scope: None,
            ..member_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(&facts, &request("members:write")),
            deny(Reason::SubjectNotFound)
        );
    }

    #[test]
    fn an_unknown_scope_is_reported_before_a_suspended_subject() {
        let facts = AuthzFacts {
            subject: Some(user(UserState::Suspended, &[])),
            scope: None,
            ..member_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(&facts, &request("members:write")),
            deny(Reason::UnknownScope)
        );
    }

    #[test]
    fn a_suspended_subject_in_a_suspended_tenant_without_an_account_is_denied_subject_suspended() {
        let facts = AuthzFacts {
            tenant_state: Some(TenantState::Suspended),
            subject: Some(user(UserState::Suspended, &[])),
            account: None,
            scope_enabled: false,
            ..member_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(&facts, &request("members:write")),
            deny(Reason::SubjectSuspended)
        );
    }

    #[test]
    fn a_suspended_platform_root_is_denied_subject_suspended() {
        let facts = AuthzFacts {
            subject: Some(user(UserState::Suspended, &[PlatformRole::Root])),
            ..member_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(&facts, &request("members:write")),
            deny(Reason::SubjectSuspended)
        );
    }

    #[test]
    fn a_platform_root_in_a_suspended_tenant_is_allowed_as_platform_root() {
        let facts = AuthzFacts {
            tenant_state: Some(TenantState::Suspended),
            subject: Some(user(UserState::Active, &[PlatformRole::Root])),
            account: None,
            ..member_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(&facts, &request("members:write")),
            allow(Reason::PlatformRoot)
        );
    }

    #[test]
    fn a_platform_root_at_aal1_is_denied_an_aal2_scope_with_insufficient_assurance() {
        for scope in [
            aal2_scope("roles:write"),
            CatalogScope {
                platform_only: true,
                ..aal2_scope("platform:roles:write")
            },
        ] {
            let name = scope.name.as_str().to_owned();
            let facts = AuthzFacts {
                tenant_state: Some(TenantState::Suspended),
                subject: Some(user(UserState::Active, &[PlatformRole::Root])),
                ..member_facts(scope)
            };
            assert_eq!(
                outcome(&facts, &request(&name)),
                deny(Reason::InsufficientAssurance),
                "{name}"
            );
            assert_eq!(
                outcome(&facts, &at_aal2(request(&name))),
                allow(Reason::PlatformRoot),
                "{name}"
            );
        }
    }

    #[test]
    fn a_tenant_admin_is_denied_a_platform_only_scope_even_when_bound() {
        let facts = AuthzFacts {
            bound_roles: roles(&["tenant_admin"]).into(),
            ..admin_facts(platform_scope("platform:tenants:write"))
        };
        assert_eq!(
            outcome(&facts, &at_aal2(request("platform:tenants:write"))),
            deny(Reason::PlatformRootRequired)
        );
    }

    #[test]
    fn platform_root_required_is_reported_before_a_suspended_tenant() {
        let facts = AuthzFacts {
            tenant_state: Some(TenantState::Suspended),
            account: None,
            ..member_facts(platform_scope("platform:users:write"))
        };
        assert_eq!(
            outcome(&facts, &request("platform:users:write")),
            deny(Reason::PlatformRootRequired)
        );
    }

    #[test]
    fn a_suspended_tenant_is_reported_before_not_a_member() {
        let facts = AuthzFacts {
            tenant_state: Some(TenantState::Suspended),
            account: None,
            ..member_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(&facts, &request("members:write")),
            deny(Reason::TenantSuspended)
        );
    }

    #[test]
    fn not_a_member_is_reported_before_scope_not_enabled() {
        let facts = AuthzFacts {
            account: None,
            scope_enabled: false,
            bound_roles: RoleSet::default(),
            ..member_facts(tenant_scope("docs:edit"))
        };
        assert_eq!(
            outcome(&facts, &request("docs:edit")),
            deny(Reason::NotAMember)
        );
    }

    #[test]
    fn account_suspended_is_reported_before_scope_not_enabled() {
        let facts = AuthzFacts {
            account: account(AccountState::Suspended, &["tenant_admin"]),
            scope_enabled: false,
            ..member_facts(tenant_scope("docs:edit"))
        };
        assert_eq!(
            outcome(&facts, &request("docs:edit")),
            deny(Reason::AccountSuspended)
        );
    }

    #[test]
    fn scope_not_enabled_is_reported_before_missing_scope() {
        let facts = AuthzFacts {
            scope_enabled: false,
            bound_roles: RoleSet::default(),
            ..member_facts(tenant_scope("docs:edit"))
        };
        assert_eq!(
            outcome(&facts, &request("docs:edit")),
            deny(Reason::ScopeNotEnabled)
        );
    }

    #[test]
    fn missing_scope_is_reported_before_insufficient_assurance() {
        let facts = AuthzFacts {
            bound_roles: RoleSet::default(),
            ..member_facts(aal2_scope("roles:write"))
        };
        assert_eq!(
            outcome(&facts, &request("roles:write")),
            deny(Reason::MissingScope)
        );
    }

    #[test]
    fn insufficient_assurance_is_reported_before_the_target_checks() {
        let facts = AuthzFacts {
            target: target_facts(None, &[PlatformRole::Root]),
            ..admin_facts(aal2_scope("roles:write"))
        };
        let request = targeting(request("roles:write"), other_user_id());
        assert_eq!(
            outcome(&facts, &request),
            deny(Reason::InsufficientAssurance)
        );
        assert_eq!(
            outcome(&facts, &at_aal2(request)),
            deny(Reason::TargetNotInTenant)
        );
    }

    #[test]
    fn target_not_in_tenant_is_reported_before_target_protected() {
        let facts = AuthzFacts {
            target: target_facts(None, &[PlatformRole::Root]),
            ..admin_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(
                &facts,
                &targeting(request("members:write"), other_user_id())
            ),
            deny(Reason::TargetNotInTenant)
        );
    }

    // ---- tenant_admin's implicit binding -------------------------------------------

    #[test]
    fn a_tenant_admin_is_implicitly_bound_to_every_enabled_scope() {
        for name in ["members:write", "docs:edit", "api_keys:write", "audit:read"] {
            let decision = decide(&admin_facts(tenant_scope(name)), &request(name));
            assert!(decision.allowed, "{name}");
            assert_eq!(decision.reason, Reason::RoleBinding);
            assert_eq!(decision.matched_role, Some(RoleName::tenant_admin()));
        }
    }

    #[test]
    fn a_tenant_admin_is_not_bound_to_a_disabled_scope() {
        let facts = AuthzFacts {
            scope_enabled: false,
            ..admin_facts(tenant_scope("docs:edit"))
        };
        assert_eq!(
            outcome(&facts, &request("docs:edit")),
            deny(Reason::ScopeNotEnabled)
        );
    }

    #[test]
    fn a_tenant_admin_still_needs_the_assurance_the_scope_asks_for() {
        let facts = admin_facts(aal2_scope("roles:write"));
        assert_eq!(
            outcome(&facts, &request("roles:write")),
            deny(Reason::InsufficientAssurance)
        );
        assert_eq!(
            outcome(&facts, &at_aal2(request("roles:write"))),
            allow(Reason::RoleBinding)
        );
    }

    #[test]
    fn a_tenant_admin_match_is_reported_as_tenant_admin_even_when_other_roles_are_bound() {
        let facts = AuthzFacts {
            account: account(AccountState::Active, &["editor", "tenant_admin"]),
            bound_roles: roles(&["editor"]).into(),
            ..member_facts(tenant_scope("docs:edit"))
        };
        assert_eq!(
            decide(&facts, &request("docs:edit")).matched_role,
            Some(RoleName::tenant_admin())
        );
    }

    #[test]
    fn the_matched_role_is_one_the_subject_holds_and_the_binding_lists() {
        let facts = AuthzFacts {
            account: account(AccountState::Active, &["member", "reviewer"]),
            bound_roles: roles(&["editor", "reviewer"]).into(),
            ..member_facts(tenant_scope("docs:edit"))
        };
        let decision = decide(&facts, &request("docs:edit"));
        assert_eq!(decision.reason, Reason::RoleBinding);
        assert_eq!(decision.matched_role, RoleName::parse("reviewer").ok());
    }

    // ---- platform auditors ---------------------------------------------------------

    #[test]
    fn an_auditor_asking_a_write_scope_without_an_account_is_denied_not_a_member() {
        let facts = AuthzFacts {
            subject: Some(user(UserState::Active, &[PlatformRole::Auditor])),
            account: None,
            ..member_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(&facts, &request("members:write")),
            deny(Reason::NotAMember)
        );
    }

    #[test]
    fn an_auditor_asking_a_platform_only_write_scope_is_denied_platform_root_required() {
        let facts = AuthzFacts {
            tenant_state: None,
            subject: Some(user(UserState::Active, &[PlatformRole::Auditor])),
            account: None,
            ..member_facts(platform_scope("platform:users:write"))
        };
        let request = AuthzRequest {
            tenant: None,
            ..request("platform:users:write")
        };
        assert_eq!(
            outcome(&facts, &request),
            deny(Reason::PlatformRootRequired)
        );
    }

    #[test]
    fn an_auditor_asking_a_write_scope_their_membership_binds_is_allowed_by_role_binding() {
        let facts = AuthzFacts {
            subject: Some(user(UserState::Active, &[PlatformRole::Auditor])),
            ..member_facts(tenant_scope("members:write"))
        };
        let decision = decide(&facts, &request("members:write"));
        assert_eq!(decision.reason, Reason::RoleBinding);
        assert!(decision.allowed);
        assert_eq!(decision.matched_role, RoleName::parse("member").ok());
    }

    #[test]
    fn an_auditor_in_a_suspended_tenant_may_still_read_but_not_write() {
        let facts = |name: &str| AuthzFacts {
            tenant_state: Some(TenantState::Suspended),
            subject: Some(user(UserState::Active, &[PlatformRole::Auditor])),
            ..member_facts(tenant_scope(name))
        };
        assert_eq!(
            outcome(&facts("audit:read"), &request("audit:read")),
            allow(Reason::PlatformAuditor)
        );
        assert_eq!(
            outcome(&facts("members:write"), &request("members:write")),
            deny(Reason::TenantSuspended)
        );
    }

    #[test]
    fn an_auditor_at_aal1_is_denied_a_read_scope_that_needs_aal2() {
        let facts = AuthzFacts {
            subject: Some(user(UserState::Active, &[PlatformRole::Auditor])),
            account: None,
            ..member_facts(aal2_scope("secrets:read"))
        };
        assert_eq!(
            outcome(&facts, &request("secrets:read")),
            deny(Reason::InsufficientAssurance)
        );
        assert_eq!(
            outcome(&facts, &at_aal2(request("secrets:read"))),
            allow(Reason::PlatformAuditor)
        );
    }

    // ---- API keys ------------------------------------------------------------------

    fn key_facts(key_tenant: &str, key_scopes: &[&str], scope: CatalogScope) -> AuthzFacts {
        AuthzFacts {
            subject: Some(api_key(key_tenant, key_scopes)),
            account: None,
            bound_roles: RoleSet::default(),
            ..member_facts(scope)
        }
    }

    #[test]
    fn an_api_key_acting_in_its_own_tenant_on_a_listed_scope_is_allowed() {
        let facts = key_facts("acme", &["members:write"], tenant_scope("members:write"));
        let decision = decide(&facts, &request("members:write"));
        assert!(decision.allowed);
        assert_eq!(decision.reason, Reason::RoleBinding);
        assert_eq!(decision.matched_role, None);
    }

    #[test]
    fn an_api_key_acting_in_another_tenant_is_denied_not_a_member() {
        let facts = key_facts("globex", &["members:write"], tenant_scope("members:write"));
        assert_eq!(
            outcome(&facts, &request("members:write")),
            deny(Reason::NotAMember)
        );
    }

    #[test]
    fn an_api_key_asking_a_disabled_scope_is_denied_scope_not_enabled() {
        let facts = AuthzFacts {
            scope_enabled: false,
            ..key_facts("acme", &["docs:edit"], tenant_scope("docs:edit"))
        };
        assert_eq!(
            outcome(&facts, &request("docs:edit")),
            deny(Reason::ScopeNotEnabled)
        );
    }

    #[test]
    fn an_api_key_at_aal1_asking_an_aal2_scope_is_denied_insufficient_assurance() {
        let listed = key_facts("acme", &["roles:write"], aal2_scope("roles:write"));
        assert_eq!(
            outcome(&listed, &request("roles:write")),
            deny(Reason::InsufficientAssurance)
        );
        // Step 7 comes before step 8: an unlisted aal2 scope is still an assurance denial.
        let unlisted = key_facts("acme", &["members:read"], aal2_scope("roles:write"));
        assert_eq!(
            outcome(&unlisted, &request("roles:write")),
            deny(Reason::InsufficientAssurance)
        );
    }

    #[test]
    fn an_api_key_is_denied_a_platform_only_scope_even_when_listed() {
        let facts = key_facts(
            "acme",
            &["platform:users:write"],
            platform_scope("platform:users:write"),
        );
        assert_eq!(
            outcome(&facts, &request("platform:users:write")),
            deny(Reason::PlatformRootRequired)
        );
    }

    #[test]
    fn an_api_key_of_a_suspended_tenant_is_denied_tenant_suspended() {
        let facts = AuthzFacts {
            tenant_state: Some(TenantState::Suspended),
            ..key_facts("acme", &["members:write"], tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(&facts, &request("members:write")),
            deny(Reason::TenantSuspended)
        );
    }

    #[test]
    fn an_api_key_writing_to_a_platform_role_holder_is_denied_target_protected() {
        let facts = AuthzFacts {
            target: target_facts(Some(AccountState::Active), &[PlatformRole::Root]),
            ..key_facts("acme", &["members:write"], tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(
                &facts,
                &targeting(request("members:write"), other_user_id())
            ),
            deny(Reason::TargetProtected)
        );
    }

    // ---- targets -------------------------------------------------------------------

    #[test]
    fn reading_a_platform_role_holder_is_allowed() {
        let facts = AuthzFacts {
            target: target_facts(Some(AccountState::Active), &[PlatformRole::Root]),
            bound_roles: roles(&["member"]).into(),
            ..member_facts(tenant_scope("members:read"))
        };
        assert_eq!(
            outcome(&facts, &targeting(request("members:read"), other_user_id())),
            allow(Reason::RoleBinding)
        );
    }

    #[test]
    fn writing_to_a_target_without_platform_roles_is_allowed() {
        let facts = AuthzFacts {
            target: target_facts(Some(AccountState::Active), &[]),
            ..admin_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(
                &facts,
                &targeting(request("members:write"), other_user_id())
            ),
            allow(Reason::RoleBinding)
        );
    }

    #[test]
    fn a_target_with_a_suspended_account_is_still_in_the_tenant() {
        let facts = AuthzFacts {
            target: target_facts(Some(AccountState::Suspended), &[]),
            ..admin_facts(tenant_scope("accounts:write"))
        };
        assert_eq!(
            outcome(
                &facts,
                &targeting(request("accounts:write"), other_user_id())
            ),
            allow(Reason::RoleBinding)
        );
    }

    #[test]
    fn a_subject_holding_a_platform_role_may_write_to_another_platform_role_holder() {
        // SPEC §3.2 step 9 protects the target only from subjects without a platform role.
        let facts = AuthzFacts {
            subject: Some(user(UserState::Active, &[PlatformRole::Auditor])),
            target: target_facts(Some(AccountState::Active), &[PlatformRole::Root]),
            ..admin_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(
                &facts,
                &targeting(request("members:write"), other_user_id())
            ),
            allow(Reason::RoleBinding)
        );
    }

    #[test]
    fn target_facts_are_ignored_when_the_request_names_no_target() {
        let facts = AuthzFacts {
            target: target_facts(None, &[PlatformRole::Root]),
            ..member_facts(tenant_scope("members:write"))
        };
        assert_eq!(
            outcome(&facts, &request("members:write")),
            allow(Reason::RoleBinding)
        );
    }

    // ---- self-service --------------------------------------------------------------

    /// A member with no binding of the scope, so only self-service can allow.
    fn unbound_member(scope: CatalogScope) -> AuthzFacts {
        AuthzFacts {
            bound_roles: RoleSet::default(),
            ..member_facts(scope)
        }
    }

    #[test]
    fn self_service_needs_neither_a_binding_nor_an_enabled_scope() {
        let facts = AuthzFacts {
            scope_enabled: false,
            ..unbound_member(tenant_scope("profiles:write"))
        };
        assert_eq!(
            outcome(&facts, &self_service(request("profiles:write"))),
            allow(Reason::SelfService)
        );
    }

    #[test]
    fn self_service_does_not_apply_when_the_target_is_another_user() {
        let facts = AuthzFacts {
            target: target_facts(Some(AccountState::Active), &[]),
            ..unbound_member(tenant_scope("profiles:write"))
        };
        let request = AuthzRequest {
            target: Some(other_user_id()),
            self_service: true,
            ..request("profiles:write")
        };
        assert_eq!(outcome(&facts, &request), deny(Reason::MissingScope));
    }

    #[test]
    fn self_service_does_not_apply_when_the_operation_is_not_self_service() {
        let facts = unbound_member(tenant_scope("profiles:write"));
        let request = targeting(request("profiles:write"), subject_id());
        assert_eq!(outcome(&facts, &request), deny(Reason::MissingScope));
    }

    #[test]
    fn self_service_does_not_apply_without_a_target() {
        let facts = unbound_member(tenant_scope("profiles:write"));
        let request = AuthzRequest {
            self_service: true,
            ..request("profiles:write")
        };
        assert_eq!(outcome(&facts, &request), deny(Reason::MissingScope));
    }

    #[test]
    fn self_service_still_requires_an_active_tenant_and_account() {
        let request = self_service(request("profiles:read"));
        let suspended_tenant = AuthzFacts {
            tenant_state: Some(TenantState::Suspended),
            ..unbound_member(tenant_scope("profiles:read"))
        };
        assert_eq!(
            outcome(&suspended_tenant, &request),
            deny(Reason::TenantSuspended)
        );
        let no_account = AuthzFacts {
            account: None,
            ..unbound_member(tenant_scope("profiles:read"))
        };
        assert_eq!(outcome(&no_account, &request), deny(Reason::NotAMember));
        let suspended_account = AuthzFacts {
            account: account(AccountState::Suspended, &["member"]),
            ..unbound_member(tenant_scope("profiles:read"))
        };
        assert_eq!(
            outcome(&suspended_account, &request),
            deny(Reason::AccountSuspended)
        );
    }

    #[test]
    fn self_service_still_requires_the_scope_assurance() {
        let facts = unbound_member(aal2_scope("profiles:write"));
        assert_eq!(
            outcome(&facts, &self_service(request("profiles:write"))),
            deny(Reason::InsufficientAssurance)
        );
        assert_eq!(
            outcome(&facts, &at_aal2(self_service(request("profiles:write")))),
            allow(Reason::SelfService)
        );
    }

    #[test]
    fn a_suspended_user_gets_no_self_service() {
        let facts = AuthzFacts {
            subject: Some(user(UserState::Suspended, &[])),
            ..unbound_member(tenant_scope("profiles:read"))
        };
        assert_eq!(
            outcome(&facts, &self_service(request("profiles:read"))),
            deny(Reason::SubjectSuspended)
        );
    }

    #[test]
    fn self_service_on_a_platform_level_request_allows_writing_ones_own_platform_profile() {
        let facts = AuthzFacts {
            tenant_state: None,
            account: None,
            ..unbound_member(platform_scope("platform:users:write"))
        };
        let own = AuthzRequest {
            tenant: None,
            ..self_service(request("platform:users:write"))
        };
        assert_eq!(outcome(&facts, &own), allow(Reason::SelfService));
        let other = AuthzRequest {
            target: Some(other_user_id()),
            ..own
        };
        assert_eq!(outcome(&facts, &other), deny(Reason::PlatformRootRequired));
    }

    // ---- the facts a decision echoes -----------------------------------------------

    #[test]
    fn a_user_decision_echoes_the_facts_it_used() {
        let facts = AuthzFacts {
            subject: Some(user(UserState::Active, &[PlatformRole::Auditor])),
            account: account(AccountState::Active, &["member", "editor"]),
            target: target_facts(Some(AccountState::Suspended), &[PlatformRole::Root]),
            ..member_facts(aal2_scope("docs:edit"))
        };
        let decision = decide(
            &facts,
            &at_aal2(targeting(request("docs:edit"), other_user_id())),
        );
        assert_eq!(
            decision.facts,
            DecisionFacts {
                tenant_state: Some(TenantState::Active),
                user_state: Some(UserState::Active),
                platform_roles: [PlatformRole::Auditor].into_iter().collect(),
                account_state: Some(AccountState::Active),
                roles: roles(&["editor", "member"]).into(),
                assurance: Assurance::Aal2,
                scope_enabled: true,
                platform_only: Some(false),
                min_assurance: Some(Assurance::Aal2),
                credential_scopes: None,
                target_account_state: Some(AccountState::Suspended),
                target_platform_roles: [PlatformRole::Root].into_iter().collect(),
            }
        );
    }

    #[test]
    fn a_denial_echoes_the_facts_too() {
        let facts = AuthzFacts {
            tenant_state: Some(TenantState::Suspended),
            account: account(AccountState::Suspended, &["member"]),
            scope_enabled: false,
            ..member_facts(platform_scope("platform:users:write"))
        };
        let decision = decide(&facts, &request("platform:users:write"));
        assert_eq!(decision.reason, Reason::PlatformRootRequired);
        assert_eq!(decision.facts.tenant_state, Some(TenantState::Suspended));
        assert_eq!(decision.facts.account_state, Some(AccountState::Suspended));
        assert_eq!(decision.facts.roles.to_names(), roles(&["member"]));
        assert!(!decision.facts.scope_enabled);
        assert_eq!(decision.facts.platform_only, Some(true));
        assert_eq!(decision.facts.assurance, Assurance::Aal1);
    }

    #[test]
    fn an_api_key_decision_echoes_its_scope_list_and_no_user_facts() {
        let facts = key_facts(
            "acme",
            &["members:read", "members:write"],
            tenant_scope("members:write"),
        );
        let decision = decide(&facts, &request("members:write"));
        assert_eq!(
            decision.facts.credential_scopes,
            Some(scopes(&["members:read", "members:write"]))
        );
        assert_eq!(decision.facts.user_state, None);
        assert!(decision.facts.platform_roles.is_empty());
        assert_eq!(decision.facts.account_state, None);
        assert!(decision.facts.roles.is_empty());
    }

    #[test]
    fn a_decision_without_subject_or_scope_echoes_empty_facts() {
        let facts = AuthzFacts {
            tenant_state: None,
            subject: None,
            account: None,
            scope: None,
            scope_enabled: false,
            bound_roles: RoleSet::default(),
            target: None,
        };
        let decision = decide(&facts, &request("members:write"));
        assert_eq!(decision.reason, Reason::SubjectNotFound);
        assert_eq!(
            decision.facts,
            DecisionFacts {
                tenant_state: None,
                user_state: None,
                platform_roles: BTreeSet::new(),
                account_state: None,
                roles: RoleSet::default(),
                assurance: Assurance::Aal1,
                scope_enabled: false,
                platform_only: None,
                min_assurance: None,
                credential_scopes: None,
                target_account_state: None,
                target_platform_roles: BTreeSet::new(),
            }
        );
    }
}
