//! The behaviour suite: SPEC §3 rules exercised through the public use cases only, so
//! the same scenarios run against every store (`behaviour_suite!` makes one test each).

use std::collections::BTreeSet;

use domain::audit::{AuditRecord, Outcome, Partition};
use domain::authz::Reason;
use domain::event::Event;
use domain::ids::{Assurance, DisplayName, ProfileKey, ProfileValue, TenantId};
use domain::model::{AccountState, PlatformRole, ProfileSource, TenantState, UserState};
use domain::ports::AuditFilter;
use domain::usecases::{
    AddMember, AuthzCheck, Caller, CheckSubject, CreateTenant, MemberChange, NewApiKey, NewUser,
    SessionOrigin, TenantChange, UserRef, MAX_BATCH,
};
use domain::Error;
use serde_json::json;

pub use crate::conformance::{
    a_dropped_transaction_leaves_no_change_and_no_audit_record,
    a_tenant_transaction_reaches_no_other_tenants_rows,
    racing_demotions_suspensions_and_removals_leave_exactly_one_active_admin,
    single_use_secrets_are_used_once_by_concurrent_transactions,
};
use crate::harness::{at, email, password, role_name, roles, scope, tenant_id, user_of, Harness};

/// Every audit record of a tenant's trail, read by a platform root.
pub async fn tenant_trail(h: &Harness, root: &Caller, tenant: &TenantId) -> Vec<AuditRecord> {
    let mut records = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = h
            .engine
            .tenant_audit(root, tenant, &AuditFilter::default(), after.as_deref(), 200)
            .await
            .expect("root reads the trail");
        records.extend(page.items);
        match page.next_cursor {
            Some(cursor) => after = Some(cursor),
            None => return records,
        }
    }
}

/// Every event of a tenant's feed, read by a platform root.
pub async fn tenant_feed(h: &Harness, root: &Caller, tenant: &TenantId) -> Vec<Event> {
    let mut events = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = h
            .engine
            .tenant_events(root, tenant, after.as_deref(), 200)
            .await
            .expect("root reads the feed");
        // The feed always gives a cursor to resume from; an empty page is its end.
        if page.items.is_empty() {
            return events;
        }
        events.extend(page.items);
        after = Some(page.next_cursor.expect("the feed always gives a cursor"));
    }
}

fn types_of(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event.event_type.as_str())
        .collect()
}

fn key(name: &str) -> ProfileKey {
    ProfileKey::parse(name).expect("valid key")
}

fn text(value: &str) -> ProfileValue {
    ProfileValue::parse(&json!(value)).expect("valid value")
}

fn check(user: &Caller, assurance: Assurance, scope_name: &str) -> AuthzCheck {
    AuthzCheck {
        subject: CheckSubject::User {
            user_id: user_of(user),
            assurance,
        },
        scope: scope(scope_name),
        target: None,
    }
}

pub async fn bootstrap_creates_one_root_and_is_idempotent(h: Harness) {
    let root = h.root().await;
    let again = h
        .engine
        .bootstrap(email("other@example.com"), password(), "again")
        .await;
    assert_eq!(again, Ok(None), "a second bootstrap changes nothing");
    let me = h.engine.me(&root).await.expect("root reads itself");
    let user = me.user.expect("a user");
    assert!(user.platform_roles.contains(&PlatformRole::Root));
    assert_eq!(user.state, UserState::Active);
    assert_eq!(
        h.engine.verify_trail(&Partition::Platform).await,
        Ok(Ok(1)),
        "one record: the bootstrap"
    );
}

pub async fn creating_a_tenant_sets_up_admin_scopes_bindings_audit_and_events(h: Harness) {
    let root = h.root().await;
    let (tenant, admin) = h.tenant(&root, "acme").await;
    let member = h.engine.get_member(&admin, &tenant, &user_of(&admin)).await;
    let member = member.expect("admin reads themselves");
    assert_eq!(member.roles, roles(&["tenant_admin"]));
    assert_eq!(member.state, AccountState::Active);
    let enabled = h
        .engine
        .enabled_scopes(&admin, &tenant)
        .await
        .expect("enabled");
    assert_eq!(enabled.len(), 15);
    assert!(!enabled
        .iter()
        .any(|name| name.as_str().starts_with("platform:")));
    let bindings = h.engine.list_roles(&admin, &tenant).await.expect("roles");
    let member_binding = bindings
        .iter()
        .find(|binding| binding.role.as_str() == "member")
        .expect("member is bound");
    let bound: Vec<&str> = member_binding.scopes.iter().map(|s| s.as_str()).collect();
    assert_eq!(bound, vec!["profiles:read", "roles:read", "tenant:read"]);
    let trail = tenant_trail(&h, &root, &tenant).await;
    assert_eq!(trail.len(), 1, "one audit record for the creation");
    assert_eq!(trail[0].action, "tenant.create");
    assert_eq!(trail[0].outcome, Outcome::Allowed);
    assert_eq!(trail[0].reason, "platform_root");
    let feed = tenant_feed(&h, &root, &tenant).await;
    assert_eq!(types_of(&feed), vec!["tenant.created", "membership.added"]);
    assert_eq!(adapters_nats::cloudevent(&feed[0])["tenant"], "acme");
}

pub async fn creating_a_tenant_with_a_new_email_invites_the_admin(h: Harness) {
    let root = h.root().await;
    let created = h
        .engine
        .create_tenant(
            &root,
            CreateTenant {
                id: tenant_id("initech"),
                display_name: DisplayName::parse("Initech").expect("name"),
                admin: UserRef::Email(email("  Boss@Initech.example ")),
            },
        )
        .await
        .expect("created");
    assert_eq!(created.admin.email.as_str(), "boss@initech.example");
    let token = created.invitation_token.expect("an invitation token");
    h.engine
        .accept_invitation(&token, &password(), "accept")
        .await
        .expect("invitation accepted");
    assert_eq!(
        h.engine
            .accept_invitation(&token, &password(), "again")
            .await,
        Err(Error::InvalidCredentials),
        "an invitation is used once"
    );
    let session = h
        .engine
        .login(
            &email("boss@initech.example"),
            crate::harness::PASSWORD,
            "login",
        )
        .await;
    assert!(session.is_ok(), "the invited admin can now log in");
}

pub async fn tenant_ids_are_never_reused(h: Harness) {
    let root = h.root().await;
    let (tenant, _) = h.tenant(&root, "acme").await;
    let other = h.user(&root, "other@example.com").await;
    let again = h
        .engine
        .create_tenant(
            &root,
            CreateTenant {
                id: tenant,
                display_name: DisplayName::parse("Again").expect("name"),
                admin: UserRef::Id(other),
            },
        )
        .await;
    assert_eq!(again.map(|_| ()), Err(Error::TenantExists));
}

pub async fn a_non_member_gets_tenant_not_found_and_the_trail_keeps_the_true_reason(h: Harness) {
    let root = h.root().await;
    let (acme, _) = h.tenant(&root, "acme").await;
    let (_, globex_admin) = h.tenant(&root, "globex").await;
    let before = tenant_trail(&h, &root, &acme).await.len();
    assert_eq!(
        h.engine
            .list_members(&globex_admin, &acme, None, 50)
            .await
            .map(|_| ()),
        Err(Error::TenantNotFound)
    );
    assert_eq!(
        h.engine
            .get_tenant(&globex_admin, &tenant_id("nowhere"))
            .await
            .map(|_| ()),
        Err(Error::TenantNotFound),
        "a missing tenant answers the same"
    );
    let trail = tenant_trail(&h, &root, &acme).await;
    assert_eq!(trail.len(), before + 1);
    let last = trail.last().expect("a record");
    assert_eq!(last.outcome, Outcome::Denied);
    assert_eq!(last.reason, "not_a_member");
    assert_eq!(last.actor.id, user_of(&globex_admin).to_string());
    let platform = h
        .engine
        .platform_audit(&root, &AuditFilter::default(), None, 200)
        .await
        .expect("platform trail");
    let probe = platform
        .items
        .last()
        .expect("the probe of a missing tenant");
    assert_eq!(probe.reason, "tenant_not_found");
    assert_eq!(probe.outcome, Outcome::Denied);
}

pub async fn tenant_admins_are_refused_every_platform_only_operation(h: Harness) {
    let root = h.root().await;
    let (tenant, admin) = h.tenant(&root, "acme").await;
    let forbidden = Err(Error::Forbidden(Reason::PlatformRootRequired));
    let someone = h.user(&root, "someone@example.com").await;
    assert_eq!(
        h.engine
            .create_tenant(
                &admin,
                CreateTenant {
                    id: tenant_id("mine"),
                    display_name: DisplayName::parse("Mine").expect("name"),
                    admin: UserRef::Id(user_of(&admin)),
                },
            )
            .await
            .map(|_| ()),
        forbidden
    );
    assert_eq!(
        h.engine
            .set_enabled_scopes(&admin, &tenant, BTreeSet::new())
            .await
            .map(|_| ()),
        forbidden
    );
    assert_eq!(
        h.engine
            .update_tenant(
                &admin,
                &tenant,
                TenantChange {
                    state: Some(TenantState::Suspended),
                    ..TenantChange::default()
                },
            )
            .await
            .map(|_| ()),
        forbidden
    );
    assert_eq!(
        h.engine
            .create_user(
                &admin,
                NewUser {
                    email: email("new@example.com"),
                    password: None,
                },
            )
            .await
            .map(|_| ()),
        forbidden
    );
    assert_eq!(
        h.engine
            .set_user_state(&admin, &someone, UserState::Suspended)
            .await
            .map(|_| ()),
        forbidden
    );
    assert_eq!(
        h.engine
            .set_platform_roles(
                &admin,
                &user_of(&admin),
                BTreeSet::from([PlatformRole::Root])
            )
            .await
            .map(|_| ()),
        forbidden
    );
    assert_eq!(
        h.engine
            .add_catalog_scope(
                &admin,
                domain::usecases::NewCatalogScope {
                    name: scope("docs:edit"),
                    description: "edit docs".to_owned(),
                    platform_only: false,
                    min_assurance: Assurance::Aal1,
                },
            )
            .await
            .map(|_| ()),
        forbidden
    );
    assert_eq!(
        h.engine
            .platform_audit(&admin, &AuditFilter::default(), None, 10)
            .await
            .map(|_| ()),
        forbidden
    );
    assert_eq!(
        h.engine
            .write_platform_value(&admin, &someone, &key("title"), Some(text("boss")))
            .await,
        forbidden
    );
    let roles_after = h.engine.me(&admin).await.expect("me").user.expect("user");
    assert!(roles_after.platform_roles.is_empty(), "nothing was granted");
}

pub async fn the_last_active_admin_cannot_be_removed_demoted_or_suspended(h: Harness) {
    let root = h.root().await;
    let (tenant, admin) = h.tenant(&root, "acme").await;
    let admin_id = user_of(&admin);
    let demote = MemberChange {
        roles: Some(roles(&["member"])),
        ..MemberChange::default()
    };
    let suspend = MemberChange {
        state: Some(AccountState::Suspended),
        ..MemberChange::default()
    };
    for caller in [&admin, &root] {
        assert_eq!(
            h.engine
                .update_member(caller, &tenant, &admin_id, demote.clone())
                .await
                .map(|_| ()),
            Err(Error::LastTenantAdmin)
        );
        assert_eq!(
            h.engine
                .update_member(caller, &tenant, &admin_id, suspend.clone())
                .await
                .map(|_| ()),
            Err(Error::LastTenantAdmin)
        );
        assert_eq!(
            h.engine
                .remove_member(caller, &tenant, &admin_id, None)
                .await,
            Err(Error::LastTenantAdmin)
        );
    }
    let second = h
        .member(
            &root,
            &admin,
            &tenant,
            "second@acme.example",
            &["tenant_admin"],
        )
        .await;
    h.engine
        .update_member(&admin, &tenant, &admin_id, suspend)
        .await
        .expect("with a second admin the first may be suspended");
    let second_id = user_of(&second);
    assert_eq!(
        h.engine
            .remove_member(&root, &tenant, &second_id, None)
            .await,
        Err(Error::LastTenantAdmin),
        "a suspended admin does not count"
    );
    let trail = tenant_trail(&h, &root, &tenant).await;
    let refusals = trail
        .iter()
        .filter(|record| record.reason == "last_tenant_admin")
        .count();
    assert_eq!(refusals, 7, "every refusal is audited as denied");
}

