//! The OpenID provider's signing keys (SPEC §9): rotation by the operator
//! (`user-engine keys rotate`), the list (`keys list`) and the JWK Set the provider serves.

use serde_json::Value;

use super::Engine;
use crate::audit::{Actor, ActorType, AuditDraft, AuditTarget, Outcome, Partition};
use crate::error::Error;
use crate::event::EventData;
use crate::ports::{StoreError, TxScope};
use crate::signing::{jwks, KeyVault, SigningAlgorithm, SigningKey};

impl Engine {
    /// Makes a new key for every algorithm through `vault` and retires the keys that
    /// signed until now, in one transaction with one platform record (actor `system`
    /// `keys`) and a `signing_keys.rotated` event. Retired keys stay published until the
    /// tokens they signed expire. Nodes serialise on the platform trail, so two rotations
    /// at once leave one set of keys signing.
    ///
    /// # Errors
    /// `internal` when the vault cannot make a key or the store fails (nothing changes).
    pub async fn rotate_signing_keys(
        &self,
        vault: &dyn KeyVault,
        request_id: &str,
    ) -> Result<Vec<SigningKey>, Error> {
        self.make_signing_keys(vault, request_id, true).await
    }

    /// Makes the first keys when no key signs yet (the provider's first use); otherwise
    /// changes nothing. Returns whether it made keys; of two nodes asking at once, one
    /// makes them.
    ///
    /// # Errors
    /// As [`Engine::rotate_signing_keys`].
    pub async fn ensure_signing_keys(
        &self,
        vault: &dyn KeyVault,
        request_id: &str,
    ) -> Result<bool, Error> {
        if self.signing_keys().await?.iter().any(SigningKey::is_active) {
            return Ok(false);
        }
        Ok(!self
            .make_signing_keys(vault, request_id, false)
            .await?
            .is_empty())
    }

    /// New keys, retiring the signing ones when `rotate`; without it, nothing when a key
    /// signs already (checked under the platform trail's lock).
    async fn make_signing_keys(
        &self,
        vault: &dyn KeyVault,
        request_id: &str,
        rotate: bool,
    ) -> Result<Vec<SigningKey>, Error> {
        // Keys are made before the transaction: an RSA key takes a while.
        let now = self.now();
        let mut made = Vec::new();
        for algorithm in SigningAlgorithm::ALL {
            let kid = self.new_uuid().to_string();
            let key = vault
                .generate(algorithm, &kid)
                .map_err(|error| Error::Store(StoreError::Unavailable(error.to_string())))?;
            made.push(SigningKey {
                kid,
                algorithm,
                public_jwk: key.public_jwk,
                sealed_private: key.sealed_private,
                created_at: now,
                retired_at: None,
            });
        }
        let mut tx = self.begin(TxScope::Platform).await?;
        tx.lock_partition(&Partition::Platform).await?;
        if !rotate
            && tx
                .list_signing_keys()
                .await?
                .iter()
                .any(SigningKey::is_active)
        {
            return Ok(Vec::new());
        }
        let now = self.now();
        let retired = tx.retire_signing_keys(now).await?;
        for key in &mut made {
            key.created_at = now;
            tx.insert_signing_key(key).await?;
        }
        let kids: Vec<String> = made.iter().map(|key| key.kid.clone()).collect();
        tx.append_audit(AuditDraft {
            id: self.audit_id(),
            partition: Partition::Platform,
            at: now,
            actor: Actor {
                kind: ActorType::System,
                id: "keys".to_owned(),
            },
            action: "signing_keys.rotate",
            target: AuditTarget {
                kind: "signing_keys",
                id: kids.join(","),
            },
            outcome: Outcome::Allowed,
            reason: if retired == 0 { "first" } else { "rotated" }.to_owned(),
            request_id: request_id.to_owned(),
        })
        .await?;
        tx.append_event(self.event(
            Partition::Platform,
            "signing_keys".to_owned(),
            EventData::SigningKeysRotated { kids, retired },
        ))
        .await?;
        tx.commit().await?;
        Ok(made)
    }

    /// Every key, retired ones included, newest first (for the operator; private parts
    /// stay sealed).
    ///
    /// # Errors
    /// `internal` when the store fails.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKey>, Error> {
        let mut tx = self.begin(TxScope::Platform).await?;
        Ok(tx.list_signing_keys().await?)
    }

    /// The JWK Set the provider serves (`/oauth2/jwks`): the keys that sign and the
    /// retired ones whose tokens may still be valid.
    ///
    /// # Errors
    /// `internal` when the store fails.
    pub async fn jwks(&self) -> Result<Value, Error> {
        let keys = self.signing_keys().await?;
        Ok(jwks(&keys, self.now()))
    }
}
