//! What an SQL adapter gives the one implementation of the store ports
//! ([`crate::SqlTx`]): its driver glue and the SQL that must differ, nothing else.
//!
//! The glue is how a [`Statement`] runs (its [`Value`](crate::Value)s bound in the
//! store's own encodings, on the connection the transaction's phase calls for), how a
//! partition's chain end is found and locked, and commit. The SQL that must differ is
//! small and named here: a list as an array or as a child table, bytewise ordering, the
//! schema's two list columns that SQLite keeps as child tables, the decision-facts
//! statement, and a member insert PostgreSQL does in one round trip.

use async_trait::async_trait;
use domain::audit::{AuditRecord, Partition};
use domain::model::{ApiKey, Member, User};
use domain::ports::StoreError;

use crate::{Columns, Statement};

/// One store transaction's connection to its database, for [`crate::SqlTx`].
#[async_trait]
pub trait Backend: Send + 'static {
    /// A fetched row.
    type Row: Columns + Send;

    /// Whether the core checks, before a write, the references and unique keys the
    /// write relies on (and reports `Missing`/`Duplicate` itself): true where the
    /// database's errors do not name the constraint they violate (SQLite's foreign
    /// keys), false where [`crate::constraint_error`] maps every violation by name.
    const CHECKS_BEFORE_WRITE: bool;

    /// What follows an ordering expression to make it bytewise: ` collate "C"` where
    /// the database's default collation is a locale's, empty where it is bytewise.
    const BYTEWISE: &'static str;

    /// What ends a `select` that claims rows for a worker: ` for update skip locked`
    /// where several workers run at once, empty where one writer serialises them.
    const SKIP_LOCKED: &'static str;

    /// What ends a `select` that locks the rows a statement will change, in its order:
    /// ` for update` where writers run at once (so that two of them lock a set of rows
    /// in the same order and cannot deadlock), empty where one writer serialises them.
    const FOR_UPDATE: &'static str;

    /// Runs a statement that changes rows, in the transaction's writing phase; the
    /// number of rows it changed.
    ///
    /// # Errors
    /// `Duplicate`/`Missing` for a violated constraint, `Conflict`, `Unavailable`.
    async fn execute(&mut self, statement: Statement) -> Result<u64, StoreError>;

    /// The rows a statement that only reads returns.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn fetch(&mut self, statement: Statement) -> Result<Vec<Self::Row>, StoreError>;

    /// The rows a statement returns in the writing phase: a write's `returning`, or a
    /// check that must see every commit the coming write could conflict with.
    ///
    /// # Errors
    /// As [`Backend::execute`].
    async fn fetch_writing(&mut self, statement: Statement) -> Result<Vec<Self::Row>, StoreError>;

    /// Commits.
    ///
    /// # Errors
    /// `Conflict` or `Unavailable`; nothing is then committed.
    async fn commit(self) -> Result<(), StoreError>;

    /// Locks `partition`'s audit trail and event feed until commit, so its appends
    /// follow commit order.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn lock_partition(&mut self, partition: &Partition) -> Result<(), StoreError>;

    /// The partition's last audit `seq` and hash (0 and the genesis hash for an empty
    /// trail), with the partition locked until commit.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn audit_head(&mut self, partition: &Partition) -> Result<(u64, String), StoreError>;

    /// A `with` clause put before the audit insert, keeping the chain's end where the
    /// store keeps it (`$1` partition, `$2` seq, `$15` hash); empty where the trail is
    /// its own end.
    const AUDIT_HEAD_UPDATE: &'static str;

    /// Notes a record appended by this transaction (its chain's new end).
    fn audit_appended(&mut self, record: &AuditRecord);

    /// The partition's last event position (0 for an empty feed), with the partition
    /// locked until commit.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn event_head(&mut self, partition: &Partition) -> Result<u64, StoreError>;

    /// A `with` clause put before the event insert (`$1` partition, `$2` position), as
    /// [`Backend::AUDIT_HEAD_UPDATE`].
    const EVENT_HEAD_UPDATE: &'static str;

    /// Notes an event appended by this transaction at `position`.
    fn event_appended(&mut self, partition: &Partition, position: u64);

    /// Rows of the names in list parameter `$param`, as a `select` list item whose
    /// column is the name: `unnest($3::text[])`, `value from json_each($3)`.
    fn each(param: usize) -> String;

    /// A list column: the names `select {expr} from {from}` returns, as one value.
    fn list(expr: &str, from: &str) -> String;

    /// The text of a JSON string column (a profile value): `v #>> '{}'`,
    /// `json_extract(v, '$')`.
    fn json_text(expr: &str) -> String;

    /// `select` of [`crate::rows::UserRow`]'s columns `from users u` (platform roles in
    /// a column, or gathered from their table).
    const USER_SELECT: &'static str;

    /// The statements that write a user's row and platform roles (`insert` when
    /// `insert`, else `update … where user_id`, whose changed-row count comes first).
    fn write_user(user: &User, insert: bool) -> Vec<Statement>;

    /// `… from users u where` a user holds the platform root role.
    const PLATFORM_ROOTS: &'static str;

    /// `select` of [`crate::rows::KeyRow`]'s columns `from api_keys k`.
    const KEY_SELECT: &'static str;

    /// The statements that insert a key with its scopes.
    fn insert_key(key: &ApiKey, secret_hash: &str) -> Vec<Statement>;

    /// The statements that insert an account with its roles.
    ///
    /// # Errors
    /// `Unavailable` for a version SQL cannot hold.
    fn insert_member(member: &Member) -> Result<Vec<Statement>, StoreError>;

    /// The decision-facts statement, returning [`crate::FactsRow`]'s columns: `$1`
    /// tenant, `$2` subject user, `$3` subject key, `$4` scope, `$5` target user.
    const FACTS_QUERY: &'static str;
}
