//! The SQL store core shared by the PostgreSQL and SQLite adapters: the store ports
//! implemented once ([`SqlTx`] over a [`Backend`]), what both read and how it becomes
//! domain values.
//!
//! An adapter implements [`Backend`]: its driver glue (connections, transaction phases,
//! row-level security or not, values bound in its encodings: ids as `uuid` or text,
//! timestamps as `timestamptz` or integer microseconds, lists as arrays or JSON) and the
//! SQL that must differ, named one by one in the trait. Every statement else is written
//! once in [`tx`], as a [`Statement`]. After a row is fetched, a row shape of [`rows`]
//! reads it through [`Columns`] and its `into_*` method refuses anything the domain would
//! not accept (`corrupt`). The facts of a decision are assembled once, in
//! [`facts::FactsRow::into_facts`]; what a violated constraint means is said once, in
//! [`constraints::constraint_error`].
//!
//! No driver, no runtime: this crate depends on the domain and on plain data crates only.

pub mod backend;
pub mod columns;
pub mod constraints;
pub mod facts;
pub mod rows;
pub mod scim_filter;
pub mod statement;
pub mod tx;

pub use backend::Backend;
pub use columns::Columns;
pub use constraints::constraint_error;
pub use facts::FactsRow;
pub use statement::{Statement, Value};
pub use tx::SqlTx;

use domain::ports::StoreError;

/// The error for a value the database holds but the domain refuses: a row written
/// behind the store's back, or a bug. It surfaces as an infrastructure failure.
pub fn corrupt(what: &str) -> StoreError {
    StoreError::Unavailable(format!("unreadable {what} in the database"))
}

/// A count, sequence number or position as SQL's signed 64-bit integer.
///
/// # Errors
/// `Unavailable` when `value` does not fit, which no value the store wrote can do.
pub fn to_sql_int(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Unavailable(format!("{what} out of range")))
}

/// A page size as SQL's signed 64-bit integer (`limit`).
///
/// # Errors
/// `Unavailable` when the limit does not fit, which no use case asks.
pub fn to_sql_limit(limit: usize) -> Result<i64, StoreError> {
    i64::try_from(limit).map_err(|_| StoreError::Unavailable("limit out of range".to_owned()))
}

/// A lower bound (`seq > after`, `position > after`) as SQL's signed 64-bit integer, or
/// `None` when it is past every value the store can hold: nothing lies after it, so the
/// adapter answers an empty page without asking the database. (A cursor is checked, not
/// secret, so a client can name such a bound.)
pub fn after_bound(after: u64) -> Option<i64> {
    i64::try_from(after).ok()
}

/// A count, sequence number or position read from SQL.
///
/// # Errors
/// `Unavailable` (corrupt `what`) for a negative value.
pub fn from_sql_int(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(what))
}

/// The outcome of a change to one row the caller names (`update … where <key>`, `delete
/// … where <key>`): `Missing(what)` when the statement changed no row.
///
/// # Errors
/// `Missing(what)` when `changed` is zero.
pub fn require_changed(changed: u64, what: &'static str) -> Result<(), StoreError> {
    if changed == 0 {
        Err(StoreError::Missing(what))
    } else {
        Ok(())
    }
}
