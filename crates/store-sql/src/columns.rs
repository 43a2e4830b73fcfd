//! How a row shape reads its columns, whatever the driver: the one interface each SQL
//! adapter implements for its row type.
//!
//! Each method decodes a column the way its store keeps it: a PostgreSQL `uuid`,
//! `timestamptz`, `text[]` or `jsonb` column, or the SQLite text, integer microseconds,
//! JSON array (from `json_group_array`) or JSON text that stands for it. A `NULL` reads
//! as `None` from the `*_opt` methods; the others refuse it. A column that cannot be
//! decoded is `Unavailable`.

use domain::ports::StoreError;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::corrupt;

/// A fetched row, read column by column by name.
pub trait Columns {
    /// A text column.
    ///
    /// # Errors
    /// `Unavailable` when the column is missing or not text.
    fn text_opt(&self, name: &str) -> Result<Option<String>, StoreError>;
    /// A 64-bit integer column.
    ///
    /// # Errors
    /// `Unavailable` when the column is missing or not an integer.
    fn int_opt(&self, name: &str) -> Result<Option<i64>, StoreError>;
    /// A boolean column.
    ///
    /// # Errors
    /// `Unavailable` when the column is missing or not a boolean.
    fn flag_opt(&self, name: &str) -> Result<Option<bool>, StoreError>;
    /// An id column (`uuid` in PostgreSQL, its text in SQLite).
    ///
    /// # Errors
    /// `Unavailable` when the column is missing or not an id.
    fn uuid_opt(&self, name: &str) -> Result<Option<Uuid>, StoreError>;
    /// A timestamp column (`timestamptz`, or microseconds since the epoch).
    ///
    /// # Errors
    /// `Unavailable` when the column is missing or not a timestamp.
    fn time_opt(&self, name: &str) -> Result<Option<OffsetDateTime>, StoreError>;
    /// A list of names (`text[]`, or a JSON array of strings).
    ///
    /// # Errors
    /// `Unavailable` when the column is missing or not a list of names.
    fn names_opt(&self, name: &str) -> Result<Option<Vec<String>>, StoreError>;
    /// A JSON column (`jsonb`, or JSON text).
    ///
    /// # Errors
    /// `Unavailable` when the column is missing or not JSON.
    fn json_opt(&self, name: &str) -> Result<Option<serde_json::Value>, StoreError>;
    /// A bytes column (`bytea`, or a blob).
    ///
    /// # Errors
    /// `Unavailable` when the column is missing or not bytes.
    fn bytes_opt(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// [`Columns::text_opt`], refusing `NULL`.
    ///
    /// # Errors
    /// `Unavailable` as there, and for `NULL`.
    fn text(&self, name: &str) -> Result<String, StoreError> {
        self.text_opt(name)?.ok_or_else(|| corrupt(name))
    }
    /// [`Columns::int_opt`], refusing `NULL`.
    ///
    /// # Errors
    /// `Unavailable` as there, and for `NULL`.
    fn int(&self, name: &str) -> Result<i64, StoreError> {
        self.int_opt(name)?.ok_or_else(|| corrupt(name))
    }
    /// [`Columns::flag_opt`], refusing `NULL`.
    ///
    /// # Errors
    /// `Unavailable` as there, and for `NULL`.
    fn flag(&self, name: &str) -> Result<bool, StoreError> {
        self.flag_opt(name)?.ok_or_else(|| corrupt(name))
    }
    /// [`Columns::uuid_opt`], refusing `NULL`.
    ///
    /// # Errors
    /// `Unavailable` as there, and for `NULL`.
    fn uuid(&self, name: &str) -> Result<Uuid, StoreError> {
        self.uuid_opt(name)?.ok_or_else(|| corrupt(name))
    }
    /// [`Columns::time_opt`], refusing `NULL`.
    ///
    /// # Errors
    /// `Unavailable` as there, and for `NULL`.
    fn time(&self, name: &str) -> Result<OffsetDateTime, StoreError> {
        self.time_opt(name)?.ok_or_else(|| corrupt(name))
    }
    /// [`Columns::names_opt`], reading `NULL` as no names (an empty aggregate).
    ///
    /// # Errors
    /// `Unavailable` as there.
    fn names(&self, name: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.names_opt(name)?.unwrap_or_default())
    }
    /// [`Columns::json_opt`], refusing `NULL`.
    ///
    /// # Errors
    /// `Unavailable` as there, and for `NULL`.
    fn json(&self, name: &str) -> Result<serde_json::Value, StoreError> {
        self.json_opt(name)?.ok_or_else(|| corrupt(name))
    }
}
