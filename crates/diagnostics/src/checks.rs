//! The checks: one pure function per check id, each over the tenant's facts.
//!
//! Remedies name the exact call, with the tenant, user ids and JSON bodies filled in
//! from the facts, and who may make it (a tenant admin, at `aal2` where the operation
//! needs it, or a platform root), so an operator can paste it.

use std::collections::BTreeSet;

use domain::audit::{format_timestamp, ChainBreakKind, GENESIS_HASH};
use domain::catalog::{default_bindings, is_engine_scope, scopes};
use domain::ids::{RoleName, ScopeName};
use domain::model::{AccountState, RoleBinding, TenantState, UserState};
use domain::usecases::{AdminFacts, AuditProbe, TenantFacts};
use serde_json::json;

use crate::{ids, Check, CheckStatus, Options};

/// Engine scopes without which even the tenant's admins cannot administer it: read the
/// tenant, manage members, and read and change bindings.
const ADMINISTRATION_SCOPES: &[&str] = &[
    scopes::TENANT_READ,
    scopes::MEMBERS_READ,
    scopes::MEMBERS_WRITE,
    scopes::ROLES_READ,
    scopes::ROLES_WRITE,
];

/// How many names a detail lists before it says "and N more".
const LISTED: usize = 8;

/// Every check, in report order.
pub fn evaluate_checks(facts: &TenantFacts, options: &Options) -> Vec<Check> {
    vec![
        tenant_active(facts),
        admins_present(facts),
        admins_redundant(facts),
        admins_mfa(facts),
        catalog_scopes_enabled(facts),
        bindings_present(facts),
        bindings_valid(facts),
        api_keys_scopes_enabled(facts),
        audit_writable(facts),
        audit_chain_intact(facts),
        outbox_lag(facts, options),
        delivery_failing(facts, options),
    ]
}

fn pass(id: &'static str, detail: String) -> Check {
    Check {
        id,
        status: CheckStatus::Pass,
        detail,
        remedy: None,
    }
}

fn problem(id: &'static str, status: CheckStatus, detail: String, remedy: String) -> Check {
    Check {
        id,
        status,
        detail,
        remedy: Some(remedy),
    }
}

/// `a, b, c and 4 more`.
fn listing<I: IntoIterator<Item = String>>(items: I) -> String {
    let items: Vec<String> = items.into_iter().collect();
    let shown: Vec<&str> = items.iter().take(LISTED).map(String::as_str).collect();
    let rest = items.len().saturating_sub(LISTED);
    if rest == 0 {
        shown.join(", ")
    } else {
        format!("{} and {rest} more", shown.join(", "))
    }
}

fn plural(count: usize, one: &str, many: &str) -> String {
    if count == 1 {
        format!("1 {one}")
    } else {
        format!("{count} {many}")
    }
}

/// `{"scopes":[…]}` with the names sorted, as the API takes it.
fn scopes_body<'a, I: IntoIterator<Item = &'a ScopeName>>(names: I) -> String {
    let names: BTreeSet<&str> = names.into_iter().map(ScopeName::as_str).collect();
    json!({ "scopes": names }).to_string()
}

fn tenant_path(facts: &TenantFacts) -> String {
    format!("/v1/tenants/{}", facts.tenant.id)
}

// ---- tenant.active -----------------------------------------------------------------

fn tenant_active(facts: &TenantFacts) -> Check {
    let id = ids::TENANT_ACTIVE;
    match facts.tenant.state {
        TenantState::Active => pass(id, format!("tenant {} is active", facts.tenant.id)),
        TenantState::Suspended => problem(
            id,
            CheckStatus::Fail,
            format!(
                "tenant {} is suspended: every request in it is denied (tenant_suspended)",
                facts.tenant.id
            ),
            format!(
                "as a platform root: PATCH {} {}",
                tenant_path(facts),
                json!({"state": "active"})
            ),
        ),
    }
}

