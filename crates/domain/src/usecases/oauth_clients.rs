//! OAuth clients of the OpenID provider (SPEC §9): platform clients
//! (`POST /v1/oauth-clients`, `platform:catalog:write`) sign in members of any tenant;
//! tenant clients (`POST /v1/tenants/{t}/oauth-clients`, `tenant:write`) only members of
//! their tenant. A confidential client's secret is shown once; a tenant client's
//! `client_credentials` scopes follow the rules of an API key's.

use std::collections::BTreeSet;

use super::api_keys::credential_scopes_assignable;
use super::tenants::tenant_check;
use super::users::platform_check;
use super::{hash_token, Caller, Engine};
use crate::audit::{AuditTarget, Partition};
use crate::catalog::scopes;
use crate::error::Error;
use crate::event::EventData;
use crate::ids::{ScopeName, TenantId};
use crate::oidc::{check_client_name, check_redirect_uris, ClientId, ClientType, OAuthClient};
use crate::ports::TxScope;

/// What a client is registered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOAuthClient {
    pub name: String,
    pub client_type: ClientType,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// A tenant client's `client_credentials` scopes (confidential clients only); a
    /// platform client has none.
    pub scopes: BTreeSet<ScopeName>,
    /// Whether sign-ins skip the consent page (the platform's or the tenant's own
    /// application); `false` for a third-party application.
    pub first_party: bool,
}

/// A registered client and, for a confidential one, its secret (shown this once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedOAuthClient {
    pub client: OAuthClient,
    pub secret: Option<String>,
}

/// The prefix of a client secret, so a leaked one is recognisable.
pub const CLIENT_SECRET_PREFIX: &str = "uecs_";

fn target(id: &str) -> AuditTarget {
    AuditTarget {
        kind: "oauth_client",
        id: id.to_owned(),
    }
}

fn partition_of(owner: Option<&TenantId>) -> Partition {
    owner.map_or(Partition::Platform, |tenant| {
        Partition::Tenant(tenant.clone())
    })
}

fn scope_of(owner: Option<&TenantId>) -> TxScope {
    owner.map_or(TxScope::Platform, |tenant| TxScope::Tenant(tenant.clone()))
}

fn check_input(owner: Option<&TenantId>, input: &NewOAuthClient) -> Result<(), Error> {
    check_client_name(&input.name).map_err(Error::InvalidRequest)?;
    check_redirect_uris(&input.redirect_uris, "redirect_uris", true)
        .map_err(Error::InvalidRequest)?;
    check_redirect_uris(
        &input.post_logout_redirect_uris,
        "post_logout_redirect_uris",
        false,
    )
    .map_err(Error::InvalidRequest)?;
    if !input.scopes.is_empty() {
        if owner.is_none() {
            return Err(Error::InvalidRequest(
                "a platform client has no scopes: client_credentials is for tenant clients"
                    .to_owned(),
            ));
        }
        if input.client_type == ClientType::Public {
            return Err(Error::InvalidRequest(
                "a public client has no scopes: client_credentials needs a secret".to_owned(),
            ));
        }
    }
    Ok(())
}

impl Engine {
    /// Registers a client of the platform (`owner` `None`, `platform:catalog:write`) or
    /// of a tenant (`tenant:write`; its scopes as an API key's, held by the caller).
    ///
    /// # Errors
    /// `tenant_not_found`; `unauthenticated`; `forbidden` (`exceeds_caller` for a scope
    /// the caller does not hold); `invalid_request` for a bad name, type, redirect URI or
    /// scopes on a client that cannot use them; `unknown_scope`, `scope_not_assignable`,
    /// `scope_not_enabled`; `internal`.
    pub async fn create_oauth_client(
        &self,
        caller: &Caller,
        owner: Option<&TenantId>,
        input: NewOAuthClient,
    ) -> Result<CreatedOAuthClient, Error> {
        let uuid = self.new_uuid();
        let id = match owner {
            Some(tenant) => ClientId::tenant(tenant.clone(), uuid),
            None => ClientId::platform(uuid),
        };
        let partition = partition_of(owner);
        let mut op = self.op(
            caller,
            "oauth_client.create",
            target(&id.to_string()),
            partition.clone(),
        );
        let result = async {
            let mut tx = self.begin(scope_of(owner)).await?;
            let granted = match owner {
                Some(tenant) => {
                    self.check(
                        tx.as_mut(),
                        &mut op,
                        tenant_check(tenant, scopes::TENANT_WRITE),
                    )
                    .await?
                }
                None => {
                    self.check(
                        tx.as_mut(),
                        &mut op,
                        platform_check(scopes::PLATFORM_CATALOG_WRITE, None, false),
                    )
                    .await?
                }
            };
            check_input(owner, &input)?;
            if let Some(tenant) = owner {
                if !input.scopes.is_empty() {
                    credential_scopes_assignable(tx.as_mut(), tenant, &input.scopes).await?;
                    self.require_caller_holds(tx.as_mut(), &mut op, tenant, &input.scopes)
                        .await?;
                    op.allowed_by = Some(granted.reason.as_str());
                }
            }
            tx.lock_partition(&partition).await?;
            let secret = (input.client_type == ClientType::Confidential)
                .then(|| format!("{CLIENT_SECRET_PREFIX}{}", self.ports.secrets.token()));
            let client = OAuthClient {
                id: id.clone(),
                name: input.name,
                client_type: input.client_type,
                redirect_uris: input.redirect_uris,
                post_logout_redirect_uris: input.post_logout_redirect_uris,
                scopes: input.scopes,
                first_party: input.first_party,
                created_at: self.now(),
            };
            tx.insert_oauth_client(&client, secret.as_deref().map(hash_token))
                .await?;
            let event = self.event(
                partition.clone(),
                format!("oauth_client/{id}"),
                EventData::OAuthClientCreated {
                    client_id: id.to_string(),
                    name: client.name.clone(),
                    client_type: client.client_type.as_str(),
                    first_party: client.first_party,
                },
            );
            self.commit(tx, &op, vec![event]).await?;
            Ok(CreatedOAuthClient { client, secret })
        }
        .await;
        self.finish(op, result).await
    }

