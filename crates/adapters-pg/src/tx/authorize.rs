//! The store-level reads of a sign-in and of the authorize API, each one statement with
//! no explicit transaction: `find_login`, and `authorize_snapshot` with its facts cache
//! and the probe of the partition heads that keeps the cache fresh.

use domain::ids::Email;
use domain::model::Session;
use domain::ports::{
    AuthorizeSnapshot, Credential, LoginRecord, SnapshotQuery, StoreError, SubjectRef, TxScope,
};
use sqlx::postgres::PgRow;
use store_sql::rows::{tenant_state, KeyRow, LoginRow, SessionRow, Shape};
use store_sql::{corrupt, Columns, FactsRow};
use uuid::Uuid;

use super::USER_COLUMNS;
use crate::columns::Pg;
use crate::errors::store_error;
use crate::facts_cache::{FactsCache, Heads};
use crate::pooling::Db;

/// [`domain::ports::Store::find_login`] in one statement, outside any transaction:
/// users and their credentials are platform tables, which row-level security does not
/// cover, so no setting is needed.
pub(crate) async fn find_login(db: &Db, email: &Email) -> Result<Option<LoginRecord>, StoreError> {
    let mut single = db.single().await.map_err(store_error)?;
    let sql = format!(
        "select u.*, (select c.password_hash from user_credentials c \
                      where c.user_id = u.user_id) as password_hash \
         from (select {USER_COLUMNS} from users where lower(email) = lower($1)) as u"
    );
    let row = Db::query(db.pooling, &sql)
        .bind(email.as_str())
        .fetch_optional(single.conn())
        .await
        .map_err(store_error)?;
    single.done().await.map_err(store_error)?;
    row.map(|row| LoginRow::decode(&Pg(&row))).transpose()
}

/// The session of the `session_*` columns of `authorize_snapshot` and `authorize_probe`
/// (all null when the token hash names none).
fn session(row: &Pg<&PgRow>, token_hash: &str) -> Result<Option<Session>, StoreError> {
    let (Some(user_id), Some(created_at), Some(expires_at), Some(last_seen_at)) = (
        row.uuid_opt("session_user_id")?,
        row.time_opt("session_created_at")?,
        row.time_opt("session_expires_at")?,
        row.time_opt("session_last_seen_at")?,
    ) else {
        return Ok(None);
    };
    SessionRow {
        token_hash: token_hash.to_owned(),
        user_id,
        created_at,
        expires_at,
        last_seen_at,
        aal2_until: row.time_opt("session_aal2_until")?,
    }
    .into_value()
    .map(Some)
}

/// The API key of the `api_key_*` columns of `authorize_snapshot` (null when the token
/// hash names none of the tenant's keys).
fn api_key(row: &Pg<&PgRow>, query: &SnapshotQuery) -> Result<Option<Credential>, StoreError> {
    let (Some(key_id), Some(name), Some(scopes), Some(created_at)) = (
        row.uuid_opt("api_key_id")?,
        row.text_opt("api_key_name")?,
        row.names_opt("api_key_scopes")?,
        row.time_opt("api_key_created_at")?,
    ) else {
        return Ok(None);
    };
    KeyRow {
        tenant_id: query.tenant.to_string(),
        key_id,
        name,
        scopes,
        created_by: row.uuid_opt("api_key_created_by")?,
        created_at,
        revoked_at: row.time_opt("api_key_revoked_at")?,
    }
    .into_value()
    .map(|key| Some(Credential::ApiKey(key)))
}

/// One head of a read: `(audit_seq, event_position)`, `None` where the partition has no
/// head yet.
fn head(
    row: &Pg<&PgRow>,
    audit_seq: &str,
    event_position: &str,
) -> Result<Option<(i64, i64)>, StoreError> {
    Ok(row.int_opt(audit_seq)?.zip(row.int_opt(event_position)?))
}

