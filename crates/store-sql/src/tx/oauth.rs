//! [`OAuth`]: the provider's clients (`platform_oauth_clients`, a platform table;
//! `oauth_clients`, tenant rows) and grants (`oauth_grants`, tenant rows). A grant is
//! taken by one `update … returning` guarded by `used_at is null`: of concurrent takes
//! one changes the row, the others find it spent.

use std::collections::BTreeSet;

use async_trait::async_trait;
use domain::ids::{Assurance, ScopeName, SessionId, TenantId, UserId};
use domain::model::Session;
use domain::oidc::{ClientId, ClientType, Consent, Grant, GrantKind, OAuthClient, Taken};
use domain::ports::{OAuth, StoreError};
use time::OffsetDateTime;
use uuid::Uuid;

use super::SqlTx;
use crate::columns::Columns;
use crate::rows::{SessionRow, Shape, SESSION_COLUMNS};
use crate::{corrupt, Backend, Statement};

const CLIENT_COLUMNS: &str = "client_id, name, client_type, secret_hash, redirect_uris, \
    post_logout_redirect_uris, first_party, created_at";

/// A client row of either table; `tenant_id` and `scopes` only in the tenant's.
struct ClientRow {
    tenant_id: Option<String>,
    client_id: Uuid,
    name: String,
    client_type: String,
    secret_hash: Option<String>,
    redirect_uris: serde_json::Value,
    post_logout_redirect_uris: serde_json::Value,
    scopes: Option<serde_json::Value>,
    first_party: bool,
    created_at: OffsetDateTime,
}

fn strings(value: &serde_json::Value, what: &str) -> Result<Vec<String>, StoreError> {
    value
        .as_array()
        .ok_or_else(|| corrupt(what))?
        .iter()
        .map(|item| {
            item.as_str()
                .map(str::to_owned)
                .ok_or_else(|| corrupt(what))
        })
        .collect()
}

fn json_strings<'a>(items: impl IntoIterator<Item = &'a str>) -> serde_json::Value {
    serde_json::Value::Array(
        items
            .into_iter()
            .map(|item| serde_json::Value::String(item.to_owned()))
            .collect(),
    )
}

impl ClientRow {
    /// Reads the common columns, and `tenant_id` and `scopes` from a tenant's table.
    fn read_from<C: Columns + ?Sized>(row: &C, tenant: bool) -> Result<Self, StoreError> {
        Ok(Self {
            tenant_id: if tenant {
                Some(row.text("tenant_id")?)
            } else {
                None
            },
            client_id: row.uuid("client_id")?,
            name: row.text("name")?,
            client_type: row.text("client_type")?,
            secret_hash: row.text_opt("secret_hash")?,
            redirect_uris: row.json("redirect_uris")?,
            post_logout_redirect_uris: row.json("post_logout_redirect_uris")?,
            scopes: if tenant {
                Some(row.json("scopes")?)
            } else {
                None
            },
            first_party: row.flag("first_party")?,
            created_at: row.time("created_at")?,
        })
    }

    fn into_client(self) -> Result<(OAuthClient, Option<String>), StoreError> {
        let id = match &self.tenant_id {
            Some(tenant) => ClientId::tenant(crate::rows::tenant_id(tenant)?, self.client_id),
            None => ClientId::platform(self.client_id),
        };
        let scopes = match &self.scopes {
            Some(scopes) => strings(scopes, "client scopes")?
                .iter()
                .map(|name| ScopeName::parse(name).map_err(|_| corrupt("client scope")))
                .collect::<Result<BTreeSet<_>, _>>()?,
            None => BTreeSet::new(),
        };
        let client = OAuthClient {
            id,
            name: self.name,
            client_type: ClientType::parse(&self.client_type)
                .ok_or_else(|| corrupt("client type"))?,
            redirect_uris: strings(&self.redirect_uris, "redirect uris")?,
            post_logout_redirect_uris: strings(
                &self.post_logout_redirect_uris,
                "post-logout redirect uris",
            )?,
            scopes,
            first_party: self.first_party,
            created_at: self.created_at,
        };
        Ok((client, self.secret_hash))
    }
}

