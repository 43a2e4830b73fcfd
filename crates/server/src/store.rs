//! Which store the binary runs on: PostgreSQL when `USER_ENGINE_DATABASE_URL` is a
//! `postgres://` URL, else the embedded SQLite store — the file a `sqlite://` URL names,
//! or `user-engine.db` in `USER_ENGINE_DATA_DIR` when no URL is set, so `serve` needs no
//! other process. Past this module the binary sees a `Store` and a `Readiness`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use adapters_pg::{PgStore, Pooling};
use adapters_sqlite::SqliteStore;
use api_http::app::{PoolStats, Readiness};
use domain::ports::{Store, TxScope};
use domain::relay::RelayOutbox;
use sqlx::migrate::Migrate;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;

use crate::config::{Config, Secret};

/// Where the configuration puts the data.
#[derive(Debug, Clone)]
pub enum Location {
    Postgres(Secret),
    Sqlite {
        /// Boxed: the options are large beside a URL, and a location is made once.
        options: Box<SqliteConnectOptions>,
        path: PathBuf,
    },
}

impl Location {
    /// Reads the location from the configuration.
    ///
    /// # Errors
    /// When a `sqlite://` URL names no file.
    pub fn of(config: &Config) -> Result<Self, String> {
        match &config.database_url {
            Some(url) if url.expose().starts_with("sqlite:") => {
                let options = adapters_sqlite::url_options(url.expose()).map_err(|error| {
                    format!("invalid setting USER_ENGINE_DATABASE_URL: {error}")
                })?;
                let path = options.get_filename().to_path_buf();
                Ok(Self::Sqlite {
                    options: Box::new(options),
                    path,
                })
            }
            Some(url) => Ok(Self::Postgres(url.clone())),
            None => {
                let path = config.data_dir.join(adapters_sqlite::DATABASE_FILE);
                Ok(Self::Sqlite {
                    options: Box::new(adapters_sqlite::file_options(&path)),
                    path,
                })
            }
        }
    }
}

/// The opened store.
#[derive(Debug, Clone)]
pub enum Backend {
    Postgres(PgStore),
    Sqlite(SqliteStore),
}

impl Backend {
    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            Self::Postgres(store) => Arc::new(store.clone()),
            Self::Sqlite(store) => Arc::new(store.clone()),
        }
    }

    /// The store's outbox, for the relay.
    pub fn outbox(&self) -> Arc<dyn RelayOutbox> {
        match self {
            Self::Postgres(store) => Arc::new(adapters_pg::relay::Relay::new(store)),
            Self::Sqlite(store) => Arc::new(store.clone()),
        }
    }

    /// Closes the connections; later transactions fail.
    pub async fn close(&self) {
        match self {
            Self::Postgres(store) => store.pool().close().await,
            Self::Sqlite(store) => store.close().await,
        }
    }
}

impl Readiness for Backend {
    fn ready(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            let answers = match self {
                Self::Postgres(store) => store.ping().await,
                Self::Sqlite(store) => store.ping().await,
            };
            if answers {
                Ok(())
            } else {
                Err("the database does not answer".to_owned())
            }
        })
    }

    /// PostgreSQL's pool; the embedded store's one writer and its readers are not a
    /// pool an operator sizes against a server, so it reports none.
    fn pool(&self) -> Option<PoolStats> {
        match self {
            Self::Postgres(store) => {
                let pool = store.pool();
                Some(PoolStats {
                    open: pool.size(),
                    idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                    max: pool.options().get_max_connections(),
                })
            }
            Self::Sqlite(_) => None,
        }
    }
}

/// Opens the configured store (PostgreSQL, or the embedded SQLite file) and applies its
/// pending migrations; returns the migrations applied, as `version description`.
///
/// # Errors
/// When the store cannot be reached, opened or migrated; the message says what to do.
pub async fn open(config: &Config) -> Result<(Backend, Vec<String>), String> {
    match Location::of(config)? {
        Location::Postgres(url) => {
            let applied = match config.database_pooling {
                Pooling::Session => migrate_postgres(&url).await?,
                Pooling::Transaction => Vec::new(),
            };
            let store = PgStore::connect_pooled(
                url.expose(),
                config.max_connections,
                config.database_pooling,
            )
            .await
            .map_err(|error| pool_error(&error))?
            .with_facts_capacity(facts_capacity(config));
            if config.database_pooling == Pooling::Transaction {
                require_migrated(&store).await?;
            }
            Ok((Backend::Postgres(store), applied))
        }
        Location::Sqlite { options, path } => {
            let (store, applied) = open_sqlite(options, config.max_connections).await?;
            tracing::info!(
                path = %absolute(&path).display(),
                "embedded store: every tenant's data lives in this file (with its -wal and \
                 -shm files while running); for production use PostgreSQL \
                 (USER_ENGINE_DATABASE_URL=postgres://…)"
            );
            Ok((Backend::Sqlite(store), applied))
        }
    }
}

