//! The caller's own sessions (SPEC §4 `/v1/me/sessions`): listing them, ending one by
//! its public id, ending every other one. A platform administrator ending all of a
//! user's sessions is in `users.rs`.
//!
//! Sessions are never cached anywhere (every request reads its session), so an ended
//! session is refused on the very next request, on any node.

use time::OffsetDateTime;

use super::auth::{session_assurance, AuthStep};
use super::{Caller, Engine};
use crate::audit::{AuditTarget, Outcome, Partition};
use crate::error::Error;
use crate::event::EventData;
use crate::ids::{Assurance, SessionId};
use crate::ports::TxScope;

/// A live session as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub id: SessionId,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub assurance: Assurance,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
    /// Whether this is the session of the request that asked.
    pub current: bool,
}

fn session_target(id: &SessionId) -> AuditTarget {
    AuditTarget {
        kind: "session",
        id: id.to_string(),
    }
}

impl Engine {
    /// The caller's live sessions, oldest first, the calling one marked `current`.
    ///
    /// # Errors
    /// `unauthenticated` when the caller has no session (an API key); `forbidden`
    /// (`subject_suspended`) when the caller's user is platform-suspended; `internal` when
    /// the store fails.
    pub async fn list_sessions(&self, caller: &Caller) -> Result<Vec<SessionView>, Error> {
        let (user_id, own) = Self::session_of(caller)?;
        self.refuse_suspended_user(&user_id).await?;
        let mut tx = self.begin(TxScope::Platform).await?;
        let now = self.now();
        Ok(tx
            .list_sessions_of(&user_id)
            .await?
            .into_iter()
            .filter(|(session, _)| self.session_alive(session, now))
            .map(|(session, details)| SessionView {
                id: details.id,
                created_at: session.created_at,
                last_seen_at: session.last_seen_at,
                expires_at: session.expires_at,
                assurance: session_assurance(&session, now),
                client_address: details.client_address,
                user_agent: details.user_agent,
                current: session.token_hash == own,
            })
            .collect())
    }

    /// Ends one of the caller's sessions by its public id (the calling one too: that is a
    /// logout). Allowed to a suspended user, as logging out is.
    ///
    /// # Errors
    /// `unauthenticated` when the caller has no session (an API key); `not_found` when the
    /// caller has no session with this id (another user's id included: it stays, and the
    /// answer is the same as for an id that never existed); `internal` when the store
    /// fails.
    pub async fn revoke_session(&self, caller: &Caller, id: &SessionId) -> Result<(), Error> {
        let (user_id, _) = Self::session_of(caller)?;
        let mut tx = self.begin(TxScope::Platform).await?;
        if !tx.delete_session_by_id(&user_id, id).await? {
            return Err(Error::NotFound);
        }
        let event = self.event(
            Partition::Platform,
            user_id.to_string(),
            EventData::SessionRevoked {
                user_id,
                session_id: *id,
            },
        );
        self.record_auth(
            tx,
            AuthStep {
                actor: Self::user_actor(&user_id),
                action: "session.revoke",
                target: session_target(id),
                request_id: &caller.request_id,
            },
            Outcome::Allowed,
            "self",
            vec![event],
        )
        .await
    }

    /// Ends every session of the caller's user but the calling one; returns how many.
    /// Allowed to a suspended user, as logging out is. One audit record always; the event
    /// `user.sessions_revoked` only when a session ended.
    ///
    /// # Errors
    /// `unauthenticated` when the caller has no session (an API key); `internal` when the
    /// store fails.
    pub async fn revoke_other_sessions(&self, caller: &Caller) -> Result<u64, Error> {
        let (user_id, own) = Self::session_of(caller)?;
        let mut tx = self.begin(TxScope::Platform).await?;
        let sessions = tx
            .delete_sessions_of(&user_id, Some(own.to_owned()))
            .await?;
        // An event says what changed: none when there was no other session.
        let events = (sessions > 0)
            .then(|| {
                self.event(
                    Partition::Platform,
                    user_id.to_string(),
                    EventData::UserSessionsRevoked {
                        id: user_id,
                        sessions,
                    },
                )
            })
            .into_iter()
            .collect();
        self.record_auth(
            tx,
            AuthStep {
                actor: Self::user_actor(&user_id),
                action: "session.revoke_others",
                target: super::user_target("user", &user_id),
                request_id: &caller.request_id,
            },
            Outcome::Allowed,
            "self",
            events,
        )
        .await?;
        Ok(sessions)
    }
}
