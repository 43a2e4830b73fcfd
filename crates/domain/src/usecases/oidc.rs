//! The OpenID provider's flows (SPEC §9): a signed-in browser session gets a code for a
//! client; the token endpoint redeems it once (PKCE, the same redirect URI, the same
//! client) for an access token, an ID token and a refresh token; a refresh token rotates
//! on every use and a spent one coming back revokes its whole family; a tenant client
//! gets tokens for itself with `client_credentials`; RFC 7009 revocation.
//!
//! Whether a user may sign in to a tenant is asked of `decide` like every access: the
//! user's own reading of the tenant (`tenant:read`, self-service), which needs an active
//! user, an active tenant and an active account in it. It is asked again at every
//! redemption and refresh, so a suspension ends a client's refreshing at once.

use std::collections::BTreeSet;

use time::OffsetDateTime;

use super::{hash_token, session_assurance, Caller, Engine, Principal};
use crate::audit::{AuditTarget, Partition};
use crate::authz::{decide, AuthzRequest};
use crate::catalog::scopes;
use crate::error::Error;
use crate::event::EventData;
use crate::ids::{Assurance, ScopeName, SessionId, TenantId, UserId};
use crate::model::Session;
use crate::oidc::{
    access_claims, client_access_claims, grant_tenant, grant_token, id_claims, pkce_matches,
    ClientId, ClientType, Consent, Grant, GrantKind, OAuthClient, Taken, TokenSubject, CODE_TTL,
    TOKEN_TTL,
};
use crate::ports::{Decisions, FactsQuery, StoreError, StoreTx, SubjectRef, TxScope};
use crate::signing::{KeyVault, SigningAlgorithm, SigningKey};

/// What the hosted pages ask a code for, once the request has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRequest {
    pub client: ClientId,
    pub redirect_uri: String,
    pub tenant: TenantId,
    /// The OpenID scopes granted, space-separated.
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    /// Where the user's consent stands, for a third-party client.
    pub consent: ConsentStep,
}

/// The consent a code request carries (issue 17: first-party clients skip consent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentStep {
    /// The client is first-party: no consent is asked.
    FirstParty,
    /// A third-party client: a consent stored earlier that covers the scopes will do.
    Stored,
    /// A third-party client with `prompt=consent`: the user must be asked again.
    Ask,
    /// The user has just allowed the client on the consent page (a posted form).
    Given,
}

/// What a code request came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeOutcome {
    /// The code, for the client's redirect URI.
    Code(String),
    /// The third-party client needs the user's consent first: nothing was issued.
    ConsentRequired,
}

impl CodeOutcome {
    /// The code, if one was issued.
    pub fn into_code(self) -> Option<String> {
        match self {
            Self::Code(code) => Some(code),
            Self::ConsentRequired => None,
        }
    }
}

/// What the token endpoint answers on success (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedTokens {
    pub access_token: String,
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
    pub expires_in: i64,
    pub scope: String,
}

/// An RFC 6749 §5.2 error of the token, revocation and introspection endpoints.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{0}")]
    InvalidRequest(String),
    /// The client is unknown or its authentication failed.
    #[error("client authentication failed")]
    InvalidClient,
    /// The code or refresh token is unknown, spent, revoked, expired, another client's,
    /// or its user may no longer sign in.
    #[error("{0}")]
    InvalidGrant(&'static str),
    #[error("{0}")]
    UnauthorizedClient(&'static str),
    #[error("{0}")]
    InvalidScope(String),
    /// Not the client's fault: the store or the signer failed.
    #[error(transparent)]
    Server(#[from] Error),
}

impl From<StoreError> for OAuthError {
    fn from(error: StoreError) -> Self {
        Self::Server(Error::Store(error))
    }
}

impl OAuthError {
    /// The RFC 6749 `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::InvalidScope(_) => "invalid_scope",
            Self::Server(_) => "server_error",
        }
    }
}

/// What the token endpoint needs besides the request: the issuer and the signer.
#[derive(Clone, Copy)]
pub struct Issuer<'a> {
    pub url: &'a str,
    pub vault: &'a dyn KeyVault,
}

impl std::fmt::Debug for Issuer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").field("url", &self.url).finish()
    }
}

fn client_target(client: &ClientId) -> AuditTarget {
    AuditTarget {
        kind: "oauth_client",
        id: client.to_string(),
    }
}

/// A browser's live session, for the hosted pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserSession {
    pub user: UserId,
    pub id: SessionId,
    pub assurance: Assurance,
    /// When the user signed in (the session was made).
    pub auth_time: OffsetDateTime,
    /// How long ago that was.
    pub age: time::Duration,
}

