//! The throttle counters (`throttles`, no tenant, no row-level security): one atomic
//! upsert per attempt, committed at once, outside any store transaction.

use domain::ports::{StoreError, ThrottleCount};
use store_sql::corrupt;
use time::OffsetDateTime;

use crate::errors::store_error;
use crate::pooling::Db;

/// How many ended throttle windows one new window sweeps away: enough to keep up with
/// the rate windows start at, small enough to cost little.
const THROTTLE_SWEEP: i64 = 100;

/// [`Store::throttle_hit`](domain::ports::Store::throttle_hit): one atomic upsert that
/// starts a window or counts in the running one, committed at once.
pub(crate) async fn throttle_hit(
    db: &Db,
    key: &str,
    window: time::Duration,
    now: OffsetDateTime,
) -> Result<ThrottleCount, StoreError> {
    let mut single = db.single().await.map_err(store_error)?;
    let (hits, window_ends_at): (i32, OffsetDateTime) = Db::query_as(
        db.pooling,
        "insert into throttles as t (key, window_ends_at, hits) values ($1, $3, 1) \
         on conflict (key) do update set \
         window_ends_at = case when t.window_ends_at <= $2 then excluded.window_ends_at \
             else t.window_ends_at end, \
         hits = case when t.window_ends_at <= $2 then 1 \
             else least(t.hits, 2147483646) + 1 end \
         returning hits, window_ends_at",
    )
    .bind(key)
    .bind(now)
    .bind(now + window)
    .fetch_one(single.conn())
    .await
    .map_err(store_error)?;
    if hits == 1 {
        // A new window: sweep a few ended ones, so the table holds about the live
        // windows only. Rows another sweep holds are skipped, not waited for.
        Db::query(
            db.pooling,
            "delete from throttles where key in (select key from throttles \
             where window_ends_at <= $1 limit $2 for update skip locked)",
        )
        .bind(now)
        .bind(THROTTLE_SWEEP)
        .execute(single.conn())
        .await
        .map_err(store_error)?;
    }
    single.done().await.map_err(store_error)?;
    Ok(ThrottleCount {
        hits: u32::try_from(hits).map_err(|_| corrupt("throttle hits"))?,
        window_ends_at,
    })
}

/// [`Store::throttle_peek`](domain::ports::Store::throttle_peek): one read.
pub(crate) async fn throttle_peek(
    db: &Db,
    key: &str,
    now: OffsetDateTime,
) -> Result<ThrottleCount, StoreError> {
    let mut single = db.single().await.map_err(store_error)?;
    let row: Option<(i32, OffsetDateTime)> = Db::query_as(
        db.pooling,
        "select hits, window_ends_at from throttles where key = $1 and window_ends_at > $2",
    )
    .bind(key)
    .bind(now)
    .fetch_optional(single.conn())
    .await
    .map_err(store_error)?;
    single.done().await.map_err(store_error)?;
    Ok(match row {
        Some((hits, window_ends_at)) => ThrottleCount {
            hits: u32::try_from(hits).map_err(|_| corrupt("throttle hits"))?,
            window_ends_at,
        },
        None => ThrottleCount {
            hits: 0,
            window_ends_at: now,
        },
    })
}
