//! PostgreSQL's side of the shared row shapes: `store_sql::Columns` over a `PgRow`
//! (`uuid`, `timestamptz`, `text[]` and `jsonb` columns, decoded by sqlx).

use std::borrow::Borrow;

use domain::ports::StoreError;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row};
use store_sql::Columns;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::errors::store_error;

/// A fetched row, owned or borrowed, read through [`Columns`].
pub(crate) struct Pg<R = PgRow>(pub(crate) R);

impl<R: Borrow<PgRow>> Pg<R> {
    fn get<'r, T>(&'r self, name: &str) -> Result<T, StoreError>
    where
        T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
    {
        self.0.borrow().try_get(name).map_err(store_error)
    }
}

impl<R: Borrow<PgRow>> Columns for Pg<R> {
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
        self.get(name)
    }

    fn time_opt(&self, name: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        self.get(name)
    }

    fn names_opt(&self, name: &str) -> Result<Option<Vec<String>>, StoreError> {
        self.get(name)
    }

    fn json_opt(&self, name: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.get(name)
    }

    fn bytes_opt(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(name)
    }
}
