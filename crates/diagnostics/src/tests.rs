//! Unit tests of the checks over hand-built facts: each check in each of its states,
//! the overall status, and the report's JSON shape.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests: a failed expectation aborts the test"
)]

use std::collections::{BTreeMap, BTreeSet};

use domain::audit::{ChainBreak, ChainBreakKind, GENESIS_HASH};
use domain::catalog::{default_bindings, default_catalog, default_enabled_scopes};
use domain::ids::{DisplayName, Email, KeyId, RoleName, ScopeName, TenantId, UserId};
use domain::model::{
    AccountState, ApiKey, CatalogScope, RoleBinding, Tenant, TenantState, UserState,
};
use domain::ports::OutboxBacklog;
use domain::usecases::{AdminFacts, AuditProbe, TenantFacts, TrailFacts};
use time::macros::datetime;
use time::Duration;

use super::*;

fn user(n: u8) -> UserId {
    UserId::parse(&format!("01890a5d-ac96-7000-8000-0000000000{n:02x}")).unwrap()
}

fn scope(name: &str) -> ScopeName {
    ScopeName::parse(name).unwrap()
}

fn admin(n: u8) -> AdminFacts {
    AdminFacts {
        user_id: user(n),
        email: Email::parse(&format!("admin{n}@acme.example")).unwrap(),
        account_state: AccountState::Active,
        user_state: Some(UserState::Active),
        has_totp: true,
    }
}

/// A tenant every check passes for.
fn ready() -> TenantFacts {
    let now = datetime!(2026-01-01 00:00 UTC);
    let mut catalog: BTreeMap<ScopeName, CatalogScope> = default_catalog()
        .into_iter()
        .map(|entry| (entry.name.clone(), entry))
        .collect();
    catalog.insert(
        scope("docs:edit"),
        CatalogScope {
            name: scope("docs:edit"),
            description: "edit docs".to_owned(),
            platform_only: false,
            min_assurance: domain::ids::Assurance::Aal1,
        },
    );
    TenantFacts {
        tenant: Tenant {
            id: TenantId::parse("acme").unwrap(),
            display_name: DisplayName::parse("Acme").unwrap(),
            state: TenantState::Active,
            created_at: now,
            updated_at: now,
        },
        gathered_at: now,
        admins: vec![admin(1), admin(2)],
        role_holders: [(RoleName::tenant_admin(), 2), (RoleName::member(), 3)]
            .into_iter()
            .collect(),
        enabled_scopes: default_enabled_scopes().into_iter().collect(),
        catalog,
        bindings: default_bindings(),
        api_keys: Vec::new(),
        trail: TrailFacts {
            records: 4,
            last: Some((4, "ab".repeat(32))),
            chain: Ok(()),
        },
        probe: AuditProbe::Accepted {
            seq: 5,
            prev_hash: "ab".repeat(32),
            previous: Some((4, "ab".repeat(32))),
        },
        outbox: OutboxBacklog::default(),
        webhooks: Vec::new(),
    }
}

fn run(facts: &TenantFacts) -> Report {
    evaluate(facts, &Options::default())
}

/// The status of one check, and the overall status.
fn verdict(facts: &TenantFacts, id: &str) -> (CheckStatus, Status) {
    let report = run(facts);
    (report.check(id).unwrap().status, report.status)
}

#[test]
fn a_ready_tenant_passes_every_check_in_order() {
    let report = run(&ready());
    assert_eq!(report.status, Status::Ready, "{report:#?}");
    let listed: Vec<&str> = report.checks.iter().map(|check| check.id).collect();
    assert_eq!(listed, ids::ALL);
    assert!(report.checks.iter().all(|check| check.remedy.is_none()));
}

#[test]
fn the_overall_status_is_the_worst_check() {
    let check = |status| Check {
        id: "x",
        status,
        detail: String::new(),
        remedy: None,
    };
    assert_eq!(Status::of(&[]), Status::Ready);
    assert_eq!(
        Status::of(&[check(CheckStatus::Pass), check(CheckStatus::Warn)]),
        Status::Degraded
    );
    assert_eq!(
        Status::of(&[
            check(CheckStatus::Fail),
            check(CheckStatus::Warn),
            check(CheckStatus::Pass)
        ]),
        Status::NotReady
    );
}

