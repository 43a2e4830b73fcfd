//! The authorization decision point: facts in, decision out (SPEC §3.2).
//!
//! [`decide`] is the single place where access is decided, for the engine's own API and
//! for services calling the authorize API. It is pure: everything it needs arrives in
//! [`AuthzFacts`] (gathered by one store call) and [`AuthzRequest`].

use std::collections::BTreeSet;

use crate::ids::{Assurance, KeyId, RoleName, ScopeName, TenantId, UserId};
use crate::model::{AccountState, CatalogScope, PlatformRole, TenantState, UserState};

/// Why a decision came out as it did: the reason codes of SPEC §3.2 and §4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    // Denials, in the order `decide` checks them.
    SubjectNotFound,
    UnknownScope,
    SubjectSuspended,
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
    pub roles: BTreeSet<RoleName>,
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
    pub scope: Option<CatalogScope>,
    /// The scope is enabled for the tenant.
    pub scope_enabled: bool,
    /// The subject's roles whose binding in the tenant lists the scope.
    pub bound_roles: BTreeSet<RoleName>,
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
    pub roles: BTreeSet<RoleName>,
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

/// Decides a request from its facts, in the order of SPEC §3.2.
///
/// Before step 1 the subject must exist (`subject_not_found`) and the scope must be in
/// the catalog (`unknown_scope`). Self-service is checked right after step 2: a user
/// acting on themselves needs only an active tenant and account, and the assurance the
/// scope asks for.
pub fn decide(facts: &AuthzFacts, request: &AuthzRequest) -> Decision {
    let verdict = |reason: Reason, matched_role: Option<RoleName>| Decision {
        allowed: reason.is_allow(),
        reason,
        matched_role,
        facts: decision_facts(facts, request),
    };
    let deny = |reason: Reason| verdict(reason, None);

    let Some(subject) = &facts.subject else {
        return deny(Reason::SubjectNotFound);
    };
    let Some(scope) = &facts.scope else {
        return deny(Reason::UnknownScope);
    };
    let assurance_ok = request.assurance >= scope.min_assurance;

    // 1. A platform-suspended user is refused everything.
    if let SubjectFacts::User { state, .. } = subject {
        if *state == UserState::Suspended {
            return deny(Reason::SubjectSuspended);
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
                if facts.tenant_state != Some(TenantState::Active) {
                    return deny(Reason::TenantSuspended);
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
            let matched = if account.roles.iter().any(RoleName::is_tenant_admin) {
                Some(RoleName::tenant_admin())
            } else {
                account
                    .roles
                    .iter()
                    .find(|role| facts.bound_roles.contains(*role))
                    .cloned()
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
