//! Password resets (SPEC §4 `password-reset`): a platform administrator issues a
//! single-use token (1 hour) for the calling service to deliver, as invitations are; the
//! user sets a new password with it, which ends every session of the user and voids their
//! other reset tokens.

use std::net::IpAddr;

use time::OffsetDateTime;

use super::auth::{AuthStep, PasswordToken};
use super::throttles::ThrottleRule;
use super::{hash_token, user_target, Caller, Check, Engine};
use crate::audit::{Outcome, Partition};
use crate::catalog::scopes;
use crate::error::Error;
use crate::event::EventData;
use crate::ids::{Password, UserId};
use crate::model::{PasswordReset, UserState};
use crate::ports::TxScope;

/// A password reset token, shown this once; stored only as its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedPasswordReset {
    pub token: String,
    pub expires_at: OffsetDateTime,
}

impl Engine {
    /// Issues a password reset token for `user` (`platform:users:write`), for the calling
    /// service to deliver. Earlier tokens stay usable until one is used or they expire.
    ///
    /// # Errors
    /// `unauthenticated` (the caller's user or key is gone); `forbidden` without
    /// `platform:users:write`; `user_not_found`; `invalid_request` for an invited user
    /// (who sets a first password by accepting the invitation); `internal` when the store
    /// fails.
    pub async fn issue_password_reset(
        &self,
        caller: &Caller,
        user: &UserId,
    ) -> Result<IssuedPasswordReset, Error> {
        let mut op = self.op(
            caller,
            "user.password_reset.issue",
            user_target("user", user),
            Partition::Platform,
        );
        let result = async {
            let mut tx = self.begin(TxScope::Platform).await?;
            self.check(
                tx.as_mut(),
                &mut op,
                Check {
                    tenant: None,
                    scope: scopes::PLATFORM_USERS_WRITE,
                    target: Some(user),
                    self_service: false,
                },
            )
            .await?;
            let record = tx.get_user(user).await?.ok_or(Error::UserNotFound)?;
            if record.state == UserState::Invited {
                return Err(Error::InvalidRequest(
                    "an invited user sets a first password by accepting the invitation".to_owned(),
                ));
            }
            let token = self.ports.secrets.token();
            let expires_at = self.now() + self.config.password_reset_ttl;
            tx.insert_password_reset(&PasswordReset {
                token_hash: hash_token(&token),
                user_id: *user,
                expires_at,
                used_at: None,
            })
            .await?;
            let event = self.event(
                Partition::Platform,
                user.to_string(),
                EventData::UserPasswordResetIssued { id: *user },
            );
            self.commit(tx, &op, vec![event]).await?;
            Ok(IssuedPasswordReset { token, expires_at })
        }
        .await;
        self.finish(op, result).await
    }

    /// Sets a new password with a reset token: the token is used once, also under
    /// concurrency (of concurrent confirmations exactly one consumes it; the others get
    /// what a used token gets, `invalid_credentials`). Every session of the user ends and
    /// their other reset tokens are voided.
    ///
    /// # Errors
    /// `invalid_credentials` for an unknown, used or expired token; `overloaded` when the
    /// password hashing queue is full; `internal` when the store fails.
    pub async fn confirm_password_reset(
        &self,
        token: &str,
        password: &Password,
        request_id: &str,
    ) -> Result<(), Error> {
        self.confirm_password_reset_from(token, password, request_id, None)
            .await
    }

    /// [`Engine::confirm_password_reset`] from a client: with `failures` (its address
    /// and rule), a wrong token counts against the address's failed-credential window
    /// (the bearer failures', SPEC §3.6) before its refusal is recorded, and a full
    /// window answers `rate_limited` before the token is looked at, so one address leaves
    /// at most the rule's limit of refusal records, also under concurrency.
    ///
    /// # Errors
    /// As [`Engine::confirm_password_reset`], and `rate_limited` (nothing recorded).
    pub async fn confirm_password_reset_from(
        &self,
        token: &str,
        password: &Password,
        request_id: &str,
        failures: Option<(IpAddr, ThrottleRule)>,
    ) -> Result<(), Error> {
        let (mut tx, user, password_hash) = self
            .use_password_token(
                PasswordToken::PasswordReset,
                token,
                password,
                request_id,
                failures,
            )
            .await?;
        let now = self.now();
        let mut credentials = tx.get_credentials(&user.id).await?;
        credentials.password_hash = Some(password_hash);
        tx.set_credentials(&user.id, &credentials).await?;
        // Whoever held a session (perhaps the one who took the account) is logged out,
        // and no other token issued before this reset works any more.
        tx.delete_sessions_of(&user.id, None).await?;
        tx.void_password_resets_of(&user.id, now).await?;
        self.notify(
            tx.as_mut(),
            &user.id,
            crate::mail::MailKind::PasswordChanged,
        )
        .await?;
        let event = self.event(
            Partition::Platform,
            user.id.to_string(),
            EventData::UserPasswordChanged { id: user.id },
        );
        self.record_auth(
            tx,
            AuthStep {
                actor: Self::user_actor(&user.id),
                action: "user.password.reset",
                target: user_target("user", &user.id),
                request_id,
            },
            Outcome::Allowed,
            "password_reset",
            vec![event],
        )
        .await
    }
}