/// How a client authenticated at an endpoint: its id, and the secret it presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuth {
    pub client_id: String,
    pub secret: Option<String>,
}

impl Engine {
    /// The client `id` names, for the authorization endpoint (no audit: nothing is
    /// decided yet); `None` for a malformed or unknown id.
    ///
    /// # Errors
    /// `internal` when the store fails.
    pub async fn find_oauth_client(&self, id: &str) -> Result<Option<OAuthClient>, Error> {
        Ok(self.load_client(id).await?.map(|(client, _)| client))
    }

    async fn load_client(&self, id: &str) -> Result<Option<(OAuthClient, Option<String>)>, Error> {
        let Some(id) = ClientId::parse(id) else {
            return Ok(None);
        };
        let scope = id
            .owner()
            .map_or(TxScope::Platform, |tenant| TxScope::Tenant(tenant.clone()));
        let mut tx = self.begin(scope).await?;
        Ok(tx.get_oauth_client(&id).await?)
    }

    /// Authenticates a client at the token, revocation or introspection endpoint: a
    /// confidential client by its secret, a public one by its id alone.
    ///
    /// # Errors
    /// `invalid_client` for an unknown client, a missing or wrong secret, or a secret
    /// from a public client.
    pub async fn authenticate_client(&self, auth: &ClientAuth) -> Result<OAuthClient, OAuthError> {
        let (client, hash) = self
            .load_client(&auth.client_id)
            .await?
            .ok_or(OAuthError::InvalidClient)?;
        match (&hash, &auth.secret) {
            (Some(hash), Some(secret)) if hash_token(secret) == *hash => Ok(client),
            (None, None) => Ok(client),
            _ => Err(OAuthError::InvalidClient),
        }
    }

    /// Issues a code to the browser session `session_token` for `request` (already
    /// checked against the client: redirect URI, PKCE, scopes), when `decide` lets the
    /// session's user sign in to the tenant. A tenant client signs in only its tenant's
    /// members; anyone else is refused like an unknown user. A third-party client needs
    /// the user's consent to the scopes in the tenant: a stored one that covers them,
    /// or the one just given, which is stored, audited and evented with the code.
    ///
    /// # Errors
    /// `unauthenticated` for a session that is not live; `invalid_credentials` when the
    /// user may not sign in to the tenant with this client (the answer an unknown user
    /// gets); `internal`.
    pub async fn issue_code(
        &self,
        session_token: &str,
        request: &CodeRequest,
        request_id: &str,
    ) -> Result<CodeOutcome, Error> {
        let now = self.now();
        let (session, session_id) = self
            .live_session(session_token, now)
            .await?
            .ok_or(Error::Unauthenticated)?;
        let caller = Caller {
            principal: Principal::User {
                user_id: session.user_id,
                assurance: session_assurance(&session, now),
                session: Some(session.token_hash.clone()),
            },
            request_id: request_id.to_owned(),
        };
        let partition = Partition::Tenant(request.tenant.clone());
        let mut op = self.op(
            &caller,
            "oauth.code.issue",
            client_target(&request.client),
            partition.clone(),
        );
        let result = async {
            if request
                .client
                .owner()
                .is_some_and(|owner| owner != &request.tenant)
            {
                op.denied_by = Some("client_of_another_tenant");
                return Err(Error::InvalidCredentials);
            }
            let mut tx = self.begin(TxScope::Tenant(request.tenant.clone())).await?;
            if !self
                .may_sign_in(tx.as_mut(), &request.tenant, &session.user_id)
                .await?
            {
                op.denied_by = Some("sign_in_refused");
                return Err(Error::InvalidCredentials);
            }
            let mut events = Vec::new();
            match request.consent {
                ConsentStep::FirstParty => {}
                ConsentStep::Given => {
                    tx.put_consent(&Consent {
                        tenant: request.tenant.clone(),
                        user: session.user_id,
                        client: request.client.clone(),
                        scope: request.scope.clone(),
                        granted_at: now,
                    })
                    .await?;
                    events.push(self.event(
                        partition.clone(),
                        format!("oauth_client/{}", request.client),
                        EventData::OAuthConsentGranted {
                            client_id: request.client.to_string(),
                            user_id: session.user_id,
                            scope: request.scope.clone(),
                        },
                    ));
                }
                ConsentStep::Stored | ConsentStep::Ask => {
                    let covered = request.consent == ConsentStep::Stored
                        && tx
                            .get_consent(&request.tenant, &session.user_id, &request.client)
                            .await?
                            .is_some_and(|consent| consent.covers(&request.scope));
                    if !covered {
                        // Nothing decided yet: the user is asked; no record.
                        return Ok(CodeOutcome::ConsentRequired);
                    }
                }
            }
            let secret = self.ports.secrets.token();
            let code = grant_token(&request.tenant, &secret);
            let grant = Grant {
                tenant: request.tenant.clone(),
                token_hash: hash_token(&code),
                kind: GrantKind::Code,
                family: self.new_uuid(),
                client: request.client.clone(),
                user: session.user_id,
                session: session_id,
                redirect_uri: Some(request.redirect_uri.clone()),
                code_challenge: request.code_challenge.clone(),
                nonce: request.nonce.clone(),
                scope: request.scope.clone(),
                acr: session_assurance(&session, now),
                auth_time: session.created_at,
                created_at: now,
                expires_at: now + CODE_TTL,
                used_at: None,
                revoked_at: None,
            };
            tx.insert_grant(&grant).await?;
            events.push(self.event(
                partition.clone(),
                format!("oauth_client/{}", request.client),
                EventData::OAuthCodeIssued {
                    client_id: request.client.to_string(),
                    user_id: session.user_id,
                    session_id,
                },
            ));
            op.allowed_by = Some("sign_in");
            self.commit(tx, &op, events).await?;
            Ok(CodeOutcome::Code(code))
        }
        .await;
        self.finish(op, result).await
    }

