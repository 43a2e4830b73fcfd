//! The PostgreSQL store: embedded migrations, the service-role connection pool, and the
//! store ports of `domain` over sqlx.
//!
//! Every transaction sets its tenant (or platform mode) with `set_config(…, true)`, so
//! the setting lives exactly as long as the transaction and a pooled connection never
//! carries one tenant into another's request. Queries run as `user_engine_app`, a role
//! that row-level security applies to.

mod columns;
mod errors;
mod facts_cache;
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
    let mut tx = tx::PgTx::new(tx::PgBackend::new(tx), TxScope::Platform);
    tx.seed_defaults().await?;
    Box::new(tx).commit().await
}

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// The authorize API's facts, served again only while the partition heads they were
    /// read with are unchanged (see `facts_cache`); shared by the clones of a store.
    facts: Arc<FactsCache>,
}

impl PgStore {
    /// Connects a pool whose every connection acts as the service role.
    ///
    /// # Errors
    /// When the URL is invalid or the database cannot be reached.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url
            .parse::<PgConnectOptions>()
            .map_err(|error| StoreError::Unavailable(error.to_string()))?
            .disable_statement_logging();
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|connection, _meta| {
                Box::pin(async move {
                    connection
                        .execute(format!("set role {SERVICE_ROLE}").as_str())
                        .await
                        .map(|_| ())
                })
            })
            .connect_with(options)
            .await
            .map_err(store_error)?;
        Ok(Self {
            pool,
            facts: Arc::default(),
        })
    }

    /// The pool, for tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Whether the database answers a trivial query (for readiness checks).
    pub async fn ping(&self) -> bool {
        sqlx::query("select 1").execute(&self.pool).await.is_ok()
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
            .pool
            .begin_with(format!(
                "begin; select set_config('app.tenant_id', '{tenant}', true), \
                 set_config('app.platform', '{platform}', true)"
            ))
            .await
            .map_err(store_error)?;
        Ok(Box::new(tx::PgTx::new(tx::PgBackend::new(tx), scope)))
    }

    async fn throttle_hit(
        &self,
        key: &str,
        window: time::Duration,
        now: time::OffsetDateTime,
    ) -> Result<ThrottleCount, StoreError> {
        tx::throttles::throttle_hit(&self.pool, key, window, now).await
    }

    async fn throttle_peek(
        &self,
        key: &str,
        now: time::OffsetDateTime,
    ) -> Result<ThrottleCount, StoreError> {
        tx::throttles::throttle_peek(&self.pool, key, now).await
    }

    /// One statement, no transaction.
    async fn find_login(&self, email: &Email) -> Result<Option<LoginRecord>, StoreError> {
        tx::authorize::find_login(&self.pool, email).await
    }

    /// One statement, one round trip: a probe of the partition heads when the facts
    /// cache holds the query's facts and they still hold, else the `authorize_snapshot`
    /// SQL function.
    async fn authorize_snapshot(
        &self,
        query: &SnapshotQuery,
    ) -> Result<AuthorizeSnapshot, StoreError> {
        tx::authorize::authorize_snapshot(&self.pool, &self.facts, query).await
    }
}
