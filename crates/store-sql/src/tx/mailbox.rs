//! [`Mailbox`]: the mail queue (`mail_queue`, a platform table). Leases are a column, so a
//! worker sends outside any transaction and a dead worker's lease simply expires.

use async_trait::async_trait;
use domain::ids::UserId;
use domain::mail::{MailBacklog, MailDraft, MailOutcome, QueuedMail};
use domain::ports::{Mailbox, StoreError};
use time::OffsetDateTime;
use uuid::Uuid;

use super::SqlTx;
use crate::rows::{MailBacklogRow, QueuedMailRow, Shape, QUEUED_MAIL_COLUMNS};
use crate::{Backend, Statement};

#[async_trait]
impl<B: Backend> Mailbox for SqlTx<B> {
    async fn queue_mail(&mut self, mail: &MailDraft) -> Result<(), StoreError> {
        self.execute(
            Statement::new(
                "insert into mail_queue (mail_id, user_id, kind, recipient, subject, text_body, \
                 html_body, queued_at, next_attempt_at, attempts) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $8, 0)",
            )
            .id(&mail.id)
            .id_opt(mail.user.as_ref().map(UserId::as_uuid))
            .text(mail.kind)
            .text(mail.recipient.as_str())
            .text(&mail.subject)
            .text(&mail.text)
            .text(&mail.html)
            .time(mail.queued_at),
        )
        .await
        .map(|_| ())
    }

    async fn lease_mails(
        &mut self,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<QueuedMail>, StoreError> {
        self.scope.require_platform()?;
        let rows = self
            .backend
            .fetch_writing(
                Statement::new(format!(
                    "update mail_queue set leased_until = $2, attempts = attempts + 1 \
                     where mail_id in (select mail_id from mail_queue \
                     where sent_at is null and gave_up_at is null and next_attempt_at <= $1 \
                     and (leased_until is null or leased_until <= $1) \
                     order by next_attempt_at, mail_id limit $3{}) \
                     returning {QUEUED_MAIL_COLUMNS}",
                    B::SKIP_LOCKED
                ))
                .time(now)
                .time(until)
                .limit(limit)?,
            )
            .await?;
        let mut mails = rows
            .iter()
            .map(QueuedMailRow::decode)
            .collect::<Result<Vec<_>, _>>()?;
        mails.sort_by_key(|mail| (mail.queued_at, mail.id));
        Ok(mails)
    }

    async fn record_mail_outcome(
        &mut self,
        id: Uuid,
        outcome: &MailOutcome,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.scope.require_platform()?;
        let statement = match outcome {
            MailOutcome::Sent => Statement::new(
                "update mail_queue set sent_at = $2, leased_until = null, last_error = null, \
                 text_body = '', html_body = '' where mail_id = $1",
            )
            .id(&id)
            .time(now),
            MailOutcome::Retry { at, error } => Statement::new(
                "update mail_queue set next_attempt_at = $2, leased_until = null, \
                 last_error = $3 where mail_id = $1 and sent_at is null",
            )
            .id(&id)
            .time(*at)
            .text(truncate(error)),
            MailOutcome::GaveUp { error } => Statement::new(
                "update mail_queue set gave_up_at = $2, leased_until = null, last_error = $3, \
                 text_body = '', html_body = '' where mail_id = $1 and sent_at is null",
            )
            .id(&id)
            .time(now)
            .text(truncate(error)),
        };
        self.execute(statement).await.map(|_| ())
    }

    async fn mail_backlog(&mut self) -> Result<MailBacklog, StoreError> {
        self.scope.require_platform()?;
        let rows = self
            .backend
            .fetch(Statement::new(
                "select count(*) filter (where gave_up_at is null) as waiting, \
                 min(queued_at) filter (where gave_up_at is null) as oldest, \
                 count(*) filter (where gave_up_at is not null) as failed \
                 from mail_queue where sent_at is null",
            ))
            .await?;
        let row = rows.first().ok_or_else(|| crate::corrupt("mail backlog"))?;
        MailBacklogRow::decode(row)
    }

    async fn delete_mails_of(&mut self, user: &UserId) -> Result<u64, StoreError> {
        self.execute(Statement::new("delete from mail_queue where user_id = $1").id(user.as_uuid()))
            .await
    }
}

/// Errors kept in the queue stay short.
fn truncate(error: &str) -> &str {
    match error.char_indices().nth(500) {
        Some((cut, _)) => error.get(..cut).unwrap_or(error),
        None => error,
    }
}
