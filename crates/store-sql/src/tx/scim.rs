//! [`Scim`]: members' SCIM identities (`scim_users`), groups created through SCIM
//! (`scim_groups`), and the User query whose filter is translated by
//! [`crate::scim_filter`] over the columns [`UserColumns`] maps.

use async_trait::async_trait;
use domain::ids::{RoleName, TenantId, UserId};
use domain::ports::{Scim, StoreError};
use domain::scim::filter::{AttrPath, CompValue, CompareOp, Filter};
use domain::scim::model::{name_key, ScimGroup, ScimIdentity, UserQuery};
use time::OffsetDateTime;
use uuid::Uuid;

use super::SqlTx;
use crate::rows::Shape;
use crate::scim_filter::{filter_sql, Column, ColumnKind, FilterColumns};
use crate::{corrupt, from_sql_int, to_sql_int, Backend, Columns, Statement, Value};

/// The tables a User query reads: the account `a`, its user `u`, its SCIM identity `s`
/// (left-joined: a member added through `/v1` has none).
const USER_FROM: &str = "from accounts a join users u on u.user_id = a.user_id \
     left join scim_users s on s.tenant_id = a.tenant_id and s.user_id = a.user_id";

/// Where a User's filterable attributes are in [`USER_FROM`] (SPEC §8), mirroring
/// `domain::scim::model::UserRecord`.
struct UserColumns {
    display_name: String,
}

impl UserColumns {
    fn new<B: Backend>() -> Self {
        Self {
            display_name: format!(
                "(select {} from member_profile_values v where v.tenant_id = a.tenant_id \
                 and v.user_id = a.user_id and v.key = 'display_name')",
                B::json_text("v.value")
            ),
        }
    }
}

impl FilterColumns for UserColumns {
    fn column(&self, path: &AttrPath) -> Option<Column> {
        let (expr, kind) = if path.is("userName") {
            ("coalesce(s.user_name, u.email)", ColumnKind::Text)
        } else if path.is("externalId") {
            ("s.external_id", ColumnKind::Text)
        } else if path.is("emails") || path.is("emails.value") {
            ("u.email", ColumnKind::Text)
        } else if path.is("emails.type") {
            ("'work'", ColumnKind::Text)
        } else if path.is("emails.primary") {
            ("(1 = 1)", ColumnKind::Flag)
        } else if path.is("active") {
            ("(a.state = 'active')", ColumnKind::Flag)
        } else if path.is("displayName") {
            (self.display_name.as_str(), ColumnKind::Text)
        } else if path.is("meta.created") {
            ("a.created_at", ColumnKind::Time)
        } else if path.is("meta.lastModified") {
            ("a.updated_at", ColumnKind::Time)
        } else {
            return None;
        };
        Some(Column::new(expr, kind))
    }

    fn element(&self, path: &AttrPath) -> Option<String> {
        path.is("emails").then(|| "(1 = 1)".to_owned())
    }
}

/// The literal of a `userName eq "…"` filter, ASCII-lowercased: the lookup every
/// provider makes before a create (Okta's, Entra ID's), answered by [`USER_NAME_EQ`]
/// from unique indexes instead of by the general translation, which reads every account
/// of the tenant. Both select the same members (a property test compares them).
fn user_name_eq(filter: &Filter) -> Option<String> {
    match filter {
        Filter::Compare(path, CompareOp::Eq, CompValue::Str(literal))
            if path.is("userName") && !literal.is_empty() =>
        {
            Some(literal.to_ascii_lowercase())
        }
        _ => None,
    }
}

/// The members whose `userName` is `$2` (ASCII-lowercased): by their SCIM identity's
/// `user_name_key` (unique per tenant), or by their email when they have no SCIM
/// identity — through `users_email_key`, an index on `lower(email)` (emails are stored
/// lowercased, so it selects the same users as the email itself).
const USER_NAME_EQ: &str = "select s.user_id from scim_users s \
     where s.tenant_id = $1 and s.user_name_key = $2 \
     union \
     select a.user_id from users u join accounts a on a.user_id = u.user_id \
     where a.tenant_id = $1 and lower(u.email) = $2 \
     and not exists (select 1 from scim_users s \
                     where s.tenant_id = a.tenant_id and s.user_id = a.user_id) \
     order by user_id";

struct IdentityRow {
    user_name: String,
    external_id: Option<String>,
    emails: Option<String>,
    active_set: bool,
}

