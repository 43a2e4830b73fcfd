//! [`Members`] over PostgreSQL: tenant accounts with their roles (`memberships` read
//! back as an array, written with `unnest`).

use async_trait::async_trait;
use domain::ids::{RoleName, TenantId, UserId};
use domain::model::Member;
use domain::ports::{Members, StoreError};
use store_sql::rows::MemberRow;
use store_sql::{require_changed, to_sql_int, to_sql_limit};

use super::PgTx;

const MEMBER_SELECT: &str = "select a.tenant_id, a.user_id, u.email, a.state, a.version, \
     a.created_at, a.updated_at, \
     array(select m.role from memberships m \
           where m.tenant_id = a.tenant_id and m.user_id = a.user_id \
           order by m.role collate \"C\") as roles \
     from accounts a join users u on u.user_id = a.user_id";

#[async_trait]
impl Members for PgTx {
    async fn get_member(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Option<Member>, StoreError> {
        self.fetch_optional::<MemberRow>(
            sqlx::query(&format!(
                "{MEMBER_SELECT} where a.tenant_id = $1 and a.user_id = $2"
            ))
            .bind(tenant.as_str())
            .bind(user.as_uuid()),
        )
        .await
    }

    async fn list_members(
        &mut self,
        tenant: &TenantId,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError> {
        self.fetch_all::<MemberRow>(
            sqlx::query(&format!(
                "{MEMBER_SELECT} where a.tenant_id = $1 and ($2::uuid is null or a.user_id > $2) \
             order by a.user_id limit $3"
            ))
            .bind(tenant.as_str())
            .bind(after.map(|user| *user.as_uuid()))
            .bind(to_sql_limit(limit)?),
        )
        .await
    }

    async fn insert_member(&mut self, member: &Member) -> Result<(), StoreError> {
        let names: Vec<&str> = member.roles.iter().map(RoleName::as_str).collect();
        self.execute(
            sqlx::query(
                "with account as ( \
                     insert into accounts (tenant_id, user_id, state, version, created_at, updated_at) \
                     values ($1, $2, $3, $4, $5, $6)) \
                 insert into memberships (tenant_id, user_id, role) \
                 select $1, $2, unnest($7::text[])",
            )
            .bind(member.tenant.as_str())
            .bind(member.user_id.as_uuid())
            .bind(member.state.as_str())
            .bind(to_sql_int(member.version, "version")?)
            .bind(member.created_at)
            .bind(member.updated_at)
            .bind(&names),
        )
        .await
        .map(|_| ())
    }

    async fn update_member(&mut self, member: &Member) -> Result<(), StoreError> {
        let updated = self
            .execute(
                sqlx::query(
                    "update accounts set state = $3, version = $4, updated_at = $5 \
                     where tenant_id = $1 and user_id = $2",
                )
                .bind(member.tenant.as_str())
                .bind(member.user_id.as_uuid())
                .bind(member.state.as_str())
                .bind(to_sql_int(member.version, "version")?)
                .bind(member.updated_at),
            )
            .await?;
        require_changed(updated, "member")?;
        let names: Vec<&str> = member.roles.iter().map(RoleName::as_str).collect();
        self.execute(
            sqlx::query("delete from memberships where tenant_id = $1 and user_id = $2")
                .bind(member.tenant.as_str())
                .bind(member.user_id.as_uuid()),
        )
        .await?;
        self.execute(
            sqlx::query(
                "insert into memberships (tenant_id, user_id, role) \
                 select $1, $2, unnest($3::text[])",
            )
            .bind(member.tenant.as_str())
            .bind(member.user_id.as_uuid())
            .bind(&names),
        )
        .await
        .map(|_| ())
    }

    async fn delete_member(&mut self, tenant: &TenantId, user: &UserId) -> Result<(), StoreError> {
        let deleted = self
            .execute(
                sqlx::query("delete from accounts where tenant_id = $1 and user_id = $2")
                    .bind(tenant.as_str())
                    .bind(user.as_uuid()),
            )
            .await?;
        require_changed(deleted, "member")
    }

    async fn count_active_admins(&mut self, tenant: &TenantId) -> Result<u64, StoreError> {
        self.count(
            "select count(*) from accounts a where a.tenant_id = $1 and a.state = 'active' \
             and exists (select 1 from memberships m where m.tenant_id = a.tenant_id \
                         and m.user_id = a.user_id and m.role = 'tenant_admin')",
            Some(tenant.as_str()),
        )
        .await
    }

    async fn memberships_of(&mut self, user: &UserId) -> Result<Vec<Member>, StoreError> {
        self.fetch_all::<MemberRow>(
            sqlx::query(&format!(
                "{MEMBER_SELECT} where a.user_id = $1 order by a.tenant_id collate \"C\""
            ))
            .bind(user.as_uuid()),
        )
        .await
    }
}
