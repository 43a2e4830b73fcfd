//! One store transaction over SQLite: [`SqliteBackend`], the driver glue under the
//! shared [`SqlTx`] (which implements every capability port once, and confines a
//! tenant-scoped transaction to its tenant: SQLite has no row-level security), and the
//! move from reading to writing.
//!
//! What stays here is SQLite's own: values bound as text ids, integer microseconds,
//! JSON arrays and JSON text; lists as child tables (`json_each` writes them,
//! `json_group_array` reads them); its decision-facts statement; an audit chain and
//! event feed whose end is read from the trail itself on the one writer; and the
//! transaction phases. Queries are checked at run time (`sqlx::query`), as in the
//! PostgreSQL adapter; the behaviour suite and the differential test run every statement.

pub(crate) mod throttles;

use std::sync::Arc;

use async_trait::async_trait;
use domain::audit::{AuditRecord, Partition, GENESIS_HASH};
use domain::model::{ApiKey, Member, PlatformRole, User};
use domain::ports::StoreError;
use sqlx::sqlite::{SqliteArguments, SqliteConnection, SqlitePool, SqliteRow};
use sqlx::{Sqlite, Transaction};
use store_sql::{from_sql_int, Backend, Columns, SqlTx, Statement, Value};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::columns::{micros, Lite};
use crate::errors::store_error;
use crate::Writer;

/// A store transaction over SQLite.
pub(crate) type SqliteTx = SqlTx<SqliteBackend>;

/// A statement with its arguments bound.
type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

/// Where a transaction is: nothing opened yet, a read snapshot on a reader, or the
/// writer held with `BEGIN IMMEDIATE` until commit or drop.
enum Phase {
    Idle,
    Reading(Transaction<'static, Sqlite>),
    Writing(OwnedMutexGuard<Writer>),
}

/// A transaction's connections: a read snapshot until the first write, then the writer.
pub(crate) struct SqliteBackend {
    readers: SqlitePool,
    writer: Arc<Mutex<Writer>>,
    phase: Phase,
}

impl SqliteBackend {
    pub(crate) fn new(readers: SqlitePool, writer: Arc<Mutex<Writer>>) -> Self {
        Self {
            readers,
            writer,
            phase: Phase::Idle,
        }
    }

    /// The connection reads go to: the writer once the transaction writes (it must see
    /// its own changes), else a read snapshot taken at the first read.
    async fn read(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        if matches!(self.phase, Phase::Idle) {
            let tx = self.readers.begin().await.map_err(store_error)?;
            self.phase = Phase::Reading(tx);
        }
        match &mut self.phase {
            Phase::Reading(tx) => Ok(&mut **tx),
            Phase::Writing(writer) => Ok(&mut writer.connection),
            Phase::Idle => Err(unexpected_phase()),
        }
    }

    /// The writer, taken at the first write and held to commit or drop.
    async fn write(&mut self) -> Result<&mut SqliteConnection, StoreError> {
        if !matches!(self.phase, Phase::Writing(_)) {
            // The read snapshot ends before waiting: it wrote nothing, holding it would
            // keep a reader busy while waiting, and reads from here on must see every
            // commit made before this transaction's write lock.
            self.phase = Phase::Idle;
            let mut writer = self.writer.clone().lock_owned().await;
            if writer.open {
                // A dropped transaction whose rollback could not be spawned.
                rollback(&mut writer).await;
            }
            sqlx::query("begin immediate")
                .execute(&mut writer.connection)
                .await
                .map_err(store_error)?;
            writer.open = true;
            self.phase = Phase::Writing(writer);
        }
        match &mut self.phase {
            Phase::Writing(writer) => Ok(&mut writer.connection),
            Phase::Idle | Phase::Reading(_) => Err(unexpected_phase()),
        }
    }
}

impl Drop for SqliteBackend {
    fn drop(&mut self) {
        // A read transaction rolls itself back (sqlx queues it on its connection). The
        // writer must be rolled back before the next writer gets it: a task holding it
        // does that now; without a runtime, the next writer does it first.
        if let Phase::Writing(writer) = std::mem::replace(&mut self.phase, Phase::Idle) {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let mut writer = writer;
                    rollback(&mut writer).await;
                });
            }
        }
    }
}

