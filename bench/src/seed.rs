//! `cargo xtask seed --tenants N --members-per-tenant M [--multi-tenant-users K]`: a
//! PostgreSQL database filled through COPY with data the engine accepts as its own, so a
//! benchmark can ask about a million users without adding them one request at a time.
//!
//! What a seeded database holds (all ids derived from numbers, so a benchmark finds any
//! user, tenant or key again without reading the database):
//! - three application scopes in the catalog: `docs:read`, `docs:write` (aal1) and
//!   `billing:manage` (aal2);
//! - tenants `seed-00000` … (active), each with the default enabled scopes and bindings of a
//!   tenant created through the API plus the application scopes, bound to the roles
//!   `viewer` (`docs:read`), `editor` (`docs:read`, `docs:write`) and `billing`
//!   (`billing:manage`), and one API key with `authz:check` ([`api_key`]);
//! - `M` members per tenant, each a user of their own: member 0 is the tenant admin, the
//!   others `editor`, `viewer` or `member` in turn, a tenth of them `billing` too; every
//!   50th account is suspended, and every 200th user is suspended on the platform;
//! - `K` more users, each a `viewer` in up to ten tenants spread over all of them;
//! - one audit record per tenant and one on the platform's trail (`seed.load`, by the
//!   system actor `seed`), sealed with the domain's `AuditRecord::seal` after the
//!   partition's head, and the heads moved to them, so `audit verify` finds every chain
//!   intact. The load writes no outbox events: it is a bulk load, not a series of API
//!   changes, and no consumer should receive a million `user.created` events from it.

use std::fmt::Write as _;

use domain::audit::{format_timestamp, Actor, ActorType, AuditDraft, AuditRecord, AuditTarget};
use domain::audit::{Outcome, Partition};
use domain::catalog::{default_bindings, default_enabled_scopes};
use domain::ids::{AuditId, TenantId, UserId};
use domain::usecases::{hash_token, API_KEY_PREFIX};
use sqlx::Row;
use time::OffsetDateTime;

use crate::Failure;

/// Rows per COPY statement: bounds the memory a load holds at once.
const CHUNK: u64 = 100_000;
/// Tenants each multi-tenant user joins, at most.
const TENANTS_PER_SHARED_USER: u64 = 10;

/// The application scopes every seeded tenant enables: (name, description, min assurance).
pub(crate) const APP_SCOPES: [(&str, &str, &str); 3] = [
    ("docs:read", "read documents", "aal1"),
    ("docs:write", "write documents", "aal1"),
    ("billing:manage", "manage billing", "aal2"),
];

/// The roles seeded tenants bind, with their scopes.
const APP_BINDINGS: [(&str, &[&str]); 3] = [
    ("viewer", &["docs:read"]),
    ("editor", &["docs:read", "docs:write"]),
    ("billing", &["billing:manage"]),
];

/// The size of a seeded dataset.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub tenants: u64,
    pub members_per_tenant: u64,
    pub multi_tenant_users: u64,
}

impl Plan {
    /// Users in all: one per member slot plus the multi-tenant ones.
    pub fn users(&self) -> u64 {
        self.tenants * self.members_per_tenant + self.multi_tenant_users
    }
}

/// The tenant numbered `index`.
pub fn tenant_id(index: u64) -> Result<TenantId, Failure> {
    Ok(TenantId::parse(&format!("seed-{index:05}"))?)
}

/// The user numbered `number`: a UUID v7 layout (fixed time, the number in the random
/// bits), the same in every seeded database.
pub fn user_id(number: u64) -> UserId {
    UserId::from_generated(uuid::Uuid::from_u128(
        0x0190_0000_0000_7000_8000_0000_0000_0000 | u128::from(number),
    ))
}

/// The user who is member `member` of tenant `tenant`.
pub fn member_id(plan: &Plan, tenant: u64, member: u64) -> UserId {
    user_id(tenant * plan.members_per_tenant + member)
}

/// The API key (with `authz:check`) of tenant `tenant`.
pub fn api_key(tenant: &TenantId) -> String {
    format!(
        "{API_KEY_PREFIX}{}",
        hash_token(&format!("user-engine seed key of {tenant}"))
    )
}