impl Shape for IdentityRow {
    type Value = ScimIdentity;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            user_name: row.text("user_name")?,
            external_id: row.text_opt("external_id")?,
            emails: row.text_opt("emails")?,
            active_set: row.flag("active_set")?,
        })
    }

    fn into_value(self) -> Result<ScimIdentity, StoreError> {
        Ok(ScimIdentity {
            user_name: self.user_name,
            external_id: self.external_id,
            emails: self
                .emails
                .map(|emails| serde_json::from_str(&emails).map_err(|_| corrupt("scim emails")))
                .transpose()?,
            active_set: self.active_set,
        })
    }
}

struct UserIdRow(Uuid);

impl Shape for UserIdRow {
    type Value = UserId;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self(row.uuid("user_id")?))
    }

    fn into_value(self) -> Result<UserId, StoreError> {
        Ok(UserId::from_generated(self.0))
    }
}

struct HolderRow(Uuid, String);

impl Shape for HolderRow {
    type Value = (UserId, String);

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self(row.uuid("user_id")?, row.text("user_name")?))
    }

    fn into_value(self) -> Result<(UserId, String), StoreError> {
        Ok((UserId::from_generated(self.0), self.1))
    }
}

const GROUP_COLUMNS: &str = "tenant_id, role, display_name, display_name_key, external_id, \
     created_at, updated_at, version";

struct GroupRow {
    tenant_id: String,
    role: String,
    display_name: String,
    external_id: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    version: i64,
}

impl Shape for GroupRow {
    type Value = ScimGroup;

    fn read<C: Columns + ?Sized>(row: &C) -> Result<Self, StoreError> {
        Ok(Self {
            tenant_id: row.text("tenant_id")?,
            role: row.text("role")?,
            display_name: row.text("display_name")?,
            external_id: row.text_opt("external_id")?,
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
            version: row.int("version")?,
        })
    }

    fn into_value(self) -> Result<ScimGroup, StoreError> {
        Ok(ScimGroup {
            tenant: crate::rows::tenant_id(&self.tenant_id)?,
            role: RoleName::parse(&self.role).map_err(|_| corrupt("group role"))?,
            display_name: self.display_name,
            external_id: self.external_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: from_sql_int(self.version, "group version")?,
        })
    }
}

impl<B: Backend> SqlTx<B> {
    /// The `where` clause of a User query of `tenant` (`$1`), its filter's literals
    /// bound after it.
    fn user_condition(
        tenant: &TenantId,
        query: &UserQuery,
    ) -> Result<(String, Vec<Value>), StoreError> {
        let mut values = vec![Value::Text(Some(tenant.as_str().to_owned()))];
        let condition = match &query.filter {
            Some(filter) => {
                let sql = filter_sql(filter, &UserColumns::new::<B>(), B::BYTEWISE, &mut values)
                    .map_err(|error| StoreError::Unavailable(error.to_string()))?;
                format!("a.tenant_id = $1 and {sql}")
            }
            None => "a.tenant_id = $1".to_owned(),
        };
        Ok((condition, values))
    }
}

