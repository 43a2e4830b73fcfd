//! A statement as data: its SQL (placeholders `$1`, `$2`, … in both stores) and the
//! values it binds, typed by what they mean rather than by a driver's types. Each
//! adapter binds a [`Value`] in its own encoding ([`crate::Backend`]): an id as `uuid`
//! or as text, a time as `timestamptz` or as integer microseconds, a list of names as
//! `text[]` or as a JSON array, JSON as `jsonb` or as text, bytes as `bytea` or a blob.

use std::borrow::Cow;

use domain::ports::StoreError;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{to_sql_int, to_sql_limit};

/// One bound value. `None` binds SQL `NULL` of the value's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Flag(bool),
    Id(Option<Uuid>),
    Time(Option<OffsetDateTime>),
    /// A list of names, written to a list column or read by `Backend::each`.
    Names(Vec<String>),
    Json(serde_json::Value),
    Bytes(Option<Vec<u8>>),
}

/// SQL and the values its placeholders bind, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: Cow<'static, str>,
    pub values: Vec<Value>,
}

impl Statement {
    /// A statement binding nothing yet.
    pub fn new(sql: impl Into<Cow<'static, str>>) -> Self {
        Self {
            sql: sql.into(),
            values: Vec::new(),
        }
    }

    fn with(mut self, value: Value) -> Self {
        self.values.push(value);
        self
    }

    /// Binds text.
    #[must_use]
    pub fn text(self, text: &str) -> Self {
        self.with(Value::Text(Some(text.to_owned())))
    }

    /// Binds text or `NULL`.
    #[must_use]
    pub fn text_opt(self, text: Option<&str>) -> Self {
        self.with(Value::Text(text.map(str::to_owned)))
    }

    /// Binds a signed 64-bit integer.
    #[must_use]
    pub fn int(self, value: i64) -> Self {
        self.with(Value::Int(Some(value)))
    }

    /// Binds a signed 64-bit integer or `NULL`.
    #[must_use]
    pub fn int_opt(self, value: Option<i64>) -> Self {
        self.with(Value::Int(value))
    }

    /// Binds a count, version or position as SQL's signed integer.
    ///
    /// # Errors
    /// `Unavailable` when it does not fit ([`to_sql_int`]).
    pub fn count(self, value: u64, what: &str) -> Result<Self, StoreError> {
        Ok(self.int(to_sql_int(value, what)?))
    }

    /// Binds a page size ([`to_sql_limit`]).
    ///
    /// # Errors
    /// `Unavailable` when it does not fit.
    pub fn limit(self, limit: usize) -> Result<Self, StoreError> {
        Ok(self.int(to_sql_limit(limit)?))
    }

    /// Binds a boolean.
    #[must_use]
    pub fn flag(self, value: bool) -> Self {
        self.with(Value::Flag(value))
    }

    /// Binds an id.
    #[must_use]
    pub fn id(self, id: &Uuid) -> Self {
        self.with(Value::Id(Some(*id)))
    }

    /// Binds an id or `NULL`.
    #[must_use]
    pub fn id_opt(self, id: Option<&Uuid>) -> Self {
        self.with(Value::Id(id.copied()))
    }

    /// Binds a time.
    #[must_use]
    pub fn time(self, at: OffsetDateTime) -> Self {
        self.with(Value::Time(Some(at)))
    }

    /// Binds a time or `NULL`.
    #[must_use]
    pub fn time_opt(self, at: Option<OffsetDateTime>) -> Self {
        self.with(Value::Time(at))
    }

    /// Binds a list of names.
    #[must_use]
    pub fn names<'a>(self, names: impl IntoIterator<Item = &'a str>) -> Self {
        self.with(Value::Names(names.into_iter().map(str::to_owned).collect()))
    }

    /// Binds bytes.
    #[must_use]
    pub fn bytes(self, bytes: Vec<u8>) -> Self {
        self.with(Value::Bytes(Some(bytes)))
    }

    /// Binds a JSON value.
    #[must_use]
    pub fn json(self, value: &serde_json::Value) -> Self {
        self.with(Value::Json(value.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_bind_in_the_order_they_are_named() {
        let statement = Statement::new("select $1, $2, $3")
            .text("a")
            .id_opt(None)
            .names(["x", "y"]);
        assert_eq!(
            statement.values,
            vec![
                Value::Text(Some("a".to_owned())),
                Value::Id(None),
                Value::Names(vec!["x".to_owned(), "y".to_owned()]),
            ]
        );
    }

    #[test]
    fn counts_beyond_sql_integers_are_refused() {
        assert!(Statement::new("").count(u64::MAX, "position").is_err());
        assert!(Statement::new("").count(7, "position").is_ok());
    }
}