pub async fn granting_or_revoking_tenant_admin_needs_aal2(h: Harness) {
    let root = h.root().await;
    let (tenant, admin) = h.tenant(&root, "acme").await;
    let admin_aal1 = at(&admin, Assurance::Aal1);
    let someone = h.user(&root, "someone@example.com").await;
    let grant = AddMember {
        user: UserRef::Id(someone),
        roles: roles(&["tenant_admin"]),
    };
    assert_eq!(
        h.engine
            .add_member(&admin_aal1, &tenant, grant.clone())
            .await
            .map(|_| ()),
        Err(Error::Forbidden(Reason::InsufficientAssurance))
    );
    h.engine
        .add_member(&admin, &tenant, grant)
        .await
        .expect("granted at aal2");
    let revoke = MemberChange {
        roles: Some(roles(&["member"])),
        ..MemberChange::default()
    };
    assert_eq!(
        h.engine
            .update_member(&admin_aal1, &tenant, &someone, revoke.clone())
            .await
            .map(|_| ()),
        Err(Error::Forbidden(Reason::InsufficientAssurance))
    );
    let member = h
        .engine
        .update_member(&admin, &tenant, &someone, revoke)
        .await
        .expect("revoked at aal2");
    assert_eq!(member.roles, roles(&["member"]));
    let plain = h
        .member(&root, &admin, &tenant, "plain@acme.example", &["member"])
        .await;
    let changed = h
        .engine
        .update_member(
            &admin_aal1,
            &tenant,
            &user_of(&plain),
            MemberChange {
                state: Some(AccountState::Suspended),
                ..MemberChange::default()
            },
        )
        .await;
    assert!(changed.is_ok(), "other changes need only aal1");
}

pub async fn bindings_take_only_enabled_assignable_known_scopes_at_aal2(h: Harness) {
    let root = h.root().await;
    let (tenant, admin) = h.tenant(&root, "acme").await;
    let editor = role_name("editor");
    let put = |names: &[&str]| {
        names
            .iter()
            .map(|name| scope(name))
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        h.engine
            .put_role(&admin, &tenant, &editor, put(&["platform:users:read"]))
            .await
            .map(|_| ()),
        Err(Error::ScopeNotAssignable("platform:users:read".to_owned()))
    );
    assert_eq!(
        h.engine
            .put_role(&admin, &tenant, &editor, put(&["docs:edit"]))
            .await
            .map(|_| ()),
        Err(Error::UnknownScope("docs:edit".to_owned()))
    );
    h.engine
        .add_catalog_scope(
            &root,
            domain::usecases::NewCatalogScope {
                name: scope("docs:edit"),
                description: "edit docs".to_owned(),
                platform_only: false,
                min_assurance: Assurance::Aal1,
            },
        )
        .await
        .expect("catalog grows");
    assert_eq!(
        h.engine
            .put_role(&admin, &tenant, &editor, put(&["docs:edit"]))
            .await
            .map(|_| ()),
        Err(Error::ScopeNotEnabled("docs:edit".to_owned()))
    );
    let mut enabled = h
        .engine
        .enabled_scopes(&root, &tenant)
        .await
        .expect("enabled");
    enabled.insert(scope("docs:edit"));
    h.engine
        .set_enabled_scopes(&root, &tenant, enabled)
        .await
        .expect("enabled by root");
    assert_eq!(
        h.engine
            .put_role(
                &at(&admin, Assurance::Aal1),
                &tenant,
                &editor,
                put(&["docs:edit"])
            )
            .await
            .map(|_| ()),
        Err(Error::Forbidden(Reason::InsufficientAssurance))
    );
    h.engine
        .put_role(&admin, &tenant, &editor, put(&["docs:edit"]))
        .await
        .expect("bound at aal2");
    assert!(matches!(
        h.engine
            .put_role(
                &admin,
                &tenant,
                &role_name("tenant_admin"),
                put(&["docs:edit"])
            )
            .await,
        Err(Error::InvalidRequest(_))
    ));
    let writer = h
        .member(&root, &admin, &tenant, "writer@acme.example", &["editor"])
        .await;
    let decision = h
        .engine
        .authorize(
            &admin,
            &tenant,
            check(&writer, Assurance::Aal1, "docs:edit"),
        )
        .await
        .expect("decision");
    assert!(decision.allowed);
    assert_eq!(decision.reason, Reason::RoleBinding);
    assert_eq!(decision.matched_role, Some(editor.clone()));
    h.engine
        .delete_role(&admin, &tenant, &editor)
        .await
        .expect("deleted");
    let decision = h
        .engine
        .authorize(
            &admin,
            &tenant,
            check(&writer, Assurance::Aal1, "docs:edit"),
        )
        .await
        .expect("decision");
    assert_eq!(
        decision.reason,
        Reason::MissingScope,
        "takes effect at once"
    );
    assert_eq!(
        h.engine.delete_role(&admin, &tenant, &editor).await,
        Err(Error::NotFound)
    );
}

pub async fn a_tenant_admin_cannot_change_a_platform_root_member(h: Harness) {
    let root = h.root().await;
    let (tenant, admin) = h.tenant(&root, "acme").await;
    let root_id = user_of(&root);
    h.engine
        .add_member(
            &root,
            &tenant,
            AddMember {
                user: UserRef::Id(root_id),
                roles: roles(&["member"]),
            },
        )
        .await
        .expect("root joins");
    let protected = Err(Error::Forbidden(Reason::TargetProtected));
    assert_eq!(
        h.engine
            .update_member(
                &admin,
                &tenant,
                &root_id,
                MemberChange {
                    state: Some(AccountState::Suspended),
                    ..MemberChange::default()
                },
            )
            .await
            .map(|_| ()),
        protected
    );
    assert_eq!(
        h.engine
            .update_member(
                &admin,
                &tenant,
                &root_id,
                MemberChange {
                    roles: Some(roles(&["member", "tenant_admin"])),
                    ..MemberChange::default()
                },
            )
            .await
            .map(|_| ()),
        protected
    );
    assert_eq!(
        h.engine
            .remove_member(&admin, &tenant, &root_id, None)
            .await,
        protected
    );
    assert_eq!(
        h.engine
            .write_member_value(
                &admin,
                &tenant,
                &root_id,
                &key("title"),
                Some(text("x")),
                None
            )
            .await
            .map(|_| ()),
        protected
    );
    let read = h.engine.get_member(&admin, &tenant, &root_id).await;
    assert!(read.is_ok(), "reads of a protected member stay allowed");
}

pub async fn profiles_resolve_member_then_platform_then_tenant_default(h: Harness) {
    let root = h.root().await;
    let (tenant, admin) = h.tenant(&root, "acme").await;
    let member = h
        .member(&root, &admin, &tenant, "m@acme.example", &["member"])
        .await;
    let user = user_of(&member);
    h.engine
        .write_tenant_default(&admin, &tenant, &key("locale"), Some(text("de-DE")))
        .await
        .expect("default");
    h.engine
        .write_tenant_default(
            &admin,
            &tenant,
            &key("timezone"),
            Some(text("Europe/Berlin")),
        )
        .await
        .expect("default");
    h.engine
        .write_platform_value(&member, &user, &key("timezone"), Some(text("UTC")))
        .await
        .expect("self platform value");
    h.engine
        .write_platform_value(&root, &user, &key("title"), Some(text("Platform title")))
        .await
        .expect("root platform value");
    h.engine
        .write_member_value(
            &admin,
            &tenant,
            &user,
            &key("title"),
            Some(text("Tenant title")),
            None,
        )
        .await
        .expect("member value");
    let profile = h
        .engine
        .member_profile(&member, &tenant, &user)
        .await
        .expect("self read");
    let get = |name: &str| {
        profile
            .values
            .get(&key(name))
            .map(|resolved| (resolved.value.as_json().clone(), resolved.source))
    };
    assert_eq!(
        get("title"),
        Some((json!("Tenant title"), ProfileSource::TenantMember))
    );
    assert_eq!(
        get("timezone"),
        Some((json!("UTC"), ProfileSource::Platform))
    );
    assert_eq!(
        get("locale"),
        Some((json!("de-DE"), ProfileSource::TenantDefault))
    );
    assert_eq!(get("display_name"), None);
    h.engine
        .write_member_value(&admin, &tenant, &user, &key("title"), None, None)
        .await
        .expect("override deleted");
    let profile = h
        .engine
        .member_profile(&admin, &tenant, &user)
        .await
        .expect("admin read");
    assert_eq!(
        profile
            .values
            .get(&key("title"))
            .map(|resolved| resolved.source),
        Some(ProfileSource::Platform)
    );
    assert!(matches!(
        h.engine
            .write_member_value(
                &admin,
                &tenant,
                &user,
                &key("nickname"),
                Some(text("x")),
                None
            )
            .await,
        Err(Error::UnknownProfileKey(_))
    ));
    assert!(matches!(
        h.engine
            .write_member_value(
                &admin,
                &tenant,
                &user,
                &key("locale"),
                Some(ProfileValue::parse(&json!(3)).expect("number")),
                None
            )
            .await,
        Err(Error::InvalidProfileValue(_))
    ));
}

pub async fn members_read_themselves_and_edit_only_user_editable_keys(h: Harness) {
    let root = h.root().await;
    let (tenant, admin) = h.tenant(&root, "acme").await;
    let member = h
        .member(&root, &admin, &tenant, "m@acme.example", &["member"])
        .await;
    let other = h
        .member(&root, &admin, &tenant, "o@acme.example", &["member"])
        .await;
    let user = user_of(&member);
    assert!(h.engine.get_member(&member, &tenant, &user).await.is_ok());
    assert_eq!(
        h.engine
            .get_member(&member, &tenant, &user_of(&other))
            .await
            .map(|_| ()),
        Err(Error::Forbidden(Reason::MissingScope)),
        "members:read is not bound to member"
    );
    let written = h
        .engine
        .write_member_value(
            &member,
            &tenant,
            &user,
            &key("display_name"),
            Some(text("Me")),
            None,
        )
        .await;
    assert!(written.is_ok(), "display_name is user-editable");
    assert_eq!(
        h.engine
            .write_member_value(
                &member,
                &tenant,
                &user,
                &key("title"),
                Some(text("CEO")),
                None
            )
            .await
            .map(|_| ()),
        Err(Error::Forbidden(Reason::MissingScope)),
        "title is admin-only"
    );
    assert_eq!(
        h.engine
            .write_member_value(
                &member,
                &tenant,
                &user_of(&other),
                &key("display_name"),
                Some(text("You")),
                None
            )
            .await
            .map(|_| ()),
        Err(Error::Forbidden(Reason::MissingScope)),
        "self-service is only for oneself"
    );
}

pub async fn stale_versions_and_etags_are_refused(h: Harness) {
    let root = h.root().await;
    let (tenant, admin) = h.tenant(&root, "acme").await;
    let member = h
        .member(&root, &admin, &tenant, "m@acme.example", &["member"])
        .await;
    let user = user_of(&member);
    let read = h
        .engine
        .get_member(&admin, &tenant, &user)
        .await
        .expect("read");
    let suspend = MemberChange {
        state: Some(AccountState::Suspended),
        expected_version: Some(read.version),
        ..MemberChange::default()
    };
    let updated = h
        .engine
        .update_member(&admin, &tenant, &user, suspend.clone())
        .await
        .expect("current version");
    assert_eq!(updated.version, read.version + 1);
    assert_eq!(
        h.engine
            .update_member(&admin, &tenant, &user, suspend)
            .await
            .map(|_| ()),
        Err(Error::PreconditionFailed)
    );
    let profile = h
        .engine
        .member_profile(&admin, &tenant, &user)
        .await
        .expect("profile");
    let etag = domain::usecases::profile_etag(&profile);
    h.engine
        .write_member_value(
            &admin,
            &tenant,
            &user,
            &key("title"),
            Some(text("a")),
            Some(&etag),
        )
        .await
        .expect("current etag");
    assert_eq!(
        h.engine
            .write_member_value(
                &admin,
                &tenant,
                &user,
                &key("title"),
                Some(text("b")),
                Some(&etag)
            )
            .await
            .map(|_| ()),
        Err(Error::PreconditionFailed)
    );
}

