//! `bench seed --store sqlite`: the dataset of `seed.rs` in the embedded store, through
//! batched multi-row inserts in one transaction per table (SQLite has no COPY). Same
//! tenants, users, accounts, roles, keys and sealed audit records as on PostgreSQL; the
//! embedded schema keeps platform roles and key scopes in child tables and times as
//! integer microseconds, and has no partition heads (its triggers read the chain ends).

use std::path::Path;

use domain::audit::{truncate_to_micros, Partition};
use domain::ids::TenantId;
use domain::usecases::hash_token;
use sqlx::sqlite::{SqlitePool, SqlitePoolOptions};
use sqlx::{QueryBuilder, Sqlite};

use crate::seed::{
    api_key, key_uuid, member_id, member_roles, seal, shared_tenants, tenant_id, tenant_setup,
    user_id, Plan, APP_SCOPES,
};
use crate::Failure;

/// Rows per insert statement: well under SQLite's limit of bound values.
const ROWS_PER_STATEMENT: usize = 500;

/// One bound value.
#[derive(Clone)]
enum Value {
    Text(String),
    Int(i64),
    Null,
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<i64> for Value {
    fn from(number: i64) -> Self {
        Self::Int(number)
    }
}

/// Rows for one table, inserted [`ROWS_PER_STATEMENT`] at a time.
struct Inserts<'a> {
    tx: &'a mut sqlx::Transaction<'static, Sqlite>,
    head: String,
    rows: Vec<Vec<Value>>,
}

impl<'a> Inserts<'a> {
    fn new(tx: &'a mut sqlx::Transaction<'static, Sqlite>, table: &str, columns: &str) -> Self {
        Self {
            tx,
            head: format!("insert into {table} ({columns}) "),
            rows: Vec::with_capacity(ROWS_PER_STATEMENT),
        }
    }

