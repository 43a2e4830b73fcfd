//! [`Users`] over SQLite: platform users, their platform roles in a table of their own;
//! email and id checked before the insert.

use async_trait::async_trait;
use domain::ids::{Email, UserId};
use domain::model::{Credentials, PlatformRole, User};
use domain::ports::{Authentication, StoreError, Users};
use store_sql::rows::UserRow;

use store_sql::require_changed;

use super::SqliteTx;
use crate::columns::{json_names, micros};

const USER_SELECT: &str = "select u.user_id, u.email, u.state, \
     (select json_group_array(r.role) from user_platform_roles r where r.user_id = u.user_id) \
         as platform_roles, \
     u.has_totp, u.created_at, u.updated_at from users u";

#[async_trait]
impl Users for SqliteTx {
    async fn get_user(&mut self, user: &UserId) -> Result<Option<User>, StoreError> {
        self.fetch_optional::<UserRow>(
            sqlx::query(&format!("{USER_SELECT} where u.user_id = ?1")).bind(user.to_string()),
        )
        .await
    }

    async fn find_user_by_email(&mut self, email: &Email) -> Result<Option<User>, StoreError> {
        self.fetch_optional::<UserRow>(
            sqlx::query(&format!("{USER_SELECT} where lower(u.email) = lower(?1)"))
                .bind(email.as_str()),
        )
        .await
    }

    async fn insert_user(
        &mut self,
        user: &User,
        credentials: &Credentials,
    ) -> Result<(), StoreError> {
        if self
            .exists(
                "select 1 from users where lower(email) = lower(?1)",
                &[user.email.as_str()],
            )
            .await?
        {
            return Err(StoreError::Duplicate("email"));
        }
        let id = user.id.to_string();
        if self
            .exists("select 1 from users where user_id = ?1", &[&id])
            .await?
        {
            return Err(StoreError::Duplicate("user"));
        }
        self.execute(
            sqlx::query(
                "insert into users (user_id, email, state, has_totp, created_at, updated_at) \
                 values (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .bind(&id)
            .bind(user.email.as_str())
            .bind(user.state.as_str())
            .bind(user.has_totp)
            .bind(micros(user.created_at)?)
            .bind(micros(user.updated_at)?),
        )
        .await?;
        self.execute(
            sqlx::query(
                "insert into user_platform_roles (user_id, role) select ?1, value from json_each(?2)",
            )
            .bind(&id)
            .bind(json_names(user.platform_roles.iter().map(PlatformRole::as_str))),
        )
        .await?;
        self.set_credentials(&user.id, credentials).await
    }

    async fn update_user(&mut self, user: &User) -> Result<(), StoreError> {
        let id = user.id.to_string();
        let updated = self
            .execute(
                sqlx::query(
                    "update users set email = ?2, state = ?3, has_totp = ?4, updated_at = ?5 \
                     where user_id = ?1",
                )
                .bind(&id)
                .bind(user.email.as_str())
                .bind(user.state.as_str())
                .bind(user.has_totp)
                .bind(micros(user.updated_at)?),
            )
            .await?;
        require_changed(updated, "user")?;
        self.execute(sqlx::query("delete from user_platform_roles where user_id = ?1").bind(&id))
            .await?;
        self.execute(
            sqlx::query(
                "insert into user_platform_roles (user_id, role) select ?1, value from json_each(?2)",
            )
            .bind(&id)
            .bind(json_names(user.platform_roles.iter().map(PlatformRole::as_str))),
        )
        .await
        .map(|_| ())
    }

    async fn count_platform_roots(&mut self) -> Result<u64, StoreError> {
        self.count(
            "select count(*) from user_platform_roles where role = 'platform_root'",
            None,
        )
        .await
    }

    async fn count_active_platform_roots(&mut self) -> Result<u64, StoreError> {
        self.count(
            "select count(*) from user_platform_roles join users using (user_id) \
             where role = 'platform_root' and state = 'active'",
            None,
        )
        .await
    }
}