// ---- admins ------------------------------------------------------------------------

/// Why an admin cannot act, for a detail.
fn blocked_because(admin: &AdminFacts) -> String {
    let mut reasons = Vec::new();
    match admin.user_state {
        Some(UserState::Suspended) => reasons.push("user suspended platform-wide"),
        Some(UserState::Invited) => reasons.push("invitation not accepted"),
        None => reasons.push("user missing"),
        Some(UserState::Active) => {}
    }
    if admin.account_state == AccountState::Suspended {
        reasons.push("account suspended");
    }
    format!("{} ({})", admin.email, reasons.join(", "))
}

/// The calls that let each blocked admin act again.
fn unblock_calls(facts: &TenantFacts) -> Vec<String> {
    let mut calls = Vec::new();
    for admin in facts.admins.iter().filter(|admin| !admin.can_act()) {
        match admin.user_state {
            Some(UserState::Suspended) => calls.push(format!(
                "as a platform root: PATCH /v1/users/{} {}",
                admin.user_id,
                json!({"state": "active"})
            )),
            Some(UserState::Invited) => calls.push(format!(
                "{} accepts the invitation: POST /v1/auth/invitation {}",
                admin.email,
                json!({"token": "<invitation token>", "password": "<new password>"})
            )),
            Some(UserState::Active) | None => {}
        }
        if admin.account_state == AccountState::Suspended {
            calls.push(format!(
                "as a platform root: PATCH {}/members/{} {}",
                tenant_path(facts),
                admin.user_id,
                json!({"state": "active"})
            ));
        }
    }
    calls
}

fn acting_admins(facts: &TenantFacts) -> Vec<&AdminFacts> {
    facts
        .admins
        .iter()
        .filter(|admin| admin.can_act())
        .collect()
}

fn add_admin_call(facts: &TenantFacts, who: &str) -> String {
    format!(
        "{who}: POST {}/members {}",
        tenant_path(facts),
        json!({"email": "<admin email>", "roles": [RoleName::TENANT_ADMIN]})
    )
}

fn admins_present(facts: &TenantFacts) -> Check {
    let id = ids::ADMINS_PRESENT;
    let acting = acting_admins(facts);
    if !acting.is_empty() {
        return pass(
            id,
            format!(
                "{} can act: {}",
                plural(acting.len(), "admin", "admins"),
                listing(acting.iter().map(|admin| admin.email.to_string()))
            ),
        );
    }
    if facts.admins.is_empty() {
        return problem(
            id,
            CheckStatus::Fail,
            "the tenant has no tenant_admin: only a platform root can administer it".to_owned(),
            add_admin_call(facts, "as a platform root at aal2"),
        );
    }
    problem(
        id,
        CheckStatus::Fail,
        format!(
            "no admin can act: {}; only a platform root can administer the tenant",
            listing(facts.admins.iter().map(blocked_because))
        ),
        {
            let mut calls = unblock_calls(facts);
            calls.push(format!(
                "or add one, {}",
                add_admin_call(facts, "as a platform root at aal2")
            ));
            calls.join("; ")
        },
    )
}

fn admins_redundant(facts: &TenantFacts) -> Check {
    let id = ids::ADMINS_REDUNDANT;
    let acting = acting_admins(facts);
    if acting.len() >= 2 {
        return pass(
            id,
            format!(
                "{} admins can act, so losing one does not lock the tenant out",
                acting.len()
            ),
        );
    }
    let detail = match acting.first() {
        Some(only) => format!(
            "only one admin can act ({}): if that account is lost, only a platform root \
             can administer the tenant",
            only.email
        ),
        None => "no admin can act (see admins.present)".to_owned(),
    };
    let blocked: Vec<String> = facts
        .admins
        .iter()
        .filter(|admin| !admin.can_act())
        .map(blocked_because)
        .collect();
    let detail = if blocked.is_empty() {
        detail
    } else {
        format!("{detail}; blocked: {}", listing(blocked))
    };
    let mut calls = unblock_calls(facts);
    let who = if acting.is_empty() {
        "as a platform root at aal2"
    } else {
        "as a tenant admin at aal2"
    };
    let add = format!(
        "{} (or PATCH {}/members/<user id> with roles including tenant_admin for an \
         existing member)",
        add_admin_call(facts, who),
        tenant_path(facts)
    );
    calls.push(if calls.is_empty() {
        add
    } else {
        format!("or add a second one, {add}")
    });
    problem(id, CheckStatus::Warn, detail, calls.join("; "))
}