    async fn row(&mut self, row: Vec<Value>) -> Result<(), Failure> {
        self.rows.push(row);
        if self.rows.len() >= ROWS_PER_STATEMENT {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Failure> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let mut query: QueryBuilder<'_, Sqlite> = QueryBuilder::new(&self.head);
        query.push_values(self.rows.drain(..), |mut values, row| {
            for value in row {
                match value {
                    Value::Text(text) => values.push_bind(text),
                    Value::Int(number) => values.push_bind(number),
                    Value::Null => values.push_bind(None::<String>),
                };
            }
        });
        query.build().execute(&mut **self.tx).await?;
        Ok(())
    }
}

/// Migrates the embedded store at `path` (creating it) and fills it with `plan`. Tenants
/// already there make it fail on their primary keys, so a file is seeded once.
pub async fn seed(path: &Path, plan: &Plan) -> Result<(), Failure> {
    let options = adapters_sqlite::file_options(path);
    let store = adapters_sqlite::SqliteStore::open(options.clone(), 1).await?;
    store.migrate().await?;
    store.close().await;
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    let result = fill(&pool, plan).await;
    pool.close().await;
    result
}

async fn fill(pool: &SqlitePool, plan: &Plan) -> Result<(), Failure> {
    let now = truncate_to_micros(time::OffsetDateTime::now_utc());
    let at = i64::try_from(now.unix_timestamp_nanos() / 1_000)?;
    let (enabled, bindings) = tenant_setup();
    let tenants: Vec<TenantId> = (0..plan.tenants).map(tenant_id).collect::<Result<_, _>>()?;
    let mut tx = pool.begin().await?;

    for (name, description, assurance) in APP_SCOPES {
        sqlx::query(
            "insert into catalog_scopes (name, description, platform_only, min_assurance) \
             values ($1, $2, 0, $3) on conflict (name) do nothing",
        )
        .bind(name)
        .bind(description)
        .bind(assurance)
        .execute(&mut *tx)
        .await?;
    }
    let mut rows = Inserts::new(
        &mut tx,
        "tenants",
        "tenant_id, display_name, state, created_at, updated_at",
    );
    for tenant in &tenants {
        rows.row(vec![
            tenant.as_str().into(),
            format!("Seeded {tenant}").into(),
            "active".into(),
            at.into(),
            at.into(),
        ])
        .await?;
    }
    rows.flush().await?;
    let mut rows = Inserts::new(&mut tx, "tenant_scopes", "tenant_id, scope");
    for tenant in &tenants {
        for scope in &enabled {
            rows.row(vec![tenant.as_str().into(), scope.as_str().into()])
                .await?;
        }
    }
    rows.flush().await?;
    let mut rows = Inserts::new(&mut tx, "role_bindings", "tenant_id, role");
    for tenant in &tenants {
        for (role, _) in &bindings {
            rows.row(vec![tenant.as_str().into(), role.as_str().into()])
                .await?;
        }
    }
    rows.flush().await?;
    let mut rows = Inserts::new(&mut tx, "role_binding_scopes", "tenant_id, role, scope");
    for tenant in &tenants {
        for (role, scopes) in &bindings {
            for scope in scopes {
                rows.row(vec![
                    tenant.as_str().into(),
                    role.as_str().into(),
                    scope.as_str().into(),
                ])
                .await?;
            }
        }
    }
    rows.flush().await?;

    let mut rows = Inserts::new(
        &mut tx,
        "users",
        "user_id, email, state, has_totp, created_at, updated_at",
    );
    for number in 0..plan.users() {
        let state = if number % 200 == 199 {
            "suspended"
        } else {
            "active"
        };
        rows.row(vec![
            user_id(number).to_string().into(),
            format!("u{number}@seed.example").into(),
            state.into(),
            0.into(),
            at.into(),
            at.into(),
        ])
        .await?;
    }
    rows.flush().await?;

    let shared_base = plan.tenants * plan.members_per_tenant;
    // (tenant, user, state, roles) of every account.
    let mut accounts: Vec<(String, String, &str, &[&str])> = Vec::new();
    for (index, tenant) in (0_u64..).zip(&tenants) {
        for member in 0..plan.members_per_tenant {
            let (roles, suspended) = member_roles(member);
            let state = if suspended { "suspended" } else { "active" };
            let user = member_id(plan, index, member).to_string();
            accounts.push((tenant.to_string(), user, state, roles));
        }
    }
    for shared in 0..plan.multi_tenant_users {
        let user = user_id(shared_base + shared).to_string();
        for index in shared_tenants(plan, shared) {
            accounts.push((
                tenant_id(index)?.to_string(),
                user.clone(),
                "active",
                &["viewer"],
            ));
        }
    }
    let mut rows = Inserts::new(
        &mut tx,
        "accounts",
        "tenant_id, user_id, state, version, created_at, updated_at",
    );
    for (tenant, user, state, _) in &accounts {
        rows.row(vec![
            tenant.as_str().into(),
            user.as_str().into(),
            (*state).into(),
            1.into(),
            at.into(),
            at.into(),
        ])
        .await?;
    }
    rows.flush().await?;
    let mut rows = Inserts::new(&mut tx, "memberships", "tenant_id, user_id, role");
    for (tenant, user, _, roles) in &accounts {
        for role in *roles {
            rows.row(vec![
                tenant.as_str().into(),
                user.as_str().into(),
                (*role).into(),
            ])
            .await?;
        }
    }
    rows.flush().await?;
    drop(accounts);

    let mut rows = Inserts::new(
        &mut tx,
        "api_keys",
        "tenant_id, key_id, name, secret_hash, created_by, created_at",
    );
    for (index, tenant) in (0_u64..).zip(&tenants) {
        rows.row(vec![
            tenant.as_str().into(),
            key_uuid(index).to_string().into(),
            "seed".into(),
            hash_token(&api_key(tenant)).into(),
            member_id(plan, index, 0).to_string().into(),
            at.into(),
        ])
        .await?;
    }
    rows.flush().await?;
    let mut rows = Inserts::new(&mut tx, "api_key_scopes", "tenant_id, key_id, scope");
    for (index, tenant) in (0_u64..).zip(&tenants) {
        rows.row(vec![
            tenant.as_str().into(),
            key_uuid(index).to_string().into(),
            "authz:check".into(),
        ])
        .await?;
    }
    rows.flush().await?;

    // One sealed record per trail, after its last one (none for a new tenant).
    let platform_end: Option<(i64, String)> = sqlx::query_as(
        "select seq, hash from audit_records where partition = '_platform' \
         order by seq desc limit 1",
    )
    .fetch_optional(&mut *tx)
    .await?;
    let (platform_seq, platform_hash) = match platform_end {
        Some((seq, hash)) => (u64::try_from(seq)?, hash),
        None => (0, "0".repeat(64)),
    };
    let partitions = std::iter::once((Partition::Platform, platform_seq, platform_hash)).chain(
        tenants
            .iter()
            .map(|tenant| (Partition::Tenant(tenant.clone()), 0, "0".repeat(64))),
    );
    let mut rows = Inserts::new(
        &mut tx,
        "audit_records",
        "partition, seq, tenant_id, audit_id, at, actor_type, actor_id, action, target_type, \
         target_id, outcome, reason, request_id, prev_hash, hash",
    );
    for (partition, seq, prev_hash) in partitions {
        let tenant_column = match &partition {
            Partition::Platform => Value::Null,
            Partition::Tenant(tenant) => tenant.as_str().into(),
        };
        let record = seal(&partition, seq, &prev_hash, plan, now);
        let record_at = i64::try_from(record.at.unix_timestamp_nanos() / 1_000)?;
        rows.row(vec![
            partition.name().into(),
            i64::try_from(record.seq)?.into(),
            tenant_column,
            record.id.to_string().into(),
            record_at.into(),
            record.actor.kind.as_str().into(),
            record.actor.id.clone().into(),
            record.action.to_string().into(),
            record.target_kind.to_string().into(),
            record.target_id.clone().into(),
            record.outcome.as_str().into(),
            record.reason.clone().into(),
            record.request_id.clone().into(),
            record.prev_hash.clone().into(),
            record.hash.clone().into(),
        ])
        .await?;
    }
    rows.flush().await?;
    tx.commit().await?;
    sqlx::query("analyze").execute(pool).await?;
    Ok(())
}
