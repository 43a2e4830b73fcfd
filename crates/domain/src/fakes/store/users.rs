//! [`Users`] on the in-memory state.

use super::*;

#[async_trait]
impl Users for MemTx {
    async fn get_user(&mut self, user: &UserId) -> Result<Option<User>, StoreError> {
        Ok(self
            .working
            .users
            .get(user)
            .filter(|_| !self.working.erased.contains(user))
            .cloned())
    }

    async fn find_user_by_email(&mut self, email: &Email) -> Result<Option<User>, StoreError> {
        Ok(self
            .working
            .users
            .values()
            .find(|user| &user.email == email && !self.working.erased.contains(&user.id))
            .cloned())
    }

    async fn insert_user(
        &mut self,
        user: &User,
        credentials: &Credentials,
    ) -> Result<(), StoreError> {
        if self
            .working
            .users
            .values()
            .any(|other| other.email == user.email)
        {
            return Err(StoreError::Duplicate("email"));
        }
        if self.working.users.contains_key(&user.id) {
            return Err(StoreError::Duplicate("user"));
        }
        self.working.users.insert(user.id, user.clone());
        self.working
            .credentials
            .insert(user.id, credentials.clone());
        Ok(())
    }

    async fn update_user(&mut self, user: &User) -> Result<(), StoreError> {
        match self.working.users.get_mut(&user.id) {
            Some(stored) => {
                *stored = user.clone();
                Ok(())
            }
            None => Err(StoreError::Missing("user")),
        }
    }

    async fn erase_user(
        &mut self,
        tombstone: &User,
        _now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if self.working.erased.contains(&tombstone.id)
            || !self.working.users.contains_key(&tombstone.id)
        {
            return Err(StoreError::Missing("user"));
        }
        self.working.users.insert(tombstone.id, tombstone.clone());
        self.working.erased.insert(tombstone.id);
        Ok(())
    }

    async fn count_platform_roots(&mut self) -> Result<u64, StoreError> {
        Ok(self
            .working
            .users
            .values()
            .filter(|user| {
                user.platform_roles
                    .contains(&crate::model::PlatformRole::Root)
            })
            .count() as u64)
    }

    async fn count_active_platform_roots(&mut self) -> Result<u64, StoreError> {
        Ok(self
            .working
            .users
            .values()
            .filter(|user| {
                user.state == crate::model::UserState::Active
                    && user
                        .platform_roles
                        .contains(&crate::model::PlatformRole::Root)
            })
            .count() as u64)
    }
}
