//! [`Authentication`] over SQLite: credentials, sessions and invitations (platform
//! tables, user checked before a write), and the two single-use steps as conditional
//! updates on the one writer, which the transaction then holds to its commit.

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

use super::SqliteTx;
use crate::columns::{micros, micros_opt};

#[async_trait]
impl Authentication for SqliteTx {
    async fn get_credentials(&mut self, user: &UserId) -> Result<Credentials, StoreError> {
        let credentials = self
            .fetch_optional::<CredentialsRow>(
                sqlx::query(&format!(
                    "select {CREDENTIALS_COLUMNS} from user_credentials where user_id = ?1"
                ))
                .bind(user.to_string()),
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
        let last_step = totp_last_step(credentials)?;
        self.execute(
            sqlx::query(
                "insert into user_credentials (user_id, password_hash, totp_secret, totp_confirmed, totp_last_step) \
                 values (?1, ?2, ?3, ?4, ?5) \
                 on conflict (user_id) do update set password_hash = excluded.password_hash, \
                 totp_secret = excluded.totp_secret, totp_confirmed = excluded.totp_confirmed, \
                 totp_last_step = excluded.totp_last_step",
            )
            .bind(user.to_string())
            .bind(credentials.password_hash.as_deref())
            .bind(totp.map(|totp| totp.secret.as_str()))
            .bind(totp.is_some_and(|totp| totp.confirmed))
            .bind(last_step),
        )
        .await
        .map(|_| ())
    }

    async fn insert_session(&mut self, session: &Session) -> Result<(), StoreError> {
        self.require_user(&session.user_id).await?;
        self.execute(
            sqlx::query(
                "insert into sessions (token_hash, user_id, created_at, expires_at, last_seen_at, aal2_until) \
                 values (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .bind(&session.token_hash)
            .bind(session.user_id.to_string())
            .bind(micros(session.created_at)?)
            .bind(micros(session.expires_at)?)
            .bind(micros(session.last_seen_at)?)
            .bind(micros_opt(session.aal2_until)?),
        )
        .await
        .map(|_| ())
    }

    async fn find_session(&mut self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        self.fetch_optional::<SessionRow>(
            sqlx::query(&format!(
                "select {SESSION_COLUMNS} from sessions where token_hash = ?1"
            ))
            .bind(token_hash),
        )
        .await
    }

    async fn update_session(&mut self, session: &Session) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "update sessions set expires_at = ?2, last_seen_at = ?3, aal2_until = ?4 \
                 where token_hash = ?1",
            )
            .bind(&session.token_hash)
            .bind(micros(session.expires_at)?)
            .bind(micros(session.last_seen_at)?)
            .bind(micros_opt(session.aal2_until)?),
        )
        .await
        .map(|_| ())
    }

    async fn delete_session(&mut self, token_hash: &str) -> Result<bool, StoreError> {
        self.execute(sqlx::query("delete from sessions where token_hash = ?1").bind(token_hash))
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
                "delete from sessions where user_id = ?1 and (?2 is null or token_hash <> ?2)",
            )
            .bind(user.to_string())
            .bind(keep),
        )
        .await
    }

    async fn insert_invitation(&mut self, invitation: &Invitation) -> Result<(), StoreError> {
        self.require_user(&invitation.user_id).await?;
        self.execute(
            sqlx::query(
                "insert into invitations (token_hash, user_id, expires_at, used_at) \
                 values (?1, ?2, ?3, ?4)",
            )
            .bind(&invitation.token_hash)
            .bind(invitation.user_id.to_string())
            .bind(micros(invitation.expires_at)?)
            .bind(micros_opt(invitation.used_at)?),
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
                "select {INVITATION_COLUMNS} from invitations where token_hash = ?1"
            ))
            .bind(token_hash),
        )
        .await
    }

    /// On the writer, which this transaction now holds to its commit: whatever it read
    /// before, the check and the mark see every committed use and no other transaction
    /// can use the invitation until this one ends.
    async fn consume_invitation(
        &mut self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Invitation>, StoreError> {
        self.write_returning::<InvitationRow>(
            sqlx::query(&format!(
                "update invitations set used_at = ?2 \
                 where token_hash = ?1 and used_at is null and expires_at > ?2 \
                 returning {INVITATION_COLUMNS}"
            ))
            .bind(token_hash)
            .bind(micros(now)?),
        )
        .await
    }

    /// On the writer, held to commit, as for invitations.
    async fn burn_totp_step(&mut self, user: &UserId, step: u64) -> Result<bool, StoreError> {
        let step = to_sql_int(step, "totp step")?;
        self.execute(
            sqlx::query(
                "update user_credentials set totp_last_step = ?2 \
                 where user_id = ?1 and totp_secret is not null \
                 and (totp_last_step is null or totp_last_step < ?2)",
            )
            .bind(user.to_string())
            .bind(step),
        )
        .await
        .map(|updated| updated == 1)
    }
}