    /// The live session a browser's cookie holds, as the hosted pages need it.
    ///
    /// # Errors
    /// `internal` when the store fails.
    pub async fn browser_session(&self, token: &str) -> Result<Option<BrowserSession>, Error> {
        let now = self.now();
        Ok(self
            .live_session(token, now)
            .await?
            .map(|(session, id)| BrowserSession {
                user: session.user_id,
                id,
                assurance: session_assurance(&session, now),
                auth_time: session.created_at,
                age: now - session.created_at,
            }))
    }

    /// Whether `decide` lets `user` sign in to `tenant` (an active user with an active
    /// account in an active tenant).
    ///
    /// # Errors
    /// `internal` when the store fails.
    pub async fn sign_in_allowed(&self, user: &UserId, tenant: &TenantId) -> Result<bool, Error> {
        let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
        self.may_sign_in(tx.as_mut(), tenant, user).await
    }

    /// The tenants `user` may sign in to now (as [`Engine::sign_in_allowed`] says), by
    /// id, with their display names: the hosted pages' tenant choice. No audit: nothing
    /// is decided for anyone but the user, and the code that follows is audited.
    ///
    /// # Errors
    /// `internal` when the store fails.
    pub async fn sign_in_choices(&self, user: &UserId) -> Result<Vec<(TenantId, String)>, Error> {
        let memberships = {
            let mut tx = self.begin(TxScope::Platform).await?;
            tx.memberships_of(user).await?
        };
        let mut choices = Vec::new();
        for member in memberships {
            if member.state != crate::model::AccountState::Active {
                continue;
            }
            let mut tx = self.begin(TxScope::Tenant(member.tenant.clone())).await?;
            if !self.may_sign_in(tx.as_mut(), &member.tenant, user).await? {
                continue;
            }
            if let Some(tenant) = tx.get_tenant(&member.tenant).await? {
                choices.push((member.tenant, tenant.display_name.as_str().to_owned()));
            }
        }
        choices.sort();
        Ok(choices)
    }

