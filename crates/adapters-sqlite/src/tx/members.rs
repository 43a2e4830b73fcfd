//! [`Members`] over SQLite: tenant accounts with their roles (`memberships` read back
//! with `json_group_array`, written from a JSON array); tenant, user and duplicate
//! checked before the insert.

use async_trait::async_trait;
use domain::ids::{RoleName, TenantId, UserId};
use domain::model::Member;
use domain::ports::{Members, StoreError};
use store_sql::rows::MemberRow;
use store_sql::{require_changed, to_sql_int, to_sql_limit};

use super::SqliteTx;
use crate::columns::{json_names, micros};

const MEMBER_SELECT: &str = "select a.tenant_id, a.user_id, u.email, a.state, a.version, \
     a.created_at, a.updated_at, \
     (select json_group_array(m.role) from memberships m \
      where m.tenant_id = a.tenant_id and m.user_id = a.user_id) as roles \
     from accounts a join users u on u.user_id = a.user_id";

#[async_trait]
impl Members for SqliteTx {
    async fn get_member(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Option<Member>, StoreError> {
        self.scope.allow(tenant)?;
        self.fetch_optional::<MemberRow>(
            sqlx::query(&format!(
                "{MEMBER_SELECT} where a.tenant_id = ?1 and a.user_id = ?2"
            ))
            .bind(tenant.as_str())
            .bind(user.to_string()),
        )
        .await
    }

    async fn list_members(
        &mut self,
        tenant: &TenantId,
        after: Option<UserId>,
        limit_to: usize,
    ) -> Result<Vec<Member>, StoreError> {
        self.scope.allow(tenant)?;
        self.fetch_all::<MemberRow>(
            sqlx::query(&format!(
                "{MEMBER_SELECT} where a.tenant_id = ?1 and (?2 is null or a.user_id > ?2) \
             order by a.user_id limit ?3"
            ))
            .bind(tenant.as_str())
            .bind(after.map(|user| user.to_string()))
            .bind(to_sql_limit(limit_to)?),
        )
        .await
    }

    async fn insert_member(&mut self, member: &Member) -> Result<(), StoreError> {
        self.scope.allow(&member.tenant)?;
        self.require_tenant(&member.tenant).await?;
        self.require_user(&member.user_id).await?;
        let user = member.user_id.to_string();
        if self
            .exists(
                "select 1 from accounts where tenant_id = ?1 and user_id = ?2",
                &[member.tenant.as_str(), &user],
            )
            .await?
        {
            return Err(StoreError::Duplicate("member"));
        }
        self.execute(
            sqlx::query(
                "insert into accounts (tenant_id, user_id, state, version, created_at, updated_at) \
                 values (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .bind(member.tenant.as_str())
            .bind(&user)
            .bind(member.state.as_str())
            .bind(to_sql_int(member.version, "version")?)
            .bind(micros(member.created_at)?)
            .bind(micros(member.updated_at)?),
        )
        .await?;
        self.execute(
            sqlx::query(
                "insert into memberships (tenant_id, user_id, role) \
                 select ?1, ?2, value from json_each(?3)",
            )
            .bind(member.tenant.as_str())
            .bind(&user)
            .bind(json_names(member.roles.iter().map(RoleName::as_str))),
        )
        .await
        .map(|_| ())
    }

    async fn update_member(&mut self, member: &Member) -> Result<(), StoreError> {
        self.scope.allow(&member.tenant)?;
        let user = member.user_id.to_string();
        let updated = self
            .execute(
                sqlx::query(
                    "update accounts set state = ?3, version = ?4, updated_at = ?5 \
                     where tenant_id = ?1 and user_id = ?2",
                )
                .bind(member.tenant.as_str())
                .bind(&user)
                .bind(member.state.as_str())
                .bind(to_sql_int(member.version, "version")?)
                .bind(micros(member.updated_at)?),
            )
            .await?;
        require_changed(updated, "member")?;
        self.execute(
            sqlx::query("delete from memberships where tenant_id = ?1 and user_id = ?2")
                .bind(member.tenant.as_str())
                .bind(&user),
        )
        .await?;
        self.execute(
            sqlx::query(
                "insert into memberships (tenant_id, user_id, role) \
                 select ?1, ?2, value from json_each(?3)",
            )
            .bind(member.tenant.as_str())
            .bind(&user)
            .bind(json_names(member.roles.iter().map(RoleName::as_str))),
        )
        .await
        .map(|_| ())
    }

    async fn delete_member(&mut self, tenant: &TenantId, user: &UserId) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        // Memberships and tenant profile values go by cascade; the account's API keys
        // forget their creator (trigger accounts_forget_key_creator).
        let deleted = self
            .execute(
                sqlx::query("delete from accounts where tenant_id = ?1 and user_id = ?2")
                    .bind(tenant.as_str())
                    .bind(user.to_string()),
            )
            .await?;
        require_changed(deleted, "member")
    }

    async fn count_active_admins(&mut self, tenant: &TenantId) -> Result<u64, StoreError> {
        self.scope.allow(tenant)?;
        self.count(
            "select count(*) from accounts a where a.tenant_id = ?1 and a.state = 'active' \
             and exists (select 1 from memberships m where m.tenant_id = a.tenant_id \
                         and m.user_id = a.user_id and m.role = 'tenant_admin')",
            Some(tenant.as_str()),
        )
        .await
    }

    async fn memberships_of(&mut self, user: &UserId) -> Result<Vec<Member>, StoreError> {
        self.scope.require_platform()?;
        self.fetch_all::<MemberRow>(
            sqlx::query(&format!(
                "{MEMBER_SELECT} where a.user_id = ?1 order by a.tenant_id"
            ))
            .bind(user.to_string()),
        )
        .await
    }
}