#[async_trait]
impl<B: Backend> Scim for SqlTx<B> {
    async fn get_scim_identity(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Option<ScimIdentity>, StoreError> {
        self.scope.allow(tenant)?;
        self.optional::<IdentityRow>(
            Statement::new(
                "select user_name, external_id, emails, active_set from scim_users \
                 where tenant_id = $1 and user_id = $2",
            )
            .text(tenant.as_str())
            .id(user.as_uuid()),
        )
        .await
    }

    async fn put_scim_identity(
        &mut self,
        tenant: &TenantId,
        user: &UserId,
        identity: &ScimIdentity,
    ) -> Result<(), StoreError> {
        self.scope.allow(tenant)?;
        self.require_member(tenant, user).await?;
        let key = name_key(&identity.user_name);
        self.refuse_duplicate(
            "scim user name",
            Statement::new(
                "select 1 as one from scim_users \
                 where tenant_id = $1 and user_name_key = $2 and user_id <> $3",
            )
            .text(tenant.as_str())
            .text(&key)
            .id(user.as_uuid()),
        )
        .await?;
        self.execute(
            Statement::new(
                "insert into scim_users \
                 (tenant_id, user_id, user_name, user_name_key, external_id, emails, active_set) \
                 values ($1, $2, $3, $4, $5, $6, $7) \
                 on conflict (tenant_id, user_id) do update set user_name = excluded.user_name, \
                 user_name_key = excluded.user_name_key, external_id = excluded.external_id, \
                 emails = excluded.emails, active_set = excluded.active_set",
            )
            .text(tenant.as_str())
            .id(user.as_uuid())
            .text(&identity.user_name)
            .text(&key)
            .text_opt(identity.external_id.as_deref())
            .text_opt(
                identity
                    .emails
                    .as_ref()
                    .map(serde_json::Value::to_string)
                    .as_deref(),
            )
            .flag(identity.active_set),
        )
        .await
        .map(|_| ())
    }

    async fn find_scim_users(
        &mut self,
        tenant: &TenantId,
        query: &UserQuery,
    ) -> Result<(u64, Vec<UserId>), StoreError> {
        self.scope.allow(tenant)?;
        if let Some(key) = query.filter.as_ref().and_then(user_name_eq) {
            let found = self
                .all::<UserIdRow>(
                    Statement::new(USER_NAME_EQ)
                        .text(tenant.as_str())
                        .text(&key),
                )
                .await?;
            let total = found.len() as u64;
            let page = found
                .into_iter()
                .skip(usize::try_from(query.offset).unwrap_or(usize::MAX))
                .take(usize::try_from(query.count).unwrap_or(usize::MAX))
                .collect();
            return Ok((total, page));
        }
        let (condition, values) = Self::user_condition(tenant, query)?;
        let total = self
            .count(Statement {
                sql: format!("select count(*) as n {USER_FROM} where {condition}").into(),
                values: values.clone(),
            })
            .await?;
        if query.count == 0 || query.offset >= total {
            return Ok((total, Vec::new()));
        }
        let limit = values.len() + 1;
        let offset = values.len() + 2;
        let mut statement = Statement {
            sql: format!(
                "select a.user_id {USER_FROM} where {condition} \
                 order by a.user_id limit ${limit} offset ${offset}"
            )
            .into(),
            values,
        };
        statement
            .values
            .push(Value::Int(Some(to_sql_int(query.count, "count")?)));
        statement
            .values
            .push(Value::Int(Some(to_sql_int(query.offset, "offset")?)));
        let page = self.all::<UserIdRow>(statement).await?;
        Ok((total, page))
    }

    async fn list_scim_groups(&mut self, tenant: &TenantId) -> Result<Vec<ScimGroup>, StoreError> {
        self.scope.allow(tenant)?;
        self.all::<GroupRow>(
            Statement::new(format!(
                "select {GROUP_COLUMNS} from scim_groups where tenant_id = $1 \
                 order by role{}",
                B::BYTEWISE
            ))
            .text(tenant.as_str()),
        )
        .await
    }

    async fn put_scim_group(&mut self, group: &ScimGroup) -> Result<(), StoreError> {
        self.scope.allow(&group.tenant)?;
        self.require(
            "role",
            Statement::new("select 1 as one from role_bindings where tenant_id = $1 and role = $2")
                .text(group.tenant.as_str())
                .text(group.role.as_str()),
        )
        .await?;
        let key = name_key(&group.display_name);
        self.refuse_duplicate(
            "scim group name",
            Statement::new(
                "select 1 as one from scim_groups \
                 where tenant_id = $1 and display_name_key = $2 and role <> $3",
            )
            .text(group.tenant.as_str())
            .text(&key)
            .text(group.role.as_str()),
        )
        .await?;
        self.execute(
            Statement::new(format!(
                "insert into scim_groups ({GROUP_COLUMNS}) values ($1, $2, $3, $4, $5, $6, $7, $8) \
                 on conflict (tenant_id, role) do update set display_name = excluded.display_name, \
                 display_name_key = excluded.display_name_key, external_id = excluded.external_id, \
                 updated_at = excluded.updated_at, version = excluded.version"
            ))
            .text(group.tenant.as_str())
            .text(group.role.as_str())
            .text(&group.display_name)
            .text(&key)
            .text_opt(group.external_id.as_deref())
            .time(group.created_at)
            .time(group.updated_at)
            .int(to_sql_int(group.version, "group version")?),
        )
        .await
        .map(|_| ())
    }

    async fn role_holders(
        &mut self,
        tenant: &TenantId,
        role: &RoleName,
    ) -> Result<Vec<(UserId, String)>, StoreError> {
        self.scope.allow(tenant)?;
        self.all::<HolderRow>(
            Statement::new(
                "select m.user_id, coalesce(s.user_name, u.email) as user_name \
                 from memberships m join users u on u.user_id = m.user_id \
                 left join scim_users s on s.tenant_id = m.tenant_id and s.user_id = m.user_id \
                 where m.tenant_id = $1 and m.role = $2 order by m.user_id",
            )
            .text(tenant.as_str())
            .text(role.as_str()),
        )
        .await
    }
}