    /// The live session `token` opens, with its public id.
    async fn live_session(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(Session, SessionId)>, Error> {
        let mut tx = self.begin(TxScope::Platform).await?;
        Ok(tx
            .find_session_details(&hash_token(token))
            .await?
            .filter(|(session, _)| self.session_alive(session, now))
            .map(|(session, details)| (session, details.id)))
    }

    /// Whether `decide` lets `user` sign in to `tenant`: their own reading of it, with an
    /// active account there (a platform role alone is no membership).
    async fn may_sign_in(
        &self,
        tx: &mut (impl Decisions + ?Sized),
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<bool, Error> {
        let scope = ScopeName::parse(scopes::TENANT_READ)?;
        let facts = tx
            .authz_facts(&FactsQuery {
                tenant: Some(tenant.clone()),
                subject: SubjectRef::User(*user),
                scope: scope.clone(),
                target: Some(*user),
            })
            .await?;
        let decision = decide(
            &facts,
            &AuthzRequest {
                tenant: Some(tenant.clone()),
                scope,
                assurance: Assurance::Aal1,
                target: Some(*user),
                self_service: true,
            },
        );
        Ok(decision.allowed
            && facts
                .account
                .is_some_and(|account| account.state == crate::model::AccountState::Active))
    }

    /// Redeems a code (`authorization_code`): once, by the client it was issued to, with
    /// the redirect URI and PKCE verifier of its request. A code coming back after its
    /// use revokes everything issued from it (RFC 6749 §4.1.2).
    ///
    /// # Errors
    /// `invalid_grant` for anything wrong with the code; `server_error` when the store or
    /// signer fails.
    pub async fn redeem_code(
        &self,
        issuer: Issuer<'_>,
        client: &OAuthClient,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
        request_id: &str,
    ) -> Result<IssuedTokens, OAuthError> {
        let tenant = grant_tenant(code).ok_or(OAuthError::InvalidGrant("unknown code"))?;
        if client.id.owner().is_some_and(|owner| owner != &tenant) {
            return Err(OAuthError::InvalidGrant("unknown code"));
        }
        // The key is read before the grant is taken: a transaction waiting on another
        // connection while it holds the grant's row would starve a pool of them.
        let key = self.signing_key(SigningAlgorithm::Rs256).await?;
        let now = self.now();
        let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
        let grant = match tx
            .take_grant(&tenant, GrantKind::Code, &hash_token(code), now)
            .await?
        {
            Taken::Fresh(grant) => grant,
            Taken::Spent(grant) => {
                if grant.used_at.is_some() && grant.client == client.id {
                    self.revoke_family(tx, &grant, "reuse", request_id).await?;
                }
                return Err(OAuthError::InvalidGrant("the code was used or has expired"));
            }
            Taken::Unknown => return Err(OAuthError::InvalidGrant("unknown code")),
        };
        if grant.client != client.id {
            return Err(OAuthError::InvalidGrant(
                "the code was issued to another client",
            ));
        }
        if grant.redirect_uri.as_deref() != redirect_uri {
            return Err(OAuthError::InvalidGrant(
                "redirect_uri differs from the authorization request's",
            ));
        }
        match (&grant.code_challenge, verifier) {
            (Some(challenge), Some(verifier)) if pkce_matches(verifier, challenge) => {}
            (None, None) if client.client_type == ClientType::Confidential => {}
            _ => return Err(OAuthError::InvalidGrant("code_verifier does not match")),
        }
        self.issue_tokens(
            issuer,
            &key,
            tx,
            client,
            grant,
            now,
            "authorization_code",
            request_id,
        )
        .await
    }

    /// Uses a refresh token (`refresh_token`): once; the answer carries its successor. A
    /// spent one coming back revokes its family, the successor included.
    ///
    /// # Errors
    /// As [`Engine::redeem_code`].
    pub async fn refresh_tokens(
        &self,
        issuer: Issuer<'_>,
        client: &OAuthClient,
        refresh_token: &str,
        request_id: &str,
    ) -> Result<IssuedTokens, OAuthError> {
        let tenant =
            grant_tenant(refresh_token).ok_or(OAuthError::InvalidGrant("unknown refresh token"))?;
        if client.id.owner().is_some_and(|owner| owner != &tenant) {
            return Err(OAuthError::InvalidGrant("unknown refresh token"));
        }
        let key = self.signing_key(SigningAlgorithm::Rs256).await?;
        let now = self.now();
        let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
        let grant = match tx
            .take_grant(&tenant, GrantKind::Refresh, &hash_token(refresh_token), now)
            .await?
        {
            Taken::Fresh(grant) if grant.client == client.id => grant,
            Taken::Spent(grant) if grant.client == client.id => {
                if grant.used_at.is_some() && grant.revoked_at.is_none() {
                    self.revoke_family(tx, &grant, "reuse", request_id).await?;
                }
                return Err(OAuthError::InvalidGrant(
                    "the refresh token was used, revoked or has expired",
                ));
            }
            _ => return Err(OAuthError::InvalidGrant("unknown refresh token")),
        };
        self.issue_tokens(
            issuer,
            &key,
            tx,
            client,
            grant,
            now,
            "refresh_token",
            request_id,
        )
        .await
    }

    /// The tokens of a taken grant: checks that its session lives and its user may still
    /// sign in, stores the next refresh token of the family, signs the access and ID
    /// tokens, and commits with one record and event.
    #[allow(clippy::too_many_arguments, reason = "one private step of two grants")]
    async fn issue_tokens(
        &self,
        issuer: Issuer<'_>,
        key: &SigningKey,
        mut tx: Box<dyn StoreTx>,
        client: &OAuthClient,
        grant: Grant,
        now: OffsetDateTime,
        grant_type: &'static str,
        request_id: &str,
    ) -> Result<IssuedTokens, OAuthError> {
        let session = tx
            .find_session_by_id(&grant.session)
            .await?
            .filter(|session| self.session_alive(session, now))
            .ok_or(OAuthError::InvalidGrant("the sign-in session has ended"))?;
        if !self
            .may_sign_in(tx.as_mut(), &grant.tenant, &grant.user)
            .await?
        {
            return Err(OAuthError::InvalidGrant("the user may no longer sign in"));
        }
        let refresh_token = grant_token(&grant.tenant, &self.ports.secrets.token());
        let next = Grant {
            token_hash: hash_token(&refresh_token),
            kind: GrantKind::Refresh,
            redirect_uri: None,
            code_challenge: None,
            created_at: now,
            // A refresh token ends with the session it came from.
            expires_at: session.expires_at.max(now + time::Duration::seconds(1)),
            used_at: None,
            revoked_at: None,
            ..grant.clone()
        };
        tx.insert_grant(&next).await?;
        let subject = TokenSubject {
            issuer: issuer.url.to_owned(),
            client: client.id.clone(),
            tenant: grant.tenant.clone(),
            user: grant.user,
            session: grant.session,
            acr: grant.acr,
            auth_time: grant.auth_time,
            scope: grant.scope.clone(),
        };
        let sign = |typ: &str, claims: &serde_json::Value| {
            issuer.vault.sign(key, typ, claims).map_err(|error| {
                OAuthError::Server(Error::Store(StoreError::Unavailable(error.to_string())))
            })
        };
        let access_token = sign("at+jwt", &access_claims(&subject, self.new_uuid(), now))?;
        let email = if grant.scopes().contains("email") {
            tx.get_user(&grant.user)
                .await?
                .map(|user| (user.email.as_str().to_owned(), user.email_verified))
        } else {
            None
        };
        let id_token = sign(
            "JWT",
            &id_claims(
                &subject,
                // A refreshed ID token carries no nonce (OpenID Connect Core §12.2).
                (grant.kind == GrantKind::Code)
                    .then_some(grant.nonce.as_deref())
                    .flatten(),
                &access_token,
                email
                    .as_ref()
                    .map(|(address, verified)| (address.as_str(), *verified)),
                now,
            ),
        )?;
        let caller = grant_caller(&grant, request_id);
        let mut op = self.op(
            &caller,
            "oauth.token.issue",
            client_target(&client.id),
            Partition::Tenant(grant.tenant.clone()),
        );
        op.allowed_by = Some(grant_type);
        let event = self.event(
            Partition::Tenant(grant.tenant.clone()),
            format!("oauth_client/{}", client.id),
            EventData::OAuthTokensIssued {
                client_id: client.id.to_string(),
                user_id: Some(grant.user),
                grant_type,
            },
        );
        self.commit(tx, &op, vec![event]).await?;
        Ok(IssuedTokens {
            access_token,
            id_token: Some(id_token),
            refresh_token: Some(refresh_token),
            expires_in: TOKEN_TTL.whole_seconds(),
            scope: grant.scope,
        })
    }

    /// Revokes a grant's family and commits that with its record and event; a family
    /// revoked already changes nothing and leaves no record.
    async fn revoke_family(
        &self,
        mut tx: Box<dyn StoreTx>,
        grant: &Grant,
        reason: &'static str,
        request_id: &str,
    ) -> Result<(), Error> {
        let now = self.now();
        if tx
            .revoke_grant_family(&grant.tenant, grant.family, now)
            .await?
            == 0
        {
            return Ok(());
        }
        let caller = grant_caller(grant, request_id);
        let mut op = self.op(
            &caller,
            "oauth.grant.revoke",
            client_target(&grant.client),
            Partition::Tenant(grant.tenant.clone()),
        );
        op.allowed_by = Some(reason);
        let event = self.event(
            Partition::Tenant(grant.tenant.clone()),
            format!("oauth_client/{}", grant.client),
            EventData::OAuthGrantRevoked {
                client_id: grant.client.to_string(),
                user_id: grant.user,
                reason,
            },
        );
        self.commit(tx, &op, vec![event]).await
    }

    /// A tenant client's token for itself (`client_credentials`): its scopes, or the
    /// requested subset of them, like its tenant's API key.
    ///
    /// # Errors
    /// `unauthorized_client` for a client without the grant; `invalid_scope` for a scope
    /// it does not hold; `server_error`.
    pub async fn client_credentials(
        &self,
        issuer: Issuer<'_>,
        client: &OAuthClient,
        scope: Option<&str>,
        request_id: &str,
    ) -> Result<IssuedTokens, OAuthError> {
        let Some(tenant) = client
            .id
            .owner()
            .filter(|_| client.has_client_credentials())
        else {
            return Err(OAuthError::UnauthorizedClient(
                "client_credentials is for confidential tenant clients with scopes",
            ));
        };
        let granted: BTreeSet<ScopeName> = match scope {
            None => client.scopes.clone(),
            Some(scope) => scope
                .split(' ')
                .filter(|name| !name.is_empty())
                .map(|name| {
                    ScopeName::parse(name)
                        .ok()
                        .filter(|name| client.scopes.contains(name))
                        .ok_or_else(|| {
                            OAuthError::InvalidScope(format!("scope {name:?} is not the client's"))
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        if granted.is_empty() {
            return Err(OAuthError::InvalidScope("no scope requested".to_owned()));
        }
        let now = self.now();
        let key = self.signing_key(SigningAlgorithm::Rs256).await?;
        let claims = client_access_claims(
            issuer.url,
            &client.id,
            tenant,
            &granted,
            self.new_uuid(),
            now,
        );
        let access_token = issuer
            .vault
            .sign(&key, "at+jwt", &claims)
            .map_err(|error| {
                OAuthError::Server(Error::Store(StoreError::Unavailable(error.to_string())))
            })?;
        // Recorded as the client acting for itself, like every operation: one allowed
        // record and the event, committed together.
        let caller = Caller {
            principal: Principal::Client {
                client: client.id.clone(),
                tenant: tenant.clone(),
                scopes: granted.clone(),
            },
            request_id: request_id.to_owned(),
        };
        let mut op = self.op(
            &caller,
            "oauth.token.issue",
            client_target(&client.id),
            Partition::Tenant(tenant.clone()),
        );
        op.allowed_by = Some("client_credentials");
        let tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
        let event = self.event(
            Partition::Tenant(tenant.clone()),
            format!("oauth_client/{}", client.id),
            EventData::OAuthTokensIssued {
                client_id: client.id.to_string(),
                user_id: None,
                grant_type: "client_credentials",
            },
        );
        self.commit(tx, &op, vec![event]).await?;
        Ok(IssuedTokens {
            access_token,
            id_token: None,
            refresh_token: None,
            expires_in: TOKEN_TTL.whole_seconds(),
            scope: granted
                .iter()
                .map(ScopeName::as_str)
                .collect::<Vec<_>>()
                .join(" "),
        })
    }

    /// RFC 7009: revokes a refresh token of `client` and its whole family. Anything else
    /// (unknown, another client's, an access token, which expires within minutes) is
    /// answered the same, changing nothing.
    ///
    /// # Errors
    /// `server_error` when the store fails.
    pub async fn revoke_token(
        &self,
        client: &OAuthClient,
        token: &str,
        request_id: &str,
    ) -> Result<(), OAuthError> {
        let Some(tenant) = grant_tenant(token) else {
            return Ok(());
        };
        if client.id.owner().is_some_and(|owner| owner != &tenant) {
            return Ok(());
        }
        let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
        let grant = tx
            .get_grant(&tenant, GrantKind::Refresh, &hash_token(token))
            .await?;
        if let Some(grant) =
            grant.filter(|grant| grant.client == client.id && grant.revoked_at.is_none())
        {
            self.revoke_family(tx, &grant, "revocation", request_id)
                .await?;
        }
        Ok(())
    }

    /// The claims of a live access token this provider issued to anyone: its signature
    /// verifies against a published key, its `iss` is `issuer`, it has not expired, and —
    /// a user's token — its session lives and `decide` still lets the user into the
    /// token's tenant; a client's own token — its client still exists. So a revoked
    /// session or a suspended account is refused on the very next use (SPEC §3.1).
    ///
    /// # Errors
    /// `internal` when the store fails; `Ok(None)` for any token that is not live.
    pub async fn live_access_token(
        &self,
        issuer: Issuer<'_>,
        token: &str,
    ) -> Result<Option<serde_json::Value>, Error> {
        let now = self.now();
        let Some(claims) = self.verified_access_claims(issuer, token, now).await? else {
            return Ok(None);
        };
        let text = |name: &str| claims.get(name).and_then(serde_json::Value::as_str);
        let Some(tenant) = text("tenant").and_then(|tenant| TenantId::parse(tenant).ok()) else {
            return Ok(None);
        };
        let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
        let live = match text("sid") {
            Some(sid) => {
                let session = SessionId::parse(sid).ok();
                let user = text("sub").and_then(|sub| UserId::parse(sub).ok());
                match (session, user) {
                    (Some(session), Some(user)) => {
                        tx.find_session_by_id(&session).await?.is_some_and(|found| {
                            found.user_id == user && self.session_alive(&found, now)
                        }) && self.may_sign_in(tx.as_mut(), &tenant, &user).await?
                    }
                    _ => false,
                }
            }
            None => match text("client_id").and_then(ClientId::parse) {
                Some(client) if client.owner() == Some(&tenant) => {
                    tx.get_oauth_client(&client).await?.is_some()
                }
                _ => false,
            },
        };
        Ok(live.then_some(claims))
    }

    /// The claims of an access token whose signature verifies against a published key,
    /// whose `iss` is `issuer` and which has not expired at `now`.
    async fn verified_access_claims(
        &self,
        issuer: Issuer<'_>,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Option<serde_json::Value>, Error> {
        let keys: Vec<SigningKey> = self
            .signing_keys()
            .await?
            .into_iter()
            .filter(|key| key.is_published(now))
            .collect();
        let Ok(claims) = issuer.vault.verify(&keys, "at+jwt", token) else {
            return Ok(None);
        };
        let fresh = claims
            .get("exp")
            .and_then(serde_json::Value::as_i64)
            .is_some_and(|exp| exp > now.unix_timestamp());
        let ours = claims.get("iss").and_then(serde_json::Value::as_str) == Some(issuer.url);
        Ok((fresh && ours).then_some(claims))
    }

    /// The subject an access token stands for in `tenant`, answered from its live
    /// session (SPEC §9: `authorize` with the token as `subject.token`): the token must
    /// verify, come from `issuer`, be unexpired and name `tenant`, and its session must
    /// live; the assurance is the session's now, not the token's `acr`. The rest — a
    /// suspended user or account, a suspended tenant — is `decide`'s to say.
    ///
    /// # Errors
    /// `internal` when the store fails; `Ok(None)` when the token is no such subject.
    pub async fn access_token_subject(
        &self,
        issuer: Issuer<'_>,
        token: &str,
        tenant: &TenantId,
    ) -> Result<Option<(UserId, Assurance)>, Error> {
        let now = self.now();
        let Some(claims) = self.verified_access_claims(issuer, token, now).await? else {
            return Ok(None);
        };
        let text = |name: &str| claims.get(name).and_then(serde_json::Value::as_str);
        if text("tenant") != Some(tenant.as_str()) {
            return Ok(None);
        }
        let (Some(session), Some(user)) = (
            text("sid").and_then(|sid| SessionId::parse(sid).ok()),
            text("sub").and_then(|sub| UserId::parse(sub).ok()),
        ) else {
            return Ok(None);
        };
        let mut tx = self.begin(TxScope::Platform).await?;
        Ok(tx
            .find_session_by_id(&session)
            .await?
            .filter(|found| found.user_id == user && self.session_alive(found, now))
            .map(|found| (user, session_assurance(&found, now))))
    }

    /// The principal a tenant client's own access token (`client_credentials`) stands
    /// for: live (see [`Engine::live_access_token`]: verified, unexpired, its client
    /// still registered), no session, its tenant's client; `None` for anything else.
    ///
    /// # Errors
    /// `internal` when the store fails.
    pub async fn client_principal(
        &self,
        issuer: Issuer<'_>,
        token: &str,
    ) -> Result<Option<Principal>, Error> {
        let Some(claims) = self.live_access_token(issuer, token).await? else {
            return Ok(None);
        };
        let text = |name: &str| claims.get(name).and_then(serde_json::Value::as_str);
        if claims.get("sid").is_some() {
            return Ok(None);
        }
        let (Some(client), Some(tenant)) = (
            text("client_id").and_then(ClientId::parse),
            text("tenant").and_then(|tenant| TenantId::parse(tenant).ok()),
        ) else {
            return Ok(None);
        };
        if client.owner() != Some(&tenant) || text("sub") != Some(client.to_string().as_str()) {
            return Ok(None);
        }
        let scopes = text("scope")
            .unwrap_or_default()
            .split(' ')
            .filter_map(|name| ScopeName::parse(name).ok())
            .collect();
        Ok(Some(Principal::Client {
            client,
            tenant,
            scopes,
        }))
    }

    /// What `/oauth2/userinfo` answers for a live access token of a user: `sub`,
    /// `tenant`, and with the `email` scope `email` and `email_verified`; `None` for a
    /// token that is not live or not a user's.
    ///
    /// # Errors
    /// `internal` when the store fails.
    pub async fn userinfo(
        &self,
        issuer: Issuer<'_>,
        token: &str,
    ) -> Result<Option<serde_json::Value>, Error> {
        let Some(claims) = self.live_access_token(issuer, token).await? else {
            return Ok(None);
        };
        let Some(user) = claims
            .get("sub")
            .and_then(serde_json::Value::as_str)
            .and_then(|sub| UserId::parse(sub).ok())
            .filter(|_| claims.get("sid").is_some())
        else {
            return Ok(None);
        };
        let mut info = serde_json::Map::new();
        info.insert("sub".to_owned(), user.to_string().into());
        if let Some(tenant) = claims.get("tenant") {
            info.insert("tenant".to_owned(), tenant.clone());
        }
        let scopes = claims
            .get("scope")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        if scopes.split(' ').any(|scope| scope == "email") {
            let mut tx = self.begin(TxScope::Platform).await?;
            if let Some(user) = tx.get_user(&user).await? {
                info.insert("email".to_owned(), user.email.as_str().into());
                info.insert("email_verified".to_owned(), user.email_verified.into());
            }
        }
        Ok(Some(serde_json::Value::Object(info)))
    }

    /// RFC 7662 for `client`: a live access or refresh token issued to the client itself
    /// is described (`active: true`); anything else — not live, another client's — is
    /// `{"active": false}`.
    ///
    /// # Errors
    /// `server_error` when the store fails.
    pub async fn introspect(
        &self,
        issuer: Issuer<'_>,
        client: &OAuthClient,
        token: &str,
    ) -> Result<serde_json::Value, OAuthError> {
        let inactive = serde_json::json!({ "active": false });
        if token.matches('.').count() == 2 {
            let Some(claims) = self.live_access_token(issuer, token).await? else {
                return Ok(inactive);
            };
            if claims.get("client_id").and_then(serde_json::Value::as_str)
                != Some(client.id.to_string().as_str())
            {
                return Ok(inactive);
            }
            let mut described = serde_json::Map::new();
            described.insert("active".to_owned(), true.into());
            described.insert("token_type".to_owned(), "Bearer".into());
            for name in [
                "scope",
                "client_id",
                "sub",
                "exp",
                "iat",
                "iss",
                "aud",
                "jti",
                "tenant",
                "sid",
                "acr",
                "auth_time",
            ] {
                if let Some(value) = claims.get(name) {
                    described.insert(name.to_owned(), value.clone());
                }
            }
            return Ok(serde_json::Value::Object(described));
        }
        let Some(tenant) = grant_tenant(token) else {
            return Ok(inactive);
        };
        if client.id.owner().is_some_and(|owner| owner != &tenant) {
            return Ok(inactive);
        }
        let now = self.now();
        let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
        let Some(grant) = tx
            .get_grant(&tenant, GrantKind::Refresh, &hash_token(token))
            .await?
            .filter(|grant| grant.client == client.id && grant.is_live(now))
        else {
            return Ok(inactive);
        };
        let session_live = tx
            .find_session_by_id(&grant.session)
            .await?
            .is_some_and(|session| self.session_alive(&session, now));
        if !session_live || !self.may_sign_in(tx.as_mut(), &tenant, &grant.user).await? {
            return Ok(inactive);
        }
        Ok(serde_json::json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": grant.scope,
            "client_id": grant.client.to_string(),
            "sub": grant.user.to_string(),
            "tenant": grant.tenant.as_str(),
            "sid": grant.session.to_string(),
            "iat": grant.created_at.unix_timestamp(),
            "exp": grant.expires_at.unix_timestamp(),
            "iss": issuer.url,
        }))
    }

    /// The key that signs with `algorithm` now, making the first keys when none does.
    async fn signing_key(&self, algorithm: SigningAlgorithm) -> Result<SigningKey, Error> {
        self.signing_keys()
            .await?
            .into_iter()
            .find(|key| key.is_active() && key.algorithm == algorithm)
            .ok_or_else(|| {
                Error::Store(StoreError::Unavailable(
                    "no signing key: run `user-engine keys rotate`".to_owned(),
                ))
            })
    }
}

/// The caller a grant's record names: the user it was issued for.
fn grant_caller(grant: &Grant, request_id: &str) -> Caller {
    Caller {
        principal: Principal::User {
            user_id: grant.user,
            assurance: grant.acr,
            session: None,
        },
        request_id: request_id.to_owned(),
    }
}
