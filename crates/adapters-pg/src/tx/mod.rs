//! One store transaction over PostgreSQL: [`PgBackend`], the driver glue under the
//! shared [`SqlTx`] (which implements every capability port once), plus the store-level
//! reads that run outside a transaction (`authorize`, `throttles`).
//!
//! What stays here is PostgreSQL's own: values bound as `uuid`, `timestamptz`, `text[]`
//! and `jsonb`; lists as arrays (`unnest`, `array(…)`); `collate "C"`; the two list
//! columns (`users.platform_roles`, `api_keys.scopes`); the SQL function
//! `authz_facts_rows`; the partition heads that serialise a partition's writers; and the
//! transaction, whose tenant setting row-level security reads. Queries are checked at
//! run time (`sqlx::query`), not with `query!`: the workspace then builds without a
//! database and without committed offline data, and the adapter's own tests run every
//! statement against a real PostgreSQL.

pub(crate) mod authorize;
pub(crate) mod throttles;

use std::collections::HashMap;

use async_trait::async_trait;
use domain::audit::{AuditRecord, Partition};
use domain::model::{ApiKey, Member, PlatformRole, User};
use domain::ports::StoreError;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Transaction};
use store_sql::{from_sql_int, Backend, SqlTx, Statement, Value};

use crate::columns::Pg;
use crate::errors::store_error;
use crate::pooling::{Db, Pooling, Query};

/// A store transaction over PostgreSQL.
pub(crate) type PgTx = SqlTx<PgBackend>;

/// The columns of `store_sql::rows::UserRow` in `users`.
pub(crate) const USER_COLUMNS: &str =
    "user_id, email, state, platform_roles, has_totp, email_verified, created_at, updated_at";

/// A PostgreSQL transaction, its tenant set for row-level security.
pub(crate) struct PgBackend {
    tx: Transaction<'static, Postgres>,
    /// Whether the transaction's statements may be named and kept.
    pooling: Pooling,
    /// Heads this transaction has locked, as it last wrote them: while the row lock is
    /// held nobody else can change them, so appends need not read them again.
    heads: HashMap<String, Head>,
}

#[derive(Clone, sqlx::FromRow)]
struct Head {
    audit_seq: i64,
    audit_hash: String,
    event_position: i64,
}

impl PgBackend {
    pub(crate) fn new(tx: Transaction<'static, Postgres>, pooling: Pooling) -> Self {
        Self {
            tx,
            pooling,
            heads: HashMap::new(),
        }
    }

    /// Locks a partition's head row (creating it at first use) until commit, and reads it
    /// once; later calls in the transaction use what it holds.
    async fn lock_head(&mut self, partition: &Partition) -> Result<&mut Head, StoreError> {
        if !self.heads.contains_key(partition.name()) {
            let head: Head = Db::query_as(
                self.pooling,
                "insert into partition_heads (partition) values ($1) \
                 on conflict (partition) do update set partition = excluded.partition \
                 returning audit_seq, audit_hash, event_position",
            )
            .bind(partition.name())
            .fetch_one(&mut *self.tx)
            .await
            .map_err(store_error)?;
            self.heads.insert(partition.name().to_owned(), head);
        }
        self.heads
            .get_mut(partition.name())
            .ok_or_else(|| StoreError::Unavailable("partition head lost".to_owned()))
    }
}

/// A statement's SQL as a query, each of its values bound in PostgreSQL's type for it.
fn query(pooling: Pooling, sql: &str, values: Vec<Value>) -> Query<'_> {
    values
        .into_iter()
        .fold(Db::query(pooling, sql), |query, value| match value {
            Value::Text(text) => query.bind(text),
            Value::Int(int) => query.bind(int),
            Value::Flag(flag) => query.bind(flag),
            Value::Id(id) => query.bind(id),
            Value::Time(at) => query.bind(at),
            Value::Names(names) => query.bind(names),
            Value::Json(json) => query.bind(json),
            Value::Bytes(bytes) => query.bind(bytes),
        })
}

#[async_trait]
impl Backend for PgBackend {
    type Row = Pg;

    /// Every unique key and foreign key is named; `store_sql::constraint_error` maps it.
    const CHECKS_BEFORE_WRITE: bool = false;
    const BYTEWISE: &'static str = " collate \"C\"";
    const SKIP_LOCKED: &'static str = " for update skip locked";
    const FOR_UPDATE: &'static str = " for update";

    async fn execute(&mut self, statement: Statement) -> Result<u64, StoreError> {
        query(self.pooling, &statement.sql, statement.values)
            .execute(&mut *self.tx)
            .await
            .map(|done| done.rows_affected())
            .map_err(store_error)
    }

    async fn fetch(&mut self, statement: Statement) -> Result<Vec<Pg>, StoreError> {
        let rows: Vec<PgRow> = query(self.pooling, &statement.sql, statement.values)
            .fetch_all(&mut *self.tx)
            .await
            .map_err(store_error)?;
        Ok(rows.into_iter().map(Pg).collect())
    }