/// Rolls the writer's transaction back; `open` stays set if that failed, so the next
/// writer tries again.
pub(crate) async fn rollback(writer: &mut Writer) {
    match sqlx::query("rollback")
        .execute(&mut writer.connection)
        .await
    {
        Ok(_) => writer.open = false,
        // Nothing to roll back: SQLite already did (some errors end the transaction).
        Err(error) if crate::errors::no_transaction(&error) => {
            writer.open = false;
        }
        Err(_) => {}
    }
}

fn unexpected_phase() -> StoreError {
    StoreError::Unavailable("store transaction in an unexpected state".to_owned())
}

/// A statement's SQL as a query, each of its values bound in SQLite's encoding of it.
///
/// # Errors
/// `Unavailable` for a time SQLite's integers cannot hold.
fn query(sql: &str, values: Vec<Value>) -> Result<Query<'_>, StoreError> {
    values
        .into_iter()
        .try_fold(sqlx::query(sql), |query, value| {
            Ok(match value {
                Value::Text(text) => query.bind(text),
                Value::Int(int) => query.bind(int),
                Value::Flag(flag) => query.bind(flag),
                Value::Id(id) => query.bind(id.map(|id| id.to_string())),
                Value::Time(at) => query.bind(at.map(micros).transpose()?),
                Value::Names(names) => query.bind(serde_json::Value::from(names).to_string()),
                Value::Json(json) => query.bind(json.to_string()),
                Value::Bytes(bytes) => query.bind(bytes),
            })
        })
}

/// Rows as the shared core reads them.
fn rows(rows: Vec<SqliteRow>) -> Vec<Lite> {
    rows.into_iter().map(Lite).collect()
}

#[async_trait]
impl Backend for SqliteBackend {
    type Row = Lite;

    /// SQLite's foreign-key errors name no constraint.
    const CHECKS_BEFORE_WRITE: bool = true;
    /// SQLite's default collation (`BINARY`) is bytewise.
    const BYTEWISE: &'static str = "";
    const SKIP_LOCKED: &'static str = "";
    const FOR_UPDATE: &'static str = "";

    /// On the writer.
    async fn execute(&mut self, statement: Statement) -> Result<u64, StoreError> {
        let query = query(&statement.sql, statement.values)?;
        let connection = self.write().await?;
        query
            .execute(connection)
            .await
            .map(|done| done.rows_affected())
            .map_err(store_error)
    }

    /// On the read snapshot, or on the writer once the transaction writes.
    async fn fetch(&mut self, statement: Statement) -> Result<Vec<Lite>, StoreError> {
        let query = query(&statement.sql, statement.values)?;
        let connection = self.read().await?;
        query
            .fetch_all(connection)
            .await
            .map(rows)
            .map_err(store_error)
    }

    /// On the writer, which the transaction then holds to its commit: no other
    /// transaction writes between this statement and the commit.
    async fn fetch_writing(&mut self, statement: Statement) -> Result<Vec<Lite>, StoreError> {
        let query = query(&statement.sql, statement.values)?;
        let connection = self.write().await?;
        query
            .fetch_all(connection)
            .await
            .map(rows)
            .map_err(store_error)
    }

