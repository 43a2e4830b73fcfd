//! One store transaction over SQLite: each capability port of `domain::ports` as SQL,
//! one module per capability, the tenant scope enforced in the adapter, and the move
//! from reading to writing.
//!
//! Rows are decoded into `store_sql`'s shapes through [`Lite`], and validated there;
//! what stays here is SQLite's SQL (child tables through `json_group_array` and
//! `json_each`, integer timestamps), the existence checks before writes, and the
//! transaction phases. Queries are checked at run time (`sqlx::query`), as in the
//! PostgreSQL adapter; the behaviour suite and the differential test run every statement.

mod api_keys;
mod audit;
mod authentication;
mod catalog;
mod decisions;
mod members;
mod outbox;
mod profiles;
mod tenants;
pub(crate) mod throttles;
mod users;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use domain::ids::{ProfileKey, ProfileValue, TenantId, UserId};
use domain::ports::{StoreError, StoreTx, TxScope};
use sqlx::sqlite::{SqliteArguments, SqliteConnection, SqlitePool};
use sqlx::{Sqlite, Transaction};
use store_sql::from_sql_int;
use store_sql::rows::{Shape, ValueRow};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::columns::Lite;
use crate::errors::store_error;
use crate::Writer;

/// A statement with its arguments bound.
type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

/// Where a transaction is: nothing opened yet, a read snapshot on a reader, or the
/// writer held with `BEGIN IMMEDIATE` until commit or drop.
enum Phase {
    Idle,
    Reading(Transaction<'static, Sqlite>),
    Writing(OwnedMutexGuard<Writer>),
}

pub(crate) struct SqliteTx {
    scope: TxScope,
    readers: SqlitePool,
    writer: Arc<Mutex<Writer>>,
    phase: Phase,
}

impl SqliteTx {
    pub(crate) fn new(scope: TxScope, readers: SqlitePool, writer: Arc<Mutex<Writer>>) -> Self {
        Self {
            scope,
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

    /// Whether a query returns a row, on the writer (existence checks before writes).
    async fn exists(&mut self, sql: &str, binds: &[&str]) -> Result<bool, StoreError> {
        let connection = self.write().await?;
        let mut query = sqlx::query_scalar::<_, i64>(sql);
        for bind in binds {
            query = query.bind(*bind);
        }
        query
            .fetch_optional(connection)
            .await
            .map(|row| row.is_some())
            .map_err(store_error)
    }

    /// Fails with `Missing(what)` unless the row exists.
    async fn require(
        &mut self,
        what: &'static str,
        sql: &str,
        binds: &[&str],
    ) -> Result<(), StoreError> {
        if self.exists(sql, binds).await? {
            Ok(())
        } else {
            Err(StoreError::Missing(what))
        }
    }

    async fn require_tenant(&mut self, tenant: &TenantId) -> Result<(), StoreError> {
        self.require(
            "tenant",
            "select 1 from tenants where tenant_id = ?1",
            &[tenant.as_str()],
        )
        .await
    }

    async fn require_user(&mut self, user: &UserId) -> Result<(), StoreError> {
        self.require(
            "user",
            "select 1 from users where user_id = ?1",
            &[&user.to_string()],
        )
        .await
    }

    async fn require_member(&mut self, tenant: &TenantId, user: &UserId) -> Result<(), StoreError> {
        self.require(
            "member",
            "select 1 from accounts where tenant_id = ?1 and user_id = ?2",
            &[tenant.as_str(), &user.to_string()],
        )
        .await
    }

    async fn require_profile_key(&mut self, key: &ProfileKey) -> Result<(), StoreError> {
        self.require(
            "profile_key",
            "select 1 from profile_schema where key = ?1",
            &[key.as_str()],
        )
        .await
    }

    /// Fails with `Missing("scope")` unless every scope is in the catalog.
    async fn require_scopes(&mut self, names: &str) -> Result<(), StoreError> {
        let unknown = self
            .exists(
                "select 1 from json_each(?1) \
                 where value not in (select name from catalog_scopes)",
                &[names],
            )
            .await?;
        if unknown {
            Err(StoreError::Missing("scope"))
        } else {
            Ok(())
        }
    }

    /// Runs one statement on the writer and returns the rows it changed.
    async fn execute(&mut self, query: Query<'_>) -> Result<u64, StoreError> {
        let connection = self.write().await?;
        query
            .execute(connection)
            .await
            .map(|done| done.rows_affected())
            .map_err(store_error)
    }

    /// Profile values (`key`, `value` rows) by key, on the read connection.
    async fn values(
        &mut self,
        query: Query<'_>,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
        let connection = self.read().await?;
        let rows = query.fetch_all(connection).await.map_err(store_error)?;
        rows.iter()
            .map(|row| ValueRow::decode(&Lite(row)))
            .collect()
    }

    /// The one row a statement returns, as the value of its shape (read connection).
    async fn fetch_one<S: Shape>(&mut self, query: Query<'_>) -> Result<S::Value, StoreError> {
        let connection = self.read().await?;
        let row = query.fetch_one(connection).await.map_err(store_error)?;
        S::decode(&Lite(&row))
    }

    /// The row a statement returns, if any, as the value of its shape (read connection).
    async fn fetch_optional<S: Shape>(
        &mut self,
        query: Query<'_>,
    ) -> Result<Option<S::Value>, StoreError> {
        let connection = self.read().await?;
        let row = query
            .fetch_optional(connection)
            .await
            .map_err(store_error)?;
        row.map(|row| S::decode(&Lite(&row))).transpose()
    }

    /// The row a statement returns on the writer, if any (a write that returns a row).
    async fn write_returning<S: Shape>(
        &mut self,
        query: Query<'_>,
    ) -> Result<Option<S::Value>, StoreError> {
        let connection = self.write().await?;
        let row = query
            .fetch_optional(connection)
            .await
            .map_err(store_error)?;
        row.map(|row| S::decode(&Lite(&row))).transpose()
    }

    /// Every row a statement returns, as values of its shape (read connection).
    async fn fetch_all<S: Shape>(&mut self, query: Query<'_>) -> Result<Vec<S::Value>, StoreError> {
        let connection = self.read().await?;
        let rows = query.fetch_all(connection).await.map_err(store_error)?;
        rows.iter().map(|row| S::decode(&Lite(row))).collect()
    }

    /// A `count(*)` (or any one integer) a statement returns (read connection).
    async fn count(&mut self, sql: &str, bind: Option<&str>) -> Result<u64, StoreError> {
        let connection = self.read().await?;
        let query = sqlx::query_scalar::<_, i64>(sql);
        let query = match bind {
            Some(bind) => query.bind(bind),
            None => query,
        };
        let count = query.fetch_one(connection).await.map_err(store_error)?;
        from_sql_int(count, "count")
    }
}

impl Drop for SqliteTx {
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

#[async_trait]
impl StoreTx for SqliteTx {
    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
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
}
