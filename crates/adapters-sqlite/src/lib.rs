//! The embedded store: SQLite in one local file, with the same schema rules as the
//! PostgreSQL store (composite tenant keys, named constraints, CHECKs, an append-only
//! audit table) and the store ports of `domain` over sqlx's bundled SQLite.
//!
//! One process owns the file: it holds an exclusive lock on `<file>.lock` (naming its
//! process id), and a second store opening the file is refused. Writes are serialised: a transaction that writes (or
//! calls `lock_partition`) waits for the one writer connection and runs `BEGIN
//! IMMEDIATE` on it, so the last-admin check cannot race and audit `seq` and feed
//! positions follow commit order. Reads run on a pool of `query_only` connections in
//! deferred transactions (WAL mode lets them proceed while a write is in progress);
//! a transaction that reads and then writes ends its read snapshot before it waits for
//! the writer, so every read after the first write sees the latest commits, as under
//! PostgreSQL's read committed.
//!
//! SQLite has no row-level security: the adapter itself confines a tenant-scoped
//! transaction to its tenant's rows and refuses others loudly, as the in-memory store
//! does (see ARCHITECTURE.md).

mod columns;
mod errors;
mod relay;
mod tx;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::ports::{Store, StoreError, StoreTx, ThrottleCount, TxScope};
use sqlx::migrate::Migrate;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::Mutex;

pub use errors::{code as result_code, codes, constraint, store_error};

/// Migrations embedded in the binary; never edited once landed.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// How long a statement waits for another process holding the database (a second
/// `user-engine` command on the same file) before giving up with a conflict.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The file name of the database inside a data directory.
pub const DATABASE_FILE: &str = "user-engine.db";

/// The one connection that writes, and whether it was left inside a transaction (a
/// dropped transaction whose rollback could not run yet).
/// The lock that makes the file one process's: an exclusive `flock` on `<file>.lock`
/// beside it, held for as long as any clone of the store lives, the file naming the
/// holder's process id. The operating system releases it when the process ends, however
/// it ends.
#[derive(Debug)]
struct OwnerLock {
    _file: std::fs::File,
}

impl OwnerLock {
    /// Takes the lock of the store at `path`.
    ///
    /// # Errors
    /// `Unavailable` naming the process that holds it, or why it could not be taken.
    fn take(path: &Path) -> Result<Self, StoreError> {
        use std::io::{Read, Seek, Write};

        use fs4::fs_std::FileExt;

        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        let lock_path = path.with_file_name(name);
        let unavailable = |what: &str, error: std::io::Error| {
            StoreError::Unavailable(format!("{what} {}: {error}", lock_path.display()))
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|error| unavailable("cannot open the lock file", error))?;
        if !file
            .try_lock_exclusive()
            .map_err(|error| unavailable("cannot lock", error))?
        {
            let mut holder = String::new();
            // The holder's id is informative only; an unreadable one is still refused.
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(StoreError::Unavailable(format!(
                "the embedded store {} is in use by process {} (lock {}): one process \
                 owns it; stop that process or name another file",
                path.display(),
                if holder.is_empty() { "unknown" } else { holder },
                lock_path.display()
            )));
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .and_then(|()| file.flush())
            .map_err(|error| unavailable("cannot write", error))?;
        Ok(Self { _file: file })
    }
}

pub(crate) struct Writer {
    pub(crate) connection: SqliteConnection,
    pub(crate) open: bool,
}

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    readers: SqlitePool,
    writer: Arc<Mutex<Writer>>,
    path: PathBuf,
    _owner: Arc<OwnerLock>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Connection options for a database file (created with its directory if missing).
pub fn file_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new().filename(path)
}

/// Connection options from a `sqlite://` URL (`sqlite://relative/path.db`,
/// `sqlite:///absolute/path.db`).
///
/// # Errors
/// When the URL is not a SQLite URL, or names an in-memory database, which would
/// vanish with the process and cannot be shared by the reader and writer connections.
pub fn url_options(url: &str) -> Result<SqliteConnectOptions, StoreError> {
    if !url.starts_with("sqlite:") {
        return Err(StoreError::Unavailable(format!("not a sqlite: url: {url}")));
    }
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|error| StoreError::Unavailable(format!("invalid sqlite url: {error}")))?;
    if options.get_filename().as_os_str().is_empty()
        || url.contains(":memory:")
        || url.contains("mode=memory")
    {
        return Err(StoreError::Unavailable(
            "an in-memory sqlite database would lose every change at exit; name a file, \
             e.g. sqlite://user-engine-data/user-engine.db"
                .to_owned(),
        ));
    }
    Ok(options)
}

