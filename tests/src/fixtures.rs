//! Fixtures shared by the per-store tests (constraints, isolation, row-level security),
//! written once so every store is set up alike.

use std::collections::BTreeSet;

use domain::ids::{DisplayName, ProfileKey, ProfileValue, TenantId, UserId};
use domain::usecases::NewApiKey;

use crate::harness::{role_name, scope, user_of, Harness};

fn profile_key(key: &str) -> ProfileKey {
    ProfileKey::parse(key).expect("profile key")
}

fn text(value: &str) -> ProfileValue {
    ProfileValue::parse(&serde_json::Value::String(value.to_owned())).expect("profile value")
}

/// Two tenants, each with a member, a member profile value, a tenant default and an API
/// key; tenant B alone binds the role `editor`.
#[derive(Debug)]
pub struct TwoTenants {
    pub a: TenantId,
    pub b: TenantId,
    /// A member of tenant B only.
    pub b_member: UserId,
    /// The harness that made them, over the store under test.
    pub harness: Harness,
}

impl TwoTenants {
    /// Sets the two tenants up through the engine of `harness`.
    pub async fn create(harness: Harness) -> Self {
        let root = harness.root().await;
        let (a, admin_a) = harness.tenant(&root, "tenant-a").await;
        let (b, admin_b) = harness.tenant(&root, "tenant-b").await;
        let mut members = Vec::new();
        for (tenant, admin) in [(&a, &admin_a), (&b, &admin_b)] {
            let member = harness
                .member(
                    &root,
                    admin,
                    tenant,
                    &format!("member@{tenant}.example"),
                    &[],
                )
                .await;
            let member = user_of(&member);
            harness
                .engine
                .write_member_value(
                    admin,
                    tenant,
                    &member,
                    &profile_key("title"),
                    Some(text("engineer")),
                    None,
                )
                .await
                .expect("member value written");
            harness
                .engine
                .write_tenant_default(admin, tenant, &profile_key("locale"), Some(text("de-DE")))
                .await
                .expect("tenant default written");
            harness
                .engine
                .create_api_key(
                    admin,
                    tenant,
                    NewApiKey {
                        name: DisplayName::parse("ci").expect("key name"),
                        scopes: BTreeSet::from([scope("tenant:read")]),
                    },
                )
                .await
                .expect("api key created");
            members.push(member);
        }
        harness
            .engine
            .put_role(
                &admin_b,
                &b,
                &role_name("editor"),
                BTreeSet::from([scope("tenant:read")]),
            )
            .await
            .expect("editor bound in tenant b");
        Self {
            a,
            b,
            b_member: members[1],
            harness,
        }
    }
}
