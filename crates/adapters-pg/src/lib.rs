//! The PostgreSQL store: embedded migrations, the service-role connection pool, and the
//! store ports of `domain` over sqlx.
//!
//! Every transaction sets its tenant (or platform mode) with `set_config(…, true)`, so
//! the setting lives exactly as long as the transaction and a pooled connection never
//! carries one tenant into another's request. Queries run as `user_engine_app`, a role
//! that row-level security applies to, set for each transaction. Behind a transaction
//! pooler such as PgBouncer nothing else may live in the session either ([`Pooling`]).

mod columns;
mod errors;
pub mod facts_cache;
mod pooling;
pub mod relay;
mod tx;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::ids::Email;
use domain::ports::{
    AuthorizeSnapshot, LoginRecord, SnapshotQuery, Store, StoreError, StoreTx, ThrottleCount,
    TxScope,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Executor, PgPool};

pub use errors::store_error;
use facts_cache::FactsCache;
use pooling::Db;
pub use pooling::Pooling;

/// The role the service's queries run as (created by the migrations).
pub const SERVICE_ROLE: &str = "user_engine_app";

/// Migrations embedded in the binary; never edited once landed.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Runs the migrations as the connecting (owner) user and seeds the default catalog and
/// profile schema from the domain, adding only what is missing.
///
/// # Errors
/// When the database cannot be reached or a migration fails.
pub async fn migrate(owner: &PgPool) -> Result<(), StoreError> {
    MIGRATOR
        .run(owner)
        .await
        .map_err(|error| StoreError::Unavailable(error.to_string()))?;
    let tx = owner.begin().await.map_err(store_error)?;
    let mut tx = tx::PgTx::new(tx::PgBackend::new(tx, Pooling::Session), TxScope::Platform);
    tx.seed_defaults().await?;
    Box::new(tx).commit().await
}

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    db: Db,
    /// The authorize API's facts, served again only while the partition heads they were
    /// read with are unchanged (see `facts_cache`); shared by the clones of a store.
    facts: Arc<FactsCache>,
}

