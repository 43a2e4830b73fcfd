//! [`Members`]: tenant accounts with their roles (`memberships`, read back as a list
//! column through [`Backend::list`]).

use async_trait::async_trait;
use domain::ids::{RoleName, TenantId, UserId};
use domain::model::Member;
use domain::ports::{Members, StoreError};

use super::SqlTx;
use crate::rows::MemberRow;
use crate::{require_changed, Backend, Statement};

/// `select` of [`MemberRow`]'s columns from an account and its user.
fn member_select<B: Backend>() -> String {
    let roles = B::list(
        "m.role",
        "memberships m where m.tenant_id = a.tenant_id and m.user_id = a.user_id",
    );
    format!(
        "select a.tenant_id, a.user_id, u.email, a.state, a.version, a.created_at, \
         a.updated_at, {roles} as roles from accounts a join users u on u.user_id = a.user_id"
    )
}

#[async_trait]
impl<B: Backend> Members for SqlTx<B> {
    async fn get_member(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Option<Member>, StoreError> {
        self.scope.allow(tenant)?;
        self.optional::<MemberRow>(
            Statement::new(format!(
                "{} where a.tenant_id = $1 and a.user_id = $2",
                member_select::<B>()
            ))
            .text(tenant.as_str())
            .id(user.as_uuid()),
        )
        .await
    }

    async fn list_members(
        &mut self,
        tenant: &TenantId,
        after: Option<UserId>,
        limit: usize,
    ) -> Result<Vec<Member>, StoreError> {
        self.scope.allow(tenant)?;
        self.all::<MemberRow>(
            Statement::new(format!(
                "{} where a.tenant_id = $1 and ($2 is null or a.user_id > $2) \
                 order by a.user_id limit $3",
                member_select::<B>()
            ))
            .text(tenant.as_str())
            .id_opt(after.as_ref().map(UserId::as_uuid))
            .limit(limit)?,
        )
        .await
    }

    async fn insert_member(&mut self, member: &Member) -> Result<(), StoreError> {
        self.scope.allow(&member.tenant)?;
        self.require_tenant(&member.tenant).await?;
        self.require_user(&member.user_id).await?;
        self.refuse_duplicate(
            "member",
            Statement::new("select 1 as one from accounts where tenant_id = $1 and user_id = $2")
                .text(member.tenant.as_str())
                .id(member.user_id.as_uuid()),
        )
        .await?;
        for statement in B::insert_member(member)? {
            self.execute(statement).await?;
        }
        Ok(())
    }

    async fn update_member(&mut self, member: &Member) -> Result<(), StoreError> {
        self.scope.allow(&member.tenant)?;
        let updated = self
            .execute(
                Statement::new(
                    "update accounts set state = $3, version = $4, updated_at = $5 \
                     where tenant_id = $1 and user_id = $2",
                )
                .text(member.tenant.as_str())
                .id(member.user_id.as_uuid())
                .text(member.state.as_str())
                .count(member.version, "version")?
                .time(member.updated_at),
            )
            .await?;
        require_changed(updated, "member")?;
        self.execute(
            Statement::new("delete from memberships where tenant_id = $1 and user_id = $2")
                .text(member.tenant.as_str())
                .id(member.user_id.as_uuid()),
        )
        .await?;
        self.execute(
            Statement::new(format!(
                "insert into memberships (tenant_id, user_id, role) select $1, $2, {}",
                B::each(3)
            ))
            .text(member.tenant.as_str())
            .id(member.user_id.as_uuid())
            .names(member.roles.iter().map(RoleName::as_str)),
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
                Statement::new("delete from accounts where tenant_id = $1 and user_id = $2")
                    .text(tenant.as_str())
                    .id(user.as_uuid()),
            )
            .await?;
        require_changed(deleted, "member")
    }

    async fn count_active_admins(&mut self, tenant: &TenantId) -> Result<u64, StoreError> {
        self.scope.allow(tenant)?;
        self.count(
            Statement::new(
                "select count(*) as n from accounts a \
                 where a.tenant_id = $1 and a.state = 'active' \
                 and exists (select 1 from memberships m where m.tenant_id = a.tenant_id \
                             and m.user_id = a.user_id and m.role = 'tenant_admin')",
            )
            .text(tenant.as_str()),
        )
        .await
    }

    async fn memberships_of(&mut self, user: &UserId) -> Result<Vec<Member>, StoreError> {
        self.scope.require_platform()?;
        self.all::<MemberRow>(
            Statement::new(format!(
                "{} where a.user_id = $1 order by a.tenant_id{}",
                member_select::<B>(),
                B::BYTEWISE
            ))
            .id(user.as_uuid()),
        )
        .await
    }
}
