//! The store-level reads of a sign-in and of the authorize API, each one statement with
//! no explicit transaction: `find_login`, and `authorize_snapshot` with its facts cache,
//! the probe of the partition heads that keeps the cache fresh and the read of the parts
//! the cache lacks.

use std::collections::HashMap;

use domain::ids::{Email, RoleName, ScopeName, UserId};
use domain::model::Session;
use domain::ports::{AuthorizeSnapshot, LoginRecord, SnapshotQuery, StoreError};
use serde::Deserialize;
use sqlx::postgres::PgRow;
use store_sql::rows::{
    account_state, platform_roles, tenant_state, user_state, KeyRow, LoginRow, ScopeRow,
    SessionRow, Shape,
};
use store_sql::{corrupt, Columns};
use time::OffsetDateTime;
use uuid::Uuid;

use super::USER_COLUMNS;
use crate::columns::Pg;
use crate::errors::store_error;
use crate::facts_cache::{AccountRead, FactsCache, Heads, Needs, Parts, TenantRead, UserFacts};
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

/// The session of the `session_*` columns of the probe and of `authorize_facts`
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

/// The versions of a probe or a read: the tenant's head (`tenant_*` columns) and the
/// platform facts version (both `platform_*` columns).
fn heads(row: &Pg<&PgRow>) -> Result<Heads, StoreError> {
    let head = |audit_seq: &str, event_position: &str| -> Result<_, StoreError> {
        Ok(row.int_opt(audit_seq)?.zip(row.int_opt(event_position)?))
    };
    Ok(Heads {
        tenant: head("tenant_audit_seq", "tenant_event_position")?,
        platform: head("platform_audit_seq", "platform_event_position")?,
    })
}

/// The probe of a session's request: the tenant's head, the platform facts version and
/// the session a token hash names, in one prepared statement of plain SQL
/// (`partition_versions` shows every partition's position and nothing else;
/// `platform_facts_version` and `sessions` are platform tables).
const PROBE: &str = "select th.audit_seq as tenant_audit_seq, \
        th.event_position as tenant_event_position, \
        pv.version as platform_audit_seq, pv.version as platform_event_position, \
        s.user_id as session_user_id, s.created_at as session_created_at, \
        s.expires_at as session_expires_at, s.last_seen_at as session_last_seen_at, \
        s.aal2_until as session_aal2_until \
    from (select 1) as one \
    left join partition_versions th on th.partition = $1 \
    left join platform_facts_version pv on true \
    left join sessions s on s.token_hash = $2";

/// The probe of an API key's request: the versions alone (the key itself is a part of
/// the tenant's, versioned by its head), which spares the database the session lookup.
const PROBE_HEADS: &str = "select th.audit_seq as tenant_audit_seq, \
        th.event_position as tenant_event_position, \
        pv.version as platform_audit_seq, pv.version as platform_event_position \
    from (select 1) as one \
    left join partition_versions th on th.partition = $1 \
    left join platform_facts_version pv on true";

/// [`domain::ports::Store::authorize_snapshot`]: when the cache holds every part the
/// query needs, one probe of the heads (and the session) and the snapshot from the
/// cache; else, or when a head has moved, one `authorize_facts` statement reading only
/// the missing parts. Should a head move between the cache's parts and that read, a
/// second read takes every part. Both statements run outside any explicit transaction.
pub(crate) async fn authorize_snapshot(
    db: &Db,
    cache: &FactsCache,
    query: &SnapshotQuery,
) -> Result<AuthorizeSnapshot, StoreError> {
    let session_hash = (!query.api_key).then_some(query.token_hash.as_str());
    let mut needs = cache.needs(query, None, None);
    if needs.nothing() {
        let mut single = db.single().await.map_err(store_error)?;
        let probe = match session_hash {
            Some(hash) => Db::query(db.pooling, PROBE)
                .bind(query.tenant.as_str())
                .bind(hash),
            None => Db::query(db.pooling, PROBE_HEADS).bind(query.tenant.as_str()),
        };
        let row = probe.fetch_one(single.conn()).await.map_err(store_error)?;
        single.done().await.map_err(store_error)?;
        let row = Pg(&row);
        let session = match session_hash {
            Some(_) => session(&row, &query.token_hash)?,
            None => None,
        };
        let heads = heads(&row)?;
        let session_user = session.as_ref().map(|session| session.user_id);
        if let Some(snapshot) = cache.assemble(query, heads, session, None) {
            return Ok(snapshot);
        }
        // A head moved, or the session's user is not held: what to read at these heads.
        needs = cache.needs(query, Some(heads), session_user);
    }
    for _ in 0..2 {
        cache.count_read();
        let (heads, session, parts) = read_parts(db, query, &needs).await?;
        let kept = cache.keep(query, heads, &needs, parts);
        let session_user = session.as_ref().map(|session| session.user_id);
        if let Some(snapshot) = cache.assemble(query, heads, session, Some(&kept)) {
            return Ok(snapshot);
        }
        needs = Needs::everything(query, session_user);
    }
    Err(corrupt("authorize facts"))
}