fn admins_mfa(facts: &TenantFacts) -> Check {
    let id = ids::ADMINS_MFA;
    // Admins who act now or will once they accept their invitation; a suspended one
    // is reported by admins.present, not here.
    let considered: Vec<&AdminFacts> = facts
        .admins
        .iter()
        .filter(|admin| {
            admin.account_state == AccountState::Active
                && matches!(
                    admin.user_state,
                    Some(UserState::Active | UserState::Invited)
                )
        })
        .collect();
    let without: Vec<String> = considered
        .iter()
        .filter(|admin| !admin.has_totp)
        .map(|admin| admin.email.to_string())
        .collect();
    if considered.is_empty() {
        return pass(id, "no active admin to check".to_owned());
    }
    if without.is_empty() {
        return pass(
            id,
            format!(
                "every admin has a confirmed TOTP ({})",
                plural(considered.len(), "admin", "admins")
            ),
        );
    }
    problem(
        id,
        CheckStatus::Warn,
        format!(
            "{} without a confirmed TOTP: {}; they cannot reach aal2 (needed to grant \
             tenant_admin and change bindings) and a password alone acts as them",
            plural(without.len(), "admin", "admins"),
            listing(without)
        ),
        format!(
            "each of them, logged in: POST /v1/me/totp, then POST /v1/me/totp/confirm {}",
            json!({"code": "<6-digit code from the authenticator>"})
        ),
    )
}

// ---- scopes and bindings -----------------------------------------------------------

/// Whether a scope is in the catalog and tenant-assignable.
fn assignable(facts: &TenantFacts, scope: &ScopeName) -> bool {
    facts
        .catalog
        .get(scope)
        .is_some_and(|entry| !entry.platform_only)
}

fn engine_scope_names() -> Vec<ScopeName> {
    domain::catalog::default_enabled_scopes()
}

fn catalog_scopes_enabled(facts: &TenantFacts) -> Check {
    let id = ids::CATALOG_SCOPES_ENABLED;
    let enabled = &facts.enabled_scopes;
    let not_assignable: Vec<&ScopeName> = enabled
        .iter()
        .filter(|scope| !assignable(facts, scope))
        .collect();
    let missing: Vec<ScopeName> = engine_scope_names()
        .into_iter()
        .filter(|scope| !enabled.contains(scope))
        .collect();
    let missing_administration: Vec<&ScopeName> = missing
        .iter()
        .filter(|scope| ADMINISTRATION_SCOPES.contains(&scope.as_str()))
        .collect();
    if not_assignable.is_empty() && missing.is_empty() {
        let application = enabled
            .iter()
            .filter(|scope| !is_engine_scope(scope))
            .count();
        let detail = match application {
            0 => "every engine scope is enabled (no application scope)".to_owned(),
            count => format!(
                "every engine scope is enabled, and {}",
                plural(count, "application scope", "application scopes")
            ),
        };
        return pass(id, detail);
    }
    let mut findings = Vec::new();
    if !not_assignable.is_empty() {
        findings.push(format!(
            "enabled but not assignable (platform-only or not in the catalog): {}",
            listing(not_assignable.iter().map(ToString::to_string))
        ));
    }
    if !missing_administration.is_empty() {
        findings.push(format!(
            "disabled, so not even admins can administer the tenant: {}",
            listing(missing_administration.iter().map(ToString::to_string))
        ));
    }
    let other_missing: Vec<&ScopeName> = missing
        .iter()
        .filter(|scope| !ADMINISTRATION_SCOPES.contains(&scope.as_str()))
        .collect();
    if !other_missing.is_empty() {
        findings.push(format!(
            "engine scopes disabled, so nobody in the tenant can use them: {}",
            listing(other_missing.iter().map(ToString::to_string))
        ));
    }
    let status = if not_assignable.is_empty() && missing_administration.is_empty() {
        CheckStatus::Warn
    } else {
        CheckStatus::Fail
    };
    let wanted: BTreeSet<&ScopeName> = enabled
        .iter()
        .filter(|scope| assignable(facts, scope))
        .chain(missing.iter())
        .collect();
    problem(
        id,
        status,
        findings.join("; "),
        format!(
            "as a platform root: PUT {}/scopes {}",
            tenant_path(facts),
            scopes_body(wanted)
        ),
    )
}

