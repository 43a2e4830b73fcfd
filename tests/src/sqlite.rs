//! SQLite test support: a fresh database file per test in the temporary directory,
//! migrated, and removed (with its WAL files) when the last handle goes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use adapters_sqlite::SqliteStore;

use crate::harness::Harness;

/// A database file of one test's own.
#[derive(Debug)]
pub struct TestFile {
    pub path: PathBuf,
    directory: PathBuf,
}

impl TestFile {
    /// A new, empty directory holding nothing yet; the store creates the file.
    pub fn new() -> Self {
        let directory =
            std::env::temp_dir().join(format!("ue-test-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&directory).expect("temporary directory");
        Self {
            path: directory.join(adapters_sqlite::DATABASE_FILE),
            directory,
        }
    }

    /// The directory the file lives in.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// The `sqlite://` URL of the file.
    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    /// Opens and migrates a store over the file.
    pub async fn store(&self) -> SqliteStore {
        let store = SqliteStore::open(adapters_sqlite::file_options(&self.path), 4)
            .await
            .expect("sqlite store opens");
        store.migrate().await.expect("migrations run");
        store
    }

    /// A plain read-write connection (foreign keys on, as the store's), for raw SQL.
    pub async fn connection(&self) -> sqlx::SqliteConnection {
        use sqlx::ConnectOptions;
        adapters_sqlite::file_options(&self.path)
            .foreign_keys(true)
            .busy_timeout(adapters_sqlite::BUSY_TIMEOUT)
            .connect()
            .await
            .expect("sqlite connection")
    }
}

impl Default for TestFile {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// A harness over a fresh SQLite file.
pub async fn harness() -> Harness {
    let file = TestFile::new();
    let store = file.store().await;
    let mut harness = Harness::new(Arc::new(store));
    harness.keep_alive = Some(Arc::new(file));
    harness
}
