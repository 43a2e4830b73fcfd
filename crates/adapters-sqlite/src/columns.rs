//! SQLite's side of the shared row shapes: `store_sql::Columns` over a `SqliteRow`, and
//! the encodings SQLite keeps in place of PostgreSQL's types: ids as text, timestamps as
//! integer microseconds, lists as JSON arrays (`json_group_array` reading a child table,
//! `json_each` writing one), JSON as text.

use std::borrow::Borrow;

use domain::ports::StoreError;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite};
use store_sql::{corrupt, Columns};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::errors::store_error;

/// A fetched row, owned or borrowed, read through [`Columns`].
pub(crate) struct Lite<R = SqliteRow>(pub(crate) R);

impl<R: Borrow<SqliteRow>> Lite<R> {
    fn get<'r, T>(&'r self, name: &str) -> Result<T, StoreError>
    where
        T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
    {
        self.0.borrow().try_get(name).map_err(store_error)
    }

    /// A text column, decoded by `parse` (which names what it reads when it fails).
    fn parsed<T>(
        &self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        self.get::<Option<String>>(name)?
            .as_deref()
            .map(parse)
            .transpose()
    }
}

impl<R: Borrow<SqliteRow>> Columns for Lite<R> {
    fn text_opt(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.get(name)
    }

    fn int_opt(&self, name: &str) -> Result<Option<i64>, StoreError> {
        self.get(name)
    }

    fn flag_opt(&self, name: &str) -> Result<Option<bool>, StoreError> {
        self.get(name)
    }

    fn uuid_opt(&self, name: &str) -> Result<Option<Uuid>, StoreError> {
        self.parsed(name, |text| {
            Uuid::parse_str(text).map_err(|_| corrupt("id"))
        })
    }

    fn time_opt(&self, name: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        self.get::<Option<i64>>(name)?.map(timestamp).transpose()
    }

    fn names_opt(&self, name: &str) -> Result<Option<Vec<String>>, StoreError> {
        self.parsed(name, |json| {
            serde_json::from_str(json).map_err(|_| corrupt("name list"))
        })
    }

    fn json_opt(&self, name: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.parsed(name, |json| {
            serde_json::from_str(json).map_err(|_| corrupt(name))
        })
    }

    fn bytes_opt(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(name)
    }
}

/// Microseconds since the Unix epoch: what every timestamp column holds.
///
/// # Errors
/// `Unavailable` for a time SQLite's integers cannot hold (no `OffsetDateTime` of
/// years -9999 to 9999 is one: they span about ±3.2e17 microseconds).
pub(crate) fn micros(at: OffsetDateTime) -> Result<i64, StoreError> {
    i64::try_from(at.unix_timestamp_nanos() / 1_000)
        .map_err(|_| StoreError::Unavailable(format!("time out of range: {at}")))
}

/// The time `micros` microseconds after the Unix epoch.
///
/// # Errors
/// `Unavailable` (corrupt) for a value no `OffsetDateTime` has.
pub(crate) fn timestamp(micros: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map_err(|_| corrupt("timestamp"))
}