/// The facts cache's bound of `USER_ENGINE_FACTS_CACHE_ENTRIES`.
fn facts_capacity(config: &Config) -> adapters_pg::facts_cache::Capacity {
    let entries = usize::try_from(config.facts_cache_entries).unwrap_or(usize::MAX);
    adapters_pg::facts_cache::Capacity::entries(
        std::num::NonZeroUsize::new(entries).unwrap_or(std::num::NonZeroUsize::MIN),
    )
}

/// Connects to an existing store without migrating it, for the commands that read.
///
/// # Errors
/// When the store cannot be reached, or the embedded file does not exist.
pub async fn connect_existing(config: &Config, connections: u32) -> Result<Backend, String> {
    match Location::of(config)? {
        Location::Postgres(url) => {
            PgStore::connect_pooled(url.expose(), connections, config.database_pooling)
                .await
                .map(Backend::Postgres)
                .map_err(|error| pool_error(&error))
        }
        Location::Sqlite { options, .. } => open_existing_sqlite(options, connections)
            .await
            .map(Backend::Sqlite),
    }
}

/// Why the service pool could not connect, naming the setting to check.
pub fn pool_error(error: &domain::ports::StoreError) -> String {
    format!(
        "cannot connect to the database of USER_ENGINE_DATABASE_URL ({error}); check its \
         host, port, user, password and TLS parameters and that PostgreSQL (or the pooler) \
         is running"
    )
}

/// What `migrate` says behind a transaction pooler, which cannot carry the migrations'
/// session (their advisory lock, their prepared statements).
///
/// # Errors
/// When `USER_ENGINE_DATABASE_POOLING` is `transaction`.
pub fn refuse_through_transaction_pooler(config: &Config) -> Result<(), String> {
    match config.database_pooling {
        Pooling::Session => Ok(()),
        Pooling::Transaction => Err(
            "migrations need a connection straight to PostgreSQL, not through a transaction \
             pooler: run `user-engine migrate` with USER_ENGINE_DATABASE_URL naming PostgreSQL \
             itself and USER_ENGINE_DATABASE_POOLING=session (or unset)"
                .to_owned(),
        ),
    }
}

/// Behind a transaction pooler a node does not migrate; it serves only a schema that
/// has every migration it embeds.
async fn require_migrated(store: &PgStore) -> Result<(), String> {
    let missing = store
        .unapplied_migrations()
        .await
        .map_err(|error| format!("cannot read the applied migrations: {error}"))?;
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the database lacks {} migration(s) (first: {}); with \
             USER_ENGINE_DATABASE_POOLING=transaction the schema is not migrated through the \
             pooler: run `user-engine migrate` with USER_ENGINE_DATABASE_URL naming PostgreSQL \
             itself first",
            missing.len(),
            missing.first().map_or("", String::as_str)
        ))
    }
}

