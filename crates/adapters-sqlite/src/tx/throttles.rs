//! The throttle counters (`throttles`): an upsert on the writer, outside any store
//! transaction, so it commits at once and counts atomically (writes are serialised).

use domain::ports::{StoreError, ThrottleCount};
use sqlx::sqlite::SqlitePool;
use store_sql::corrupt;
use time::OffsetDateTime;
use tokio::sync::Mutex;

use super::rollback;
use crate::columns::{micros, timestamp};
use crate::errors::store_error;
use crate::Writer;

/// How many ended throttle windows one new window sweeps away.
const THROTTLE_SWEEP: i64 = 100;

/// [`Store::throttle_hit`](domain::ports::Store::throttle_hit): one upsert on the writer,
/// outside any transaction (so it commits at once). Writes are serialised, so the count
/// is atomic.
pub(crate) async fn throttle_hit(
    writer: &Mutex<Writer>,
    key: &str,
    window: time::Duration,
    now: OffsetDateTime,
) -> Result<ThrottleCount, StoreError> {
    let mut writer = writer.lock().await;
    if writer.open {
        // A dropped transaction whose rollback could not be spawned.
        rollback(&mut writer).await;
    }
    let (hits, window_ends_at): (i64, i64) = sqlx::query_as(
        "insert into throttles (key, window_ends_at, hits) values (?1, ?3, 1) \
         on conflict (key) do update set \
         window_ends_at = case when window_ends_at <= ?2 then excluded.window_ends_at \
             else window_ends_at end, \
         hits = case when window_ends_at <= ?2 then 1 else min(hits, 2147483646) + 1 end \
         returning hits, window_ends_at",
    )
    .bind(key)
    .bind(micros(now)?)
    .bind(micros(now + window)?)
    .fetch_one(&mut writer.connection)
    .await
    .map_err(store_error)?;
    if hits == 1 {
        // A new window: sweep a few ended ones, so the table holds about the live ones.
        sqlx::query(
            "delete from throttles where key in (select key from throttles \
             where window_ends_at <= ?1 limit ?2)",
        )
        .bind(micros(now)?)
        .bind(THROTTLE_SWEEP)
        .execute(&mut writer.connection)
        .await
        .map_err(store_error)?;
    }
    Ok(ThrottleCount {
        hits: u32::try_from(hits).map_err(|_| corrupt("throttle hits"))?,
        window_ends_at: timestamp(window_ends_at)?,
    })
}

/// [`Store::throttle_peek`](domain::ports::Store::throttle_peek): one read on a reader.
pub(crate) async fn throttle_peek(
    readers: &SqlitePool,
    key: &str,
    now: OffsetDateTime,
) -> Result<ThrottleCount, StoreError> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "select hits, window_ends_at from throttles where key = ?1 and window_ends_at > ?2",
    )
    .bind(key)
    .bind(micros(now)?)
    .fetch_optional(readers)
    .await
    .map_err(store_error)?;
    Ok(match row {
        Some((hits, window_ends_at)) => ThrottleCount {
            hits: u32::try_from(hits).map_err(|_| corrupt("throttle hits"))?,
            window_ends_at: timestamp(window_ends_at)?,
        },
        None => ThrottleCount {
            hits: 0,
            window_ends_at: now,
        },
    })
}
