//! [`Authentication`]: credentials, sessions and invitations (platform tables; the user
//! checked before a write where the backend asks), and the two single-use steps as
//! conditional updates. Under PostgreSQL's read committed a concurrent update of the row
//! makes the second wait and re-check its `where` on the newest version; SQLite runs
//! them on its one writer, held to commit. Either way exactly one transaction wins.

use async_trait::async_trait;
use domain::ids::{SessionId, UserId};
use domain::model::{
    Credentials, EmailVerification, Invitation, PasswordReset, Session, SessionDetails,
};
use domain::ports::{Authentication, StoreError};
use time::OffsetDateTime;

use super::SqlTx;
use crate::rows::{
    totp_last_step, CredentialsRow, EmailVerificationRow, InvitationRow, SessionDetailsRow,
    SessionRow, Shape, CREDENTIALS_COLUMNS, EMAIL_VERIFICATION_COLUMNS, INVITATION_COLUMNS,
    SESSION_COLUMNS, SESSION_DETAILS_COLUMNS,
};
use crate::{Backend, Statement};

#[async_trait]
impl<B: Backend> Authentication for SqlTx<B> {
    async fn get_credentials(&mut self, user: &UserId) -> Result<Credentials, StoreError> {
        let credentials = self
            .optional::<CredentialsRow>(
                Statement::new(format!(
                    "select {CREDENTIALS_COLUMNS} from user_credentials where user_id = $1"
                ))
                .id(user.as_uuid()),
            )
            .await?;
        Ok(credentials.unwrap_or_default())
    }

    async fn set_credentials(
        &mut self,
        user: &UserId,
        credentials: &Credentials,
    ) -> Result<(), StoreError> {
        self.require_user(user).await?;
        let totp = credentials.totp.as_ref();
        let statement = Statement::new(
            "insert into user_credentials \
                 (user_id, password_hash, totp_secret, totp_confirmed, totp_last_step) \
             values ($1, $2, $3, $4, $5) \
             on conflict (user_id) do update set password_hash = excluded.password_hash, \
             totp_secret = excluded.totp_secret, totp_confirmed = excluded.totp_confirmed, \
             totp_last_step = excluded.totp_last_step",
        )
        .id(user.as_uuid())
        .text_opt(credentials.password_hash.as_deref())
        .text_opt(totp.map(|totp| totp.secret.as_str()))
        .flag(totp.is_some_and(|totp| totp.confirmed))
        .int_opt(totp_last_step(credentials)?);
        self.execute(statement).await.map(|_| ())
    }