/// The role a remedy binds new scopes to: `member` when bound, else the first bound role.
fn binding_to_extend(facts: &TenantFacts) -> (RoleName, BTreeSet<ScopeName>) {
    let member = RoleName::member();
    let chosen = facts
        .bindings
        .iter()
        .find(|binding| binding.role == member)
        .or_else(|| facts.bindings.first());
    match chosen {
        Some(binding) => (binding.role.clone(), binding.scopes.clone()),
        None => (member, BTreeSet::new()),
    }
}

/// The scopes a new tenant binds to `member`, where enabled.
fn default_member_scopes(facts: &TenantFacts) -> BTreeSet<ScopeName> {
    default_bindings()
        .into_iter()
        .filter(|binding| binding.role == RoleName::member())
        .flat_map(|binding| binding.scopes)
        .filter(|scope| facts.enabled_scopes.contains(scope))
        .collect()
}

fn put_role_call(
    facts: &TenantFacts,
    role: &RoleName,
    scope_names: &BTreeSet<ScopeName>,
) -> String {
    format!(
        "PUT {}/roles/{role} {}",
        tenant_path(facts),
        scopes_body(scope_names)
    )
}

fn bindings_present(facts: &TenantFacts) -> Check {
    let id = ids::BINDINGS_PRESENT;
    let bound: BTreeSet<&ScopeName> = facts
        .bindings
        .iter()
        .flat_map(|binding| binding.scopes.iter())
        .collect();
    // Engine scopes are left to tenant_admin by design (a new tenant binds only three
    // of them to member); an application scope enabled for the tenant is there to be
    // granted, so one that no role grants is unfinished onboarding.
    let unbound: Vec<&ScopeName> = facts
        .enabled_scopes
        .iter()
        .filter(|scope| !is_engine_scope(scope) && !bound.contains(scope))
        .collect();
    let no_bindings = facts.bindings.is_empty();
    if !no_bindings && unbound.is_empty() {
        return pass(
            id,
            format!(
                "{} bound; every enabled application scope is granted by a role",
                plural(facts.bindings.len(), "role", "roles")
            ),
        );
    }
    let mut findings = Vec::new();
    if no_bindings {
        findings.push(
            "no role but tenant_admin grants anything: every other member gets no access"
                .to_owned(),
        );
    }
    if !unbound.is_empty() {
        findings.push(format!(
            "enabled but bound to no role, so only tenant_admin holds them: {}",
            listing(unbound.iter().map(ToString::to_string))
        ));
    }
    let (role, current) = binding_to_extend(facts);
    let mut wanted: BTreeSet<ScopeName> = current
        .into_iter()
        .filter(|scope| facts.enabled_scopes.contains(scope))
        .collect();
    if no_bindings {
        wanted.extend(default_member_scopes(facts));
    }
    wanted.extend(unbound.into_iter().cloned());
    problem(
        id,
        CheckStatus::Warn,
        findings.join("; "),
        format!(
            "as a tenant admin at aal2: {} (or bind the scopes to another role the same way)",
            put_role_call(facts, &role, &wanted)
        ),
    )
}