pub async fn adding_members_by_email_invites_new_users_and_reuses_known_ones(h: Harness) {
    let root = h.root().await;
    let (tenant, admin) = h.tenant(&root, "acme").await;
    let added = h
        .engine
        .add_member(
            &admin,
            &tenant,
            AddMember {
                user: UserRef::Email(email("new@acme.example")),
                roles: BTreeSet::new(),
            },
        )
        .await
        .expect("added");
    assert!(added.invitation_token.is_some());
    assert_eq!(
        added.member.roles,
        roles(&["member"]),
        "member is the default role"
    );
    let again = h
        .engine
        .add_member(
            &admin,
            &tenant,
            AddMember {
                user: UserRef::Email(email("NEW@acme.example")),
                roles: BTreeSet::new(),
            },
        )
        .await;
    assert_eq!(again.map(|_| ()), Err(Error::MemberExists));
    let (globex, globex_admin) = h.tenant(&root, "globex").await;
    let reused = h
        .engine
        .add_member(
            &globex_admin,
            &globex,
            AddMember {
                user: UserRef::Email(email("new@acme.example")),
                roles: BTreeSet::new(),
            },
        )
        .await
        .expect("known user joins a second tenant");
    assert_eq!(reused.member.user_id, added.member.user_id);
    assert!(reused.invitation_token.is_none());
    assert!(matches!(
        h.engine
            .add_member(
                &admin,
                &tenant,
                AddMember {
                    user: UserRef::Email(email("third@acme.example")),
                    roles: roles(&["ghost"]),
                },
            )
            .await,
        Err(Error::UnknownRole(_))
    ));
}

pub async fn api_keys_act_only_in_their_tenant_within_their_scopes(h: Harness) {
    let root = h.root().await;
    let (acme, admin) = h.tenant(&root, "acme").await;
    let (globex, _) = h.tenant(&root, "globex").await;
    let created = h
        .engine
        .create_api_key(
            &admin,
            &acme,
            NewApiKey {
                name: DisplayName::parse("ci").expect("name"),
                scopes: [scope("members:read"), scope("authz:check")]
                    .into_iter()
                    .collect(),
            },
        )
        .await
        .expect("key created");
    assert!(created.secret.starts_with("uek_"));
    let principal = h
        .engine
        .authenticate(&created.secret)
        .await
        .expect("key authenticates");
    let key_caller = Caller {
        principal,
        request_id: "key".to_owned(),
    };
    assert!(h
        .engine
        .list_members(&key_caller, &acme, None, 10)
        .await
        .is_ok());
    assert_eq!(
        h.engine
            .list_members(&key_caller, &globex, None, 10)
            .await
            .map(|_| ()),
        Err(Error::TenantNotFound),
        "another tenant looks absent"
    );
    assert_eq!(
        h.engine.list_roles(&key_caller, &acme).await.map(|_| ()),
        Err(Error::Forbidden(Reason::CredentialScopeMissing))
    );
    let globex_admin = crate::harness::Harness::as_user(
        h.engine
            .list_members(&root, &globex, None, 1)
            .await
            .expect("globex members")
            .items[0]
            .user_id,
        Assurance::Aal1,
    );
    let foreign = h
        .engine
        .authorize(
            &globex_admin,
            &globex,
            AuthzCheck {
                subject: CheckSubject::Token(created.secret.clone()),
                scope: scope("members:read"),
                target: None,
            },
        )
        .await
        .expect("a decision");
    assert_eq!(
        foreign.reason,
        Reason::SubjectNotFound,
        "another tenant's key is unknown there"
    );
    let listed = h.engine.list_api_keys(&admin, &acme).await.expect("list");
    assert_eq!(listed.len(), 1);
    h.engine
        .revoke_api_key(&admin, &acme, &created.key.id)
        .await
        .expect("revoked");
    assert_eq!(
        h.engine.authenticate(&created.secret).await,
        Err(Error::Unauthenticated)
    );
    assert_eq!(
        h.engine
            .list_members(&key_caller, &acme, None, 10)
            .await
            .map(|_| ()),
        Err(Error::Unauthenticated),
        "a revoked key stops at once, even mid-request"
    );
}

pub async fn api_keys_never_exceed_their_creator(h: Harness) {
    let root = h.root().await;
    let (tenant, admin) = h.tenant(&root, "acme").await;
    let keymaster = role_name("keymaster");
    h.engine
        .put_role(
            &admin,
            &tenant,
            &keymaster,
            [scope("api_keys:write")].into_iter().collect(),
        )
        .await
        .expect("bound");
    let holder = h
        .member(&root, &admin, &tenant, "k@acme.example", &["keymaster"])
        .await;
    let wide = NewApiKey {
        name: DisplayName::parse("wide").expect("name"),
        scopes: [scope("members:write")].into_iter().collect(),
    };
    assert_eq!(
        h.engine
            .create_api_key(&holder, &tenant, wide)
            .await
            .map(|_| ()),
        Err(Error::Forbidden(Reason::ExceedsCaller))
    );
    let platform = NewApiKey {
        name: DisplayName::parse("platform").expect("name"),
        scopes: [scope("platform:users:read")].into_iter().collect(),
    };
    assert_eq!(
        h.engine
            .create_api_key(&admin, &tenant, platform)
            .await
            .map(|_| ()),
        Err(Error::ScopeNotAssignable("platform:users:read".to_owned()))
    );
}

pub async fn the_authorize_api_explains_every_reason(h: Harness) {
    let root = h.root().await;
    let (tenant, admin) = h.tenant(&root, "acme").await;
    let (_, outsider) = h.tenant(&root, "globex").await;
    let member = h
        .member(&root, &admin, &tenant, "m@acme.example", &["member"])
        .await;
    let suspended = h
        .member(&root, &admin, &tenant, "s@acme.example", &["member"])
        .await;
    h.engine
        .update_member(
            &admin,
            &tenant,
            &user_of(&suspended),
            MemberChange {
                state: Some(AccountState::Suspended),
                ..MemberChange::default()
            },
        )
        .await
        .expect("suspended");
    let banned = h
        .member(&root, &admin, &tenant, "b@acme.example", &["member"])
        .await;
    h.engine
        .set_user_state(&root, &user_of(&banned), UserState::Suspended)
        .await
        .expect("platform-suspended");
    let auditor = h.user(&root, "auditor@example.com").await;
    h.engine
        .set_platform_roles(&root, &auditor, BTreeSet::from([PlatformRole::Auditor]))
        .await
        .expect("auditor");
    let auditor = Harness::as_user(auditor, Assurance::Aal1);
    let mut enabled = h
        .engine
        .enabled_scopes(&root, &tenant)
        .await
        .expect("enabled");
    enabled.remove(&scope("diagnostics:read"));
    h.engine
        .set_enabled_scopes(&root, &tenant, enabled)
        .await
        .expect("disabled one");

    let decide =
        |subject: &Caller, assurance: Assurance, scope_name: &str, target: Option<&Caller>| {
            let mut request = check(subject, assurance, scope_name);
            request.target = target.map(user_of);
            let engine = h.engine.clone();
            let admin = admin.clone();
            let tenant = tenant.clone();
            async move {
                engine
                    .authorize(&admin, &tenant, request)
                    .await
                    .expect("a decision")
            }
        };
    let cases: Vec<(Reason, AuthzCheck)> = vec![
        (
            Reason::SubjectSuspended,
            check(&banned, Assurance::Aal1, "tenant:read"),
        ),
        (
            Reason::PlatformRoot,
            check(&root, Assurance::Aal1, "members:write"),
        ),
        (
            Reason::PlatformAuditor,
            check(&auditor, Assurance::Aal1, "members:read"),
        ),
        (
            Reason::PlatformRootRequired,
            check(&admin, Assurance::Aal2, "platform:users:read"),
        ),
        (
            Reason::NotAMember,
            check(&outsider, Assurance::Aal1, "tenant:read"),
        ),
        (
            Reason::AccountSuspended,
            check(&suspended, Assurance::Aal1, "tenant:read"),
        ),
        (
            Reason::ScopeNotEnabled,
            check(&admin, Assurance::Aal1, "diagnostics:read"),
        ),
        (
            Reason::MissingScope,
            check(&member, Assurance::Aal1, "members:write"),
        ),
        (
            Reason::InsufficientAssurance,
            check(&admin, Assurance::Aal1, "roles:write"),
        ),
        (
            Reason::RoleBinding,
            check(&member, Assurance::Aal1, "tenant:read"),
        ),
    ];
    for (reason, request) in cases {
        let decision = h.engine.authorize(&admin, &tenant, request.clone()).await;
        let decision = decision.expect("a decision");
        assert_eq!(decision.reason, reason, "for {request:?}");
        assert_eq!(decision.allowed, reason.is_allow());
    }
    let unknown = decide(&member, Assurance::Aal1, "docs:nothing", None).await;
    assert_eq!(unknown.reason, Reason::UnknownScope);
    let target_out = decide(&admin, Assurance::Aal1, "members:write", Some(&outsider)).await;
    assert_eq!(target_out.reason, Reason::TargetNotInTenant);
    h.engine
        .add_member(
            &root,
            &tenant,
            AddMember {
                user: UserRef::Id(user_of(&root)),
                roles: roles(&["member"]),
            },
        )
        .await
        .expect("root joins");
    let protected = decide(&admin, Assurance::Aal1, "members:write", Some(&root)).await;
    assert_eq!(protected.reason, Reason::TargetProtected);
    let by_token = h
        .engine
        .authorize(
            &admin,
            &tenant,
            AuthzCheck {
                subject: CheckSubject::Token("not-a-session".to_owned()),
                scope: scope("tenant:read"),
                target: None,
            },
        )
        .await
        .expect("a decision");
    assert_eq!(by_token.reason, Reason::SubjectNotFound);
    let session = h
        .engine
        .login(&email("m@acme.example"), crate::harness::PASSWORD, "login")
        .await
        .expect("login");
    let by_session = h
        .engine
        .authorize(
            &admin,
            &tenant,
            AuthzCheck {
                subject: CheckSubject::Token(session.token),
                scope: scope("tenant:read"),
                target: None,
            },
        )
        .await
        .expect("a decision");
    assert_eq!(by_session.reason, Reason::RoleBinding);
    assert_eq!(by_session.facts.assurance, Assurance::Aal1);
    assert_eq!(by_session.facts.roles.to_names(), roles(&["member"]));
    assert_eq!(by_session.facts.tenant_state, Some(TenantState::Active));
}

pub async fn authorize_batches_answer_in_order_within_bounds(h: Harness) {
    let root = h.root().await;
    let (tenant, admin) = h.tenant(&root, "acme").await;
    let member = h
        .member(&root, &admin, &tenant, "m@acme.example", &["member"])
        .await;
    let checks = vec![
        check(&member, Assurance::Aal1, "tenant:read"),
        check(&member, Assurance::Aal1, "members:write"),
        check(&admin, Assurance::Aal1, "members:write"),
    ];
    let decisions = h
        .engine
        .authorize_batch(&admin, &tenant, checks)
        .await
        .expect("decisions");
    let reasons: Vec<Reason> = decisions.iter().map(|decision| decision.reason).collect();
    assert_eq!(
        reasons,
        vec![
            Reason::RoleBinding,
            Reason::MissingScope,
            Reason::RoleBinding
        ]
    );
    let too_many = vec![check(&member, Assurance::Aal1, "tenant:read"); MAX_BATCH + 1];
    assert!(matches!(
        h.engine.authorize_batch(&admin, &tenant, too_many).await,
        Err(Error::InvalidRequest(_))
    ));
    let full = vec![check(&member, Assurance::Aal1, "tenant:read"); MAX_BATCH];
    assert_eq!(
        h.engine
            .authorize_batch(&admin, &tenant, full)
            .await
            .map(|all| all.len()),
        Ok(MAX_BATCH)
    );
    assert_eq!(
        h.engine
            .authorize(
                &member,
                &tenant,
                check(&member, Assurance::Aal1, "tenant:read")
            )
            .await
            .map(|_| ()),
        Err(Error::Forbidden(Reason::MissingScope)),
        "asking needs authz:check"
    );
}

