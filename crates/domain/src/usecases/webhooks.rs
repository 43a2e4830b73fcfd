//! A tenant's webhooks (SPEC §6 `PUT /v1/tenants/{t}/webhooks/{name}`): created or
//! changed with `tenant:write`, read with `tenant:read`; the signing secret is shown once,
//! at creation and at each rotation; deliveries are listed per hook.

use std::collections::BTreeSet;

use super::tenants::tenant_check;
use super::{paginate, Caller, Engine};
use crate::audit::{AuditTarget, Partition};
use crate::catalog::scopes;
use crate::cursor::{self, List};
use crate::error::Error;
use crate::event::EventData;
use crate::ids::TenantId;
use crate::ports::{Page, TxScope};
use crate::webhook::{check_name, check_types, secret_from, Delivery, Webhook};

/// What `PUT` answers: the hook, and its secret when this call created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutWebhook {
    pub hook: Webhook,
    pub secret: Option<String>,
}

fn target(name: &str) -> AuditTarget {
    AuditTarget {
        kind: "webhook",
        id: name.to_owned(),
    }
}

impl Engine {
    /// Creates or replaces a tenant's hook (`tenant:write`): a new one gets a secret,
    /// shown this once, and is sent the events committed after it.
    ///
    /// # Errors
    /// `tenant_not_found`; `unauthenticated`; `forbidden` without `tenant:write`;
    /// `invalid_request` for a bad name, url or types; `internal` when the store fails.
    pub async fn put_webhook(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        name: &str,
        url: &str,
        types: BTreeSet<String>,
    ) -> Result<PutWebhook, Error> {
        let partition = Partition::Tenant(tenant.clone());
        let mut op = self.op(caller, "webhook.put", target(name), partition.clone());
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                tenant_check(tenant, scopes::TENANT_WRITE),
            )
            .await?;
            check_name(name).map_err(Error::InvalidRequest)?;
            check_types(&types).map_err(Error::InvalidRequest)?;
            self.config
                .webhooks
                .check(url)
                .map_err(Error::InvalidRequest)?;
            tx.lock_partition(&partition).await?;
            let now = self.now();
            let existing = tx.get_webhook(tenant, name).await?;
            if let Some(same) = existing
                .as_ref()
                .filter(|hook| hook.url == url && hook.types == types)
            {
                // The same body again changes nothing: recorded, no event.
                let hook = same.clone();
                self.commit(tx, &op, Vec::new()).await?;
                return Ok(PutWebhook { hook, secret: None });
            }
            let (hook, secret) = match existing {
                Some(existing) => {
                    let hook = Webhook {
                        url: url.to_owned(),
                        types: types.clone(),
                        updated_at: now,
                        ..existing
                    };
                    tx.update_webhook(&hook).await?;
                    (hook, None)
                }
                None => {
                    let hook = Webhook {
                        tenant: tenant.clone(),
                        name: name.to_owned(),
                        url: url.to_owned(),
                        types: types.clone(),
                        created_at: now,
                        updated_at: now,
                    };
                    let secret = secret_from(&self.ports.secrets.token());
                    // The partition lock serialises puts of the tenant: no duplicate.
                    tx.insert_webhook(&hook, &secret).await?;
                    (hook, Some(secret))
                }
            };
            let event = self.event(
                partition.clone(),
                format!("webhook/{name}"),
                EventData::WebhookPut {
                    name: name.to_owned(),
                    types,
                    created: secret.is_some(),
                },
            );
            self.commit(tx, &op, vec![event]).await?;
            Ok(PutWebhook { hook, secret })
        }
        .await;
        self.finish(op, result).await
    }

    /// A tenant's hook (`tenant:read`).
    ///
    /// # Errors
    /// `tenant_not_found`; `forbidden`; `not_found` for no such hook.
    pub async fn get_webhook(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Webhook, Error> {
        let mut op = self.op(
            caller,
            "webhook.read",
            target(name),
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                tenant_check(tenant, scopes::TENANT_READ),
            )
            .await?;
            tx.get_webhook(tenant, name).await?.ok_or(Error::NotFound)
        }
        .await;
        self.finish(op, result).await
    }

    /// A tenant's hooks by name (`tenant:read`).
    ///
    /// # Errors
    /// `tenant_not_found`; `forbidden`.
    pub async fn list_webhooks(
        &self,
        caller: &Caller,
        tenant: &TenantId,
    ) -> Result<Vec<Webhook>, Error> {
        let mut op = self.op(
            caller,
            "webhook.list",
            AuditTarget {
                kind: "tenant",
                id: tenant.to_string(),
            },
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                tenant_check(tenant, scopes::TENANT_READ),
            )
            .await?;
            Ok(tx.list_webhooks(tenant).await?)
        }
        .await;
        self.finish(op, result).await
    }

    /// Deletes a hook and its deliveries (`tenant:write`).
    ///
    /// # Errors
    /// `tenant_not_found`; `forbidden`; `not_found` for no such hook.
    pub async fn delete_webhook(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        name: &str,
    ) -> Result<(), Error> {
        let partition = Partition::Tenant(tenant.clone());
        let mut op = self.op(caller, "webhook.delete", target(name), partition.clone());
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                tenant_check(tenant, scopes::TENANT_WRITE),
            )
            .await?;
            tx.lock_partition(&partition).await?;
            if !tx.delete_webhook(tenant, name).await? {
                return Err(Error::NotFound);
            }
            let event = self.event(
                partition.clone(),
                format!("webhook/{name}"),
                EventData::WebhookDeleted {
                    name: name.to_owned(),
                },
            );
            self.commit(tx, &op, vec![event]).await
        }
        .await;
        self.finish(op, result).await
    }

    /// Gives a hook a new secret, shown this once (`tenant:write`); deliveries from then
    /// on are signed with it alone.
    ///
    /// # Errors
    /// `tenant_not_found`; `forbidden`; `not_found` for no such hook.
    pub async fn rotate_webhook_secret(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        name: &str,
    ) -> Result<String, Error> {
        let partition = Partition::Tenant(tenant.clone());
        let mut op = self.op(
            caller,
            "webhook.secret.rotate",
            target(name),
            partition.clone(),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                tenant_check(tenant, scopes::TENANT_WRITE),
            )
            .await?;
            tx.lock_partition(&partition).await?;
            let secret = secret_from(&self.ports.secrets.token());
            if !tx.set_webhook_secret(tenant, name, &secret).await? {
                return Err(Error::NotFound);
            }
            let event = self.event(
                partition.clone(),
                format!("webhook/{name}"),
                EventData::WebhookSecretRotated {
                    name: name.to_owned(),
                },
            );
            self.commit(tx, &op, vec![event]).await?;
            Ok(secret)
        }
        .await;
        self.finish(op, result).await
    }

    /// A hook's deliveries in feed order (`tenant:read`), a page after the cursor.
    ///
    /// # Errors
    /// `tenant_not_found`; `forbidden`; `not_found` for no such hook; `invalid_cursor`.
    pub async fn list_deliveries(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        name: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Delivery>, Error> {
        let mut op = self.op(
            caller,
            "webhook.deliveries.read",
            target(name),
            Partition::Tenant(tenant.clone()),
        );
        let result = async {
            let mut tx = self.begin(TxScope::Tenant(tenant.clone())).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                tenant_check(tenant, scopes::TENANT_READ),
            )
            .await?;
            if tx.get_webhook(tenant, name).await?.is_none() {
                return Err(Error::NotFound);
            }
            let list = format!("{tenant}/{name}");
            let after = cursor::decode_number(List::Deliveries, &list, after)?;
            let rows = tx.list_deliveries(tenant, name, after, limit + 1).await?;
            Ok(paginate(rows, limit, |delivery: &Delivery| {
                cursor::encode(List::Deliveries, &list, &delivery.position.to_string())
            }))
        }
        .await;
        self.finish(op, result).await
    }
}