fn bindings_valid(facts: &TenantFacts) -> Check {
    let id = ids::BINDINGS_VALID;
    let mut status = CheckStatus::Pass;
    let mut findings = Vec::new();
    let mut calls = Vec::new();
    let mut disabled_referenced: BTreeSet<&ScopeName> = BTreeSet::new();
    for binding in &facts.bindings {
        let RoleBinding { role, scopes } = binding;
        let not_assignable: Vec<&ScopeName> = scopes
            .iter()
            .filter(|scope| !assignable(facts, scope))
            .collect();
        let disabled: Vec<&ScopeName> = scopes
            .iter()
            .filter(|scope| assignable(facts, scope) && !facts.enabled_scopes.contains(*scope))
            .collect();
        if !not_assignable.is_empty() {
            status = CheckStatus::Fail;
            findings.push(format!(
                "role {role} binds scopes that are platform-only or not in the catalog: {}",
                listing(not_assignable.iter().map(ToString::to_string))
            ));
        }
        if !disabled.is_empty() {
            status = status.max(CheckStatus::Warn);
            findings.push(format!(
                "role {role} binds scopes that are not enabled, so it grants nothing for \
                 them: {}",
                listing(disabled.iter().map(ToString::to_string))
            ));
            disabled_referenced.extend(disabled.iter().copied());
        }
        if !not_assignable.is_empty() || !disabled.is_empty() {
            let kept: BTreeSet<ScopeName> = scopes
                .iter()
                .filter(|scope| assignable(facts, scope) && facts.enabled_scopes.contains(*scope))
                .cloned()
                .collect();
            calls.push(format!(
                "as a tenant admin at aal2: {}",
                put_role_call(facts, role, &kept)
            ));
        }
    }
    let bound_roles: BTreeSet<&RoleName> =
        facts.bindings.iter().map(|binding| &binding.role).collect();
    for (role, holders) in &facts.role_holders {
        if role.is_tenant_admin() || bound_roles.contains(role) || *holders == 0 {
            continue;
        }
        status = status.max(CheckStatus::Warn);
        findings.push(format!(
            "role {role} is held by {} but has no binding, so it grants them nothing",
            plural(
                usize::try_from(*holders).unwrap_or(usize::MAX),
                "member",
                "members"
            )
        ));
        let call = if *role == RoleName::member() {
            put_role_call(facts, role, &default_member_scopes(facts))
        } else {
            format!(
                "PUT {}/roles/{role} {}",
                tenant_path(facts),
                json!({"scopes": ["<scope the role should grant>"]})
            )
        };
        calls.push(format!(
            "as a tenant admin at aal2: {call} (or take the role away with PATCH {}/members/<user id>)",
            tenant_path(facts)
        ));
    }
    if status == CheckStatus::Pass {
        return pass(
            id,
            format!(
                "{} bound to enabled, assignable scopes; every role in use is bound",
                plural(facts.bindings.len(), "role", "roles")
            ),
        );
    }
    if !disabled_referenced.is_empty() {
        let wanted: BTreeSet<&ScopeName> = facts
            .enabled_scopes
            .iter()
            .chain(disabled_referenced.iter().copied())
            .collect();
        calls.push(format!(
            "or, as a platform root, enable the scopes again: PUT {}/scopes {}",
            tenant_path(facts),
            scopes_body(wanted)
        ));
    }
    problem(id, status, findings.join("; "), calls.join("; "))
}