pub async fn changes_take_effect_on_the_very_next_decision(h: Harness) {
    let root = h.root().await;
    let (tenant, admin) = h.tenant(&root, "acme").await;
    let member = h
        .member(&root, &admin, &tenant, "m@acme.example", &["member"])
        .await;
    let ask = || {
        h.engine.authorize(
            &admin,
            &tenant,
            check(&member, Assurance::Aal1, "tenant:read"),
        )
    };
    assert!(ask().await.expect("decision").allowed);
    let suspend = MemberChange {
        state: Some(AccountState::Suspended),
        ..MemberChange::default()
    };
    h.engine
        .update_member(&admin, &tenant, &user_of(&member), suspend)
        .await
        .expect("suspended");
    assert_eq!(
        ask().await.expect("decision").reason,
        Reason::AccountSuspended
    );
    h.engine
        .update_member(
            &admin,
            &tenant,
            &user_of(&member),
            MemberChange {
                state: Some(AccountState::Active),
                ..MemberChange::default()
            },
        )
        .await
        .expect("reactivated");
    assert!(ask().await.expect("decision").allowed);
    h.engine
        .update_tenant(
            &root,
            &tenant,
            TenantChange {
                state: Some(TenantState::Suspended),
                ..TenantChange::default()
            },
        )
        .await
        .expect("tenant suspended");
    assert_eq!(
        h.engine
            .list_members(&admin, &tenant, None, 10)
            .await
            .map(|_| ()),
        Err(Error::Forbidden(Reason::TenantSuspended))
    );
    assert!(
        h.engine
            .list_members(&root, &tenant, None, 10)
            .await
            .is_ok(),
        "platform roots still manage a suspended tenant"
    );
    h.engine
        .remove_member(&root, &tenant, &user_of(&member), None)
        .await
        .expect("removed");
    assert_eq!(
        h.engine.get_tenant(&member, &tenant).await.map(|_| ()),
        Err(Error::TenantNotFound)
    );
}

pub async fn sessions_step_up_with_totp_once_and_expire(h: Harness) {
    let root = h.root().await;
    let (_, admin) = h.tenant(&root, "acme").await;
    assert_eq!(
        h.engine
            .login(&email("admin@acme.example"), "wrong password!", "r1")
            .await
            .map(|_| ()),
        Err(Error::InvalidCredentials)
    );
    assert_eq!(
        h.engine
            .login(
                &email("nobody@acme.example"),
                crate::harness::PASSWORD,
                "r2"
            )
            .await
            .map(|_| ()),
        Err(Error::InvalidCredentials),
        "an unknown email answers like a wrong password"
    );
    let session = h
        .engine
        .login(&email("admin@acme.example"), crate::harness::PASSWORD, "r3")
        .await
        .expect("login");
    assert_eq!(session.assurance, Assurance::Aal1);
    let caller = Caller {
        principal: h
            .engine
            .authenticate(&session.token)
            .await
            .expect("authenticated"),
        request_id: "r4".to_owned(),
    };
    assert_eq!(user_of(&caller), user_of(&admin));
    let enrolment = h.engine.enroll_totp(&caller).await.expect("enrolment");
    assert!(enrolment.otpauth_uri.starts_with("otpauth://totp/"));
    let step = domain::fakes::FakeTotp::step(h.clock_now());
    assert_eq!(
        h.engine.confirm_totp(&caller, "000000x").await,
        Err(Error::InvalidTotp)
    );
    let code = domain::fakes::FakeTotp::code(&enrolment.secret, step);
    h.engine
        .confirm_totp(&caller, &code)
        .await
        .expect("confirmed");
    let raised = h
        .engine
        .authenticate(&session.token)
        .await
        .expect("authenticated");
    assert!(matches!(
        raised,
        domain::usecases::Principal::User {
            assurance: Assurance::Aal2,
            ..
        }
    ));
    assert_eq!(
        h.engine.step_up(&caller, &code).await.map(|_| ()),
        Err(Error::InvalidTotp),
        "a code is accepted once"
    );
    h.clock.advance(time::Duration::minutes(16));
    let caller = Caller {
        principal: h
            .engine
            .authenticate(&session.token)
            .await
            .expect("still a session"),
        request_id: "r5".to_owned(),
    };
    assert!(
        matches!(
            caller.principal,
            domain::usecases::Principal::User {
                assurance: Assurance::Aal1,
                ..
            }
        ),
        "aal2 lapses after the step-up TTL"
    );
    let code = domain::fakes::FakeTotp::code(
        &enrolment.secret,
        domain::fakes::FakeTotp::step(h.clock_now()),
    );
    let state = h.engine.step_up(&caller, &code).await.expect("stepped up");
    assert_eq!(state.assurance, Assurance::Aal2);
    h.clock.advance(time::Duration::minutes(31));
    assert_eq!(
        h.engine.authenticate(&session.token).await,
        Err(Error::Unauthenticated),
        "an idle session expires"
    );
    let fresh = h
        .engine
        .login(&email("admin@acme.example"), crate::harness::PASSWORD, "r6")
        .await
        .expect("login");
    for _ in 0..25 {
        h.clock.advance(time::Duration::minutes(29));
        let _ = h.engine.authenticate(&fresh.token).await;
    }
    assert_eq!(
        h.engine.authenticate(&fresh.token).await,
        Err(Error::Unauthenticated),
        "a session ends at its absolute expiry however busy"
    );
    let last = h
        .engine
        .login(&email("admin@acme.example"), crate::harness::PASSWORD, "r7")
        .await
        .expect("login");
    let caller = Caller {
        principal: h.engine.authenticate(&last.token).await.expect("session"),
        request_id: "r8".to_owned(),
    };
    h.engine.logout(&caller).await.expect("logout");
    assert_eq!(
        h.engine.authenticate(&last.token).await,
        Err(Error::Unauthenticated)
    );
}

pub async fn passwords_change_only_with_the_current_one(h: Harness) {
    let root = h.root().await;
    let user = h.user(&root, "u@example.com").await;
    let session = h
        .engine
        .login(&email("u@example.com"), crate::harness::PASSWORD, "r1")
        .await
        .expect("login");
    let caller = Caller {
        principal: h
            .engine
            .authenticate(&session.token)
            .await
            .expect("session"),
        request_id: "r2".to_owned(),
    };
    assert_eq!(user_of(&caller), user);
    let new_password = domain::ids::Password::parse("an even better passphrase").expect("valid");
    assert_eq!(
        h.engine
            .change_password(&caller, "not the password", &new_password)
            .await,
        Err(Error::InvalidCredentials)
    );
    h.engine
        .change_password(&caller, crate::harness::PASSWORD, &new_password)
        .await
        .expect("changed");
    assert!(h
        .engine
        .login(&email("u@example.com"), "an even better passphrase", "r3")
        .await
        .is_ok());
    assert_eq!(
        h.engine
            .login(&email("u@example.com"), crate::harness::PASSWORD, "r4")
            .await
            .map(|_| ()),
        Err(Error::InvalidCredentials)
    );
}

/// A session caller for a fresh login of `address` from `origin`, and its token.
async fn session_caller(h: &Harness, address: &str, origin: &SessionOrigin) -> (Caller, String) {
    let session = h
        .engine
        .login_from(&email(address), crate::harness::PASSWORD, "login", origin)
        .await
        .expect("login");
    let principal = h
        .engine
        .authenticate(&session.token)
        .await
        .expect("a live session");
    (
        Caller {
            principal,
            request_id: "sessions".to_owned(),
        },
        session.token,
    )
}

/// Every event of the platform's feed.
async fn platform_feed(h: &Harness) -> Vec<Event> {
    let mut tx = h
        .store
        .begin(domain::ports::TxScope::Platform)
        .await
        .expect("platform transaction");
    tx.list_events(&Partition::Platform, 0, 10_000)
        .await
        .expect("platform feed")
}

pub async fn sessions_are_listed_and_ended_by_their_owner_or_a_platform_root(h: Harness) {
    let root = h.root().await;
    let user = h.user(&root, "u@example.com").await;
    let other = h.user(&root, "v@example.com").await;
    let browser = SessionOrigin {
        client_address: Some("192.0.2.7".to_owned()),
        user_agent: Some(format!("Browser/1.0 {}\u{7}", "x".repeat(300))),
    };
    let (first, first_token) = session_caller(&h, "u@example.com", &browser).await;
    h.clock.advance(time::Duration::seconds(1));
    let (second, second_token) =
        session_caller(&h, "u@example.com", &SessionOrigin::default()).await;
    h.clock.advance(time::Duration::seconds(1));
    let (_third, third_token) =
        session_caller(&h, "u@example.com", &SessionOrigin::default()).await;
    let (others, others_token) =
        session_caller(&h, "v@example.com", &SessionOrigin::default()).await;

    // Listed oldest first, the asking one marked, with where each came from.
    let listed = h.engine.list_sessions(&first).await.expect("listed");
    assert_eq!(listed.len(), 3);
    assert_eq!(
        listed
            .iter()
            .map(|session| session.current)
            .collect::<Vec<_>>(),
        vec![true, false, false]
    );
    assert_eq!(listed[0].client_address.as_deref(), Some("192.0.2.7"));
    let agent = listed[0].user_agent.clone().expect("kept");
    assert!(agent.starts_with("Browser/1.0 ") && agent.chars().count() == 256);
    assert!(!agent.contains('\u{7}'));
    assert_eq!(listed[1].user_agent, None);
    assert!(listed
        .windows(2)
        .all(|pair| pair[0].created_at <= pair[1].created_at));
    let from_second = h.engine.list_sessions(&second).await.expect("listed");
    assert_eq!(
        from_second
            .iter()
            .map(|session| session.current)
            .collect::<Vec<_>>(),
        vec![false, true, false]
    );

    // Another user's session id is not the caller's: not found, and it stays.
    let theirs = h.engine.list_sessions(&others).await.expect("listed")[0].id;
    assert_eq!(
        h.engine.revoke_session(&first, &theirs).await,
        Err(Error::NotFound)
    );
    assert!(h.engine.authenticate(&others_token).await.is_ok());

    // One ended by id: refused at once, gone from the list, not found a second time.
    h.engine
        .revoke_session(&first, &listed[1].id)
        .await
        .expect("ended");
    assert_eq!(
        h.engine.authenticate(&second_token).await.map(|_| ()),
        Err(Error::Unauthenticated)
    );
    assert_eq!(
        h.engine.list_sessions(&first).await.expect("listed").len(),
        2
    );
    assert_eq!(
        h.engine.revoke_session(&first, &listed[1].id).await,
        Err(Error::NotFound)
    );

    // Every other one: the third goes, the asking one stays.
    assert_eq!(h.engine.revoke_other_sessions(&first).await, Ok(1));
    assert_eq!(
        h.engine.authenticate(&third_token).await.map(|_| ()),
        Err(Error::Unauthenticated)
    );
    assert!(h.engine.authenticate(&first_token).await.is_ok());

    // A platform administrator ends all of a user's sessions; nobody else may.
    let plain = Harness::as_user(other, Assurance::Aal2);
    assert!(matches!(
        h.engine.revoke_user_sessions(&plain, &user).await,
        Err(Error::Forbidden(_))
    ));
    assert!(h.engine.authenticate(&first_token).await.is_ok());
    assert_eq!(h.engine.revoke_user_sessions(&root, &user).await, Ok(1));
    assert_eq!(
        h.engine.authenticate(&first_token).await.map(|_| ()),
        Err(Error::Unauthenticated)
    );
    let unknown = domain::ids::UserId::from_generated(uuid::Uuid::now_v7());
    assert_eq!(
        h.engine.revoke_user_sessions(&root, &unknown).await,
        Err(Error::UserNotFound)
    );
    // A key has no sessions of its own.
    let key_caller = Caller {
        principal: domain::usecases::Principal::ApiKey {
            key_id: domain::ids::KeyId::from_generated(uuid::Uuid::now_v7()),
            tenant: tenant_id("acme"),
        },
        request_id: "key".to_owned(),
    };
    assert_eq!(
        h.engine.list_sessions(&key_caller).await.map(|_| ()),
        Err(Error::Unauthenticated)
    );

    // Each ending is one allowed record (ids only) and one event; the refusal one denied.
    let trail = h
        .engine
        .platform_audit(&root, &AuditFilter::default(), None, 200)
        .await
        .expect("platform trail")
        .items;
    let actions: Vec<(&str, Outcome)> = trail
        .iter()
        .filter(|record| {
            record.action.starts_with("session.") && record.action != "session.create"
                || record.action == "user.sessions.revoke"
        })
        .map(|record| (record.action.as_str(), record.outcome))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("session.revoke", Outcome::Allowed),
            ("session.revoke_others", Outcome::Allowed),
            ("user.sessions.revoke", Outcome::Denied),
            ("user.sessions.revoke", Outcome::Allowed),
            ("user.sessions.revoke", Outcome::Denied),
        ]
    );
    let revoked = trail
        .iter()
        .find(|record| record.action == "session.revoke")
        .expect("recorded");
    assert_eq!(
        (revoked.target_kind.as_str(), revoked.target_id.clone()),
        ("session", listed[1].id.to_string())
    );
    let feed = platform_feed(&h).await;
    let ends: Vec<&Event> = feed
        .iter()
        .filter(|event| event.event_type.contains("session"))
        .collect();
    assert_eq!(
        ends.iter()
            .map(|event| event.event_type.as_str())
            .collect::<Vec<_>>(),
        vec![
            "session.revoked",
            "user.sessions_revoked",
            "user.sessions_revoked"
        ]
    );
    assert_eq!(
        ends[0].data,
        json!({ "user_id": user.to_string(), "session_id": listed[1].id.to_string() })
    );
    assert_eq!(
        ends[2].data,
        json!({ "id": user.to_string(), "sessions": 1 })
    );
    for token in [&first_token, &second_token, &third_token] {
        let text = format!("{trail:?}{feed:?}");
        assert!(!text.contains(token.as_str()));
        assert!(!text.contains(&domain::usecases::hash_token(token)));
    }
}

