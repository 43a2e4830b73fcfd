//! What a pooled connection may assume of its PostgreSQL session.
//!
//! Straight to PostgreSQL, a connection is one server session for its whole life: the
//! role it sets once and the prepared statements it names stay with it. Behind a
//! transaction pooler (PgBouncer's `pool_mode = transaction`) only a transaction is:
//! the next transaction of the same connection may run in another server session, where
//! a statement named by this one does not exist (or another client's statement of the
//! same name does), and the role was never set — a session as the owner, which
//! row-level security does not bind. So under [`Pooling::Transaction`] nothing lives in
//! the session: statements are unnamed (parsed in the transaction that runs them), the
//! role is set for each transaction (`set local role`), and a statement that would run
//! on its own runs in a transaction of its own, so its parse and its execution (two
//! protocol round trips) reach the same server session.

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{Executor, FromRow, PgConnection, PgPool, Postgres, Transaction};

use crate::SERVICE_ROLE;

/// How the pool reaches PostgreSQL (`USER_ENGINE_DATABASE_POOLING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooling {
    /// Straight to PostgreSQL, or through a pooler in session mode: a connection is one
    /// server session.
    #[default]
    Session,
    /// Through a transaction pooler (PgBouncer's `pool_mode = transaction`): only a
    /// transaction is one server session. Costs a round trip or two a statement; the
    /// schema is migrated on a direct connection, never through the pooler.
    Transaction,
}

impl Pooling {
    /// The setting's value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Transaction => "transaction",
        }
    }

    /// Reads the setting's value.
    ///
    /// # Errors
    /// When it is neither `session` nor `transaction`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "session" => Ok(Self::Session),
            "transaction" => Ok(Self::Transaction),
            _ => Err("must be session or transaction".to_owned()),
        }
    }
}

/// A statement with its arguments bound.
pub(crate) type Query<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

/// The pool and what its connections may assume: every statement of the adapter is made
/// and every transaction begun here.
#[derive(Debug, Clone)]
pub(crate) struct Db {
    pub(crate) pool: PgPool,
    pub(crate) pooling: Pooling,
}

impl Db {
    /// A statement, named (and kept by the connection) only when the connection is one
    /// server session.
    pub(crate) fn query(pooling: Pooling, sql: &str) -> Query<'_> {
        sqlx::query(sql).persistent(pooling == Pooling::Session)
    }

    /// [`Db::query`], its row read as `T`.
    pub(crate) fn query_as<T>(
        pooling: Pooling,
        sql: &str,
    ) -> sqlx::query::QueryAs<'_, Postgres, T, PgArguments>
    where
        T: for<'r> FromRow<'r, PgRow>,
    {
        sqlx::query_as(sql).persistent(pooling == Pooling::Session)
    }

    /// A transaction as the service role, `settings` (statements without parameters,
    /// such as `select set_config(…, true)`) run in the same round trip as `begin`.
    pub(crate) async fn begin(
        &self,
        settings: &str,
    ) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let begin = format!("begin; set local role {SERVICE_ROLE}");
        if settings.is_empty() {
            self.pool.begin_with(begin).await
        } else {
            self.pool.begin_with(format!("{begin}; {settings}")).await
        }
    }

    /// A connection for statements outside a store transaction: under transaction
    /// pooling, in a transaction of their own as the service role. End it with
    /// [`Single::done`]; dropped unfinished, its transaction rolls back.
    pub(crate) async fn single(&self) -> Result<Single, sqlx::Error> {
        Ok(match self.pooling {
            Pooling::Session => Single::Direct(self.pool.acquire().await?),
            Pooling::Transaction => Single::Wrapped(self.begin("").await?),
        })
    }

    /// Whether the database answers a trivial query.
    pub(crate) async fn ping(&self) -> bool {
        let Ok(mut single) = self.single().await else {
            return false;
        };
        single.conn().execute("select 1").await.is_ok() && single.done().await.is_ok()
    }
}

/// Where statements outside a store transaction run (see [`Db::single`]).
pub(crate) enum Single {
    Direct(PoolConnection<Postgres>),
    Wrapped(Transaction<'static, Postgres>),
}

impl Single {
    /// The connection to run the statements on.
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        match self {
            Self::Direct(connection) => connection,
            Self::Wrapped(tx) => tx,
        }
    }

    /// Commits the statements' transaction, if they run in one.
    pub(crate) async fn done(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Direct(_) => Ok(()),
            Self::Wrapped(tx) => tx.commit().await,
        }
    }
}