pub(crate) fn key_uuid(tenant: u64) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0190_0000_0000_7000_9000_0000_0000_0000 | u128::from(tenant))
}

/// Every seeded tenant's enabled scopes and its bindings (role, scopes).
pub(crate) fn tenant_setup() -> (Vec<String>, Vec<(String, Vec<String>)>) {
    let enabled: Vec<String> = default_enabled_scopes()
        .iter()
        .map(ToString::to_string)
        .chain(APP_SCOPES.iter().map(|(name, _, _)| (*name).to_owned()))
        .collect();
    let mut bindings: Vec<(String, Vec<String>)> = default_bindings()
        .into_iter()
        .map(|binding| {
            (
                binding.role.to_string(),
                binding.scopes.iter().map(ToString::to_string).collect(),
            )
        })
        .collect();
    bindings.extend(APP_BINDINGS.iter().map(|(role, scopes)| {
        (
            (*role).to_owned(),
            scopes.iter().map(|scope| (*scope).to_owned()).collect(),
        )
    }));
    (enabled, bindings)
}

/// The roles of member `member` (of any tenant), and whether the account is suspended.
pub(crate) fn member_roles(member: u64) -> (&'static [&'static str], bool) {
    let roles: &[&str] = match (member, member % 10 == 5) {
        (0, _) => &["tenant_admin"],
        (_, true) => &["editor", "billing"],
        _ => match member % 3 {
            0 => &["member"],
            1 => &["editor"],
            _ => &["viewer", "member"],
        },
    };
    (roles, member % 50 == 49)
}

/// The tenants multi-tenant user `shared` (0-based) is a viewer in.
pub(crate) fn shared_tenants(plan: &Plan, shared: u64) -> impl Iterator<Item = u64> + '_ {
    let count = TENANTS_PER_SHARED_USER.min(plan.tenants);
    let stride = (plan.tenants / count.max(1)).max(1);
    (0..count).map(move |slot| (shared + slot * stride) % plan.tenants)
}

/// The line of `record` (number `record.seq` of `partition`) in a COPY into
/// `audit_records` with the columns of [`AUDIT_COPY_COLUMNS`]; `tenant_column` is the
/// tenant id or `\N` for the platform's trail.
pub(crate) fn audit_copy_row(partition: &str, tenant_column: &str, record: &AuditRecord) -> String {
    format!(
        "{partition}\t{}\t{tenant_column}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        record.seq,
        record.id,
        format_timestamp(record.at),
        record.actor.kind.as_str(),
        record.actor.id,
        record.action,
        record.target_kind,
        record.target_id,
        record.outcome.as_str(),
        record.reason,
        record.request_id,
        record.prev_hash,
        record.hash,
    )
}

/// The one record a seed appends to `partition`'s trail, after `seq` and `prev_hash`.
pub(crate) fn seal(
    partition: &Partition,
    seq: u64,
    prev_hash: &str,
    plan: &Plan,
    now: OffsetDateTime,
) -> AuditRecord {
    let (target_kind, target_id) = match partition {
        Partition::Platform => ("platform", "_platform".to_owned()),
        Partition::Tenant(tenant) => ("tenant", tenant.to_string()),
    };
    AuditRecord::seal(
        AuditDraft {
            id: AuditId::from_generated(uuid::Uuid::now_v7()),
            partition: partition.clone(),
            at: now,
            actor: Actor {
                kind: ActorType::System,
                id: "seed".to_owned(),
            },
            action: "seed.load",
            target: AuditTarget {
                kind: target_kind,
                id: target_id,
            },
            outcome: Outcome::Allowed,
            reason: format!(
                "seeded {} tenants x {} members, {} multi-tenant users",
                plan.tenants, plan.members_per_tenant, plan.multi_tenant_users
            ),
            request_id: "seed".to_owned(),
        },
        seq + 1,
        prev_hash,
    )
}

/// The columns of [`audit_copy_row`].
pub(crate) const AUDIT_COPY_COLUMNS: &str = "partition, seq, tenant_id, audit_id, at, actor_type, \
     actor_id, action, target_type, target_id, outcome, reason, request_id, prev_hash, hash";

