//! [`Mailbox`] on the in-memory state: one map; leases serialised by the store's lock.

use super::*;
use crate::mail::{MailBacklog, MailDraft, MailOutcome, QueuedMail};
use crate::ports::Mailbox;

#[async_trait]
impl Mailbox for MemTx {
    async fn queue_mail(&mut self, mail: &MailDraft) -> Result<(), StoreError> {
        self.working.mails.insert(
            mail.id,
            MemMail {
                draft: mail.clone(),
                next_attempt_at: mail.queued_at,
                attempts: 0,
                leased_until: None,
                sent_at: None,
                gave_up_at: None,
                last_error: None,
            },
        );
        Ok(())
    }

    async fn lease_mails(
        &mut self,
        now: OffsetDateTime,
        until: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<QueuedMail>, StoreError> {
        let mut due: Vec<&mut MemMail> = self
            .working
            .mails
            .values_mut()
            .filter(|mail| {
                mail.sent_at.is_none()
                    && mail.gave_up_at.is_none()
                    && mail.next_attempt_at <= now
                    && mail.leased_until.is_none_or(|lease| lease <= now)
            })
            .collect();
        due.sort_by_key(|mail| (mail.next_attempt_at, mail.draft.id));
        Ok(due
            .into_iter()
            .take(limit)
            .map(|mail| {
                mail.leased_until = Some(until);
                mail.attempts += 1;
                QueuedMail {
                    id: mail.draft.id,
                    recipient: mail.draft.recipient.as_str().to_owned(),
                    subject: mail.draft.subject.clone(),
                    text: mail.draft.text.clone(),
                    html: mail.draft.html.clone(),
                    queued_at: mail.draft.queued_at,
                    attempts: mail.attempts,
                }
            })
            .collect())
    }

    async fn record_mail_outcome(
        &mut self,
        id: uuid::Uuid,
        outcome: &MailOutcome,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let Some(mail) = self.working.mails.get_mut(&id) else {
            return Ok(());
        };
        mail.leased_until = None;
        match outcome {
            MailOutcome::Sent => {
                mail.sent_at = Some(now);
                mail.last_error = None;
                mail.draft.text.clear();
                mail.draft.html.clear();
            }
            MailOutcome::Retry { at, error } if mail.sent_at.is_none() => {
                mail.next_attempt_at = *at;
                mail.last_error = Some(error.clone());
            }
            MailOutcome::GaveUp { error } if mail.sent_at.is_none() => {
                mail.gave_up_at = Some(now);
                mail.last_error = Some(error.clone());
                mail.draft.text.clear();
                mail.draft.html.clear();
            }
            MailOutcome::Retry { .. } | MailOutcome::GaveUp { .. } => {}
        }
        Ok(())
    }

    async fn mail_backlog(&mut self) -> Result<MailBacklog, StoreError> {
        let unsent = self
            .working
            .mails
            .values()
            .filter(|mail| mail.sent_at.is_none());
        let mut backlog = MailBacklog::default();
        for mail in unsent {
            if mail.gave_up_at.is_some() {
                backlog.failed += 1;
            } else {
                backlog.waiting += 1;
                backlog.oldest = Some(backlog.oldest.map_or(mail.draft.queued_at, |oldest| {
                    oldest.min(mail.draft.queued_at)
                }));
            }
        }
        Ok(backlog)
    }

    async fn delete_mails_of(&mut self, user: &UserId) -> Result<u64, StoreError> {
        let before = self.working.mails.len();
        self.working
            .mails
            .retain(|_, mail| mail.draft.user != Some(*user));
        Ok(u64::try_from(before - self.working.mails.len()).unwrap_or(u64::MAX))
    }
}
