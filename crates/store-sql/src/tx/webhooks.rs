//! [`Webhooks`]: a tenant's hooks and their deliveries (tenant rows, refused outside the
//! transaction's tenant), and the delivery worker's lease (a column, `for update skip
//! locked` where several workers run) and progress.

use async_trait::async_trait;
use domain::ids::TenantId;
use domain::ports::{StoreError, Webhooks};
use domain::webhook::{Delivery, LeasedWebhook, Webhook, WebhookProgress};
use time::OffsetDateTime;

use super::SqlTx;
use crate::rows::{
    DeliveryRow, LeasedWebhookRow, Shape, WebhookRow, DELIVERY_COLUMNS, LEASED_WEBHOOK_COLUMNS,
    WEBHOOK_COLUMNS,
};
use crate::{after_bound, from_sql_int, Backend, Statement};

fn types_json(hook: &Webhook) -> serde_json::Value {
    serde_json::Value::Array(
        hook.types
            .iter()
            .map(|name| serde_json::Value::String(name.clone()))
            .collect(),
    )
}

#[async_trait]
impl<B: Backend> Webhooks for SqlTx<B> {
    async fn insert_webhook(&mut self, hook: &Webhook, secret: &str) -> Result<(), StoreError> {
        self.scope.allow(&hook.tenant)?;
        if B::CHECKS_BEFORE_WRITE
            && self
                .exists(
                    Statement::new(
                        "select 1 as one from webhooks where tenant_id = $1 and name = $2",
                    )
                    .text(hook.tenant.as_str())
                    .text(&hook.name),
                )
                .await?
        {
            return Err(StoreError::Duplicate("webhook"));
        }
        self.execute(
            Statement::new(format!(
                "insert into webhooks ({WEBHOOK_COLUMNS}, secret, cursor_position, next_attempt_at) \
                 values ($1, $2, $3, $4, $5, $6, $7, \
                 (select coalesce(max(position), 0) from outbox_events where partition = $1), $5)"
            ))
            .text(hook.tenant.as_str())
            .text(&hook.name)
            .text(&hook.url)
            .json(&types_json(hook))
            .time(hook.created_at)
            .time(hook.updated_at)
            .text(secret),
        )
        .await
        .map(|_| ())
    }

    async fn update_webhook(&mut self, hook: &Webhook) -> Result<(), StoreError> {
        self.scope.allow(&hook.tenant)?;
        let updated = self
            .execute(
                Statement::new(
                    "update webhooks set url = $3, types = $4, updated_at = $5 \
                     where tenant_id = $1 and name = $2",
                )
                .text(hook.tenant.as_str())
                .text(&hook.name)
                .text(&hook.url)
                .json(&types_json(hook))
                .time(hook.updated_at),
            )
            .await?;
        crate::require_changed(updated, "webhook")
    }