    async fn commit(mut self) -> Result<(), StoreError> {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Idle => Ok(()),
            Phase::Reading(tx) => tx.commit().await.map_err(store_error),
            Phase::Writing(mut writer) => {
                match sqlx::query("commit").execute(&mut writer.connection).await {
                    Ok(_) => {
                        writer.open = false;
                        Ok(())
                    }
                    Err(error) => {
                        rollback(&mut writer).await;
                        Err(store_error(error))
                    }
                }
            }
        }
    }

    /// There is one writer: holding it locks every partition.
    async fn lock_partition(&mut self, _partition: &Partition) -> Result<(), StoreError> {
        self.write().await.map(|_| ())
    }

    /// Read from the trail itself: writers are serialised, so the last record read
    /// here stays the last one (triggers refuse a record that does not extend its
    /// chain by one).
    async fn audit_head(&mut self, partition: &Partition) -> Result<(u64, String), StoreError> {
        let last = self
            .fetch_writing(
                Statement::new(
                    "select seq, hash from audit_records where partition = $1 \
                     order by seq desc limit 1",
                )
                .text(partition.name()),
            )
            .await?;
        match last.first() {
            Some(row) => Ok((
                from_sql_int(row.int("seq")?, "audit seq")?,
                row.text("hash")?,
            )),
            None => Ok((0, GENESIS_HASH.to_owned())),
        }
    }

    const AUDIT_HEAD_UPDATE: &'static str = "";

    fn audit_appended(&mut self, _record: &AuditRecord) {}

    /// Read from the feed itself on the writer, as for the audit trail.
    async fn event_head(&mut self, partition: &Partition) -> Result<u64, StoreError> {
        let last = self
            .fetch_writing(
                Statement::new(
                    "select coalesce(max(position), 0) as n from outbox_events \
                     where partition = $1",
                )
                .text(partition.name()),
            )
            .await?;
        let row = last
            .first()
            .ok_or_else(|| store_sql::corrupt("event position"))?;
        from_sql_int(row.int("n")?, "event position")
    }

    const EVENT_HEAD_UPDATE: &'static str = "";

    fn event_appended(&mut self, _partition: &Partition, _position: u64) {}

    fn each(param: usize) -> String {
        format!("value from json_each(${param})")
    }

    fn list(expr: &str, from: &str) -> String {
        format!("(select json_group_array({expr}) from {from})")
    }

    fn json_text(expr: &str) -> String {
        format!("json_extract({expr}, '$')")
    }

    const USER_SELECT: &'static str = "select u.user_id, u.email, u.state, \
         (select json_group_array(r.role) from user_platform_roles r where r.user_id = u.user_id) \
             as platform_roles, \
         u.has_totp, u.email_verified, u.created_at, u.updated_at from users u";

    /// The user's row, then its platform roles replaced in their own table.
    fn write_user(user: &User, insert: bool) -> Vec<Statement> {
        let row = if insert {
            Statement::new(
                "insert into users \
                 (user_id, email, state, has_totp, email_verified, updated_at, created_at) \
                 values ($1, $2, $3, $4, $5, $6, $7)",
            )
        } else {
            Statement::new(
                "update users set email = $2, state = $3, has_totp = $4, email_verified = $5, \
                 updated_at = $6 where user_id = $1",
            )
        }
        .id(user.id.as_uuid())
        .text(user.email.as_str())
        .text(user.state.as_str())
        .flag(user.has_totp)
        .flag(user.email_verified)
        .time(user.updated_at);
        let roles = user.platform_roles.iter().map(PlatformRole::as_str);
        vec![
            if insert {
                row.time(user.created_at)
            } else {
                row
            },
            Statement::new("delete from user_platform_roles where user_id = $1")
                .id(user.id.as_uuid()),
            Statement::new(
                "insert into user_platform_roles (user_id, role) \
                 select $1, value from json_each($2)",
            )
            .id(user.id.as_uuid())
            .names(roles),
        ]
    }

    const PLATFORM_ROOTS: &'static str = "from users u where exists (select 1 \
         from user_platform_roles r where r.user_id = u.user_id and r.role = 'platform_root')";

    const KEY_SELECT: &'static str = "select k.tenant_id, k.key_id, k.name, \
         (select json_group_array(s.scope) from api_key_scopes s \
          where s.tenant_id = k.tenant_id and s.key_id = k.key_id) as scopes, \
         k.created_by, k.created_at, k.revoked_at from api_keys k";

    /// The key's row, then its scopes in their own table.
    fn insert_key(key: &ApiKey, secret_hash: &str) -> Vec<Statement> {
        vec![
            Statement::new(
                "insert into api_keys \
                     (tenant_id, key_id, name, secret_hash, created_by, created_at, revoked_at) \
                 values ($1, $2, $3, $4, $5, $6, $7)",
            )
            .text(key.tenant.as_str())
            .id(key.id.as_uuid())
            .text(key.name.as_str())
            .text(secret_hash)
            .id_opt(key.created_by.as_ref().map(|user| user.as_uuid()))
            .time(key.created_at)
            .time_opt(key.revoked_at),
            Statement::new(
                "insert into api_key_scopes (tenant_id, key_id, scope) \
                 select $1, $2, value from json_each($3)",
            )
            .text(key.tenant.as_str())
            .id(key.id.as_uuid())
            .names(key.scopes.iter().map(|scope| scope.as_str())),
        ]
    }

    /// The account, then its roles.
    fn insert_member(member: &Member) -> Result<Vec<Statement>, StoreError> {
        Ok(vec![
            Statement::new(
                "insert into accounts \
                     (tenant_id, user_id, state, version, created_at, updated_at) \
                 values ($1, $2, $3, $4, $5, $6)",
            )
            .text(member.tenant.as_str())
            .id(member.user_id.as_uuid())
            .text(member.state.as_str())
            .count(member.version, "version")?
            .time(member.created_at)
            .time(member.updated_at),
            Statement::new(
                "insert into memberships (tenant_id, user_id, role) \
                 select $1, $2, value from json_each($3)",
            )
            .text(member.tenant.as_str())
            .id(member.user_id.as_uuid())
            .names(member.roles.iter().map(|role| role.as_str())),
        ])
    }

    /// The columns of PostgreSQL's `authz_facts_rows` with the same meaning. A list is
    /// `NULL` when its row does not exist (`json_group_array` alone would give `[]`).
    const FACTS_QUERY: &'static str = "select \
        (select t.state from tenants t where t.tenant_id = $1) as tenant_state, \
        u.state as user_state, \
        case when u.user_id is not null then \
            (select json_group_array(r.role) from user_platform_roles r where r.user_id = $2) \
        end as user_platform_roles, \
        k.tenant_id as key_tenant, \
        case when k.key_id is not null then \
            (select json_group_array(s.scope) from api_key_scopes s \
             where s.tenant_id = k.tenant_id and s.key_id = k.key_id) \
        end as key_scopes, \
        (k.revoked_at is not null) as key_revoked, \
        (select a.state from accounts a where a.tenant_id = $1 and a.user_id = $2) \
            as account_state, \
        (select json_group_array(m.role) from memberships m \
         where m.tenant_id = $1 and m.user_id = $2) as account_roles, \
        (select json_group_array(b.role) from role_binding_scopes b \
         where b.tenant_id = $1 and b.scope = $4) as scope_roles, \
        c.name as scope_name, c.description as scope_description, \
        c.platform_only as scope_platform_only, c.min_assurance as scope_min_assurance, \
        exists(select 1 from tenant_scopes s where s.tenant_id = $1 and s.scope = $4) \
            as scope_enabled, \
        case when tu.user_id is not null then \
            (select json_group_array(r.role) from user_platform_roles r where r.user_id = $5) \
        end as target_platform_roles, \
        (select ta.state from accounts ta where ta.tenant_id = $1 and ta.user_id = $5) \
            as target_account_state \
        from (select 1) as one \
        left join users u on u.user_id = $2 \
        left join api_keys k on k.key_id = $3 \
        left join catalog_scopes c on c.name = $4 \
        left join users tu on tu.user_id = $5";
}
