//! Which store the binary runs on: PostgreSQL when `USER_ENGINE_DATABASE_URL` is a
//! `postgres://` URL, else the embedded SQLite store — the file a `sqlite://` URL names,
//! or `user-engine.db` in `USER_ENGINE_DATA_DIR` when no URL is set, so `serve` needs no
//! other process. Past this module the binary sees a `Store` and a `Readiness`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use adapters_pg::PgStore;
use adapters_sqlite::SqliteStore;
use domain::ports::{Store, TxScope};
use sqlx::sqlite::SqliteConnectOptions;

use crate::app::Readiness;
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

    pub fn readiness(&self) -> Arc<dyn Readiness> {
        match self {
            Self::Postgres(store) => Arc::new(store.clone()),
            Self::Sqlite(store) => Arc::new(store.clone()),
        }
    }

    /// The PostgreSQL store, for what only it supports (the outbox relay).
    pub fn postgres(&self) -> Option<&PgStore> {
        match self {
            Self::Postgres(store) => Some(store),
            Self::Sqlite(_) => None,
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
                "cannot open the embedded store at {} ({error}); check that the directory is \
             writable, or set USER_ENGINE_DATA_DIR elsewhere",
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
