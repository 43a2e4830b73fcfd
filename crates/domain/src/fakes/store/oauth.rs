//! [`OAuth`] on the in-memory state: clients by id, grants by tenant and hash; a take is
//! atomic because the whole transaction holds the store's lock.

use super::*;
use crate::oidc::{ClientId, Consent, Grant, GrantKind, OAuthClient, Taken};
use crate::ports::OAuth;

impl MemTx {
    fn allow_client(&self, id: &ClientId) -> Result<(), StoreError> {
        match id.owner() {
            Some(tenant) => self.scope.allow(tenant),
            None => self.require_platform(),
        }
    }
}

#[async_trait]
impl OAuth for MemTx {
    async fn insert_oauth_client(
        &mut self,
        client: &OAuthClient,
        secret_hash: Option<String>,
    ) -> Result<(), StoreError> {
        self.allow_client(&client.id)?;
        if self.working.oauth_clients.contains_key(&client.id) {
            return Err(StoreError::Duplicate("oauth client"));
        }
        self.working
            .oauth_clients
            .insert(client.id.clone(), (client.clone(), secret_hash));
        Ok(())
    }

    async fn get_oauth_client(
        &mut self,
        id: &ClientId,
    ) -> Result<Option<(OAuthClient, Option<String>)>, StoreError> {
        self.allow_client(id)?;
        Ok(self.working.oauth_clients.get(id).cloned())
    }

    async fn list_oauth_clients(
        &mut self,
        owner: Option<TenantId>,
    ) -> Result<Vec<OAuthClient>, StoreError> {
        match &owner {
            Some(tenant) => self.scope.allow(tenant)?,
            None => self.require_platform()?,
        }
        let mut clients: Vec<OAuthClient> = self
            .working
            .oauth_clients
            .values()
            .filter(|(client, _)| client.id.owner() == owner.as_ref())
            .map(|(client, _)| client.clone())
            .collect();
        clients.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then(a.id.uuid().cmp(&b.id.uuid()))
        });
        Ok(clients)
    }

    async fn delete_oauth_client(&mut self, id: &ClientId) -> Result<bool, StoreError> {
        self.allow_client(id)?;
        self.working.grants.retain(|_, grant| &grant.client != id);
        self.working
            .consents
            .retain(|(_, _, client), _| client != id);
        Ok(self.working.oauth_clients.remove(id).is_some())
    }

    async fn insert_grant(&mut self, grant: &Grant) -> Result<(), StoreError> {
        self.scope.allow(&grant.tenant)?;
        let key = (grant.tenant.clone(), grant.token_hash.clone());
        if self.working.grants.contains_key(&key) {
            return Err(StoreError::Duplicate("grant"));
        }
        self.working.grants.insert(key, grant.clone());
        Ok(())
    }

    async fn take_grant(
        &mut self,
        tenant: &TenantId,
        kind: GrantKind,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Taken, StoreError> {
        self.scope.allow(tenant)?;
        let Some(grant) = self
            .working
            .grants
            .get_mut(&(tenant.clone(), token_hash.to_owned()))
            .filter(|grant| grant.kind == kind)
        else {
            return Ok(Taken::Unknown);
        };
        if !grant.is_live(now) {
            return Ok(Taken::Spent(grant.clone()));
        }
        grant.used_at = Some(now);
        Ok(Taken::Fresh(grant.clone()))
    }

    async fn get_grant(
        &mut self,
        tenant: &TenantId,
        kind: GrantKind,
        token_hash: &str,
    ) -> Result<Option<Grant>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .grants
            .get(&(tenant.clone(), token_hash.to_owned()))
            .filter(|grant| grant.kind == kind)
            .cloned())
    }

    async fn revoke_grant_family(
        &mut self,
        tenant: &TenantId,
        family: uuid::Uuid,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.scope.allow(tenant)?;
        let mut revoked = 0;
        for grant in self.working.grants.values_mut() {
            if &grant.tenant == tenant && grant.family == family && grant.revoked_at.is_none() {
                grant.revoked_at = Some(now);
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    async fn find_session_by_id(&mut self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        let hash = self
            .working
            .session_details
            .iter()
            .find(|(_, details)| &details.id == id)
            .map(|(hash, _)| hash.clone());
        Ok(hash.and_then(|hash| self.working.sessions.get(&hash).cloned()))
    }

    async fn get_consent(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        client: &ClientId,
    ) -> Result<Option<Consent>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .consents
            .get(&(tenant.clone(), *user, client.clone()))
            .cloned())
    }

    async fn put_consent(&mut self, consent: &Consent) -> Result<(), StoreError> {
        self.scope.allow(&consent.tenant)?;
        if !self
            .working
            .members
            .contains_key(&(consent.tenant.clone(), consent.user))
        {
            return Err(StoreError::Missing("member"));
        }
        self.working.consents.insert(
            (consent.tenant.clone(), consent.user, consent.client.clone()),
            consent.clone(),
        );
        Ok(())
    }

    async fn list_consents(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<Consent>, StoreError> {
        self.scope.allow(tenant)?;
        let mut consents: Vec<Consent> = self
            .working
            .consents
            .values()
            .filter(|consent| &consent.tenant == tenant && &consent.user == user)
            .cloned()
            .collect();
        consents.sort_by(|a, b| {
            a.granted_at
                .cmp(&b.granted_at)
                .then_with(|| a.client.to_string().cmp(&b.client.to_string()))
        });
        Ok(consents)
    }

    async fn delete_consent(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        client: &ClientId,
    ) -> Result<bool, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .consents
            .remove(&(tenant.clone(), *user, client.clone()))
            .is_some())
    }

    async fn revoke_client_grants(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        client: &ClientId,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.scope.allow(tenant)?;
        let mut revoked = 0;
        for grant in self.working.grants.values_mut() {
            if &grant.tenant == tenant
                && &grant.user == user
                && &grant.client == client
                && grant.revoked_at.is_none()
            {
                grant.revoked_at = Some(now);
                revoked += 1;
            }
        }
        Ok(revoked)
    }
}