pub async fn password_reset_tokens_work_once_expire_and_end_every_session(h: Harness) {
    let root = h.root().await;
    let user = h.user(&root, "u@example.com").await;
    let (_, session) = session_caller(&h, "u@example.com", &SessionOrigin::default()).await;
    let new_password = domain::ids::Password::parse("a brand new passphrase").expect("valid");

    // Only a platform administrator issues one, for an existing user who is not invited.
    let plain = Harness::as_user(user, Assurance::Aal2);
    assert!(matches!(
        h.engine.issue_password_reset(&plain, &user).await,
        Err(Error::Forbidden(_))
    ));
    let unknown = domain::ids::UserId::from_generated(uuid::Uuid::now_v7());
    assert_eq!(
        h.engine
            .issue_password_reset(&root, &unknown)
            .await
            .map(|_| ()),
        Err(Error::UserNotFound)
    );
    let (tenant, _) = h.tenant(&root, "acme").await;
    let invited = h
        .engine
        .add_member(
            &root,
            &tenant,
            AddMember {
                user: UserRef::Email(email("invited@example.com")),
                roles: BTreeSet::new(),
            },
        )
        .await
        .expect("invited")
        .member
        .user_id;
    assert!(matches!(
        h.engine.issue_password_reset(&root, &invited).await,
        Err(Error::InvalidRequest(_))
    ));

    // A token sets the password once; the user's sessions and other tokens end with it.
    let first = h
        .engine
        .issue_password_reset(&root, &user)
        .await
        .expect("issued");
    let second = h
        .engine
        .issue_password_reset(&root, &user)
        .await
        .expect("issued");
    assert_eq!(first.expires_at, h.clock_now() + time::Duration::hours(1));
    assert_ne!(first.token, second.token);
    h.engine
        .confirm_password_reset(&first.token, &new_password, "reset")
        .await
        .expect("reset");
    assert_eq!(
        h.engine.authenticate(&session).await.map(|_| ()),
        Err(Error::Unauthenticated)
    );
    assert!(h
        .engine
        .login(&email("u@example.com"), "a brand new passphrase", "r")
        .await
        .is_ok());
    assert_eq!(
        h.engine
            .login(&email("u@example.com"), crate::harness::PASSWORD, "r")
            .await
            .map(|_| ()),
        Err(Error::InvalidCredentials)
    );
    for used in [&first.token, &second.token, &"never issued".to_owned()] {
        assert_eq!(
            h.engine
                .confirm_password_reset(used, &new_password, "again")
                .await,
            Err(Error::InvalidCredentials)
        );
    }

    // It expires after an hour.
    let late = h
        .engine
        .issue_password_reset(&root, &user)
        .await
        .expect("issued");
    h.clock.advance(time::Duration::hours(1));
    assert_eq!(
        h.engine
            .confirm_password_reset(&late.token, &new_password, "late")
            .await,
        Err(Error::InvalidCredentials)
    );

    // 20 concurrent confirmations of one token: exactly one sets the password.
    let raced = h
        .engine
        .issue_password_reset(&root, &user)
        .await
        .expect("issued");
    let results = futures::future::join_all((0..20).map(|_| {
        h.engine
            .confirm_password_reset(&raced.token, &new_password, "race")
    }))
    .await;
    assert_eq!(
        results.iter().filter(|result| result.is_ok()).count(),
        1,
        "{results:?}"
    );
    assert!(results
        .iter()
        .all(|result| matches!(result, Ok(()) | Err(Error::InvalidCredentials))));

    // Records and events name ids, never a token.
    let trail = h
        .engine
        .platform_audit(&root, &AuditFilter::default(), None, 200)
        .await
        .expect("platform trail")
        .items;
    let resets = trail
        .iter()
        .filter(|record| record.action == "user.password.reset")
        .map(|record| record.outcome)
        .collect::<Vec<_>>();
    assert_eq!(
        resets
            .iter()
            .filter(|outcome| **outcome == Outcome::Allowed)
            .count(),
        2
    );
    assert_eq!(
        resets
            .iter()
            .filter(|outcome| **outcome == Outcome::Denied)
            .count(),
        3 + 1 + 19
    );
    let feed = platform_feed(&h).await;
    let issued = feed
        .iter()
        .filter(|event| event.event_type == "user.password_reset_issued")
        .count();
    assert_eq!(issued, 4);
    let text = format!("{trail:?}{feed:?}");
    for token in [&first.token, &second.token, &late.token, &raced.token] {
        assert!(!text.contains(token.as_str()));
        assert!(!text.contains(&domain::usecases::hash_token(token)));
    }
}

pub async fn audit_records_never_carry_an_email_address(h: Harness) {
    let root = h.root().await;
    let user = h.user(&root, "known@example.com").await;
    let plain = Harness::as_user(user, Assurance::Aal2);
    let new_user = |address: &str| NewUser {
        email: email(address),
        password: Some(password()),
    };
    // Users by email: created, taken, refused.
    assert_eq!(
        h.engine
            .create_user(&root, new_user("known@example.com"))
            .await
            .map(|_| ()),
        Err(Error::EmailTaken)
    );
    assert!(matches!(
        h.engine
            .create_user(&plain, new_user("other@example.com"))
            .await,
        Err(Error::Forbidden(_))
    ));
    // Members by email: invited, refused to an outsider.
    let (tenant, admin) = h.tenant(&root, "acme").await;
    let by_email = |address: &str| AddMember {
        user: UserRef::Email(email(address)),
        roles: BTreeSet::new(),
    };
    h.engine
        .add_member(&admin, &tenant, by_email("invitee@example.com"))
        .await
        .expect("invited");
    assert_eq!(
        h.engine
            .add_member(&plain, &tenant, by_email("sneaky@example.com"))
            .await
            .map(|_| ()),
        Err(Error::TenantNotFound)
    );
    // Logins: a wrong password, an unknown email, one that works.
    for (address, secret) in [
        ("known@example.com", "not the password"),
        ("nobody@example.com", crate::harness::PASSWORD),
        ("known@example.com", crate::harness::PASSWORD),
    ] {
        let _ = h
            .engine
            .login_from(
                &email(address),
                secret,
                "login",
                &SessionOrigin {
                    client_address: Some("198.51.100.4".to_owned()),
                    user_agent: None,
                },
            )
            .await;
    }
    let mut records = h
        .engine
        .platform_audit(&root, &AuditFilter::default(), None, 200)
        .await
        .expect("platform trail")
        .items;
    records.extend(tenant_trail(&h, &root, &tenant).await);
    assert!(records.len() >= 8);
    for record in &records {
        let text = format!("{record:?}");
        assert!(!text.contains('@'), "a record carries an email: {text}");
    }
    let refused_login = records
        .iter()
        .find(|record| record.action == "session.create" && record.outcome == Outcome::Denied)
        .expect("a refused login");
    assert_eq!(refused_login.actor.id, "198.51.100.4");
}

pub async fn a_platform_root_at_aal2_removes_a_lost_totp_factor(h: Harness) {
    let root = h.root().await;
    let user = h.user(&root, "u@example.com").await;
    let (caller, token) = session_caller(&h, "u@example.com", &SessionOrigin::default()).await;
    let enrolment = h.engine.enroll_totp(&caller).await.expect("enrolment");
    let step = domain::fakes::FakeTotp::step(h.clock_now());
    h.engine
        .confirm_totp(
            &caller,
            &domain::fakes::FakeTotp::code(&enrolment.secret, step),
        )
        .await
        .expect("confirmed");
    let has_totp = || async {
        let mut tx = h
            .store
            .begin(domain::ports::TxScope::Platform)
            .await
            .expect("platform transaction");
        tx.get_credentials(&user)
            .await
            .expect("read")
            .totp
            .is_some()
    };
    assert!(has_totp().await);

    // Not at aal1, not by someone without the scope, not for a user who does not exist.
    let root_aal1 = Harness::as_user(user_of(&root), Assurance::Aal1);
    assert_eq!(
        h.engine.remove_totp(&root_aal1, &user).await,
        Err(Error::Forbidden(Reason::InsufficientAssurance))
    );
    let plain = Harness::as_user(user, Assurance::Aal2);
    assert!(matches!(
        h.engine.remove_totp(&plain, &user).await,
        Err(Error::Forbidden(_))
    ));
    let unknown = domain::ids::UserId::from_generated(uuid::Uuid::now_v7());
    assert_eq!(
        h.engine.remove_totp(&root, &unknown).await,
        Err(Error::UserNotFound)
    );
    assert!(has_totp().await);

    // Removed: the user can enrol again; the session goes on; a second removal is a no-op.
    h.engine.remove_totp(&root, &user).await.expect("removed");
    assert!(!has_totp().await);
    assert!(h.engine.authenticate(&token).await.is_ok());
    h.engine
        .remove_totp(&root, &user)
        .await
        .expect("nothing to remove");
    let removed = platform_feed(&h)
        .await
        .iter()
        .filter(|event| event.event_type == "user.totp_removed")
        .count();
    assert_eq!(removed, 1, "an event per real change");
    let again = h
        .engine
        .enroll_totp(&caller)
        .await
        .expect("a new enrolment");
    assert_ne!(again.secret, enrolment.secret);
}