impl PgStore {
    /// Connects a pool straight to PostgreSQL whose every connection acts as the service
    /// role.
    ///
    /// # Errors
    /// When the URL is invalid or the database cannot be reached.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        Self::connect_pooled(url, max_connections, Pooling::Session).await
    }

    /// Connects a pool that reaches PostgreSQL as `pooling` says.
    ///
    /// # Errors
    /// When the URL is invalid or the database (or the pooler) cannot be reached.
    pub async fn connect_pooled(
        url: &str,
        max_connections: u32,
        pooling: Pooling,
    ) -> Result<Self, StoreError> {
        let mut options: PgConnectOptions = url
            .parse::<PgConnectOptions>()
            .map_err(|error| StoreError::Unavailable(error.to_string()))?
            .disable_statement_logging();
        if pooling == Pooling::Transaction {
            // The adapter's own statements are unnamed; this keeps any the driver makes
            // for itself from being reused in another server session.
            options = options.statement_cache_capacity(0);
        }
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10));
        // Straight to PostgreSQL the role is set once, for the statements the adapter
        // runs outside a transaction; behind a transaction pooler it would land in one
        // server session of many, so every transaction sets it instead.
        let pool = match pooling {
            Pooling::Session => pool.after_connect(|connection, _meta| {
                Box::pin(async move {
                    connection
                        .execute(format!("set role {SERVICE_ROLE}").as_str())
                        .await
                        .map(|_| ())
                })
            }),
            Pooling::Transaction => pool,
        };
        let pool = pool.connect_with(options).await.map_err(store_error)?;
        Ok(Self {
            db: Db { pool, pooling },
            facts: Arc::default(),
        })
    }

    /// This store with an empty facts cache holding at most `capacity` (the default is
    /// [`facts_cache::Capacity::default`]); its clones share it.
    #[must_use]
    pub fn with_facts_capacity(self, capacity: facts_cache::Capacity) -> Self {
        Self {
            facts: Arc::new(FactsCache::new(capacity)),
            ..self
        }
    }

    /// How many reads of decision facts its facts cache has needed (misses and outdated
    /// parts), for tests and tools.
    pub fn facts_reads(&self) -> u64 {
        self.facts.reads()
    }

    /// The pool, for tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    /// How the pool reaches PostgreSQL.
    pub fn pooling(&self) -> Pooling {
        self.db.pooling
    }

    /// Whether the database answers a trivial query (for readiness checks).
    pub async fn ping(&self) -> bool {
        self.db.ping().await
    }

    /// The embedded migrations the database has not applied, as `version description`:
    /// what a node that does not migrate (behind a transaction pooler) checks before
    /// serving. Reads `_sqlx_migrations` as the connecting user, not the service role.
    ///
    /// # Errors
    /// When the database cannot be reached.
    pub async fn unapplied_migrations(&self) -> Result<Vec<String>, StoreError> {
        let mut tx = self
            .db
            .pool
            .begin_with("begin; set local role none")
            .await
            .map_err(store_error)?;
        let exists: bool = Db::query_as::<(bool,)>(
            self.db.pooling,
            "select to_regclass('_sqlx_migrations') is not null",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(store_error)?
        .0;
        let applied: Vec<i64> = if exists {
            Db::query_as::<(i64,)>(
                self.db.pooling,
                "select version from _sqlx_migrations where success",
            )
            .fetch_all(&mut *tx)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|(version,)| version)
            .collect()
        } else {
            Vec::new()
        };
        tx.commit().await.map_err(store_error)?;
        Ok(MIGRATOR
            .iter()
            .filter(|migration| !migration.migration_type.is_down_migration())
            .filter(|migration| !applied.contains(&migration.version))
            .map(|migration| format!("{} {}", migration.version, migration.description))
            .collect())
    }
}

#[async_trait]
impl Store for PgStore {
    async fn begin(&self, scope: TxScope) -> Result<Box<dyn StoreTx>, StoreError> {
        // BEGIN and the transaction-local settings go in one round trip. Inlining the
        // tenant is safe: a `TenantId` holds only `a-z`, `0-9` and `-`.
        let (tenant, platform) = match &scope {
            TxScope::Tenant(tenant) => (tenant.as_str(), "off"),
            TxScope::Platform => ("", "on"),
        };
        let tx = self
            .db
            .begin(&format!(
                "select set_config('app.tenant_id', '{tenant}', true), \
                 set_config('app.platform', '{platform}', true)"
            ))
            .await
            .map_err(store_error)?;
        Ok(Box::new(tx::PgTx::new(
            tx::PgBackend::new(tx, self.db.pooling),
            scope,
        )))
    }

    async fn throttle_hit(
        &self,
        key: &str,
        window: time::Duration,
        now: time::OffsetDateTime,
    ) -> Result<ThrottleCount, StoreError> {
        tx::throttles::throttle_hit(&self.db, key, window, now).await
    }

    async fn throttle_peek(
        &self,
        key: &str,
        now: time::OffsetDateTime,
    ) -> Result<ThrottleCount, StoreError> {
        tx::throttles::throttle_peek(&self.db, key, now).await
    }

    /// One statement, no transaction.
    async fn find_login(&self, email: &Email) -> Result<Option<LoginRecord>, StoreError> {
        tx::authorize::find_login(&self.db, email).await
    }

    /// One statement, one round trip: a probe of the partition heads when the facts
    /// cache holds the query's facts and they still hold, else the `authorize_snapshot`
    /// SQL function.
    async fn authorize_snapshot(
        &self,
        query: &SnapshotQuery,
    ) -> Result<AuthorizeSnapshot, StoreError> {
        tx::authorize::authorize_snapshot(&self.db, &self.facts, query).await
    }
}