fn api_keys_scopes_enabled(facts: &TenantFacts) -> Check {
    let id = ids::API_KEYS_SCOPES_ENABLED;
    let mut findings = Vec::new();
    let mut calls = Vec::new();
    for key in &facts.api_keys {
        let lost: Vec<&ScopeName> = key
            .scopes
            .iter()
            .filter(|scope| !facts.enabled_scopes.contains(*scope))
            .collect();
        if lost.is_empty() {
            continue;
        }
        findings.push(format!(
            "key {} ({}) holds scopes that are not enabled, so its calls needing them are \
             denied (scope_not_enabled): {}",
            key.name.as_str(),
            key.id,
            listing(lost.iter().map(ToString::to_string))
        ));
        let kept: BTreeSet<&ScopeName> = key
            .scopes
            .iter()
            .filter(|scope| facts.enabled_scopes.contains(*scope))
            .collect();
        calls.push(format!(
            "as a tenant admin: POST {path}/api-keys {body}, move the integration to the new \
             key, then DELETE {path}/api-keys/{key_id}",
            path = tenant_path(facts),
            body = json!({
                "name": key.name.as_str(),
                "scopes": kept.iter().map(|scope| scope.as_str()).collect::<Vec<_>>(),
            }),
            key_id = key.id,
        ));
    }
    if findings.is_empty() {
        let detail = match facts.api_keys.len() {
            0 => "no API key in use".to_owned(),
            count => format!(
                "every scope of the {} in use is enabled",
                plural(count, "API key", "API keys")
            ),
        };
        return pass(id, detail);
    }
    problem(id, CheckStatus::Warn, findings.join("; "), calls.join("; "))
}

// ---- audit -------------------------------------------------------------------------

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn audit_writable(facts: &TenantFacts) -> Check {
    let id = ids::AUDIT_WRITABLE;
    match &facts.probe {
        AuditProbe::Refused(error) => problem(
            id,
            CheckStatus::Fail,
            format!(
                "the store refused an append to the tenant's audit trail ({error}): every \
                 change in the tenant will fail"
            ),
            "restore the service role's right to append, as the schema owner: \
             grant select, insert on audit_records to user_engine_app (PostgreSQL); \
             then look for the error above in the store's logs"
                .to_owned(),
        ),
        AuditProbe::Accepted {
            seq,
            prev_hash,
            previous,
        } => {
            let continues = match previous {
                None => *seq == 1 && prev_hash == GENESIS_HASH,
                Some((previous_seq, previous_hash)) => {
                    previous_seq.checked_add(1) == Some(*seq) && previous_hash == prev_hash
                }
            };
            if continues {
                pass(
                    id,
                    format!(
                        "the trail accepted an append at seq {seq}, continuing its chain \
                         (rolled back: no trace left)"
                    ),
                )
            } else {
                let held = match previous {
                    Some((previous_seq, previous_hash)) => {
                        format!("seq {previous_seq} with hash {}", short(previous_hash))
                    }
                    None => "nothing before it".to_owned(),
                };
                problem(
                    id,
                    CheckStatus::Fail,
                    format!(
                        "an append would go to seq {seq} after hash {}, but the trail holds \
                         {held}: the chain head and the records disagree, so new records \
                         would break the chain",
                        short(prev_hash)
                    ),
                    format!(
                        "restore the tenant's audit records and its chain head \
                         (partition_heads row {}) from the same backup, then confirm with \
                         user-engine audit verify --tenant {}",
                        facts.tenant.id, facts.tenant.id
                    ),
                )
            }
        }
    }
}

fn audit_chain_intact(facts: &TenantFacts) -> Check {
    let id = ids::AUDIT_CHAIN_INTACT;
    match &facts.trail.chain {
        Ok(()) => pass(
            id,
            format!(
                "{}, hash chain intact",
                plural(
                    usize::try_from(facts.trail.records).unwrap_or(usize::MAX),
                    "record",
                    "records"
                )
            ),
        ),
        Err(broken) => {
            let kind = match broken.kind {
                ChainBreakKind::Modified => "modified",
                ChainBreakKind::Missing => "missing",
                ChainBreakKind::Reordered => "reordered",
            };
            let record = broken
                .record
                .map(|record| format!(" (record {record})"))
                .unwrap_or_default();
            problem(
                id,
                CheckStatus::Fail,
                format!(
                    "the hash chain breaks at seq {}{record}: {kind}; the trail no longer \
                     proves what happened in the tenant",
                    broken.seq
                ),
                format!(
                    "records are append-only and the service cannot repair them: restore \
                     the tenant's audit records from a backup taken before the damage, then \
                     confirm with user-engine audit verify --tenant {}",
                    facts.tenant.id
                ),
            )
        }
    }
}