    async fn get_webhook(
        &mut self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Option<Webhook>, StoreError> {
        self.scope.allow(tenant)?;
        self.optional::<WebhookRow>(
            Statement::new(format!(
                "select {WEBHOOK_COLUMNS} from webhooks where tenant_id = $1 and name = $2"
            ))
            .text(tenant.as_str())
            .text(name),
        )
        .await
    }

    async fn list_webhooks(&mut self, tenant: &TenantId) -> Result<Vec<Webhook>, StoreError> {
        self.scope.allow(tenant)?;
        self.all::<WebhookRow>(
            Statement::new(format!(
                "select {WEBHOOK_COLUMNS} from webhooks where tenant_id = $1 order by name{}",
                B::BYTEWISE
            ))
            .text(tenant.as_str()),
        )
        .await
    }

    async fn delete_webhook(&mut self, tenant: &TenantId, name: &str) -> Result<bool, StoreError> {
        self.scope.allow(tenant)?;
        self.execute(
            Statement::new("delete from webhook_deliveries where tenant_id = $1 and name = $2")
                .text(tenant.as_str())
                .text(name),
        )
        .await?;
        self.execute(
            Statement::new("delete from webhooks where tenant_id = $1 and name = $2")
                .text(tenant.as_str())
                .text(name),
        )
        .await
        .map(|deleted| deleted == 1)
    }

    async fn set_webhook_secret(
        &mut self,
        tenant: &TenantId,
        name: &str,
        secret: &str,
    ) -> Result<bool, StoreError> {
        self.scope.allow(tenant)?;
        self.execute(
            Statement::new("update webhooks set secret = $3 where tenant_id = $1 and name = $2")
                .text(tenant.as_str())
                .text(name)
                .text(secret),
        )
        .await
        .map(|updated| updated == 1)
    }

    async fn list_deliveries(
        &mut self,
        tenant: &TenantId,
        name: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.scope.allow(tenant)?;
        let Some(after) = after_bound(after) else {
            return Ok(Vec::new());
        };
        self.all::<DeliveryRow>(
            Statement::new(format!(
                "select {DELIVERY_COLUMNS} from webhook_deliveries \
                 where tenant_id = $1 and name = $2 and position > $3 order by position limit $4"
            ))
            .text(tenant.as_str())
            .text(name)
            .int(after)
            .limit(limit)?,
        )
        .await
    }

    async fn webhook_health(
        &mut self,
        tenant: &TenantId,
    ) -> Result<Vec<(String, u64, Option<OffsetDateTime>)>, StoreError> {
        self.scope.allow(tenant)?;
        let rows = self
            .backend
            .fetch(
                Statement::new(format!(
                    "select w.name, w.head_since, (select count(*) from webhook_deliveries d \
                     where d.tenant_id = w.tenant_id and d.name = w.name \
                     and d.status = 'failed') as failed \
                     from webhooks w where w.tenant_id = $1 order by w.name{}",
                    B::BYTEWISE
                ))
                .text(tenant.as_str()),
            )
            .await?;
        rows.iter()
            .map(|row| {
                use crate::Columns;
                Ok((
                    row.text("name")?,
                    from_sql_int(row.int("failed")?, "failed deliveries")?,
                    row.time_opt("head_since")?,
                ))
            })
            .collect()
    }

    async fn lease_webhooks(
        &mut self,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<LeasedWebhook>, StoreError> {
        self.scope.require_platform()?;
        let rows = self
            .backend
            .fetch_writing(
                Statement::new(format!(
                    "update webhooks set leased_until = $2 \
                     where (tenant_id, name) in (select h.tenant_id, h.name from webhooks h \
                     where h.next_attempt_at <= $1 \
                     and (h.leased_until is null or h.leased_until <= $1) \
                     and exists (select 1 from outbox_events e where e.partition = h.tenant_id \
                                 and e.position > h.cursor_position) \
                     order by h.next_attempt_at limit $3{}) \
                     returning {LEASED_WEBHOOK_COLUMNS}",
                    B::SKIP_LOCKED
                ))
                .time(now)
                .time(until)
                .limit(limit)?,
            )
            .await?;
        rows.iter().map(LeasedWebhookRow::decode).collect()
    }

    async fn record_webhook_progress(
        &mut self,
        tenant: &TenantId,
        name: &str,
        progress: &WebhookProgress,
        attempts: &[Delivery],
    ) -> Result<(), StoreError> {
        self.scope.require_platform()?;
        let updated = self
            .execute(
                Statement::new(
                    "update webhooks set cursor_position = $3, head_attempts = $4, \
                     head_since = $5, next_attempt_at = $6, leased_until = null \
                     where tenant_id = $1 and name = $2",
                )
                .text(tenant.as_str())
                .text(name)
                .count(progress.cursor, "webhook cursor")?
                .count(u64::from(progress.head_attempts), "webhook attempts")?
                .time_opt(progress.head_since)
                .time(progress.next_attempt_at),
            )
            .await?;
        if updated == 0 {
            // The hook was deleted meanwhile: its deliveries went with it.
            return Ok(());
        }
        for delivery in attempts {
            let event_id = uuid::Uuid::parse_str(&delivery.event_id)
                .map_err(|_| crate::corrupt("delivery event id"))?;
            self.execute(
                Statement::new(
                    "insert into webhook_deliveries (tenant_id, name, position, event_id, \
                     event_type, status, attempts, last_status_code, last_error, \
                     first_attempt_at, last_attempt_at) \
                     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                     on conflict (tenant_id, name, position) do update set \
                     status = excluded.status, attempts = excluded.attempts, \
                     last_status_code = excluded.last_status_code, \
                     last_error = excluded.last_error, last_attempt_at = excluded.last_attempt_at",
                )
                .text(tenant.as_str())
                .text(name)
                .count(delivery.position, "delivery position")?
                .id(&event_id)
                .text(&delivery.event_type)
                .text(delivery.status.as_str())
                .count(u64::from(delivery.attempts), "delivery attempts")?
                .int_opt(delivery.last_status_code.map(i64::from))
                .text_opt(delivery.last_error.as_deref())
                .time(delivery.first_attempt_at)
                .time(delivery.last_attempt_at),
            )
            .await?;
        }
        Ok(())
    }
}