/// The settings every connection gets: WAL (readers proceed during a write), a full
/// sync of the log at every commit (an acknowledged change survives a crash of the
/// process or the machine, as with PostgreSQL's default), foreign keys enforced, and a
/// busy timeout instead of an immediate failure when another process holds the lock.
fn tuned(options: SqliteConnectOptions) -> SqliteConnectOptions {
    options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT)
        .disable_statement_logging()
}

impl SqliteStore {
    /// Opens (creating if missing) the database the options name, and its directory.
    /// `readers` is the size of the read pool. Run [`SqliteStore::migrate`] before use.
    ///
    /// # Errors
    /// When the directory or file cannot be created or opened.
    pub async fn open(options: SqliteConnectOptions, readers: u32) -> Result<Self, StoreError> {
        let path = options.get_filename().to_path_buf();
        if let Some(directory) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            // A directory made here is the owner's alone: the file holds password hashes.
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(directory).map_err(|error| {
                StoreError::Unavailable(format!(
                    "cannot create the data directory {}: {error}",
                    directory.display()
                ))
            })?;
        }
        let owner = OwnerLock::take(&path)?;
        let options = tuned(options);
        // The writer first: it creates the file and switches it to WAL, which the
        // query-only readers could not do.
        let connection = SqliteConnection::connect_with(&options)
            .await
            .map_err(|error| {
                StoreError::Unavailable(format!("cannot open {}: {error}", path.display()))
            })?;
        let readers = SqlitePoolOptions::new()
            .max_connections(readers.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.pragma("query_only", "ON"))
            .await
            .map_err(store_error)?;
        Ok(Self {
            readers,
            writer: Arc::new(Mutex::new(Writer {
                connection,
                open: false,
            })),
            path,
            _owner: Arc::new(owner),
        })
    }

    /// Applies the pending migrations and seeds the default catalog and profile schema
    /// from the domain (adding only what is missing). Returns the migrations this call
    /// applied, as `version description`.
    ///
    /// # Errors
    /// When a migration fails.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let mut writer = self.writer.lock().await;
        let connection = &mut writer.connection;
        connection
            .ensure_migrations_table()
            .await
            .map_err(|error| StoreError::Unavailable(error.to_string()))?;
        let before = connection
            .list_applied_migrations()
            .await
            .map_err(|error| StoreError::Unavailable(error.to_string()))?;
        MIGRATOR
            .run(&mut *connection)
            .await
            .map_err(|error| StoreError::Unavailable(error.to_string()))?;
        drop(writer);
        let mut tx = tx::SqliteTx::new(
            tx::SqliteBackend::new(self.readers.clone(), self.writer.clone()),
            TxScope::Platform,
        );
        tx.seed_defaults().await?;
        Box::new(tx).commit().await?;
        Ok(MIGRATOR
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

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The read pool, for tests and tools (its connections refuse writes).
    pub fn readers(&self) -> &SqlitePool {
        &self.readers
    }

    /// Whether the database answers a trivial query (for readiness checks).
    pub async fn ping(&self) -> bool {
        sqlx::query("select 1").execute(&self.readers).await.is_ok()
    }

    /// Closes every connection; later transactions fail.
    pub async fn close(&self) {
        self.readers.close().await;
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn begin(&self, scope: TxScope) -> Result<Box<dyn StoreTx>, StoreError> {
        // Nothing is opened yet: the first read takes a reader, the first write the
        // writer, so a transaction that only reads never waits for writers.
        Ok(Box::new(tx::SqliteTx::new(
            tx::SqliteBackend::new(self.readers.clone(), self.writer.clone()),
            scope,
        )))
    }

    async fn throttle_hit(
        &self,
        key: &str,
        window: time::Duration,
        now: time::OffsetDateTime,
    ) -> Result<ThrottleCount, StoreError> {
        tx::throttles::throttle_hit(&self.writer, key, window, now).await
    }

    async fn throttle_peek(
        &self,
        key: &str,
        now: time::OffsetDateTime,
    ) -> Result<ThrottleCount, StoreError> {
        tx::throttles::throttle_peek(&self.readers, key, now).await
    }
}
