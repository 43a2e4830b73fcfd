//! Consents to third-party OAuth clients (issue 17): what a member allowed a client in a
//! tenant, read and revoked by the member or by the tenant's member administrators.
//! Revoking a consent also revokes every code and refresh token of the member's that the
//! client holds in the tenant, so its next refresh fails and its next sign-in asks again.

use super::tenants::member_or_self_check;
use super::{user_target, Caller, Engine};
use crate::audit::Partition;
use crate::catalog::scopes;
use crate::error::Error;
use crate::event::EventData;
use crate::ids::{TenantId, UserId};
use crate::oidc::{ClientId, Consent};
use crate::ports::TxScope;

impl Engine {
    /// A member's consents in a tenant, oldest first (`members:read`, or the member).
    ///
    /// # Errors
    /// `tenant_not_found` (no such tenant, or the caller has no standing in it);
    /// `unauthenticated`; `forbidden` without `members:read` (for another member);
    /// `member_not_found` when `user` has no account in the tenant; `internal`.
    pub async fn list_consents(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<Consent>, Error> {
        let mut op = self.op(
            caller,
            "oauth.consent.list",
            user_target("member", user),
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                member_or_self_check(tenant, scopes::MEMBERS_READ, user),
            )
            .await?;
            if tx.get_member(tenant, user).await?.is_none() {
                return Err(Error::MemberNotFound);
            }
            Ok(tx.list_consents(tenant, user).await?)
        }
        .await;
        self.finish(op, result).await
    }

    /// Revokes a member's consent to `client` in a tenant, with every code and refresh
    /// token of the member's the client holds there (`members:write`, or the member).
    ///
    /// # Errors
    /// As [`Engine::list_consents`] with `members:write`; `not_found` when the member
    /// gave the client no consent (or `client` is no client id); `internal`.
    pub async fn revoke_consent(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        user: &UserId,
        client: &str,
    ) -> Result<(), Error> {
        let partition = Partition::Tenant(tenant.clone());
        let mut op = self.op(
            caller,
            "oauth.consent.revoke",
            user_target("member", user),
            partition.clone(),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                member_or_self_check(tenant, scopes::MEMBERS_WRITE, user),
            )
            .await?;
            if tx.get_member(tenant, user).await?.is_none() {
                return Err(Error::MemberNotFound);
            }
            let Some(client) = ClientId::parse(client) else {
                return Err(Error::NotFound);
            };
            tx.lock_partition(&partition).await?;
            if !tx.delete_consent(tenant, user, &client).await? {
                return Err(Error::NotFound);
            }
            let grants_revoked = tx
                .revoke_client_grants(tenant, user, &client, self.now())
                .await?;
            let event = self.event(
                partition.clone(),
                format!("oauth_client/{client}"),
                EventData::OAuthConsentRevoked {
                    client_id: client.to_string(),
                    user_id: *user,
                    grants_revoked,
                },
            );
            self.commit(tx, &op, vec![event]).await?;
            Ok(())
        }
        .await;
        self.finish(op, result).await
    }
}