// ---- webhooks ----------------------------------------------------------------------

/// Warns when a webhook gave deliveries up, or its head event has been failing longer
/// than the lag threshold (later events wait behind it).
fn delivery_failing(facts: &TenantFacts, options: &Options) -> Check {
    let id = ids::DELIVERY_FAILING;
    if facts.webhooks.is_empty() {
        return pass(id, "the tenant has no webhook".to_owned());
    }
    let mut troubles = Vec::new();
    for (name, failed, since) in &facts.webhooks {
        if *failed > 0 {
            troubles.push(format!(
                "{name}: {} given up",
                plural(
                    usize::try_from(*failed).unwrap_or(usize::MAX),
                    "delivery",
                    "deliveries"
                )
            ));
        }
        if let Some(since) = since {
            let age = (facts.gathered_at - *since).max(time::Duration::ZERO);
            if age > options.outbox_lag_warn {
                troubles.push(format!(
                    "{name}: failing since {} ({}s); later events wait behind it",
                    format_timestamp(*since),
                    age.whole_seconds()
                ));
            }
        }
    }
    if troubles.is_empty() {
        return pass(
            id,
            format!(
                "{} delivering",
                plural(facts.webhooks.len(), "webhook", "webhooks")
            ),
        );
    }
    problem(
        id,
        CheckStatus::Warn,
        listing(troubles),
        format!(
            "see GET {}/webhooks/{{name}}/deliveries for each attempt's status and error; fix              the receiver (it must answer 2xx within 10 s) or its URL",
            tenant_path(facts)
        ),
    )
}

// ---- outbox ------------------------------------------------------------------------

fn outbox_lag(facts: &TenantFacts, options: &Options) -> Check {
    let id = ids::OUTBOX_LAG;
    let waiting = facts.outbox.waiting;
    let events = plural(
        usize::try_from(waiting).unwrap_or(usize::MAX),
        "event",
        "events",
    );
    if !options.relay_expected {
        return pass(
            id,
            format!(
                "no relay is configured (USER_ENGINE_NATS_URL unset): events are served by \
                 GET {}/events only; {events} not relayed",
                tenant_path(facts)
            ),
        );
    }
    let Some(oldest) = facts.outbox.oldest.filter(|_| waiting > 0) else {
        return pass(id, "no event waits for the relay".to_owned());
    };
    // A clock behind the event's time reads as no wait at all, not a negative one.
    let age = (facts.gathered_at - oldest).max(time::Duration::ZERO);
    let threshold = options.outbox_lag_warn;
    if age <= threshold {
        return pass(
            id,
            format!(
                "{events} waiting, the oldest for {}s (warns past {}s)",
                age.whole_seconds(),
                threshold.whole_seconds()
            ),
        );
    }
    problem(
        id,
        CheckStatus::Warn,
        format!(
            "{events} waiting for the relay, the oldest since {} ({}s, past the {}s \
             threshold): the relay is stopped or failing",
            format_timestamp(oldest),
            age.whole_seconds(),
            threshold.whole_seconds()
        ),
        "run the relay: user-engine relay (with USER_ENGINE_DATABASE_URL and \
         USER_ENGINE_NATS_URL set), or user-engine serve with USER_ENGINE_NATS_URL; if one \
         runs, read its logs and the relay_failures_total metric"
            .to_owned(),
    )
}