/// Rows of one COPY, sent when [`CHUNK`] rows have gathered.
struct Copy<'c> {
    connection: &'c mut sqlx::PgConnection,
    statement: String,
    rows: String,
    count: u64,
}

impl<'c> Copy<'c> {
    fn new(connection: &'c mut sqlx::PgConnection, table: &str, columns: &str) -> Self {
        Self {
            connection,
            statement: format!("copy {table} ({columns}) from stdin"),
            rows: String::new(),
            count: 0,
        }
    }

    async fn row(&mut self, row: std::fmt::Arguments<'_>) -> Result<(), Failure> {
        self.rows.write_fmt(row)?;
        self.rows.push('\n');
        self.count += 1;
        if self.count % CHUNK == 0 {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Failure> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let mut copy = self.connection.copy_in_raw(&self.statement).await?;
        copy.send(std::mem::take(&mut self.rows).into_bytes())
            .await?;
        copy.finish().await?;
        Ok(())
    }
}

/// Fills the migrated database behind `owner` (a role that owns the schema) with `plan`.
/// Tenants already there make it fail on their primary keys, so a database is seeded once.
pub async fn seed(owner: &sqlx::PgPool, plan: &Plan) -> Result<(), Failure> {
    let mut connection = owner.acquire().await?;
    // The owner passes row-level security the way the engine's platform mode does.
    sqlx::query("set app.platform = 'on'")
        .execute(&mut *connection)
        .await?;
    let now = time::OffsetDateTime::now_utc();
    let at = format_timestamp(now);
    for (name, description, assurance) in APP_SCOPES {
        sqlx::query(
            "insert into catalog_scopes (name, description, platform_only, min_assurance) \
             values ($1, $2, false, $3) on conflict (name) do nothing",
        )
        .bind(name)
        .bind(description)
        .bind(assurance)
        .execute(&mut *connection)
        .await?;
    }
    let (enabled, bindings) = tenant_setup();

    let tenants: Vec<TenantId> = (0..plan.tenants).map(tenant_id).collect::<Result<_, _>>()?;
    let mut copy = Copy::new(
        &mut connection,
        "tenants",
        "tenant_id, display_name, state, created_at, updated_at",
    );
    for tenant in &tenants {
        copy.row(format_args!(
            "{tenant}\tSeeded {tenant}\tactive\t{at}\t{at}"
        ))
        .await?;
    }
    copy.flush().await?;

    let mut copy = Copy::new(&mut connection, "tenant_scopes", "tenant_id, scope");
    for tenant in &tenants {
        for scope in &enabled {
            copy.row(format_args!("{tenant}\t{scope}")).await?;
        }
    }
    copy.flush().await?;
    let mut copy = Copy::new(&mut connection, "role_bindings", "tenant_id, role");
    for tenant in &tenants {
        for (role, _) in &bindings {
            copy.row(format_args!("{tenant}\t{role}")).await?;
        }
    }
    copy.flush().await?;
    let mut copy = Copy::new(
        &mut connection,
        "role_binding_scopes",
        "tenant_id, role, scope",
    );
    for tenant in &tenants {
        for (role, scopes) in &bindings {
            for scope in scopes {
                copy.row(format_args!("{tenant}\t{role}\t{scope}")).await?;
            }
        }
    }
    copy.flush().await?;

    let mut copy = Copy::new(
        &mut connection,
        "users",
        "user_id, email, state, platform_roles, has_totp, created_at, updated_at",
    );
    for number in 0..plan.users() {
        let state = if number % 200 == 199 {
            "suspended"
        } else {
            "active"
        };
        copy.row(format_args!(
            "{}\tu{number}@seed.example\t{state}\t{{}}\tf\t{at}\t{at}",
            user_id(number)
        ))
        .await?;
    }
    copy.flush().await?;

    let shared_base = plan.tenants * plan.members_per_tenant;
    let mut copy = Copy::new(
        &mut connection,
        "accounts",
        "tenant_id, user_id, state, version, created_at, updated_at",
    );
    for (index, tenant) in (0_u64..).zip(&tenants) {
        for member in 0..plan.members_per_tenant {
            let (_, suspended) = member_roles(member);
            let state = if suspended { "suspended" } else { "active" };
            let user = member_id(plan, index, member);
            copy.row(format_args!("{tenant}\t{user}\t{state}\t1\t{at}\t{at}"))
                .await?;
        }
    }
    for shared in 0..plan.multi_tenant_users {
        let user = user_id(shared_base + shared);
        for index in shared_tenants(plan, shared) {
            let tenant = tenant_id(index)?;
            copy.row(format_args!("{tenant}\t{user}\tactive\t1\t{at}\t{at}"))
                .await?;
        }
    }
    copy.flush().await?;

    let mut copy = Copy::new(&mut connection, "memberships", "tenant_id, user_id, role");
    for (index, tenant) in (0_u64..).zip(&tenants) {
        for member in 0..plan.members_per_tenant {
            let user = member_id(plan, index, member);
            for role in member_roles(member).0 {
                copy.row(format_args!("{tenant}\t{user}\t{role}")).await?;
            }
        }
    }
    for shared in 0..plan.multi_tenant_users {
        let user = user_id(shared_base + shared);
        for index in shared_tenants(plan, shared) {
            let tenant = tenant_id(index)?;
            copy.row(format_args!("{tenant}\t{user}\tviewer")).await?;
        }
    }
    copy.flush().await?;

    let mut copy = Copy::new(
        &mut connection,
        "api_keys",
        "tenant_id, key_id, name, scopes, secret_hash, created_by, created_at",
    );
    for (index, tenant) in (0_u64..).zip(&tenants) {
        copy.row(format_args!(
            "{tenant}\t{}\tseed\t{{authz:check}}\t{}\t{}\t{at}",
            key_uuid(index),
            hash_token(&api_key(tenant)),
            member_id(plan, index, 0)
        ))
        .await?;
    }
    copy.flush().await?;

    // One sealed record per trail, after the partition's head (none for a new tenant).
    let mut copy = Copy::new(&mut connection, "audit_records", AUDIT_COPY_COLUMNS);
    let mut heads = String::new();
    let platform_head = sqlx::query(
        "select audit_seq, audit_hash from partition_heads where partition = '_platform'",
    )
    .fetch_optional(&mut *copy.connection)
    .await?;
    let (platform_seq, platform_hash) = match platform_head {
        Some(row) => (
            u64::try_from(row.try_get::<i64, _>("audit_seq")?)?,
            row.try_get::<String, _>("audit_hash")?,
        ),
        None => (0, "0".repeat(64)),
    };
    let partitions = std::iter::once((Partition::Platform, platform_seq, platform_hash)).chain(
        tenants
            .iter()
            .map(|tenant| (Partition::Tenant(tenant.clone()), 0, "0".repeat(64))),
    );
    for (partition, seq, prev_hash) in partitions {
        let tenant_column = match &partition {
            Partition::Platform => "\\N".to_owned(),
            Partition::Tenant(tenant) => tenant.to_string(),
        };
        let record = seal(&partition, seq, &prev_hash, plan, now);
        let name = partition.name();
        copy.row(format_args!(
            "{}",
            audit_copy_row(name, &tenant_column, &record)
        ))
        .await?;
        writeln!(heads, "{name}\t{}\t{}\t0", seq + 1, record.hash)?;
    }
    copy.flush().await?;
    // The heads: the platform's moved (or made), each tenant's made.
    sqlx::query(
        "create temporary table seed_heads (partition text, audit_seq bigint, \
         audit_hash text, event_position bigint)",
    )
    .execute(&mut *connection)
    .await?;
    let mut copy = connection.copy_in_raw("copy seed_heads from stdin").await?;
    copy.send(heads.into_bytes()).await?;
    copy.finish().await?;
    sqlx::query(
        "insert into partition_heads (partition, audit_seq, audit_hash, event_position) \
         select partition, audit_seq, audit_hash, event_position from seed_heads \
         on conflict (partition) do update \
         set audit_seq = excluded.audit_seq, audit_hash = excluded.audit_hash",
    )
    .execute(&mut *connection)
    .await?;
    sqlx::query("drop table seed_heads")
        .execute(&mut *connection)
        .await?;
    sqlx::query("analyze").execute(&mut *connection).await?;
    Ok(())
}