/// A row of `oauth_clients`.
struct TenantClientRow(ClientRow);

impl Shape for TenantClientRow {
    type Value = (OAuthClient, Option<String>);

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        ClientRow::read_from(row, true).map(Self)
    }

    fn into_value(self) -> Result<Self::Value, StoreError> {
        self.0.into_client()
    }
}

/// A row of `platform_oauth_clients`.
struct PlatformClientRow(ClientRow);

impl Shape for PlatformClientRow {
    type Value = (OAuthClient, Option<String>);

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        ClientRow::read_from(row, false).map(Self)
    }

    fn into_value(self) -> Result<Self::Value, StoreError> {
        self.0.into_client()
    }
}

const GRANT_COLUMNS: &str = "tenant_id, token_hash, kind, family_id, client_id, user_id, \
    session_id, redirect_uri, code_challenge, nonce, scope, acr, auth_time, created_at, \
    expires_at, used_at, revoked_at";

struct GrantRow {
    tenant_id: String,
    token_hash: String,
    kind: String,
    family_id: Uuid,
    client_id: String,
    user_id: Uuid,
    session_id: Uuid,
    redirect_uri: Option<String>,
    code_challenge: Option<String>,
    nonce: Option<String>,
    scope: String,
    acr: String,
    auth_time: OffsetDateTime,
    created_at: OffsetDateTime,
    expires_at: OffsetDateTime,
    used_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
}

impl Shape for GrantRow {
    type Value = Grant;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            tenant_id: row.text("tenant_id")?,
            token_hash: row.text("token_hash")?,
            kind: row.text("kind")?,
            family_id: row.uuid("family_id")?,
            client_id: row.text("client_id")?,
            user_id: row.uuid("user_id")?,
            session_id: row.uuid("session_id")?,
            redirect_uri: row.text_opt("redirect_uri")?,
            code_challenge: row.text_opt("code_challenge")?,
            nonce: row.text_opt("nonce")?,
            scope: row.text("scope")?,
            acr: row.text("acr")?,
            auth_time: row.time("auth_time")?,
            created_at: row.time("created_at")?,
            expires_at: row.time("expires_at")?,
            used_at: row.time_opt("used_at")?,
            revoked_at: row.time_opt("revoked_at")?,
        })
    }

    fn into_value(self) -> Result<Grant, StoreError> {
        Ok(Grant {
            tenant: crate::rows::tenant_id(&self.tenant_id)?,
            token_hash: self.token_hash,
            kind: GrantKind::parse(&self.kind).ok_or_else(|| corrupt("grant kind"))?,
            family: self.family_id,
            client: ClientId::parse(&self.client_id).ok_or_else(|| corrupt("grant client"))?,
            user: UserId::from_generated(self.user_id),
            session: SessionId::from_generated(self.session_id),
            redirect_uri: self.redirect_uri,
            code_challenge: self.code_challenge,
            nonce: self.nonce,
            scope: self.scope,
            acr: Assurance::parse(&self.acr).map_err(|_| corrupt("grant acr"))?,
            auth_time: self.auth_time,
            created_at: self.created_at,
            expires_at: self.expires_at,
            used_at: self.used_at,
            revoked_at: self.revoked_at,
        })
    }
}

const CONSENT_COLUMNS: &str = "tenant_id, user_id, client_id, scope, granted_at";

struct ConsentRow {
    tenant_id: String,
    user_id: Uuid,
    client_id: String,
    scope: String,
    granted_at: OffsetDateTime,
}

impl Shape for ConsentRow {
    type Value = Consent;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            tenant_id: row.text("tenant_id")?,
            user_id: row.uuid("user_id")?,
            client_id: row.text("client_id")?,
            scope: row.text("scope")?,
            granted_at: row.time("granted_at")?,
        })
    }

    fn into_value(self) -> Result<Consent, StoreError> {
        Ok(Consent {
            tenant: crate::rows::tenant_id(&self.tenant_id)?,
            user: UserId::from_generated(self.user_id),
            client: ClientId::parse(&self.client_id).ok_or_else(|| corrupt("consent client"))?,
            scope: self.scope,
            granted_at: self.granted_at,
        })
    }
}