/// One `authorize_facts` statement: the heads, the session and the parts of `needs`.
async fn read_parts(
    db: &Db,
    query: &SnapshotQuery,
    needs: &Needs,
) -> Result<(Heads, Option<Session>, Parts), StoreError> {
    let users: Vec<Uuid> = needs.users.iter().map(|user| *user.as_uuid()).collect();
    let accounts: Vec<Uuid> = needs.accounts.iter().map(|user| *user.as_uuid()).collect();
    let session_hash = (!query.api_key).then_some(query.token_hash.as_str());
    let key_hash = needs.key.then_some(query.token_hash.as_str());
    let mut single = db.single().await.map_err(store_error)?;
    let row = Db::query(
        db.pooling,
        "select * from authorize_facts($1, $2, $3, $4, $5, $6::uuid[], $7::uuid[])",
    )
    .bind(query.tenant.as_str())
    .bind(session_hash)
    .bind(key_hash)
    .bind(needs.tenant)
    .bind(needs.catalog)
    .bind(&users)
    .bind(&accounts)
    .fetch_one(single.conn())
    .await
    .map_err(store_error)?;
    single.done().await.map_err(store_error)?;
    let row = Pg(&row);
    let document: ReadJson =
        serde_json::from_str(&row.text("facts")?).map_err(|_| corrupt("authorize facts"))?;
    let parts = document.into_parts(query, needs)?;
    Ok((heads(&row)?, session(&row, &query.token_hash)?, parts))
}

/// The `facts` document of `authorize_facts` (see its migration).
#[derive(Deserialize)]
struct ReadJson {
    tenant: Option<TenantJson>,
    key: Option<KeyJson>,
    catalog: Option<Vec<ScopeJson>>,
    users: Vec<(Uuid, String, Vec<String>)>,
    accounts: Vec<(Uuid, String, Vec<String>)>,
}

#[derive(Deserialize)]
struct TenantJson {
    state: String,
    scopes: Vec<String>,
    bindings: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct KeyJson {
    id: Uuid,
    name: String,
    scopes: Vec<String>,
    created_by: Option<Uuid>,
    created_at: i64,
    revoked_at: Option<i64>,
}

#[derive(Deserialize)]
struct ScopeJson {
    name: String,
    description: String,
    platform_only: bool,
    min_assurance: String,
}

fn scope_name(name: &str) -> Result<ScopeName, StoreError> {
    ScopeName::parse(name).map_err(|_| corrupt("scope name"))
}

fn micros(at: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000).map_err(|_| corrupt("time"))
}

impl ReadJson {
    fn into_parts(self, query: &SnapshotQuery, needs: &Needs) -> Result<Parts, StoreError> {
        let role = |name: &str| RoleName::parse(name).map_err(|_| corrupt("role"));
        let tenant = match self.tenant {
            Some(tenant) => Some(TenantRead {
                state: tenant_state(&tenant.state)?,
                enabled: tenant
                    .scopes
                    .iter()
                    .map(|scope| scope_name(scope))
                    .collect::<Result<_, _>>()?,
                bindings: tenant
                    .bindings
                    .iter()
                    .map(|(name, scope)| Ok((role(name)?, scope_name(scope)?)))
                    .collect::<Result<_, StoreError>>()?,
            }),
            None => None,
        };
        let key = match self.key {
            Some(key) => Some(
                KeyRow {
                    tenant_id: query.tenant.to_string(),
                    key_id: key.id,
                    name: key.name,
                    scopes: key.scopes,
                    created_by: key.created_by,
                    created_at: micros(key.created_at)?,
                    revoked_at: key.revoked_at.map(micros).transpose()?,
                }
                .into_value()?,
            ),
            None => None,
        };
        let catalog = match self.catalog {
            Some(scopes) => Some(
                scopes
                    .into_iter()
                    .map(|scope| {
                        ScopeRow {
                            name: scope.name,
                            description: scope.description,
                            platform_only: scope.platform_only,
                            min_assurance: scope.min_assurance,
                        }
                        .into_value()
                    })
                    .collect::<Result<Vec<_>, StoreError>>()?,
            ),
            None => None,
        };
        let users = self
            .users
            .into_iter()
            .map(|(id, state, names)| {
                Ok((
                    UserId::from_generated(id),
                    Some(UserFacts {
                        state: user_state(&state)?,
                        platform_roles: platform_roles(&names)?,
                    }),
                ))
            })
            .collect::<Result<HashMap<_, _>, StoreError>>()?;
        let accounts = self
            .accounts
            .into_iter()
            .map(|(id, state, names)| {
                Ok((
                    UserId::from_generated(id),
                    Some(AccountRead {
                        state: account_state(&state)?,
                        roles: names
                            .iter()
                            .map(|name| role(name))
                            .collect::<Result<_, _>>()?,
                    }),
                ))
            })
            .collect::<Result<HashMap<_, _>, StoreError>>()?;
        Ok(Parts {
            tenant: needs.tenant.then_some(tenant),
            key: needs.key.then_some(key),
            catalog: if needs.catalog { catalog } else { None },
            users: needs
                .users
                .iter()
                .map(|user| (*user, users.get(user).cloned().flatten()))
                .collect(),
            accounts: needs
                .accounts
                .iter()
                .map(|user| (*user, accounts.get(user).cloned().flatten()))
                .collect(),
        })
    }
}
