//! [`Authentication`] on the in-memory state.

use super::*;

#[async_trait]
impl Authentication for MemTx {
    async fn get_credentials(&mut self, user: &UserId) -> Result<Credentials, StoreError> {
        Ok(self
            .working
            .credentials
            .get(user)
            .cloned()
            .unwrap_or_default())
    }

    async fn set_credentials(
        &mut self,
        user: &UserId,
        credentials: &Credentials,
    ) -> Result<(), StoreError> {
        if !self.working.users.contains_key(user) {
            return Err(StoreError::Missing("user"));
        }
        self.working.credentials.insert(*user, credentials.clone());
        Ok(())
    }

    async fn insert_session(
        &mut self,
        session: &Session,
        details: &SessionDetails,
    ) -> Result<(), StoreError> {
        if !self.working.users.contains_key(&session.user_id) {
            return Err(StoreError::Missing("user"));
        }
        self.working
            .sessions
            .insert(session.token_hash.clone(), session.clone());
        self.working
            .session_details
            .insert(session.token_hash.clone(), details.clone());
        Ok(())
    }

    async fn list_sessions_of(
        &mut self,
        user: &UserId,
    ) -> Result<Vec<(Session, SessionDetails)>, StoreError> {
        let mut sessions: Vec<(Session, SessionDetails)> = self
            .working
            .sessions
            .values()
            .filter(|session| session.user_id == *user)
            .filter_map(|session| {
                let details = self.working.session_details.get(&session.token_hash)?;
                Some((session.clone(), details.clone()))
            })
            .collect();
        sessions.sort_by(|(a, a_details), (b, b_details)| {
            (a.created_at, a_details.id).cmp(&(b.created_at, b_details.id))
        });
        Ok(sessions)
    }

    async fn delete_session_by_id(
        &mut self,
        user: &UserId,
        id: &SessionId,
    ) -> Result<bool, StoreError> {
        let token_hash = self
            .working
            .sessions
            .values()
            .find(|session| {
                session.user_id == *user
                    && self
                        .working
                        .session_details
                        .get(&session.token_hash)
                        .is_some_and(|details| details.id == *id)
            })
            .map(|session| session.token_hash.clone());
        Ok(match token_hash {
            Some(token_hash) => self.delete_session(&token_hash).await?,
            None => false,
        })
    }

    async fn find_session(&mut self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        Ok(self.working.sessions.get(token_hash).cloned())
    }