impl<B: Backend> SqlTx<B> {
    /// Locks the codes of the families `condition` selects (in family order), binding
    /// its placeholders with `bind`. Every change to a family (a take, a revocation)
    /// takes this lock first, so changes to one family take turns: under PostgreSQL's
    /// read committed an update that waited for a row keeps it locked even when it then
    /// finds the row spent, and revocations meeting a family's rows in different orders
    /// deadlocked.
    async fn lock_family_codes(
        &mut self,
        condition: &str,
        bind: impl FnOnce(Statement) -> Statement + Send,
    ) -> Result<(), StoreError> {
        self.backend
            .fetch_writing(bind(Statement::new(format!(
                "select token_hash from oauth_grants where kind = 'code' and {condition} \
                 order by family_id{}",
                B::FOR_UPDATE
            ))))
            .await
            .map(|_| ())
    }

    /// Refuses a client outside the transaction's scope: a platform client needs a
    /// platform transaction, a tenant client its tenant's.
    fn allow_client(&self, id: &ClientId) -> Result<(), StoreError> {
        match id.owner() {
            Some(tenant) => self.scope.allow(tenant),
            None => self.scope.require_platform(),
        }
    }
}

#[async_trait]
impl<B: Backend> OAuth for SqlTx<B> {
    async fn insert_oauth_client(
        &mut self,
        client: &OAuthClient,
        secret_hash: Option<String>,
    ) -> Result<(), StoreError> {
        self.allow_client(&client.id)?;
        let redirect_uris = json_strings(client.redirect_uris.iter().map(String::as_str));
        let logout_uris = json_strings(client.post_logout_redirect_uris.iter().map(String::as_str));
        let statement = match client.id.owner() {
            Some(tenant) => {
                self.require_tenant(tenant).await?;
                self.refuse_duplicate(
                    "oauth client",
                    Statement::new("select 1 as one from oauth_clients where client_id = $1")
                        .id(&client.id.uuid()),
                )
                .await?;
                Statement::new(format!(
                    "insert into oauth_clients (tenant_id, {CLIENT_COLUMNS}, scopes) \
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                ))
                .text(tenant.as_str())
            }
            None => {
                self.refuse_duplicate(
                    "oauth client",
                    Statement::new(
                        "select 1 as one from platform_oauth_clients where client_id = $1",
                    )
                    .id(&client.id.uuid()),
                )
                .await?;
                Statement::new(format!(
                    "insert into platform_oauth_clients ({CLIENT_COLUMNS}) \
                     values ($1, $2, $3, $4, $5, $6, $7, $8)"
                ))
            }
        };
        let statement = statement
            .id(&client.id.uuid())
            .text(&client.name)
            .text(client.client_type.as_str())
            .text_opt(secret_hash.as_deref())
            .json(&redirect_uris)
            .json(&logout_uris)
            .flag(client.first_party)
            .time(client.created_at);
        let statement = if client.id.owner().is_some() {
            statement.json(&json_strings(client.scopes.iter().map(ScopeName::as_str)))
        } else {
            statement
        };
        self.execute(statement).await.map(|_| ())
    }

    async fn get_oauth_client(
        &mut self,
        id: &ClientId,
    ) -> Result<Option<(OAuthClient, Option<String>)>, StoreError> {
        self.allow_client(id)?;
        match id.owner() {
            Some(tenant) => {
                self.optional::<TenantClientRow>(
                    Statement::new(format!(
                        "select tenant_id, {CLIENT_COLUMNS}, scopes from oauth_clients \
                         where tenant_id = $1 and client_id = $2"
                    ))
                    .text(tenant.as_str())
                    .id(&id.uuid()),
                )
                .await
            }
            None => {
                self.optional::<PlatformClientRow>(
                    Statement::new(format!(
                        "select {CLIENT_COLUMNS} from platform_oauth_clients where client_id = $1"
                    ))
                    .id(&id.uuid()),
                )
                .await
            }
        }
    }

    async fn list_oauth_clients(
        &mut self,
        owner: Option<TenantId>,
    ) -> Result<Vec<OAuthClient>, StoreError> {
        let rows = match &owner {
            Some(tenant) => {
                self.scope.allow(tenant)?;
                self.all::<TenantClientRow>(
                    Statement::new(format!(
                        "select tenant_id, {CLIENT_COLUMNS}, scopes from oauth_clients \
                         where tenant_id = $1 order by created_at, client_id"
                    ))
                    .text(tenant.as_str()),
                )
                .await?
            }
            None => {
                self.scope.require_platform()?;
                self.all::<PlatformClientRow>(Statement::new(format!(
                    "select {CLIENT_COLUMNS} from platform_oauth_clients \
                     order by created_at, client_id"
                )))
                .await?
            }
        };
        Ok(rows.into_iter().map(|(client, _)| client).collect())
    }

    async fn delete_oauth_client(&mut self, id: &ClientId) -> Result<bool, StoreError> {
        self.allow_client(id)?;
        for table in ["oauth_grants", "oauth_consents"] {
            self.execute(
                Statement::new(format!("delete from {table} where client_id = $1"))
                    .text(&id.to_string()),
            )
            .await?;
        }
        let statement = match id.owner() {
            Some(tenant) => {
                Statement::new("delete from oauth_clients where tenant_id = $1 and client_id = $2")
                    .text(tenant.as_str())
                    .id(&id.uuid())
            }
            None => Statement::new("delete from platform_oauth_clients where client_id = $1")
                .id(&id.uuid()),
        };
        Ok(self.execute(statement).await? > 0)
    }

    async fn insert_grant(&mut self, grant: &Grant) -> Result<(), StoreError> {
        self.scope.allow(&grant.tenant)?;
        self.require_member(&grant.tenant, &grant.user).await?;
        self.execute(
            Statement::new(format!(
                "insert into oauth_grants ({GRANT_COLUMNS}) values \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
            ))
            .text(grant.tenant.as_str())
            .text(&grant.token_hash)
            .text(grant.kind.as_str())
            .id(&grant.family)
            .text(&grant.client.to_string())
            .id(grant.user.as_uuid())
            .id(grant.session.as_uuid())
            .text_opt(grant.redirect_uri.as_deref())
            .text_opt(grant.code_challenge.as_deref())
            .text_opt(grant.nonce.as_deref())
            .text(&grant.scope)
            .text(grant.acr.as_str())
            .time(grant.auth_time)
            .time(grant.created_at)
            .time(grant.expires_at)
            .time_opt(grant.used_at)
            .time_opt(grant.revoked_at),
        )
        .await
        .map(|_| ())
    }

    async fn take_grant(
        &mut self,
        tenant: &TenantId,
        kind: GrantKind,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Taken, StoreError> {
        self.scope.allow(tenant)?;
        self.lock_family_codes(
            "tenant_id = $1 and family_id = (\
                 select family_id from oauth_grants where tenant_id = $1 and token_hash = $2)",
            |statement| statement.text(tenant.as_str()).text(token_hash),
        )
        .await?;
        let taken = self
            .backend
            .fetch_writing(
                Statement::new(format!(
                    "update oauth_grants set used_at = $4 \
                     where tenant_id = $1 and token_hash = $2 and kind = $3 \
                     and used_at is null and revoked_at is null and expires_at > $4 \
                     returning {GRANT_COLUMNS}"
                ))
                .text(tenant.as_str())
                .text(token_hash)
                .text(kind.as_str())
                .time(now),
            )
            .await?;
        if let Some(row) = taken.first() {
            return Ok(Taken::Fresh(GrantRow::decode(row)?));
        }
        let spent = self.get_grant(tenant, kind, token_hash).await?;
        Ok(spent.map_or(Taken::Unknown, Taken::Spent))
    }

    async fn get_grant(
        &mut self,
        tenant: &TenantId,
        kind: GrantKind,
        token_hash: &str,
    ) -> Result<Option<Grant>, StoreError> {
        self.scope.allow(tenant)?;
        self.optional::<GrantRow>(
            Statement::new(format!(
                "select {GRANT_COLUMNS} from oauth_grants \
                 where tenant_id = $1 and token_hash = $2 and kind = $3"
            ))
            .text(tenant.as_str())
            .text(token_hash)
            .text(kind.as_str()),
        )
        .await
    }

    async fn revoke_grant_family(
        &mut self,
        tenant: &TenantId,
        family: Uuid,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.scope.allow(tenant)?;
        self.lock_family_codes("tenant_id = $1 and family_id = $2", |statement| {
            statement.text(tenant.as_str()).id(&family)
        })
        .await?;
        self.execute(
            Statement::new(
                "update oauth_grants set revoked_at = $3 \
                 where tenant_id = $1 and family_id = $2 and revoked_at is null",
            )
            .text(tenant.as_str())
            .id(&family)
            .time(now),
        )
        .await
    }

    async fn find_session_by_id(&mut self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.optional::<SessionRow>(
            Statement::new(format!(
                "select {SESSION_COLUMNS} from sessions where session_id = $1"
            ))
            .id(id.as_uuid()),
        )
        .await
    }

    async fn get_consent(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        client: &ClientId,
    ) -> Result<Option<Consent>, StoreError> {
        self.scope.allow(tenant)?;
        self.optional::<ConsentRow>(
            Statement::new(format!(
                "select {CONSENT_COLUMNS} from oauth_consents \
                 where tenant_id = $1 and user_id = $2 and client_id = $3"
            ))
            .text(tenant.as_str())
            .id(user.as_uuid())
            .text(&client.to_string()),
        )
        .await
    }

    async fn put_consent(&mut self, consent: &Consent) -> Result<(), StoreError> {
        self.scope.allow(&consent.tenant)?;
        self.require_member(&consent.tenant, &consent.user).await?;
        self.execute(
            Statement::new(format!(
                "insert into oauth_consents ({CONSENT_COLUMNS}) values ($1, $2, $3, $4, $5) \
                 on conflict (tenant_id, user_id, client_id) \
                 do update set scope = excluded.scope, granted_at = excluded.granted_at"
            ))
            .text(consent.tenant.as_str())
            .id(consent.user.as_uuid())
            .text(&consent.client.to_string())
            .text(&consent.scope)
            .time(consent.granted_at),
        )
        .await
        .map(|_| ())
    }

    async fn list_consents(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<Consent>, StoreError> {
        self.scope.allow(tenant)?;
        self.all::<ConsentRow>(
            Statement::new(format!(
                "select {CONSENT_COLUMNS} from oauth_consents \
                 where tenant_id = $1 and user_id = $2 order by granted_at, client_id"
            ))
            .text(tenant.as_str())
            .id(user.as_uuid()),
        )
        .await
    }

    async fn delete_consent(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        client: &ClientId,
    ) -> Result<bool, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .execute(
                Statement::new(
                    "delete from oauth_consents \
                     where tenant_id = $1 and user_id = $2 and client_id = $3",
                )
                .text(tenant.as_str())
                .id(user.as_uuid())
                .text(&client.to_string()),
            )
            .await?
            > 0)
    }

    async fn revoke_client_grants(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        client: &ClientId,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.scope.allow(tenant)?;
        self.lock_family_codes(
            "tenant_id = $1 and user_id = $2 and client_id = $3",
            |statement| {
                statement
                    .text(tenant.as_str())
                    .id(user.as_uuid())
                    .text(&client.to_string())
            },
        )
        .await?;
        self.execute(
            Statement::new(
                "update oauth_grants set revoked_at = $4 \
                 where tenant_id = $1 and user_id = $2 and client_id = $3 \
                 and revoked_at is null",
            )
            .text(tenant.as_str())
            .id(user.as_uuid())
            .text(&client.to_string())
            .time(now),
        )
        .await
    }
}