pub async fn throttles_refuse_past_their_limit_until_the_window_ends(h: Harness) {
    let root = h.root().await;
    h.tenant(&root, "acme").await;
    let session = h
        .engine
        .login(&email("admin@acme.example"), crate::harness::PASSWORD, "r1")
        .await
        .expect("login");
    let caller = Caller {
        principal: h
            .engine
            .authenticate(&session.token)
            .await
            .expect("authenticated"),
        request_id: "r2".to_owned(),
    };
    let enrolment = h.engine.enroll_totp(&caller).await.expect("enrolment");
    let code_now = |h: &Harness| {
        domain::fakes::FakeTotp::code(
            &enrolment.secret,
            domain::fakes::FakeTotp::step(h.clock_now()),
        )
    };
    h.engine
        .confirm_totp(&caller, &code_now(&h))
        .await
        .expect("confirmed");
    // Five wrong codes a window (SPEC §3.6), then 429 until it ends, for a right code too.
    h.clock.advance(time::Duration::seconds(60));
    for _ in 0..5 {
        assert_eq!(
            h.engine.step_up(&caller, "000000x").await.map(|_| ()),
            Err(Error::InvalidTotp)
        );
    }
    h.clock.advance(time::Duration::seconds(100));
    assert_eq!(
        h.engine.step_up(&caller, &code_now(&h)).await.map(|_| ()),
        Err(Error::RateLimited {
            retry_after_secs: 200
        })
    );
    assert_eq!(
        h.engine.step_up(&caller, "000000x").await.map(|_| ()),
        Err(Error::RateLimited {
            retry_after_secs: 200
        })
    );
    h.clock.advance(time::Duration::seconds(200));
    h.engine
        .step_up(&caller, &code_now(&h))
        .await
        .expect("a new window lets a right code in");

    // Logins per email: the limit, then 429, then a new window.
    let rule =
        domain::usecases::ThrottleRule::per_minute(std::num::NonZeroU32::new(2).expect("positive"));
    let address = Some(std::net::IpAddr::from([192, 0, 2, 1]));
    let admin_email = email("admin@acme.example");
    for _ in 0..2 {
        h.engine
            .throttle_login(&admin_email, address, rule)
            .await
            .expect("within the limit");
    }
    assert_eq!(
        h.engine.throttle_login(&admin_email, None, rule).await,
        Err(Error::RateLimited {
            retry_after_secs: 60
        })
    );
    // The address is over too (its two attempts counted), whatever the email.
    assert!(matches!(
        h.engine
            .throttle_login(&email("other@acme.example"), address, rule)
            .await,
        Err(Error::RateLimited { .. })
    ));
    h.clock.advance(time::Duration::seconds(60));
    h.engine
        .throttle_login(&admin_email, address, rule)
        .await
        .expect("a new window");
}

pub async fn a_refusal_writes_one_denied_record_and_nothing_else(h: Harness) {
    let root = h.root().await;
    let (tenant, admin) = h.tenant(&root, "acme").await;
    let member = h
        .member(&root, &admin, &tenant, "m@acme.example", &["member"])
        .await;
    let trail_before = tenant_trail(&h, &root, &tenant).await;
    let feed_before = tenant_feed(&h, &root, &tenant).await;
    let members_before = h
        .engine
        .list_members(&root, &tenant, None, 200)
        .await
        .expect("list");
    let refused = h
        .engine
        .add_member(
            &member,
            &tenant,
            AddMember {
                user: UserRef::Email(email("sneaky@acme.example")),
                roles: roles(&["member"]),
            },
        )
        .await;
    assert_eq!(
        refused.map(|_| ()),
        Err(Error::Forbidden(Reason::MissingScope))
    );
    let trail_after = tenant_trail(&h, &root, &tenant).await;
    assert_eq!(trail_after.len(), trail_before.len() + 1);
    let record = trail_after.last().expect("record");
    assert_eq!(
        (
            record.outcome,
            record.reason.as_str(),
            record.action.as_str()
        ),
        (Outcome::Denied, "missing_scope", "member.add")
    );
    assert_eq!(
        tenant_feed(&h, &root, &tenant).await,
        feed_before,
        "no event"
    );
    assert_eq!(
        h.engine
            .list_members(&root, &tenant, None, 200)
            .await
            .expect("list"),
        members_before
    );
    assert_eq!(
        h.engine
            .login(&email("sneaky@acme.example"), crate::harness::PASSWORD, "r")
            .await
            .map(|_| ()),
        Err(Error::InvalidCredentials),
        "the refused request created no user"
    );
}

pub async fn audit_chains_verify_and_feeds_page_in_order(h: Harness) {
    let root = h.root().await;
    let (tenant, admin) = h.tenant(&root, "acme").await;
    for index in 0..30 {
        let member = h
            .member(
                &root,
                &admin,
                &tenant,
                &format!("m{index}@acme.example"),
                &["member"],
            )
            .await;
        if index % 3 == 0 {
            let _ = h.engine.list_roles(&member, &tenant).await;
            let _ = h.engine.list_members(&member, &tenant, None, 10).await;
        }
    }
    let verified = h
        .engine
        .verify_trail(&Partition::Tenant(tenant.clone()))
        .await;
    let count = tenant_trail(&h, &root, &tenant).await.len() as u64;
    assert_eq!(verified, Ok(Ok(count)));
    assert!(matches!(
        h.engine.verify_trail(&Partition::Platform).await,
        Ok(Ok(_))
    ));
    let mut positions = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = h
            .engine
            .tenant_events(&admin, &tenant, after.as_deref(), 7)
            .await
            .expect("page");
        assert!(page.items.len() <= 7);
        let cursor = page.next_cursor.expect("the feed always gives a cursor");
        if page.items.is_empty() {
            // At the end the cursor stays where the reader was.
            assert_eq!(after.as_deref(), Some(cursor.as_str()));
            break;
        }
        positions.extend(page.items.iter().map(|event| event.position));
        after = Some(cursor);
    }
    let expected: Vec<u64> = (1..=positions.len() as u64).collect();
    assert_eq!(positions, expected, "positions start at 1 with no gap");
    assert_eq!(
        positions.len(),
        32,
        "tenant.created, first admin, 30 members"
    );
    let members = h
        .engine
        .list_members(&admin, &tenant, None, 200)
        .await
        .expect("list");
    assert!(members.items.iter().all(|member| member.tenant == tenant));
}

/// Defines one `#[test]` per behaviour scenario. `$run` drives a future to completion;
/// `$harness` is an async block producing a fresh [`Harness`].
/// SPEC §3.3: removing or suspending an active admin revokes `tenant_admin`, and
/// reactivating a suspended one gives it back, so each takes what granting takes: the
/// admin right (a tenant admin or a platform root) at `aal2`, whatever path reaches it.
pub async fn removing_or_suspending_an_admin_needs_the_admin_right_at_aal2(h: Harness) {
    let root = h.root().await;
    let (tenant, admin) = h.tenant(&root, "acme").await;
    let admin_aal1 = at(&admin, Assurance::Aal1);
    let other = h.user(&root, "other@acme.example").await;
    h.engine
        .add_member(
            &admin,
            &tenant,
            AddMember {
                user: UserRef::Id(other),
                roles: roles(&["tenant_admin"]),
            },
        )
        .await
        .expect("a second admin");
    h.engine
        .put_role(
            &admin,
            &tenant,
            &role_name("manager"),
            [scope("members:write"), scope("accounts:write")]
                .into_iter()
                .collect(),
        )
        .await
        .expect("bound");
    let manager = h
        .member(
            &root,
            &admin,
            &tenant,
            "manager@acme.example",
            &["member", "manager"],
        )
        .await;
    let manager_aal2 = at(&manager, Assurance::Aal2);
    let suspend = MemberChange {
        state: Some(AccountState::Suspended),
        ..MemberChange::default()
    };
    let reactivate = MemberChange {
        state: Some(AccountState::Active),
        ..MemberChange::default()
    };
    for caller in [&manager, &manager_aal2] {
        assert_eq!(
            h.engine.remove_member(caller, &tenant, &other, None).await,
            Err(Error::Forbidden(Reason::ExceedsCaller))
        );
        assert_eq!(
            h.engine
                .update_member(caller, &tenant, &other, suspend.clone())
                .await
                .map(|_| ()),
            Err(Error::Forbidden(Reason::ExceedsCaller))
        );
    }
    assert_eq!(
        h.engine
            .remove_member(&admin_aal1, &tenant, &other, None)
            .await,
        Err(Error::Forbidden(Reason::InsufficientAssurance))
    );
    assert_eq!(
        h.engine
            .update_member(&admin_aal1, &tenant, &other, suspend.clone())
            .await
            .map(|_| ()),
        Err(Error::Forbidden(Reason::InsufficientAssurance))
    );
    let untouched = h
        .engine
        .get_member(&root, &tenant, &other)
        .await
        .expect("still there");
    assert!(untouched.is_active_admin(), "{untouched:?}");
    // The manager still manages members who are not admins.
    let plain = h
        .member(&root, &admin, &tenant, "plain@acme.example", &["member"])
        .await;
    h.engine
        .update_member(&manager, &tenant, &user_of(&plain), suspend.clone())
        .await
        .expect("a manager suspends a plain member");
    h.engine
        .remove_member(&manager, &tenant, &user_of(&plain), None)
        .await
        .expect("a manager removes a plain member");
    // An admin at aal2 suspends; reactivating takes the same right; removal too.
    h.engine
        .update_member(&admin, &tenant, &other, suspend)
        .await
        .expect("suspended at aal2");
    assert_eq!(
        h.engine
            .update_member(&manager_aal2, &tenant, &other, reactivate.clone())
            .await
            .map(|_| ()),
        Err(Error::Forbidden(Reason::ExceedsCaller))
    );
    h.engine
        .update_member(&root, &tenant, &other, reactivate)
        .await
        .expect("a root reactivates");
    h.engine
        .remove_member(&admin, &tenant, &other, None)
        .await
        .expect("removed at aal2");
}