    async fn find_session_details(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<(Session, SessionDetails)>, StoreError> {
        Ok(self
            .working
            .sessions
            .get(token_hash)
            .cloned()
            .zip(self.working.session_details.get(token_hash).cloned()))
    }

    async fn update_session(&mut self, session: &Session) -> Result<(), StoreError> {
        if self.working.sessions.contains_key(&session.token_hash) {
            self.working
                .sessions
                .insert(session.token_hash.clone(), session.clone());
        }
        Ok(())
    }

    async fn delete_session(&mut self, token_hash: &str) -> Result<bool, StoreError> {
        self.working.session_details.remove(token_hash);
        Ok(self.working.sessions.remove(token_hash).is_some())
    }

    async fn delete_sessions_of(
        &mut self,
        user: &UserId,
        keep: Option<String>,
    ) -> Result<u64, StoreError> {
        let before = self.working.sessions.len();
        self.working.sessions.retain(|token_hash, session| {
            session.user_id != *user || keep.as_deref() == Some(token_hash.as_str())
        });
        let sessions = &self.working.sessions;
        self.working
            .session_details
            .retain(|token_hash, _| sessions.contains_key(token_hash));
        Ok(u64::try_from(before - self.working.sessions.len()).unwrap_or(u64::MAX))
    }

    async fn insert_invitation(&mut self, invitation: &Invitation) -> Result<(), StoreError> {
        self.working
            .invitations
            .insert(invitation.token_hash.clone(), invitation.clone());
        Ok(())
    }

    async fn find_invitation(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<Invitation>, StoreError> {
        Ok(self.working.invitations.get(token_hash).cloned())
    }

    async fn consume_invitation(
        &mut self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Invitation>, StoreError> {
        // Transactions are serialised by the store-wide lock, so the check and the mark
        // cannot interleave with another transaction's.
        Ok(self
            .working
            .invitations
            .get_mut(token_hash)
            .filter(|invitation| invitation.used_at.is_none() && now < invitation.expires_at)
            .map(|invitation| {
                invitation.used_at = Some(now);
                invitation.clone()
            }))
    }

    async fn insert_password_reset(&mut self, reset: &PasswordReset) -> Result<(), StoreError> {
        if !self.working.users.contains_key(&reset.user_id) {
            return Err(StoreError::Missing("user"));
        }
        self.working
            .password_resets
            .insert(reset.token_hash.clone(), reset.clone());
        Ok(())
    }

    async fn find_password_reset(
        &mut self,
        token_hash: &str,
    ) -> Result<Option<PasswordReset>, StoreError> {
        Ok(self.working.password_resets.get(token_hash).cloned())
    }

    async fn consume_password_reset(
        &mut self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<PasswordReset>, StoreError> {
        // Serialised by the store-wide lock, as invitations are.
        Ok(self
            .working
            .password_resets
            .get_mut(token_hash)
            .filter(|reset| reset.used_at.is_none() && now < reset.expires_at)
            .map(|reset| {
                reset.used_at = Some(now);
                reset.clone()
            }))
    }

    async fn void_password_resets_of(
        &mut self,
        user: &UserId,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let mut voided = 0;
        for reset in self.working.password_resets.values_mut() {
            if reset.user_id == *user && reset.used_at.is_none() {
                reset.used_at = Some(now);
                voided += 1;
            }
        }
        Ok(voided)
    }

    async fn insert_email_verification(
        &mut self,
        verification: &crate::model::EmailVerification,
    ) -> Result<(), StoreError> {
        if !self.working.users.contains_key(&verification.user_id) {
            return Err(StoreError::Missing("user"));
        }
        self.working
            .email_verifications
            .insert(verification.token_hash.clone(), verification.clone());
        Ok(())
    }

    async fn consume_email_verification(
        &mut self,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<crate::model::EmailVerification>, StoreError> {
        Ok(self
            .working
            .email_verifications
            .get_mut(token_hash)
            .filter(|pending| pending.used_at.is_none() && now < pending.expires_at)
            .map(|pending| {
                pending.used_at = Some(now);
                pending.clone()
            }))
    }

    async fn delete_email_verifications_of(&mut self, user: &UserId) -> Result<u64, StoreError> {
        let before = self.working.email_verifications.len();
        self.working
            .email_verifications
            .retain(|_, pending| pending.user_id != *user);
        Ok(u64::try_from(before - self.working.email_verifications.len()).unwrap_or(u64::MAX))
    }

    async fn replace_recovery_codes(
        &mut self,
        user: &UserId,
        code_hashes: &[String],
    ) -> Result<(), StoreError> {
        if !self.working.users.contains_key(user) {
            return Err(StoreError::Missing("user"));
        }
        self.working
            .recovery_codes
            .retain(|(owner, _), _| owner != user);
        for hash in code_hashes {
            self.working
                .recovery_codes
                .insert((*user, hash.clone()), None);
        }
        Ok(())
    }

    async fn consume_recovery_code(
        &mut self,
        user: &UserId,
        code_hash: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        match self
            .working
            .recovery_codes
            .get_mut(&(*user, code_hash.to_owned()))
        {
            Some(used_at @ None) => {
                *used_at = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_recovery_codes(&mut self, user: &UserId) -> Result<u64, StoreError> {
        let before = self.working.recovery_codes.len();
        self.working
            .recovery_codes
            .retain(|(owner, _), _| owner != user);
        Ok(u64::try_from(before - self.working.recovery_codes.len()).unwrap_or(u64::MAX))
    }

    async fn count_recovery_codes(&mut self, user: &UserId) -> Result<u64, StoreError> {
        Ok(u64::try_from(
            self.working
                .recovery_codes
                .iter()
                .filter(|((owner, _), used_at)| owner == user && used_at.is_none())
                .count(),
        )
        .unwrap_or(u64::MAX))
    }

    async fn burn_totp_step(&mut self, user: &UserId, step: u64) -> Result<bool, StoreError> {
        let Some(enrolment) = self
            .working
            .credentials
            .get_mut(user)
            .and_then(|credentials| credentials.totp.as_mut())
        else {
            return Ok(false);
        };
        if enrolment.last_used_step.is_some_and(|last| last >= step) {
            return Ok(false);
        }
        enrolment.last_used_step = Some(step);
        Ok(true)
    }
}
