//! One store transaction over PostgreSQL: each capability port of `domain::ports` as SQL,
//! one module per capability, plus the store-level reads that run outside a transaction
//! (`authorize`, `throttles`).
//!
//! Rows are decoded into `store_sql`'s shapes through [`Pg`], and validated there;
//! what stays here is PostgreSQL's SQL (arrays, `unnest`, `collate "C"`, the SQL
//! functions, partition heads) and its transaction. Queries are checked at run time
//! (`sqlx::query`), not with `query!`: the workspace then builds without a database and
//! without committed offline data, and the adapter's own tests run every statement
//! against a real PostgreSQL.

mod api_keys;
mod audit;
mod authentication;
pub(crate) mod authorize;
mod catalog;
mod decisions;
mod members;
mod outbox;
mod profiles;
mod tenants;
pub(crate) mod throttles;
mod users;

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use domain::audit::Partition;
use domain::ids::{ProfileKey, ProfileValue};
use domain::ports::{StoreError, StoreTx, TxScope};
use sqlx::postgres::PgArguments;
use sqlx::{Postgres, Transaction};
use store_sql::rows::Shape;

use crate::columns::Pg;
use crate::errors::store_error;

/// A statement with its arguments bound.
type Query<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

pub(crate) struct PgTx {
    tx: Transaction<'static, Postgres>,
    /// What the transaction may see; row-level security enforces it in the database,
    /// the facts assembly filters keys by it as well.
    scope: TxScope,
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

impl PgTx {
    pub(crate) fn new(tx: Transaction<'static, Postgres>, scope: TxScope) -> Self {
        Self {
            tx,
            scope,
            heads: HashMap::new(),
        }
    }

    /// Locks a partition's head row (creating it at first use) until commit, and reads it
    /// once; later calls in the transaction use what it holds.
    async fn lock_head(&mut self, partition: &Partition) -> Result<Head, StoreError> {
        if let Some(head) = self.heads.get(partition.name()) {
            return Ok(head.clone());
        }
        let head: Head = sqlx::query_as(
            "insert into partition_heads (partition) values ($1) \
             on conflict (partition) do update set partition = excluded.partition \
             returning audit_seq, audit_hash, event_position",
        )
        .bind(partition.name())
        .fetch_one(&mut *self.tx)
        .await
        .map_err(store_error)?;
        self.heads.insert(partition.name().to_owned(), head.clone());
        Ok(head)
    }

    /// Runs one statement and returns the rows it changed.
    async fn execute(&mut self, query: Query<'_>) -> Result<u64, StoreError> {
        query
            .execute(&mut *self.tx)
            .await
            .map(|done| done.rows_affected())
            .map_err(store_error)
    }

    /// The one row a statement returns, as the value of its shape.
    async fn fetch_one<S: Shape>(&mut self, query: Query<'_>) -> Result<S::Value, StoreError> {
        let row = query.fetch_one(&mut *self.tx).await.map_err(store_error)?;
        S::decode(&Pg(&row))
    }

    /// The row a statement returns, if any, as the value of its shape.
    async fn fetch_optional<S: Shape>(
        &mut self,
        query: Query<'_>,
    ) -> Result<Option<S::Value>, StoreError> {
        let row = query
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(store_error)?;
        row.map(|row| S::decode(&Pg(&row))).transpose()
    }

    /// Every row a statement returns, as values of its shape.
    async fn fetch_all<S: Shape>(&mut self, query: Query<'_>) -> Result<Vec<S::Value>, StoreError> {
        let rows = query.fetch_all(&mut *self.tx).await.map_err(store_error)?;
        rows.iter().map(|row| S::decode(&Pg(row))).collect()
    }

    /// Profile values (`key`, `value` rows) by key.
    async fn values(
        &mut self,
        query: Query<'_>,
    ) -> Result<BTreeMap<ProfileKey, ProfileValue>, StoreError> {
        let rows = query.fetch_all(&mut *self.tx).await.map_err(store_error)?;
        rows.iter()
            .map(|row| store_sql::rows::ValueRow::decode(&Pg(row)))
            .collect()
    }

    /// A `count(*)` (or any one bigint) a statement returns.
    async fn count(&mut self, sql: &str, bind: Option<&str>) -> Result<u64, StoreError> {
        let query = sqlx::query_scalar::<_, i64>(sql);
        let query = match bind {
            Some(bind) => query.bind(bind),
            None => query,
        };
        let count = query.fetch_one(&mut *self.tx).await.map_err(store_error)?;
        store_sql::from_sql_int(count, "count")
    }
}

#[async_trait]
impl StoreTx for PgTx {
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.commit().await.map_err(store_error)
    }
}