/// SPEC §3.3: nobody grants more than they hold — roles (by the scopes they bind, every
/// enabled scope for `tenant_admin`), a key's scopes and a binding's scopes are each
/// checked against what the caller is allowed at that moment; roots are exempt.
pub async fn nobody_grants_roles_bindings_or_key_scopes_beyond_their_own(h: Harness) {
    let root = h.root().await;
    let (tenant, admin) = h.tenant(&root, "acme").await;
    let admin_aal1 = at(&admin, Assurance::Aal1);
    for (role, scopes) in [
        ("keymaker", vec!["api_keys:write"]),
        ("recruiter", vec!["members:write"]),
        ("binder", vec!["roles:write"]),
    ] {
        h.engine
            .put_role(
                &admin,
                &tenant,
                &role_name(role),
                scopes.into_iter().map(scope).collect(),
            )
            .await
            .expect("bound");
    }
    let recruiter = h
        .member(
            &root,
            &admin,
            &tenant,
            "r@acme.example",
            &["member", "recruiter"],
        )
        .await;
    let recruiter_aal2 = at(&recruiter, Assurance::Aal2);
    let own_id = user_of(&recruiter);
    let escalate = |extra: &str| MemberChange {
        roles: Some(roles(&["member", "recruiter", extra])),
        ..MemberChange::default()
    };
    assert_eq!(
        h.engine
            .update_member(&recruiter, &tenant, &own_id, escalate("keymaker"))
            .await
            .map(|_| ()),
        Err(Error::Forbidden(Reason::ExceedsCaller)),
        "members:write does not give itself api_keys:write"
    );
    assert_eq!(
        h.engine
            .update_member(&recruiter_aal2, &tenant, &own_id, escalate("tenant_admin"))
            .await
            .map(|_| ()),
        Err(Error::Forbidden(Reason::ExceedsCaller)),
        "only an admin or a root grants tenant_admin, even at aal2"
    );
    let newcomer = h.user(&root, "n@acme.example").await;
    assert_eq!(
        h.engine
            .add_member(
                &recruiter,
                &tenant,
                AddMember {
                    user: UserRef::Id(newcomer),
                    roles: roles(&["keymaker"]),
                },
            )
            .await
            .map(|_| ()),
        Err(Error::Forbidden(Reason::ExceedsCaller))
    );
    let unchanged = h
        .engine
        .get_member(&root, &tenant, &own_id)
        .await
        .expect("member");
    assert_eq!(unchanged.roles, roles(&["member", "recruiter"]));
    // What the recruiter holds, it may grant.
    h.engine
        .add_member(
            &recruiter,
            &tenant,
            AddMember {
                user: UserRef::Id(newcomer),
                roles: roles(&["member", "recruiter"]),
            },
        )
        .await
        .expect("grants what it holds");
    // roles:write needs aal2, so an admin at aal1 does not hold it at that moment.
    let binder = h.user(&root, "b@acme.example").await;
    let grant_binder = AddMember {
        user: UserRef::Id(binder),
        roles: roles(&["member", "binder"]),
    };
    assert_eq!(
        h.engine
            .add_member(&admin_aal1, &tenant, grant_binder.clone())
            .await
            .map(|_| ()),
        Err(Error::Forbidden(Reason::ExceedsCaller))
    );
    h.engine
        .add_member(&admin, &tenant, grant_binder)
        .await
        .expect("an admin at aal2 holds every enabled scope");
    // A binder binds only what it holds.
    let binder = Harness::as_user(binder, Assurance::Aal2);
    assert_eq!(
        h.engine
            .put_role(
                &binder,
                &tenant,
                &role_name("helper"),
                [scope("api_keys:write")].into_iter().collect(),
            )
            .await
            .map(|_| ()),
        Err(Error::Forbidden(Reason::ExceedsCaller))
    );
    h.engine
        .put_role(
            &binder,
            &tenant,
            &role_name("helper"),
            [scope("tenant:read")].into_iter().collect(),
        )
        .await
        .expect("binds what it holds");
    // Platform roots are exempt: at aal1 a root still grants a role bound to roles:write.
    let late = h.user(&root, "late@acme.example").await;
    h.engine
        .add_member(
            &at(&root, Assurance::Aal1),
            &tenant,
            AddMember {
                user: UserRef::Id(late),
                roles: roles(&["binder"]),
            },
        )
        .await
        .expect("roots are exempt");
}

/// SPEC §3.3: the platform always keeps an active platform root, whoever asks.
pub async fn the_platform_keeps_an_active_platform_root(h: Harness) {
    let root = h.root().await;
    let first = user_of(&root);
    assert_eq!(
        h.engine
            .set_user_state(&root, &first, UserState::Suspended)
            .await
            .map(|_| ()),
        Err(Error::LastPlatformRoot)
    );
    for roles in [BTreeSet::new(), BTreeSet::from([PlatformRole::Auditor])] {
        assert_eq!(
            h.engine
                .set_platform_roles(&root, &first, roles)
                .await
                .map(|_| ()),
            Err(Error::LastPlatformRoot)
        );
    }
    let second = h.user(&root, "second@example.com").await;
    h.engine
        .set_platform_roles(&root, &second, BTreeSet::from([PlatformRole::Root]))
        .await
        .expect("a second root");
    h.engine
        .set_user_state(&root, &first, UserState::Suspended)
        .await
        .expect("with a second root the first may go");
    let second_root = Harness::as_user(second, Assurance::Aal2);
    assert_eq!(
        h.engine
            .set_platform_roles(&second_root, &second, BTreeSet::new())
            .await
            .map(|_| ()),
        Err(Error::LastPlatformRoot),
        "a suspended root does not count"
    );
    assert_eq!(
        h.engine
            .set_user_state(&second_root, &second, UserState::Suspended)
            .await
            .map(|_| ()),
        Err(Error::LastPlatformRoot)
    );
    h.engine
        .set_user_state(&second_root, &first, UserState::Active)
        .await
        .expect("reactivated");
    h.engine
        .set_platform_roles(&second_root, &second, BTreeSet::new())
        .await
        .expect("now another active root remains");
}

/// SPEC §3.2 step 1 and §4: an invited user is denied `subject_invited`; an API key
/// given as `subject.token` is no subject (`subject_not_found`).
pub async fn the_authorize_api_denies_invited_users_and_keys_as_subjects(h: Harness) {
    let root = h.root().await;
    let (tenant, admin) = h.tenant(&root, "acme").await;
    let invited = h
        .engine
        .add_member(
            &admin,
            &tenant,
            AddMember {
                user: UserRef::Email(email("new@acme.example")),
                roles: roles(&["member"]),
            },
        )
        .await
        .expect("invited")
        .member
        .user_id;
    let key = h
        .engine
        .create_api_key(
            &admin,
            &tenant,
            NewApiKey {
                name: DisplayName::parse("reader").expect("name"),
                scopes: [scope("tenant:read")].into_iter().collect(),
            },
        )
        .await
        .expect("key");
    for (subject, reason) in [
        (
            CheckSubject::User {
                user_id: invited,
                assurance: Assurance::Aal1,
            },
            Reason::SubjectInvited,
        ),
        (CheckSubject::Token(key.secret), Reason::SubjectNotFound),
    ] {
        let decision = h
            .engine
            .authorize(
                &admin,
                &tenant,
                AuthzCheck {
                    subject,
                    scope: scope("tenant:read"),
                    target: None,
                },
            )
            .await
            .expect("a decision");
        assert!(!decision.allowed);
        assert_eq!(decision.reason, reason);
    }
}

#[macro_export]
macro_rules! behaviour_suite {
    ($run:path, $harness:expr) => {
        $crate::behaviour_suite!(@tests $run, $harness;
            bootstrap_creates_one_root_and_is_idempotent,
            creating_a_tenant_sets_up_admin_scopes_bindings_audit_and_events,
            creating_a_tenant_with_a_new_email_invites_the_admin,
            tenant_ids_are_never_reused,
            a_non_member_gets_tenant_not_found_and_the_trail_keeps_the_true_reason,
            tenant_admins_are_refused_every_platform_only_operation,
            the_last_active_admin_cannot_be_removed_demoted_or_suspended,
            granting_or_revoking_tenant_admin_needs_aal2,
            bindings_take_only_enabled_assignable_known_scopes_at_aal2,
            a_tenant_admin_cannot_change_a_platform_root_member,
            profiles_resolve_member_then_platform_then_tenant_default,
            members_read_themselves_and_edit_only_user_editable_keys,
            stale_versions_and_etags_are_refused,
            adding_members_by_email_invites_new_users_and_reuses_known_ones,
            api_keys_act_only_in_their_tenant_within_their_scopes,
            api_keys_never_exceed_their_creator,
            the_authorize_api_explains_every_reason,
            authorize_batches_answer_in_order_within_bounds,
            changes_take_effect_on_the_very_next_decision,
            sessions_step_up_with_totp_once_and_expire,
            passwords_change_only_with_the_current_one,
            sessions_are_listed_and_ended_by_their_owner_or_a_platform_root,
            password_reset_tokens_work_once_expire_and_end_every_session,
            self_service_resets_are_mailed_to_active_users_and_tell_nothing,
            email_changes_apply_only_once_verified,
            recovery_codes_raise_a_session_once_each,
            erasure_removes_everything_personal_but_keeps_the_last_admin_and_root,
            audit_records_never_carry_an_email_address,
            a_platform_root_at_aal2_removes_a_lost_totp_factor,
            throttles_refuse_past_their_limit_until_the_window_ends,
            a_refusal_writes_one_denied_record_and_nothing_else,
            audit_chains_verify_and_feeds_page_in_order,
            removing_or_suspending_an_admin_needs_the_admin_right_at_aal2,
            nobody_grants_roles_bindings_or_key_scopes_beyond_their_own,
            the_platform_keeps_an_active_platform_root,
            the_authorize_api_denies_invited_users_and_keys_as_subjects,
            a_tenant_transaction_reaches_no_other_tenants_rows,
            a_dropped_transaction_leaves_no_change_and_no_audit_record,
            single_use_secrets_are_used_once_by_concurrent_transactions,
            racing_demotions_suspensions_and_removals_leave_exactly_one_active_admin,
        );
    };
    (@tests $run:path, $harness:expr; $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                $run(async {
                    let harness = $harness.await;
                    $crate::behaviour::$name(harness).await;
                });
            }
        )*
    };
}

/// The token a mail carries (its last `Your code: …` or `code: …` line).
fn mailed_token(mail: &domain::mail::QueuedMail) -> String {
    mail.text
        .lines()
        .find_map(|line| line.strip_prefix("Your code: "))
        .expect("the mail carries a code")
        .trim()
        .to_owned()
}

fn reset_rule(limit: u32) -> domain::usecases::ThrottleRule {
    domain::usecases::ThrottleRule {
        limit,
        window: time::Duration::minutes(1),
    }
}

pub async fn self_service_resets_are_mailed_to_active_users_and_tell_nothing(h: Harness) {
    let root = h.root().await;
    let user = h.user(&root, "u@example.com").await;
    let (_, session) = session_caller(&h, "u@example.com", &SessionOrigin::default()).await;
    let mailer = h.mailing();
    let address: std::net::IpAddr = "192.0.2.7".parse().expect("address");
    let (tenant, _) = h.tenant(&root, "acme").await;
    h.take_mails().await;
    // An invited user (whose invitation this engine would mail) is not sent a reset.
    mailer
        .add_member(
            &root,
            &tenant,
            AddMember {
                user: UserRef::Email(email("invited@example.com")),
                roles: BTreeSet::new(),
            },
        )
        .await
        .expect("invited");
    let invitation = h.take_mails().await;
    assert_eq!(invitation.len(), 1, "one invitation mail");
    assert_eq!(invitation[0].recipient, "invited@example.com");

    // Known, unknown and invited emails get the same answer; only the active user a mail.
    for asked in ["u@example.com", "nobody@example.com", "invited@example.com"] {
        mailer
            .request_password_reset(&email(asked), Some(address), reset_rule(10), "reset")
            .await
            .expect("accepted");
    }
    let mails = h.take_mails().await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].recipient, "u@example.com");
    assert!(mails[0].subject.contains("Reset"), "{}", mails[0].subject);
    let token = mailed_token(&mails[0]);
    let records: Vec<_> = h
        .engine
        .platform_audit(&root, &AuditFilter::default(), None, 200)
        .await
        .expect("trail")
        .items
        .into_iter()
        .filter(|record| record.action == "user.password_reset.request")
        .collect();
    assert_eq!(records.len(), 3);
    for record in &records {
        assert!(!record.target_id.contains('@'), "{record:?}");
    }
    assert_eq!(records[0].target_id, user.to_string());

    // The mailed token works once and ends every session; a notice follows.
    let new_password = domain::ids::Password::parse("a brand new passphrase").expect("valid");
    let confirmations = futures::future::join_all(
        (0..20).map(|_| mailer.confirm_password_reset(&token, &new_password, "confirm")),
    )
    .await;
    assert_eq!(
        confirmations.iter().filter(|result| result.is_ok()).count(),
        1
    );
    assert!(confirmations
        .iter()
        .all(|result| matches!(result, Ok(()) | Err(Error::InvalidCredentials))));
    assert_eq!(
        h.engine.authenticate(&session).await.map(|_| ()),
        Err(Error::Unauthenticated)
    );
    let notices = h.take_mails().await;
    assert_eq!(notices.len(), 1);
    assert!(notices[0].subject.contains("password was changed"));
    assert_eq!(notices[0].recipient, "u@example.com");

    // Without mail nothing is queued, and the answer is the same.
    h.engine
        .request_password_reset(&email("u@example.com"), None, reset_rule(10), "r")
        .await
        .expect("accepted");
    assert!(h.take_mails().await.is_empty());

    // Requests for one email are throttled, whoever sends them, also when 20 arrive at
    // once from different addresses: exactly the limit get through.
    let answers = futures::future::join_all((0..20_u8).map(|index| {
        let from: std::net::IpAddr = std::net::Ipv4Addr::new(198, 51, 100, index).into();
        let mailer = &mailer;
        async move {
            mailer
                .request_password_reset(&email("t@example.com"), Some(from), reset_rule(2), "r")
                .await
        }
    }))
    .await;
    assert_eq!(answers.iter().filter(|answer| answer.is_ok()).count(), 2);
    assert!(answers
        .iter()
        .all(|answer| matches!(answer, Ok(()) | Err(Error::RateLimited { .. }))));
}

