//! PostgreSQL test support: a fresh database per test, migrated, dropped afterwards.

use std::sync::Arc;

use adapters_pg::PgStore;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor, PgConnection};

use crate::harness::Harness;

/// The server tests create their databases on: `USER_ENGINE_TEST_DATABASE_URL`, else
/// `DATABASE_URL`, else the local default with trust auth.
pub fn server_url() -> String {
    std::env::var("USER_ENGINE_TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn server_options() -> PgConnectOptions {
    server_url()
        .parse::<PgConnectOptions>()
        .expect("a valid database URL")
        .disable_statement_logging()
}

/// A database of one test's own; dropped (with its connections) when the last handle goes.
#[derive(Debug)]
pub struct TestDb {
    pub name: String,
    /// Connection options for this database as the owner (superuser in tests).
    pub owner: PgConnectOptions,
}

impl TestDb {
    /// Creates and migrates a fresh database.
    pub async fn create() -> Self {
        let name = format!("ue_test_{}", uuid::Uuid::now_v7().simple());
        let mut server = PgConnection::connect_with(&server_options())
            .await
            .expect("PostgreSQL is reachable (cargo xtask db starts it)");
        server
            .execute(format!("create database {name}").as_str())
            .await
            .expect("database created");
        server.close().await.ok();
        let owner = server_options().database(&name);
        let pool = sqlx::PgPool::connect_with(owner.clone())
            .await
            .expect("owner pool");
        adapters_pg::migrate(&pool).await.expect("migrations run");
        pool.close().await;
        Self { name, owner }
    }

    /// The URL of this database, for the service pool.
    pub fn url(&self) -> String {
        let mut url = server_url();
        if let Some(slash) = url.rfind('/') {
            url.truncate(slash);
        }
        format!("{url}/{}", self.name)
    }

    /// A store over this database running as the service role.
    pub async fn store(&self, connections: u32) -> PgStore {
        PgStore::connect(&self.url(), connections)
            .await
            .expect("service pool")
    }

    /// A connection as the owner (superuser), for raw SQL in tests.
    pub async fn owner_connection(&self) -> PgConnection {
        PgConnection::connect_with(&self.owner)
            .await
            .expect("owner connection")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any runtime guarantee: a thread of its own does the async work.
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async move {
                    if let Ok(mut server) = PgConnection::connect_with(&server_options()).await {
                        let _ = server
                            .execute(
                                format!("drop database if exists {name} with (force)").as_str(),
                            )
                            .await;
                    }
                });
            }
        });
        let _ = dropper.join();
    }
}

/// A harness over a fresh PostgreSQL database.
pub async fn harness() -> Harness {
    let db = TestDb::create().await;
    let store = db.store(4).await;
    let mut harness = Harness::new(Arc::new(store));
    harness.keep_alive = Some(Arc::new(db));
    harness
}

/// A harness over a fresh PostgreSQL database with another node: a second store over the
/// same database, with caches of its own ([`Harness::other_node`]).
pub async fn two_node_harness() -> Harness {
    let db = TestDb::create().await;
    let store = db.store(4).await;
    let other = db.store(2).await;
    let mut harness = Harness::new(Arc::new(store)).with_other_node(Arc::new(other));
    harness.keep_alive = Some(Arc::new(db));
    harness
}

/// A harness over a fresh PostgreSQL database reached through a PgBouncer of its own in
/// transaction pooling mode (`Pooling::Transaction`): consecutive transactions of one
/// client connection run in whichever server session is free.
pub async fn pooled_harness() -> Harness {
    let db = TestDb::create().await;
    let name = db.name.clone();
    let bouncer = tokio::task::spawn_blocking(move || crate::nodes::PgBouncer::start(&name))
        .await
        .expect("pgbouncer starts");
    let store = PgStore::connect_pooled(&bouncer.url(), 4, adapters_pg::Pooling::Transaction)
        .await
        .expect("the store connects through the pooler");
    let mut harness = Harness::new(Arc::new(store));
    // The pooler goes before the database, whose drop ends every connection.
    harness.keep_alive = Some(Arc::new((bouncer, db)));
    harness
}

/// Runs a future on a multi-threaded runtime, as the service would.
pub fn run<F: std::future::Future<Output = ()>>(future: F) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future);
}
