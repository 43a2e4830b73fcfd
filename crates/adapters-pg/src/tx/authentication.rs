//! [`Authentication`] over PostgreSQL: credentials, sessions and invitations (platform
//! tables), and the two single-use steps as conditional updates that read committed
//! lets only one transaction win.

use async_trait::async_trait;
use domain::ids::UserId;
use domain::model::{Credentials, Invitation, Session};
use domain::ports::{Authentication, StoreError};
use store_sql::rows::{
    totp_last_step, CredentialsRow, InvitationRow, SessionRow, CREDENTIALS_COLUMNS,
    INVITATION_COLUMNS, SESSION_COLUMNS,
};
use store_sql::to_sql_int;
use time::OffsetDateTime;

use super::PgTx;

#[async_trait]
impl Authentication for PgTx {
    async fn get_credentials(&mut self, user: &UserId) -> Result<Credentials, StoreError> {
        let credentials = self
            .fetch_optional::<CredentialsRow>(
                sqlx::query(&format!(
                    "select {CREDENTIALS_COLUMNS} from user_credentials where user_id = $1"
                ))
                .bind(user.as_uuid()),
            )
            .await?;
        Ok(credentials.unwrap_or_default())
    }

    async fn set_credentials(
        &mut self,
        user: &UserId,
        credentials: &Credentials,
    ) -> Result<(), StoreError> {
        let totp = credentials.totp.as_ref();
        let last_step = totp_last_step(credentials)?;
        self.execute(
            sqlx::query(
                "insert into user_credentials (user_id, password_hash, totp_secret, totp_confirmed, totp_last_step) \
                 values ($1, $2, $3, $4, $5) \
                 on conflict (user_id) do update set password_hash = excluded.password_hash, \
                 totp_secret = excluded.totp_secret, totp_confirmed = excluded.totp_confirmed, \
                 totp_last_step = excluded.totp_last_step",
            )
            .bind(user.as_uuid())
            .bind(credentials.password_hash.as_deref())
            .bind(totp.map(|totp| totp.secret.as_str()))
            .bind(totp.is_some_and(|totp| totp.confirmed))
            .bind(last_step),
        )
        .await
        .map(|_| ())
    }

    async fn insert_session(&mut self, session: &Session) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "insert into sessions (token_hash, user_id, created_at, expires_at, last_seen_at, aal2_until) \
                 values ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&session.token_hash)
            .bind(session.user_id.as_uuid())
            .bind(session.created_at)
            .bind(session.expires_at)
            .bind(session.last_seen_at)
            .bind(session.aal2_until),
        )
        .await
        .map(|_| ())
    }

    async fn find_session(&mut self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        self.fetch_optional::<SessionRow>(
            sqlx::query(&format!(
                "select {SESSION_COLUMNS} from sessions where token_hash = $1"
            ))
            .bind(token_hash),
        )
        .await
    }

    async fn update_session(&mut self, session: &Session) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "update sessions set expires_at = $2, last_seen_at = $3, aal2_until = $4 \
                 where token_hash = $1",
            )
            .bind(&session.token_hash)
            .bind(session.expires_at)
            .bind(session.last_seen_at)
            .bind(session.aal2_until),
        )
        .await
        .map(|_| ())
    }

    async fn delete_session(&mut self, token_hash: &str) -> Result<bool, StoreError> {
        self.execute(sqlx::query("delete from sessions where token_hash = $1").bind(token_hash))
            .await
            .map(|deleted| deleted > 0)
    }

    async fn delete_sessions_of(
        &mut self,
        user: &UserId,
        keep: Option<String>,
    ) -> Result<u64, StoreError> {
        self.execute(
            sqlx::query(
                "delete from sessions where user_id = $1 \
                 and ($2::text is null or token_hash <> $2)",
            )
            .bind(user.as_uuid())
            .bind(keep),
        )
        .await
    }

    async fn insert_invitation(&mut self, invitation: &Invitation) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "insert into invitations (token_hash, user_id, expires_at, used_at) \
                 values ($1, $2, $3, $4)",
            )
            .bind(&invitation.token_hash)
            .bind(invitation.user_id.as_uuid())
            .bind(invitation.expires_at)
            .bind(invitation.used_at),
        )
        .await
        .map(|_| ())
    }

    async fn find_invitation(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<Invitation>, StoreError> {
        self.fetch_optional::<InvitationRow>(
            sqlx::query(&format!(
                "select {INVITATION_COLUMNS} from invitations where token_hash = $1"
            ))
            .bind(token_hash),
        )
        .await
    }

    /// One conditional update: under read committed, a concurrent update of the row
    /// makes this one wait for it and re-check its `where` on the row's newest version,
    /// so only one transaction can set `used_at`.
    async fn consume_invitation(
        &mut self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Invitation>, StoreError> {
        self.fetch_optional::<InvitationRow>(
            sqlx::query(&format!(
                "update invitations set used_at = $2 \
                 where token_hash = $1 and used_at is null and expires_at > $2 \
                 returning {INVITATION_COLUMNS}"
            ))
            .bind(token_hash)
            .bind(now),
        )
        .await
    }

    /// A conditional update, as for invitations: the step is burned by whichever
    /// transaction updates the row first; the others re-check and find it used.
    async fn burn_totp_step(&mut self, user: &UserId, step: u64) -> Result<bool, StoreError> {
        let step = to_sql_int(step, "totp step")?;
        self.execute(
            sqlx::query(
                "update user_credentials set totp_last_step = $2 \
                 where user_id = $1 and totp_secret is not null \
                 and (totp_last_step is null or totp_last_step < $2)",
            )
            .bind(user.as_uuid())
            .bind(step),
        )
        .await
        .map(|updated| updated == 1)
    }
}