pub async fn email_changes_apply_only_once_verified(h: Harness) {
    let root = h.root().await;
    let user = h.user(&root, "old@example.com").await;
    h.user(&root, "taken@example.com").await;
    let (caller, _) = session_caller(&h, "old@example.com", &SessionOrigin::default()).await;
    let pw = crate::harness::PASSWORD;

    assert_eq!(
        h.engine
            .request_email_change(&caller, &email("new@example.com"), "wrong password")
            .await
            .map(|_| ()),
        Err(Error::InvalidCredentials)
    );
    assert_eq!(
        h.engine
            .request_email_change(&caller, &email("taken@example.com"), pw)
            .await
            .map(|_| ()),
        Err(Error::EmailTaken)
    );
    assert!(matches!(
        h.engine
            .request_email_change(&caller, &email("old@example.com"), pw)
            .await,
        Err(Error::InvalidRequest(_))
    ));
    let api_key_caller = Caller {
        principal: domain::usecases::Principal::User {
            user_id: user,
            assurance: Assurance::Aal1,
            session: None,
        },
        request_id: "r".to_owned(),
    };
    assert_eq!(
        h.engine
            .request_email_change(&api_key_caller, &email("new@example.com"), pw)
            .await
            .map(|_| ()),
        Err(Error::Unauthenticated)
    );

    // Without mail the token comes back to the caller; nothing changes until verified.
    let change = h
        .engine
        .request_email_change(&caller, &email("new@example.com"), pw)
        .await
        .expect("pending");
    let token = change.verification_token.expect("mail is off: the token");
    assert_eq!(change.expires_at, h.clock_now() + time::Duration::hours(24));
    let before = h.engine.get_user(&root, &user).await.expect("user");
    assert_eq!(before.email, email("old@example.com"));
    assert!(!before.email_verified);

    // One of 20 concurrent verifications applies it.
    let results =
        futures::future::join_all((0..20).map(|_| h.engine.verify_email(&token, "v", None))).await;
    assert_eq!(results.iter().filter(|result| result.is_ok()).count(), 1);
    assert!(results
        .iter()
        .all(|result| matches!(result, Ok(()) | Err(Error::InvalidCredentials))));
    let after = h.engine.get_user(&root, &user).await.expect("user");
    assert_eq!(after.email, email("new@example.com"));
    assert!(after.email_verified);
    assert!(h
        .engine
        .login(&email("new@example.com"), pw, "r")
        .await
        .is_ok());
    assert_eq!(
        h.engine
            .login(&email("old@example.com"), pw, "r")
            .await
            .map(|_| ()),
        Err(Error::InvalidCredentials)
    );
    let changed: Vec<_> = platform_feed(&h)
        .await
        .into_iter()
        .filter(|event| event.event_type == "user.email_changed")
        .collect();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].data["email"], "new@example.com");

    // With mail on the token goes to the new address only, and the old one is told.
    let mailer = h.mailing();
    h.take_mails().await;
    let (caller, _) = session_caller(&h, "new@example.com", &SessionOrigin::default()).await;
    let change = mailer
        .request_email_change(&caller, &email("newer@example.com"), pw)
        .await
        .expect("pending");
    assert_eq!(change.verification_token, None);
    let mails = h.take_mails().await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].recipient, "newer@example.com");
    // Expired tokens do not work.
    h.clock.advance(time::Duration::hours(25));
    assert_eq!(
        mailer
            .verify_email(&mailed_token(&mails[0]), "v", None)
            .await,
        Err(Error::InvalidCredentials)
    );
    let (caller, _) = session_caller(&h, "new@example.com", &SessionOrigin::default()).await;
    mailer
        .request_email_change(&caller, &email("newer@example.com"), pw)
        .await
        .expect("pending");
    let mails = h.take_mails().await;
    mailer
        .verify_email(&mailed_token(&mails[0]), "v", None)
        .await
        .expect("verified");
    let notices = h.take_mails().await;
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].recipient, "new@example.com");
    assert!(notices[0].subject.contains("email address was changed"));
}

pub async fn recovery_codes_raise_a_session_once_each(h: Harness) {
    let root = h.root().await;
    let user = h.user(&root, "u@example.com").await;
    let (caller, token) = session_caller(&h, "u@example.com", &SessionOrigin::default()).await;
    assert_eq!(
        h.engine.generate_recovery_codes(&caller).await,
        Err(Error::Forbidden(Reason::InsufficientAssurance))
    );
    let strong = Caller {
        principal: domain::usecases::Principal::User {
            user_id: user,
            assurance: Assurance::Aal2,
            session: match &caller.principal {
                domain::usecases::Principal::User { session, .. } => session.clone(),
                domain::usecases::Principal::ApiKey { .. }
                | domain::usecases::Principal::Client { .. } => None,
            },
        },
        request_id: "codes".to_owned(),
    };
    let codes = h
        .engine
        .generate_recovery_codes(&strong)
        .await
        .expect("codes");
    assert_eq!(codes.len(), domain::usecases::RECOVERY_CODES);
    assert_eq!(
        codes.iter().collect::<BTreeSet<_>>().len(),
        codes.len(),
        "distinct"
    );

    // 20 concurrent uses of one code: one raises the session, the rest are refused.
    let typed = codes[0].to_uppercase();
    let results =
        futures::future::join_all((0..20).map(|_| h.engine.use_recovery_code(&caller, &typed)))
            .await;
    assert_eq!(results.iter().filter(|result| result.is_ok()).count(), 1);
    assert!(results.iter().all(|result| matches!(
        result,
        Ok(_) | Err(Error::InvalidTotp) | Err(Error::RateLimited { .. })
    )));
    let principal = h.engine.authenticate(&token).await.expect("live");
    assert!(matches!(
        principal,
        domain::usecases::Principal::User {
            assurance: Assurance::Aal2,
            ..
        }
    ));
    assert_eq!(h.engine.recovery_codes_left(&user).await, Ok(9));

    // New codes replace the old ones; removing the factor removes the codes.
    h.clock.advance(time::Duration::minutes(6));
    let fresh = h
        .engine
        .generate_recovery_codes(&strong)
        .await
        .expect("codes");
    assert_eq!(
        h.engine
            .use_recovery_code(&caller, &codes[1])
            .await
            .map(|_| ()),
        Err(Error::InvalidTotp)
    );
    assert!(h.engine.use_recovery_code(&caller, &fresh[1]).await.is_ok());
    h.engine
        .remove_totp(&at(&root, Assurance::Aal2), &user)
        .await
        .expect("removed");
    assert_eq!(h.engine.recovery_codes_left(&user).await, Ok(0));
    assert_eq!(
        h.engine
            .use_recovery_code(&caller, &fresh[2])
            .await
            .map(|_| ()),
        Err(Error::InvalidTotp)
    );
}

pub async fn erasure_removes_everything_personal_but_keeps_the_last_admin_and_root(h: Harness) {
    let root = h.root().await;
    let strong_root = at(&root, Assurance::Aal2);
    let (acme, acme_admin) = h.tenant(&root, "acme").await;
    let (beta, _) = h.tenant(&root, "beta").await;
    let user = user_of(
        &h.member(&root, &acme_admin, &acme, "gone@example.com", &["member"])
            .await,
    );
    h.engine
        .add_member(
            &root,
            &beta,
            AddMember {
                user: UserRef::Id(user),
                roles: roles(&["tenant_admin"]),
            },
        )
        .await
        .expect("a second admin of beta");
    h.engine
        .write_platform_value(&root, &user, &key("timezone"), Some(text("Europe/Paris")))
        .await
        .expect("platform value");
    h.engine
        .write_member_value(
            &root,
            &acme,
            &user,
            &key("timezone"),
            Some(text("UTC+1")),
            None,
        )
        .await
        .expect("member value");
    let (caller, session) = session_caller(&h, "gone@example.com", &SessionOrigin::default()).await;
    h.engine
        .request_email_change(
            &caller,
            &email("gone-new@example.com"),
            crate::harness::PASSWORD,
        )
        .await
        .expect("pending change");
    h.mailing()
        .request_password_reset(&email("gone@example.com"), None, reset_rule(10), "r")
        .await
        .expect("a reset mailed");

    // Refused: below aal2, without the platform right, the last admin, the last root.
    assert_eq!(
        h.engine
            .erase_user(&at(&root, Assurance::Aal1), &user)
            .await,
        Err(Error::Forbidden(Reason::InsufficientAssurance))
    );
    assert!(matches!(
        h.engine
            .erase_user(&at(&acme_admin, Assurance::Aal2), &user)
            .await,
        Err(Error::Forbidden(_))
    ));
    assert_eq!(
        h.engine
            .erase_user(&strong_root, &user_of(&acme_admin))
            .await,
        Err(Error::LastTenantAdmin)
    );
    assert_eq!(
        h.engine.erase_user(&strong_root, &user_of(&root)).await,
        Err(Error::LastPlatformRoot)
    );
    let unknown = domain::ids::UserId::from_generated(uuid::Uuid::now_v7());
    assert_eq!(
        h.engine.erase_user(&strong_root, &unknown).await,
        Err(Error::UserNotFound)
    );
    // beta has another admin (its first), so the user is not its last.
    h.engine
        .erase_user(&strong_root, &user)
        .await
        .expect("erased");

    // Gone everywhere: reads, logins, sessions, memberships, profile values.
    assert_eq!(
        h.engine.get_user(&root, &user).await.map(|_| ()),
        Err(Error::UserNotFound)
    );
    assert_eq!(
        h.engine.erase_user(&strong_root, &user).await,
        Err(Error::UserNotFound)
    );
    assert_eq!(
        h.engine.authenticate(&session).await.map(|_| ()),
        Err(Error::Unauthenticated)
    );
    assert_eq!(
        h.engine
            .login(&email("gone@example.com"), crate::harness::PASSWORD, "r")
            .await
            .map(|_| ()),
        Err(Error::InvalidCredentials)
    );
    for tenant in [&acme, &beta] {
        let members = h
            .engine
            .list_members(&root, tenant, None, 200)
            .await
            .expect("members");
        assert!(members.items.iter().all(|member| member.user_id != user));
        let removed = tenant_feed(&h, &root, tenant)
            .await
            .into_iter()
            .filter(|event| event.event_type == "membership.removed")
            .count();
        assert_eq!(removed, 1);
    }
    assert!(h.take_mails().await.is_empty(), "its queued mail is gone");
    // The email may be taken again by someone new; the id never comes back.
    h.user(&root, "gone@example.com").await;

    // Stored events carry no email or profile value of the user any more.
    let mut events = platform_feed(&h).await;
    for tenant in [&acme, &beta] {
        events.extend(tenant_feed(&h, &root, tenant).await);
    }
    let about: Vec<&Event> = events
        .iter()
        .filter(|event| event.subject == user.to_string())
        .collect();
    assert!(about.iter().any(|event| event.event_type == "user.erased"));
    for event in &about {
        let text = event.data.to_string();
        assert!(!text.contains("gone@example.com"), "{event:?}");
        assert!(!text.contains("gone-new@example.com"), "{event:?}");
        assert!(
            !text.contains("Europe/Paris") && !text.contains("UTC+1"),
            "{event:?}"
        );
    }
    let created = about
        .iter()
        .find(|event| event.event_type == "user.created")
        .expect("user.created");
    assert_eq!(created.data["email"], serde_json::Value::Null);
    assert_eq!(created.data["redacted"], true);
    let trail = h
        .engine
        .platform_audit(&root, &AuditFilter::default(), None, 200)
        .await
        .expect("trail");
    assert!(!serde_json::to_string(&format!("{:?}", trail.items))
        .expect("text")
        .contains("gone@example.com"));
}
