//! Database errors to store errors: PostgreSQL names the violated constraint, and
//! `store_sql::constraint_error` says what it means (never by message text).

use domain::ports::StoreError;

/// Maps a sqlx error to the store error a use case understands.
pub fn store_error(error: sqlx::Error) -> StoreError {
    let sqlx::Error::Database(database) = &error else {
        return StoreError::Unavailable(error.to_string());
    };
    // serialization_failure and deadlock_detected: the transaction may be retried.
    if matches!(database.code().as_deref(), Some("40001" | "40P01")) {
        return StoreError::Conflict;
    }
    database
        .constraint()
        .and_then(store_sql::constraint_error)
        .unwrap_or_else(|| StoreError::Unavailable(error.to_string()))
}
