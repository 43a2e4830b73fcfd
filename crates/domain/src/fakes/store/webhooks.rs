//! [`Webhooks`] on the in-memory state: two maps; leases serialised by the store's lock.

use super::*;
use crate::ports::Webhooks;
use crate::webhook::{Delivery, DeliveryStatus, LeasedWebhook, Webhook, WebhookProgress};

impl MemTx {
    pub(super) fn require_platform(&self) -> Result<(), StoreError> {
        match self.scope {
            TxScope::Platform => Ok(()),
            TxScope::Tenant(_) => Err(StoreError::Unavailable(
                "a platform table needs a platform transaction".to_owned(),
            )),
        }
    }
}

#[async_trait]
impl Webhooks for MemTx {
    async fn insert_webhook(&mut self, hook: &Webhook, secret: &str) -> Result<(), StoreError> {
        self.scope.allow(&hook.tenant)?;
        let key = (hook.tenant.clone(), hook.name.clone());
        if self.working.webhooks.contains_key(&key) {
            return Err(StoreError::Duplicate("webhook"));
        }
        let cursor = self
            .working
            .events_of(&Partition::Tenant(hook.tenant.clone()))
            .last()
            .map_or(0, |event| event.position);
        self.working.webhooks.insert(
            key,
            MemWebhook {
                hook: hook.clone(),
                secret: secret.to_owned(),
                cursor,
                head_attempts: 0,
                head_since: None,
                next_attempt_at: hook.created_at,
                leased_until: None,
            },
        );
        Ok(())
    }

    async fn update_webhook(&mut self, hook: &Webhook) -> Result<(), StoreError> {
        self.scope.allow(&hook.tenant)?;
        let stored = self
            .working
            .webhooks
            .get_mut(&(hook.tenant.clone(), hook.name.clone()))
            .ok_or(StoreError::Missing("webhook"))?;
        stored.hook.url = hook.url.clone();
        stored.hook.types = hook.types.clone();
        stored.hook.updated_at = hook.updated_at;
        Ok(())
    }

    async fn get_webhook(
        &mut self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<Webhook>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .webhooks
            .get(&(tenant.clone(), name.to_owned()))
            .map(|stored| stored.hook.clone()))
    }

    async fn list_webhooks(&mut self, tenant: &TenantId) -> Result<Vec<Webhook>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .webhooks
            .iter()
            .filter(|((owner, _), _)| owner == tenant)
            .map(|(_, stored)| stored.hook.clone())
            .collect())
    }

    async fn delete_webhook(&mut self, tenant: &TenantId, name: &str) -> Result<bool, StoreError> {
        self.scope.allow(tenant)?;
        let removed = self
            .working
            .webhooks
            .remove(&(tenant.clone(), name.to_owned()))
            .is_some();
        self.working
            .deliveries
            .retain(|(owner, hook, _), _| !(owner == tenant && hook == name));
        Ok(removed)
    }

    async fn set_webhook_secret(
        &mut self,
        tenant: &TenantId,
        name: &str,
        secret: &str,
    ) -> Result<bool, StoreError> {
        self.scope.allow(tenant)?;
        Ok(
            match self
                .working
                .webhooks
                .get_mut(&(tenant.clone(), name.to_owned()))
            {
                Some(stored) => {
                    secret.clone_into(&mut stored.secret);
                    true
                }
                None => false,
            },
        )
    }

    async fn list_deliveries(
        &mut self,
        tenant: &TenantId,
        name: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.scope.allow(tenant)?;
        Ok(self
            .working
            .deliveries
            .iter()
            .filter(|((owner, hook, position), _)| {
                owner == tenant && hook == name && *position > after
            })
            .take(limit)
            .map(|(_, delivery)| delivery.clone())
            .collect())
    }

    async fn webhook_health(
        &mut self,
        tenant: &TenantId,
    ) -> Result<Vec<(String, u64, Option<OffsetDateTime>)>, StoreError> {
        self.scope.allow(tenant)?;
        let mut health = Vec::new();
        for ((owner, name), stored) in &self.working.webhooks {
            if owner != tenant {
                continue;
            }
            let failed = self
                .working
                .deliveries
                .iter()
                .filter(|((t, hook, _), delivery)| {
                    t == tenant && hook == name && delivery.status == DeliveryStatus::Failed
                })
                .count();
            health.push((
                name.clone(),
                u64::try_from(failed).unwrap_or(u64::MAX),
                stored.head_since,
            ));
        }
        Ok(health)
    }

    async fn lease_webhooks(
        &mut self,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<LeasedWebhook>, StoreError> {
        self.require_platform()?;
        let heads: BTreeMap<TenantId, u64> = self
            .working
            .events
            .iter()
            .filter_map(|(partition, events)| {
                Some((partition.tenant()?.clone(), events.last()?.position))
            })
            .collect();
        let mut leased = Vec::new();
        for stored in self.working.webhooks.values_mut() {
            if leased.len() >= limit {
                break;
            }
            let pending = heads
                .get(&stored.hook.tenant)
                .is_some_and(|head| *head > stored.cursor);
            let due = stored.next_attempt_at <= now
                && stored.leased_until.is_none_or(|lease| lease <= now);
            if pending && due {
                stored.leased_until = Some(until);
                leased.push(LeasedWebhook {
                    hook: stored.hook.clone(),
                    secret: stored.secret.clone(),
                    cursor: stored.cursor,
                    head_attempts: stored.head_attempts,
                    head_since: stored.head_since,
                });
            }
        }
        Ok(leased)
    }

    async fn record_webhook_progress(
        &mut self,
        tenant: &TenantId,
        name: &str,
        progress: &WebhookProgress,
        attempts: &[Delivery],
    ) -> Result<(), StoreError> {
        self.require_platform()?;
        let Some(stored) = self
            .working
            .webhooks
            .get_mut(&(tenant.clone(), name.to_owned()))
        else {
            return Ok(());
        };
        stored.cursor = progress.cursor;
        stored.head_attempts = progress.head_attempts;
        stored.head_since = progress.head_since;
        stored.next_attempt_at = progress.next_attempt_at;
        stored.leased_until = None;
        for delivery in attempts {
            self.working.deliveries.insert(
                (tenant.clone(), name.to_owned(), delivery.position),
                delivery.clone(),
            );
        }
        Ok(())
    }
}