    /// One transaction reads and writes alike.
    async fn fetch_writing(&mut self, statement: Statement) -> Result<Vec<Pg>, StoreError> {
        self.fetch(statement).await
    }

    async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await.map_err(store_error)
    }

    async fn lock_partition(&mut self, partition: &Partition) -> Result<(), StoreError> {
        self.lock_head(partition).await.map(|_| ())
    }

    async fn audit_head(&mut self, partition: &Partition) -> Result<(u64, String), StoreError> {
        let head = self.lock_head(partition).await?;
        Ok((
            from_sql_int(head.audit_seq, "audit seq")?,
            head.audit_hash.clone(),
        ))
    }

    const AUDIT_HEAD_UPDATE: &'static str =
        "with head as (update partition_heads set audit_seq = $2, audit_hash = $15 \
                       where partition = $1) ";

    fn audit_appended(&mut self, record: &AuditRecord) {
        if let Some(head) = self.heads.get_mut(record.partition.name()) {
            head.audit_seq = head.audit_seq.saturating_add(1);
            head.audit_hash.clone_from(&record.hash);
        }
    }

    async fn event_head(&mut self, partition: &Partition) -> Result<u64, StoreError> {
        let head = self.lock_head(partition).await?;
        from_sql_int(head.event_position, "event position")
    }

    const EVENT_HEAD_UPDATE: &'static str =
        "with head as (update partition_heads set event_position = $2 where partition = $1) ";

    fn event_appended(&mut self, partition: &Partition, position: u64) {
        if let (Some(head), Ok(position)) = (
            self.heads.get_mut(partition.name()),
            i64::try_from(position),
        ) {
            head.event_position = position;
        }
    }

    fn each(param: usize) -> String {
        format!("unnest(${param}::text[]) as value")
    }

    fn list(expr: &str, from: &str) -> String {
        format!("array(select {expr} from {from})")
    }

    fn json_text(expr: &str) -> String {
        format!("({expr} #>> '{{}}')")
    }

    const USER_SELECT: &'static str = "select u.user_id, u.email, u.state, u.platform_roles, \
         u.has_totp, u.email_verified, u.created_at, u.updated_at from users u";

    fn write_user(user: &User, insert: bool) -> Vec<Statement> {
        let sql = if insert {
            "insert into users \
                 (user_id, email, state, platform_roles, has_totp, email_verified, updated_at, \
                  created_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8)"
        } else {
            "update users set email = $2, state = $3, platform_roles = $4, has_totp = $5, \
             email_verified = $6, updated_at = $7 where user_id = $1"
        };
        let statement = Statement::new(sql)
            .id(user.id.as_uuid())
            .text(user.email.as_str())
            .text(user.state.as_str())
            .names(user.platform_roles.iter().map(PlatformRole::as_str))
            .flag(user.has_totp)
            .flag(user.email_verified)
            .time(user.updated_at);
        vec![if insert {
            statement.time(user.created_at)
        } else {
            statement
        }]
    }

    const PLATFORM_ROOTS: &'static str =
        "from users u where 'platform_root' = any(u.platform_roles)";

    const KEY_SELECT: &'static str = "select k.tenant_id, k.key_id, k.name, k.scopes, \
         k.created_by, k.created_at, k.revoked_at from api_keys k";

    fn insert_key(key: &ApiKey, secret_hash: &str) -> Vec<Statement> {
        vec![Statement::new(
            "insert into api_keys \
                 (tenant_id, key_id, name, scopes, secret_hash, created_by, created_at, revoked_at) \
             values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .text(key.tenant.as_str())
        .id(key.id.as_uuid())
        .text(key.name.as_str())
        .names(key.scopes.iter().map(|scope| scope.as_str()))
        .text(secret_hash)
        .id_opt(key.created_by.as_ref().map(|user| user.as_uuid()))
        .time(key.created_at)
        .time_opt(key.revoked_at)]
    }

    /// One round trip: the account and its roles in one statement.
    fn insert_member(member: &Member) -> Result<Vec<Statement>, StoreError> {
        Ok(vec![Statement::new(
            "with account as ( \
                 insert into accounts \
                     (tenant_id, user_id, state, version, created_at, updated_at) \
                 values ($1, $2, $3, $4, $5, $6)) \
             insert into memberships (tenant_id, user_id, role) \
             select $1, $2, unnest($7::text[])",
        )
        .text(member.tenant.as_str())
        .id(member.user_id.as_uuid())
        .text(member.state.as_str())
        .count(member.version, "version")?
        .time(member.created_at)
        .time(member.updated_at)
        .names(member.roles.iter().map(|role| role.as_str()))])
    }

    /// `authz_facts_rows` is the one definition of what a decision reads, shared with
    /// `authorize_snapshot`.
    const FACTS_QUERY: &'static str = "select * from authz_facts_rows($1, array[$2]::uuid[], \
        array[$3]::uuid[], array[$4]::text[], array[$5]::uuid[])";
}