    /// The platform's clients (`platform:catalog:write`) or a tenant's (`tenant:read`),
    /// oldest first.
    ///
    /// # Errors
    /// `tenant_not_found`; `unauthenticated`; `forbidden`; `internal`.
    pub async fn list_oauth_clients(
        &self,
        caller: &Caller,
        owner: Option<&TenantId>,
    ) -> Result<Vec<OAuthClient>, Error> {
        let mut op = self.op(
            caller,
            "oauth_client.list",
            target(owner.map_or("platform", TenantId::as_str)),
            partition_of(owner),
        );
        let result = async {
            let mut tx = self.begin(scope_of(owner)).await?;
            self.check_client_read(tx.as_mut(), &mut op, owner).await?;
            Ok(tx.list_oauth_clients(owner.cloned()).await?)
        }
        .await;
        self.finish(op, result).await
    }

    /// One client, by the id the path names under `owner`.
    ///
    /// # Errors
    /// As [`Engine::list_oauth_clients`]; `not_found` for no such client of `owner`.
    pub async fn get_oauth_client(
        &self,
        caller: &Caller,
        owner: Option<&TenantId>,
        id: &str,
    ) -> Result<OAuthClient, Error> {
        let mut op = self.op(caller, "oauth_client.read", target(id), partition_of(owner));
        let result = async {
            let mut tx = self.begin(scope_of(owner)).await?;
            self.check_client_read(tx.as_mut(), &mut op, owner).await?;
            let Some(id) = owned_client_id(owner, id) else {
                return Err(Error::NotFound);
            };
            let (client, _) = tx.get_oauth_client(&id).await?.ok_or(Error::NotFound)?;
            Ok(client)
        }
        .await;
        self.finish(op, result).await
    }

    /// Deletes a client with every code and refresh token issued to it and every
    /// consent given to it (the tokens it holds stop refreshing; its access tokens
    /// expire within minutes).
    ///
    /// # Errors
    /// As [`Engine::create_oauth_client`]'s access errors; `not_found`.
    pub async fn delete_oauth_client(
        &self,
        caller: &Caller,
        owner: Option<&TenantId>,
        id: &str,
    ) -> Result<(), Error> {
        let partition = partition_of(owner);
        let mut op = self.op(caller, "oauth_client.delete", target(id), partition.clone());
        let result = async {
            // A platform client's grants lie in every tenant: a platform transaction.
            let mut tx = self.begin(scope_of(owner)).await?;
            match owner {
                Some(tenant) => {
                    self.check(
                        tx.as_mut(),
                        &mut op,
                        tenant_check(tenant, scopes::TENANT_WRITE),
                    )
                    .await?;
                }
                None => {
                    self.check(
                        tx.as_mut(),
                        &mut op,
                        platform_check(scopes::PLATFORM_CATALOG_WRITE, None, false),
                    )
                    .await?;
                }
            }
            let Some(id) = owned_client_id(owner, id) else {
                return Err(Error::NotFound);
            };
            tx.lock_partition(&partition).await?;
            if !tx.delete_oauth_client(&id).await? {
                return Err(Error::NotFound);
            }
            let event = self.event(
                partition.clone(),
                format!("oauth_client/{id}"),
                EventData::OAuthClientDeleted {
                    client_id: id.to_string(),
                },
            );
            self.commit(tx, &op, vec![event]).await?;
            Ok(())
        }
        .await;
        self.finish(op, result).await
    }

    async fn check_client_read(
        &self,
        tx: &mut dyn crate::ports::StoreTx,
        op: &mut super::Op<'_>,
        owner: Option<&TenantId>,
    ) -> Result<(), Error> {
        match owner {
            Some(tenant) => {
                self.check(tx, op, tenant_check(tenant, scopes::TENANT_READ))
                    .await?;
            }
            None => {
                self.check(
                    tx,
                    op,
                    platform_check(scopes::PLATFORM_CATALOG_WRITE, None, false),
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// The client id `id` when it belongs to `owner`; `None` for anything else (another
/// tenant's client, a platform client under a tenant, a malformed id): not found.
fn owned_client_id(owner: Option<&TenantId>, id: &str) -> Option<ClientId> {
    ClientId::parse(id).filter(|parsed| parsed.owner() == owner)
}