    async fn insert_session(
        &mut self,
        session: &Session,
        details: &SessionDetails,
    ) -> Result<(), StoreError> {
        self.require_user(&session.user_id).await?;
        self.execute(
            Statement::new(
                "insert into sessions \
                     (token_hash, user_id, created_at, expires_at, last_seen_at, aal2_until, \
                      session_id, client_address, user_agent) \
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .text(&session.token_hash)
            .id(session.user_id.as_uuid())
            .time(session.created_at)
            .time(session.expires_at)
            .time(session.last_seen_at)
            .time_opt(session.aal2_until)
            .id(details.id.as_uuid())
            .text_opt(details.client_address.as_deref())
            .text_opt(details.user_agent.as_deref()),
        )
        .await
        .map(|_| ())
    }

    async fn list_sessions_of(
        &mut self,
        user: &UserId,
    ) -> Result<Vec<(Session, SessionDetails)>, StoreError> {
        self.all::<SessionDetailsRow>(
            Statement::new(format!(
                "select {SESSION_DETAILS_COLUMNS} from sessions where user_id = $1 \
                 order by created_at, session_id"
            ))
            .id(user.as_uuid()),
        )
        .await
    }

    async fn delete_session_by_id(
        &mut self,
        user: &UserId,
        id: &SessionId,
    ) -> Result<bool, StoreError> {
        self.execute(
            Statement::new("delete from sessions where user_id = $1 and session_id = $2")
                .id(user.as_uuid())
                .id(id.as_uuid()),
        )
        .await
        .map(|deleted| deleted > 0)
    }

    async fn find_session(&mut self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        self.optional::<SessionRow>(
            Statement::new(format!(
                "select {SESSION_COLUMNS} from sessions where token_hash = $1"
            ))
            .text(token_hash),
        )
        .await
    }

    async fn find_session_details(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<(Session, SessionDetails)>, StoreError> {
        self.optional::<SessionDetailsRow>(
            Statement::new(format!(
                "select {SESSION_DETAILS_COLUMNS} from sessions where token_hash = $1"
            ))
            .text(token_hash),
        )
        .await
    }

    async fn update_session(&mut self, session: &Session) -> Result<(), StoreError> {
        self.execute(
            Statement::new(
                "update sessions set expires_at = $2, last_seen_at = $3, aal2_until = $4 \
                 where token_hash = $1",
            )
            .text(&session.token_hash)
            .time(session.expires_at)
            .time(session.last_seen_at)
            .time_opt(session.aal2_until),
        )
        .await
        .map(|_| ())
    }

    async fn delete_session(&mut self, token_hash: &str) -> Result<bool, StoreError> {
        self.execute(Statement::new("delete from sessions where token_hash = $1").text(token_hash))
            .await
            .map(|deleted| deleted > 0)
    }

    async fn delete_sessions_of(
        &mut self,
        user: &UserId,
        keep: Option<String>,
    ) -> Result<u64, StoreError> {
        self.execute(
            Statement::new(
                "delete from sessions where user_id = $1 and ($2 is null or token_hash <> $2)",
            )
            .id(user.as_uuid())
            .text_opt(keep.as_deref()),
        )
        .await
    }

    async fn insert_invitation(&mut self, invitation: &Invitation) -> Result<(), StoreError> {
        self.insert_token(Tokens::Invitations, invitation).await
    }

    async fn find_invitation(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<Invitation>, StoreError> {
        self.find_token(Tokens::Invitations, token_hash).await
    }

    async fn consume_invitation(
        &mut self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Invitation>, StoreError> {
        self.consume_token(Tokens::Invitations, token_hash, now)
            .await
    }

    async fn insert_password_reset(&mut self, reset: &PasswordReset) -> Result<(), StoreError> {
        self.insert_token(Tokens::PasswordResets, reset).await
    }

    async fn find_password_reset(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<PasswordReset>, StoreError> {
        self.find_token(Tokens::PasswordResets, token_hash).await
    }

    async fn consume_password_reset(
        &mut self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<PasswordReset>, StoreError> {
        self.consume_token(Tokens::PasswordResets, token_hash, now)
            .await
    }

    async fn void_password_resets_of(
        &mut self,
        user: &UserId,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.execute(
            Statement::new(
                "update password_resets set used_at = $2 where user_id = $1 and used_at is null",
            )
            .id(user.as_uuid())
            .time(now),
        )
        .await
    }

    async fn insert_email_verification(
        &mut self,
        verification: &EmailVerification,
    ) -> Result<(), StoreError> {
        self.require_user(&verification.user_id).await?;
        self.execute(
            Statement::new(format!(
                "insert into email_verifications ({EMAIL_VERIFICATION_COLUMNS}) \
                 values ($1, $2, $3, $4, $5)"
            ))
            .text(&verification.token_hash)
            .id(verification.user_id.as_uuid())
            .text(verification.email.as_str())
            .time(verification.expires_at)
            .time_opt(verification.used_at),
        )
        .await
        .map(|_| ())
    }

    async fn consume_email_verification(
        &mut self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<EmailVerification>, StoreError> {
        let rows = self
            .backend
            .fetch_writing(
                Statement::new(format!(
                    "update email_verifications set used_at = $2 \
                     where token_hash = $1 and used_at is null and expires_at > $2 \
                     returning {EMAIL_VERIFICATION_COLUMNS}"
                ))
                .text(token_hash)
                .time(now),
            )
            .await?;
        rows.first().map(EmailVerificationRow::decode).transpose()
    }

    async fn delete_email_verifications_of(&mut self, user: &UserId) -> Result<u64, StoreError> {
        self.execute(
            Statement::new("delete from email_verifications where user_id = $1").id(user.as_uuid()),
        )
        .await
    }

    async fn replace_recovery_codes(
        &mut self,
        user: &UserId,
        code_hashes: &[String],
    ) -> Result<(), StoreError> {
        self.require_user(user).await?;
        self.execute(
            Statement::new("delete from recovery_codes where user_id = $1").id(user.as_uuid()),
        )
        .await?;
        for hash in code_hashes {
            self.execute(
                Statement::new("insert into recovery_codes (user_id, code_hash) values ($1, $2)")
                    .id(user.as_uuid())
                    .text(hash),
            )
            .await?;
        }
        Ok(())
    }

    /// A conditional update, as for invitations.
    async fn consume_recovery_code(
        &mut self,
        user: &UserId,
        code_hash: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.execute(
            Statement::new(
                "update recovery_codes set used_at = $3 \
                 where user_id = $1 and code_hash = $2 and used_at is null",
            )
            .id(user.as_uuid())
            .text(code_hash)
            .time(now),
        )
        .await
        .map(|updated| updated == 1)
    }

    async fn delete_recovery_codes(&mut self, user: &UserId) -> Result<u64, StoreError> {
        self.execute(
            Statement::new("delete from recovery_codes where user_id = $1").id(user.as_uuid()),
        )
        .await
    }

    async fn count_recovery_codes(&mut self, user: &UserId) -> Result<u64, StoreError> {
        self.count(
            Statement::new(
                "select count(*) as n from recovery_codes where user_id = $1 and used_at is null",
            )
            .id(user.as_uuid()),
        )
        .await
    }

    /// A conditional update, as for invitations: the step is burned by whichever
    /// transaction updates the row first; the others find it used.
    async fn burn_totp_step(&mut self, user: &UserId, step: u64) -> Result<bool, StoreError> {
        self.execute(
            Statement::new(
                "update user_credentials set totp_last_step = $2 \
                 where user_id = $1 and totp_secret is not null \
                 and (totp_last_step is null or totp_last_step < $2)",
            )
            .id(user.as_uuid())
            .count(step, "totp step")?,
        )
        .await
        .map(|updated| updated == 1)
    }
}

/// The tables of single-use tokens, one shape (`InvitationRow`).
#[derive(Debug, Clone, Copy)]
enum Tokens {
    Invitations,
    PasswordResets,
}

impl Tokens {
    fn table(self) -> &'static str {
        match self {
            Self::Invitations => "invitations",
            Self::PasswordResets => "password_resets",
        }
    }
}

impl<B: Backend> SqlTx<B> {
    async fn insert_token(&mut self, tokens: Tokens, token: &Invitation) -> Result<(), StoreError> {
        self.require_user(&token.user_id).await?;
        self.execute(
            Statement::new(format!(
                "insert into {} (token_hash, user_id, expires_at, used_at) values ($1, $2, $3, $4)",
                tokens.table()
            ))
            .text(&token.token_hash)
            .id(token.user_id.as_uuid())
            .time(token.expires_at)
            .time_opt(token.used_at),
        )
        .await
        .map(|_| ())
    }

    async fn find_token(
        &mut self,
        tokens: Tokens,
        token_hash: &str,
    ) -> Result<Option<Invitation>, StoreError> {
        self.optional::<InvitationRow>(
            Statement::new(format!(
                "select {INVITATION_COLUMNS} from {} where token_hash = $1",
                tokens.table()
            ))
            .text(token_hash),
        )
        .await
    }

    /// One conditional update in the writing phase: whatever the transaction read
    /// before, the check and the mark see every committed use.
    async fn consume_token(
        &mut self,
        tokens: Tokens,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Invitation>, StoreError> {
        let rows = self
            .backend
            .fetch_writing(
                Statement::new(format!(
                    "update {} set used_at = $2 \
                     where token_hash = $1 and used_at is null and expires_at > $2 \
                     returning {INVITATION_COLUMNS}",
                    tokens.table()
                ))
                .text(token_hash)
                .time(now),
            )
            .await?;
        rows.first().map(InvitationRow::decode).transpose()
    }
}