/// Runs the PostgreSQL migrations as the URL's own user (the schema owner) over a
/// short-lived pool of its own: the store's pool switches every connection to the
/// service role, which cannot create tables and does not exist before the first
/// migration. Returns the migrations this run applied, as `version description`.
///
/// # Errors
/// When the database cannot be reached or a migration fails.
pub async fn migrate_postgres(url: &Secret) -> Result<Vec<String>, String> {
    let options = url
        .expose()
        .parse::<PgConnectOptions>()
        .map_err(|error| format!("invalid setting USER_ENGINE_DATABASE_URL: {error}"))?
        // Idempotent DDL (`create … if not exists`) raises notices on every start that
        // would read as news in the log; warnings and errors still come through.
        .options([("client_min_messages", "warning")]);
    let owner = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|error| {
            format!(
                "cannot connect to the database of USER_ENGINE_DATABASE_URL ({error}); \
                 check its host, port, user and password and that PostgreSQL is running"
            )
        })?;
    let before = {
        let mut connection = owner
            .acquire()
            .await
            .map_err(|error| format!("cannot connect to the database: {error}"))?;
        connection
            .ensure_migrations_table()
            .await
            .map_err(|error| format!("cannot read the applied migrations: {error}"))?;
        connection
            .list_applied_migrations()
            .await
            .map_err(|error| format!("cannot read the applied migrations: {error}"))?
    };
    adapters_pg::migrate(&owner)
        .await
        .map_err(|error| format!("migrating the database failed: {error}"))?;
    owner.close().await;
    Ok(adapters_pg::MIGRATOR
        .iter()
        .filter(|migration| !migration.migration_type.is_down_migration())
        .filter(|migration| {
            !before
                .iter()
                .any(|applied| applied.version == migration.version)
        })
        .map(|migration| format!("{} {}", migration.version, migration.description))
        .collect())
}

/// The absolute form of a path, for logs and messages (a relative data directory is
/// relative to wherever the process was started, which an operator may not know).
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Opens the embedded store (creating its directory and file when missing) and applies
/// its pending migrations; returns the migrations applied.
///
/// # Errors
/// When the file cannot be created or opened, or a migration fails; the message says
/// which file.
pub async fn open_sqlite(
    options: Box<SqliteConnectOptions>,
    readers: u32,
) -> Result<(SqliteStore, Vec<String>), String> {
    let path = absolute(options.get_filename());
    let store = SqliteStore::open(*options, readers)
        .await
        .map_err(|error| {
            format!(
                "cannot open the embedded store at {}: {error}",
                path.display()
            )
        })?;
    let applied = store.migrate().await.map_err(|error| {
        format!(
            "migrating the embedded store at {} failed: {error}",
            path.display()
        )
    })?;
    Ok((store, applied))
}

/// Opens an existing embedded store without migrating it, for commands that only read
/// (`audit verify`, `diagnose`).
///
/// # Errors
/// When there is no database at the path: those commands must not create an empty one.
pub async fn open_existing_sqlite(
    options: Box<SqliteConnectOptions>,
    readers: u32,
) -> Result<SqliteStore, String> {
    let path = absolute(options.get_filename());
    if !path.is_file() {
        return Err(format!(
            "no embedded store at {}; start `user-engine serve` (or run `user-engine migrate`) \
             with the same USER_ENGINE_DATA_DIR or USER_ENGINE_DATABASE_URL first",
            path.display()
        ));
    }
    SqliteStore::open(*options, readers).await.map_err(|error| {
        format!(
            "cannot open the embedded store at {}: {error}",
            path.display()
        )
    })
}

/// Whether any platform root exists (to tell a first start from a later one).
///
/// # Errors
/// When the store cannot be read.
pub async fn platform_root_exists(store: &dyn Store) -> Result<bool, String> {
    let mut tx = store
        .begin(TxScope::Platform)
        .await
        .map_err(|error| format!("cannot read the users: {error}"))?;
    let roots = tx
        .count_platform_roots()
        .await
        .map_err(|error| format!("cannot read the users: {error}"))?;
    Ok(roots > 0)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]
mod tests {
    use super::*;

    fn config(url: Option<&str>) -> Config {
        Config {
            database_url: url.map(Secret::new),
            data_dir: PathBuf::from("some/dir"),
            ..Config::default()
        }
    }

    #[test]
    fn no_url_means_the_file_in_the_data_directory() {
        match Location::of(&config(None)) {
            Ok(Location::Sqlite { path, .. }) => {
                assert_eq!(path, Path::new("some/dir/user-engine.db"));
            }
            other => panic!("expected the embedded store, got {other:?}"),
        }
    }

    #[test]
    fn a_sqlite_url_names_the_file_and_a_postgres_url_selects_postgres() {
        match Location::of(&config(Some("sqlite://elsewhere/data.db"))) {
            Ok(Location::Sqlite { path, .. }) => {
                assert_eq!(path, Path::new("elsewhere/data.db"));
            }
            other => panic!("expected a sqlite file, got {other:?}"),
        }
        assert!(matches!(
            Location::of(&config(Some("postgres://u@db/x"))),
            Ok(Location::Postgres(_))
        ));
        assert!(Location::of(&config(Some("sqlite::memory:"))).is_err());
    }
}
