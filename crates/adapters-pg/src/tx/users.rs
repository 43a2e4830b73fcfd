//! [`Users`] over PostgreSQL: platform users, their platform roles as a `text[]` column.

use async_trait::async_trait;
use domain::ids::{Email, UserId};
use domain::model::{Credentials, PlatformRole, User};
use domain::ports::{Authentication, StoreError, Users};
use store_sql::rows::UserRow;

use store_sql::require_changed;

use super::PgTx;

/// The columns of `store_sql::rows::UserRow` in `users`.
pub(crate) const USER_COLUMNS: &str =
    "user_id, email, state, platform_roles, has_totp, created_at, updated_at";

#[async_trait]
impl Users for PgTx {
    async fn get_user(&mut self, user: &UserId) -> Result<Option<User>, StoreError> {
        self.fetch_optional::<UserRow>(
            sqlx::query(&format!(
                "select {USER_COLUMNS} from users where user_id = $1"
            ))
            .bind(user.as_uuid()),
        )
        .await
    }

    async fn find_user_by_email(&mut self, email: &Email) -> Result<Option<User>, StoreError> {
        self.fetch_optional::<UserRow>(
            sqlx::query(&format!(
                "select {USER_COLUMNS} from users where lower(email) = lower($1)"
            ))
            .bind(email.as_str()),
        )
        .await
    }

    async fn insert_user(
        &mut self,
        user: &User,
        credentials: &Credentials,
    ) -> Result<(), StoreError> {
        self.execute(
            sqlx::query(
                "insert into users (user_id, email, state, platform_roles, has_totp, created_at, updated_at) \
                 values ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(user.id.as_uuid())
            .bind(user.email.as_str())
            .bind(user.state.as_str())
            .bind(user.platform_roles.iter().map(PlatformRole::as_str).collect::<Vec<_>>())
            .bind(user.has_totp)
            .bind(user.created_at)
            .bind(user.updated_at),
        )
        .await?;
        self.set_credentials(&user.id, credentials).await
    }

    async fn update_user(&mut self, user: &User) -> Result<(), StoreError> {
        let updated = self
            .execute(
                sqlx::query(
                    "update users set email = $2, state = $3, platform_roles = $4, has_totp = $5, \
                     updated_at = $6 where user_id = $1",
                )
                .bind(user.id.as_uuid())
                .bind(user.email.as_str())
                .bind(user.state.as_str())
                .bind(
                    user.platform_roles
                        .iter()
                        .map(PlatformRole::as_str)
                        .collect::<Vec<_>>(),
                )
                .bind(user.has_totp)
                .bind(user.updated_at),
            )
            .await?;
        require_changed(updated, "user")
    }

    async fn count_platform_roots(&mut self) -> Result<u64, StoreError> {
        self.count(
            "select count(*) from users where 'platform_root' = any(platform_roles)",
            None,
        )
        .await
    }

    async fn count_active_platform_roots(&mut self) -> Result<u64, StoreError> {
        self.count(
            "select count(*) from users \
             where 'platform_root' = any(platform_roles) and state = 'active'",
            None,
        )
        .await
    }
}