#[test]
fn a_suspended_tenant_fails_with_the_patch_that_reactivates_it() {
    let mut facts = ready();
    facts.tenant.state = TenantState::Suspended;
    let report = run(&facts);
    let check = report.check(ids::TENANT_ACTIVE).unwrap();
    assert_eq!(check.status, CheckStatus::Fail);
    assert_eq!(report.status, Status::NotReady);
    assert_eq!(
        check.remedy.as_deref(),
        Some(r#"as a platform root: PATCH /v1/tenants/acme {"state":"active"}"#)
    );
}

#[test]
fn one_acting_admin_warns_and_none_fails() {
    let mut facts = ready();
    facts.admins.truncate(1);
    assert_eq!(
        verdict(&facts, ids::ADMINS_REDUNDANT),
        (CheckStatus::Warn, Status::Degraded)
    );
    assert_eq!(verdict(&facts, ids::ADMINS_PRESENT).0, CheckStatus::Pass);

    facts.admins[0].user_state = Some(UserState::Suspended);
    let report = run(&facts);
    let present = report.check(ids::ADMINS_PRESENT).unwrap();
    assert_eq!(present.status, CheckStatus::Fail);
    assert_eq!(report.status, Status::NotReady);
    assert!(present.detail.contains("user suspended platform-wide"));
    assert!(present.remedy.as_deref().unwrap().starts_with(&format!(
        r#"as a platform root: PATCH /v1/users/{} {{"state":"active"}}"#,
        user(1)
    )));
    // A suspended admin is admins.present's business, not admins.mfa's.
    assert_eq!(verdict(&facts, ids::ADMINS_MFA).0, CheckStatus::Pass);
}

#[test]
fn a_suspended_account_and_an_invited_user_cannot_act_either() {
    let mut facts = ready();
    facts.admins[0].account_state = AccountState::Suspended;
    facts.admins[1].user_state = Some(UserState::Invited);
    let present = run(&facts).check(ids::ADMINS_PRESENT).cloned().unwrap();
    assert_eq!(present.status, CheckStatus::Fail);
    assert!(present.detail.contains("account suspended"));
    assert!(present.detail.contains("invitation not accepted"));
    let remedy = present.remedy.unwrap();
    assert!(remedy.contains(&format!(
        r#"PATCH /v1/tenants/acme/members/{} {{"state":"active"}}"#,
        user(1)
    )));
    assert!(remedy.contains("POST /v1/auth/invitation"));
}

#[test]
fn no_admin_at_all_fails_with_the_call_that_adds_one() {
    let mut facts = ready();
    facts.admins.clear();
    let present = run(&facts).check(ids::ADMINS_PRESENT).cloned().unwrap();
    assert_eq!(present.status, CheckStatus::Fail);
    assert_eq!(
        present.remedy.as_deref(),
        Some(
            r#"as a platform root at aal2: POST /v1/tenants/acme/members {"email":"<admin email>","roles":["tenant_admin"]}"#
        )
    );
}

#[test]
fn an_admin_without_totp_warns() {
    let mut facts = ready();
    facts.admins[1].has_totp = false;
    let report = run(&facts);
    let mfa = report.check(ids::ADMINS_MFA).unwrap();
    assert_eq!(mfa.status, CheckStatus::Warn);
    assert_eq!(report.status, Status::Degraded);
    assert!(mfa.detail.contains("admin2@acme.example"));
    assert!(!mfa.detail.contains("admin1@acme.example"));
    assert!(mfa
        .remedy
        .as_deref()
        .unwrap()
        .contains("POST /v1/me/totp/confirm"));
}

#[test]
fn disabled_engine_scopes_warn_and_administration_scopes_fail() {
    let mut facts = ready();
    facts.enabled_scopes.remove(&scope("audit:read"));
    let check = run(&facts)
        .check(ids::CATALOG_SCOPES_ENABLED)
        .cloned()
        .unwrap();
    assert_eq!(check.status, CheckStatus::Warn);
    assert!(check.detail.contains("audit:read"));
    assert!(check
        .remedy
        .as_deref()
        .unwrap()
        .starts_with("as a platform root: PUT /v1/tenants/acme/scopes {\"scopes\":["));
    assert!(check.remedy.as_deref().unwrap().contains("\"audit:read\""));

    facts.enabled_scopes.remove(&scope("members:write"));
    assert_eq!(
        verdict(&facts, ids::CATALOG_SCOPES_ENABLED),
        (CheckStatus::Fail, Status::NotReady)
    );
}

#[test]
fn an_enabled_platform_only_scope_fails() {
    let mut facts = ready();
    facts.enabled_scopes.insert(scope("platform:users:read"));
    let check = run(&facts)
        .check(ids::CATALOG_SCOPES_ENABLED)
        .cloned()
        .unwrap();
    assert_eq!(check.status, CheckStatus::Fail);
    assert!(!check.remedy.unwrap().contains("platform:users:read"));
}

#[test]
fn an_enabled_application_scope_no_role_binds_warns_with_the_binding_to_extend() {
    let mut facts = ready();
    facts.enabled_scopes.insert(scope("docs:edit"));
    let check = run(&facts).check(ids::BINDINGS_PRESENT).cloned().unwrap();
    assert_eq!(check.status, CheckStatus::Warn);
    assert!(check.detail.contains("docs:edit"));
    assert!(check.remedy.unwrap().contains(
        r#"PUT /v1/tenants/acme/roles/member {"scopes":["docs:edit","profiles:read","roles:read","tenant:read"]}"#
    ));

    facts.bindings[0].scopes.insert(scope("docs:edit"));
    assert_eq!(verdict(&facts, ids::BINDINGS_PRESENT).0, CheckStatus::Pass);
}

#[test]
fn no_bindings_at_all_warns_with_the_default_member_binding() {
    let mut facts = ready();
    facts.bindings.clear();
    facts.role_holders.remove(&RoleName::member());
    let check = run(&facts).check(ids::BINDINGS_PRESENT).cloned().unwrap();
    assert_eq!(check.status, CheckStatus::Warn);
    assert!(check.remedy.unwrap().contains(
        r#"PUT /v1/tenants/acme/roles/member {"scopes":["profiles:read","roles:read","tenant:read"]}"#
    ));
}

#[test]
fn a_binding_of_a_disabled_scope_warns_and_of_a_platform_scope_fails() {
    let mut facts = ready();
    facts.bindings.push(RoleBinding {
        role: RoleName::parse("editor").unwrap(),
        scopes: [scope("docs:edit"), scope("tenant:read")]
            .into_iter()
            .collect(),
    });
    let check = run(&facts).check(ids::BINDINGS_VALID).cloned().unwrap();
    assert_eq!(check.status, CheckStatus::Warn);
    assert!(check.detail.contains("editor"));
    let remedy = check.remedy.unwrap();
    assert!(remedy.contains(r#"PUT /v1/tenants/acme/roles/editor {"scopes":["tenant:read"]}"#));
    assert!(remedy.contains("enable the scopes again: PUT /v1/tenants/acme/scopes"));

    facts.bindings[1]
        .scopes
        .insert(scope("platform:users:read"));
    assert_eq!(
        verdict(&facts, ids::BINDINGS_VALID),
        (CheckStatus::Fail, Status::NotReady)
    );
}

#[test]
fn a_role_in_use_without_a_binding_warns() {
    let mut facts = ready();
    facts
        .role_holders
        .insert(RoleName::parse("editor").unwrap(), 2);
    let check = run(&facts).check(ids::BINDINGS_VALID).cloned().unwrap();
    assert_eq!(check.status, CheckStatus::Warn);
    assert!(check.detail.contains("role editor is held by 2 members"));
    assert!(check
        .remedy
        .unwrap()
        .contains("PUT /v1/tenants/acme/roles/editor"));

    // `member` without its binding gets its default scopes back.
    let mut facts = ready();
    facts.bindings.clear();
    let check = run(&facts).check(ids::BINDINGS_VALID).cloned().unwrap();
    assert_eq!(check.status, CheckStatus::Warn);
    assert!(check.remedy.unwrap().contains(
        r#"PUT /v1/tenants/acme/roles/member {"scopes":["profiles:read","roles:read","tenant:read"]}"#
    ));
}

#[test]
fn an_api_key_holding_a_disabled_scope_warns() {
    let mut facts = ready();
    let now = facts.gathered_at;
    let key_id = KeyId::parse("01890a5d-ac96-7000-8000-0000000000ff").unwrap();
    facts.api_keys.push(ApiKey {
        id: key_id,
        tenant: facts.tenant.id.clone(),
        name: DisplayName::parse("ci").unwrap(),
        scopes: [scope("audit:read"), scope("tenant:read")]
            .into_iter()
            .collect(),
        created_by: Some(user(1)),
        created_at: now,
        revoked_at: None,
    });
    assert_eq!(
        verdict(&facts, ids::API_KEYS_SCOPES_ENABLED).0,
        CheckStatus::Pass
    );
    facts.enabled_scopes.remove(&scope("audit:read"));
    let check = run(&facts)
        .check(ids::API_KEYS_SCOPES_ENABLED)
        .cloned()
        .unwrap();
    assert_eq!(check.status, CheckStatus::Warn);
    let remedy = check.remedy.unwrap();
    assert!(
        remedy.contains(r#"POST /v1/tenants/acme/api-keys {"name":"ci","scopes":["tenant:read"]}"#)
    );
    assert!(remedy.contains(&format!("DELETE /v1/tenants/acme/api-keys/{key_id}")));
}

#[test]
fn a_refused_or_discontinuous_probe_fails_audit_writable() {
    let mut facts = ready();
    facts.probe = AuditProbe::Refused("permission denied for table audit_records".to_owned());
    let report = run(&facts);
    let check = report.check(ids::AUDIT_WRITABLE).unwrap();
    assert_eq!(check.status, CheckStatus::Fail);
    assert!(check.detail.contains("permission denied"));
    assert!(check
        .remedy
        .as_deref()
        .unwrap()
        .contains("grant select, insert on audit_records to user_engine_app"));

    facts.probe = AuditProbe::Accepted {
        seq: 5,
        prev_hash: "cd".repeat(32),
        previous: Some((4, "ab".repeat(32))),
    };
    assert_eq!(
        verdict(&facts, ids::AUDIT_WRITABLE),
        (CheckStatus::Fail, Status::NotReady)
    );

    facts.probe = AuditProbe::Accepted {
        seq: 1,
        prev_hash: GENESIS_HASH.to_owned(),
        previous: None,
    };
    assert_eq!(verdict(&facts, ids::AUDIT_WRITABLE).0, CheckStatus::Pass);
}

#[test]
fn a_broken_chain_fails_and_names_the_record() {
    let mut facts = ready();
    facts.trail.chain = Err(ChainBreak {
        kind: ChainBreakKind::Modified,
        seq: 3,
        record: None,
    });
    let report = run(&facts);
    let check = report.check(ids::AUDIT_CHAIN_INTACT).unwrap();
    assert_eq!(check.status, CheckStatus::Fail);
    assert!(check.detail.contains("seq 3"));
    assert!(check.detail.contains("modified"));
    assert!(check
        .remedy
        .as_deref()
        .unwrap()
        .contains("user-engine audit verify --tenant acme"));
}

#[test]
fn events_waiting_past_the_threshold_warn_unless_no_relay_is_configured() {
    let mut facts = ready();
    facts.outbox = OutboxBacklog {
        waiting: 3,
        oldest: Some(facts.gathered_at - Duration::seconds(60)),
    };
    // Exactly at the threshold is not past it.
    assert_eq!(verdict(&facts, ids::OUTBOX_LAG).0, CheckStatus::Pass);
    facts.outbox.oldest = Some(facts.gathered_at - Duration::seconds(61));
    let report = run(&facts);
    let check = report.check(ids::OUTBOX_LAG).unwrap();
    assert_eq!(check.status, CheckStatus::Warn);
    assert_eq!(report.status, Status::Degraded);
    assert!(check
        .remedy
        .as_deref()
        .unwrap()
        .contains("user-engine relay"));

    let feed_only = Options {
        relay_expected: false,
        ..Options::default()
    };
    let check = evaluate(&facts, &feed_only);
    assert_eq!(
        check.check(ids::OUTBOX_LAG).unwrap().status,
        CheckStatus::Pass
    );

    let tight = Options {
        outbox_lag_warn: Duration::seconds(1),
        ..Options::default()
    };
    facts.outbox.oldest = Some(facts.gathered_at - Duration::seconds(2));
    assert_eq!(
        evaluate(&facts, &tight)
            .check(ids::OUTBOX_LAG)
            .unwrap()
            .status,
        CheckStatus::Warn
    );
}

#[test]
fn checks_never_stop_at_the_first_failure() {
    let mut facts = ready();
    facts.tenant.state = TenantState::Suspended;
    facts.admins.clear();
    facts.trail.chain = Err(ChainBreak {
        kind: ChainBreakKind::Missing,
        seq: 2,
        record: None,
    });
    let report = run(&facts);
    assert_eq!(report.checks.len(), ids::ALL.len());
    let failed: BTreeSet<&str> = report
        .checks
        .iter()
        .filter(|check| check.status == CheckStatus::Fail)
        .map(|check| check.id)
        .collect();
    assert_eq!(
        failed,
        [
            ids::TENANT_ACTIVE,
            ids::ADMINS_PRESENT,
            ids::AUDIT_CHAIN_INTACT
        ]
        .into_iter()
        .collect()
    );
}

#[test]
fn the_json_report_has_the_spec_shape() {
    let mut facts = ready();
    facts.admins.truncate(1);
    let json = run(&facts).to_json();
    assert_eq!(json["tenant"], "acme");
    assert_eq!(json["status"], "degraded");
    let checks = json["checks"].as_array().unwrap();
    assert_eq!(checks.len(), ids::ALL.len());
    for check in checks {
        let keys: BTreeSet<&str> = check
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["detail", "id", "remedy", "status"].into_iter().collect()
        );
    }
    let redundant = checks
        .iter()
        .find(|check| check["id"] == ids::ADMINS_REDUNDANT)
        .unwrap();
    assert_eq!(redundant["status"], "warn");
    assert!(redundant["remedy"].is_string());
    assert!(checks[0]["remedy"].is_null());
}

#[test]
fn a_webhook_giving_up_or_failing_long_warns() {
    let mut facts = ready();
    assert_eq!(verdict(&facts, ids::DELIVERY_FAILING).0, CheckStatus::Pass);
    facts.webhooks = vec![("crm".to_owned(), 0, None)];
    assert_eq!(verdict(&facts, ids::DELIVERY_FAILING).0, CheckStatus::Pass);
    facts.webhooks = vec![(
        "crm".to_owned(),
        0,
        Some(facts.gathered_at - Duration::seconds(30)),
    )];
    assert_eq!(verdict(&facts, ids::DELIVERY_FAILING).0, CheckStatus::Pass);
    facts.webhooks = vec![(
        "crm".to_owned(),
        0,
        Some(facts.gathered_at - Duration::seconds(600)),
    )];
    let detail = run(&facts)
        .check(ids::DELIVERY_FAILING)
        .unwrap()
        .detail
        .clone();
    assert_eq!(verdict(&facts, ids::DELIVERY_FAILING).0, CheckStatus::Warn);
    assert!(detail.contains("crm"), "{detail}");
    facts.webhooks = vec![("crm".to_owned(), 2, None)];
    let detail = run(&facts)
        .check(ids::DELIVERY_FAILING)
        .unwrap()
        .detail
        .clone();
    assert_eq!(verdict(&facts, ids::DELIVERY_FAILING).0, CheckStatus::Warn);
    assert!(detail.contains("2 deliveries given up"), "{detail}");
}