/// [`domain::ports::Store::authorize_snapshot`]: from the facts cache when a probe of
/// the partition heads (and the session) shows the cached facts still hold, else in one
/// statement that also refreshes the cache. Both run outside any explicit transaction:
/// the SQL functions set the tenant for the statement's own transaction.
pub(crate) async fn authorize_snapshot(
    db: &Db,
    cache: &FactsCache,
    query: &SnapshotQuery,
) -> Result<AuthorizeSnapshot, StoreError> {
    if let Some(cached) = cache.heads_for(query) {
        let session_hash = (!query.api_key).then_some(query.token_hash.as_str());
        let mut single = db.single().await.map_err(store_error)?;
        let rows = Db::query(db.pooling, "select * from authorize_probe($1, $2)")
            .bind(query.tenant.as_str())
            .bind(session_hash)
            .fetch_all(single.conn())
            .await
            .map_err(store_error)?;
        single.done().await.map_err(store_error)?;
        let mut heads = Heads::default();
        let mut found = None;
        for row in &rows {
            let row = Pg(row);
            let head = head(&row, "audit_seq", "event_position")?;
            match row.text_opt("partition")?.as_deref() {
                Some("_platform") => heads.platform = head,
                Some(partition) if partition == query.tenant.as_str() => heads.tenant = head,
                _ => {}
            }
            if let Some(session) = session(&row, &query.token_hash)? {
                found = Some(session);
            }
        }
        if heads == cached {
            if let Some(snapshot) = cache.answer(query, heads, found) {
                return Ok(snapshot);
            }
        }
    }
    let (heads, snapshot) = read_snapshot(db, query).await?;
    cache.keep(query, heads, &snapshot);
    Ok(snapshot)
}

/// The `authorize_snapshot` statement, and the heads it read the facts with.
async fn read_snapshot(
    db: &Db,
    query: &SnapshotQuery,
) -> Result<(Heads, AuthorizeSnapshot), StoreError> {
    let users: Vec<Uuid> = query.checks.iter().map(|c| *c.user.as_uuid()).collect();
    let scopes: Vec<&str> = query.checks.iter().map(|c| c.scope.as_str()).collect();
    let targets: Vec<Option<Uuid>> = query
        .checks
        .iter()
        .map(|c| c.target.map(|target| *target.as_uuid()))
        .collect();
    let mut single = db.single().await.map_err(store_error)?;
    let rows: Vec<PgRow> = Db::query(
        db.pooling,
        "select * from authorize_snapshot($1, $2, $3, $4, $5::uuid[], $6::text[], $7::uuid[])",
    )
    .bind(query.tenant.as_str())
    .bind(&query.token_hash)
    .bind(query.api_key)
    .bind(query.caller_scope.as_str())
    .bind(&users)
    .bind(&scopes)
    .bind(&targets)
    .fetch_all(single.conn())
    .await
    .map_err(store_error)?;
    single.done().await.map_err(store_error)?;
    // 1 for the caller's own scope, then 2… for the checks in order.
    let mut rows = rows
        .iter()
        .map(|row| Ok((Pg(row).int("ord")?, Pg(row))))
        .collect::<Result<Vec<_>, StoreError>>()?;
    rows.sort_unstable_by_key(|(ord, _)| *ord);
    let mut rows = rows.into_iter().map(|(_, row)| row);
    let first = rows.next().ok_or_else(|| corrupt("authorize snapshot"))?;
    let heads = Heads {
        tenant: head(&first, "tenant_audit_seq", "tenant_event_position")?,
        platform: head(&first, "platform_audit_seq", "platform_event_position")?,
    };
    let scope = TxScope::Tenant(query.tenant.clone());
    let facts = FactsRow::read(&first)?;
    let tenant = facts
        .tenant_state
        .as_deref()
        .map(tenant_state)
        .transpose()?;
    let credential = match session(&first, &query.token_hash)? {
        Some(session) => Some(Credential::Session(session)),
        None => api_key(&first, query)?,
    };
    let caller = match &credential {
        Some(credential) => Some(facts.into_facts(&credential.subject(), None, &scope)?),
        None => None,
    };
    let checks = rows
        .zip(&query.checks)
        .map(|(row, check)| {
            FactsRow::read(&row)?.into_facts(&SubjectRef::User(check.user), check.target, &scope)
        })
        .collect::<Result<Vec<_>, _>>()?;
    if checks.len() != query.checks.len() {
        return Err(corrupt("authorize snapshot"));
    }
    Ok((
        heads,
        AuthorizeSnapshot {
            tenant,
            credential,
            caller,
            checks,
        },
    ))
}
