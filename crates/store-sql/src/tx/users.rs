//! [`Users`]: platform users; how their platform roles are kept is the backend's
//! ([`Backend::USER_SELECT`], [`Backend::write_user`]).

use async_trait::async_trait;
use domain::ids::{Email, UserId};
use domain::model::{Credentials, User};
use domain::ports::{Authentication, StoreError, Users};
use time::OffsetDateTime;

use super::SqlTx;
use crate::rows::UserRow;
use crate::{require_changed, Backend, Statement};

#[async_trait]
impl<B: Backend> Users for SqlTx<B> {
    async fn get_user(&mut self, user: &UserId) -> Result<Option<User>, StoreError> {
        self.optional::<UserRow>(
            Statement::new(format!(
                "{} where u.user_id = $1 and u.erased_at is null",
                B::USER_SELECT
            ))
            .id(user.as_uuid()),
        )
        .await
    }

    async fn find_user_by_email(&mut self, email: &Email) -> Result<Option<User>, StoreError> {
        self.optional::<UserRow>(
            Statement::new(format!(
                "{} where lower(u.email) = lower($1) and u.erased_at is null",
                B::USER_SELECT
            ))
            .text(email.as_str()),
        )
        .await
    }

    async fn insert_user(
        &mut self,
        user: &User,
        credentials: &Credentials,
    ) -> Result<(), StoreError> {
        self.refuse_duplicate(
            "email",
            Statement::new("select 1 as one from users where lower(email) = lower($1)")
                .text(user.email.as_str()),
        )
        .await?;
        self.refuse_duplicate(
            "user",
            Statement::new("select 1 as one from users where user_id = $1").id(user.id.as_uuid()),
        )
        .await?;
        for statement in B::write_user(user, true) {
            self.execute(statement).await?;
        }
        self.set_credentials(&user.id, credentials).await
    }

    async fn update_user(&mut self, user: &User) -> Result<(), StoreError> {
        let mut statements = B::write_user(user, false).into_iter();
        if let Some(update) = statements.next() {
            let updated = self.execute(update).await?;
            require_changed(updated, "user")?;
        }
        for statement in statements {
            self.execute(statement).await?;
        }
        Ok(())
    }

    async fn erase_user(
        &mut self,
        tombstone: &User,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let erased = self
            .execute(
                Statement::new(
                    "update users set erased_at = $2 where user_id = $1 and erased_at is null",
                )
                .id(tombstone.id.as_uuid())
                .time(now),
            )
            .await?;
        require_changed(erased, "user")?;
        self.update_user(tombstone).await
    }

    async fn count_platform_roots(&mut self) -> Result<u64, StoreError> {
        self.count(Statement::new(format!(
            "select count(*) as n {}",
            B::PLATFORM_ROOTS
        )))
        .await
    }

    async fn count_active_platform_roots(&mut self) -> Result<u64, StoreError> {
        self.count(Statement::new(format!(
            "select count(*) as n {} and u.state = 'active'",
            B::PLATFORM_ROOTS
        )))
        .await
    }
}
