//! [`Decisions`] over SQLite: one statement returning the columns of PostgreSQL's
//! `authz_facts_rows` with the same meaning, assembled by `store_sql` (which also hides
//! another tenant's key, as row-level security would).

use async_trait::async_trait;
use domain::authz::AuthzFacts;
use domain::ids::TenantId;
use domain::ports::{Decisions, FactsQuery, StoreError, SubjectRef};
use store_sql::FactsRow;

use super::SqliteTx;
use crate::columns::Lite;
use crate::errors::store_error;

/// ?1 tenant, ?2 subject user, ?3 subject key, ?4 scope, ?5 target user. A list is
/// `NULL` when its row does not exist (`json_group_array` alone would give `[]`).
const FACTS_QUERY: &str = "select \
    (select t.state from tenants t where t.tenant_id = ?1) as tenant_state, \
    u.state as user_state, \
    case when u.user_id is not null then \
        (select json_group_array(r.role) from user_platform_roles r where r.user_id = ?2) \
    end as user_platform_roles, \
    k.tenant_id as key_tenant, \
    case when k.key_id is not null then \
        (select json_group_array(s.scope) from api_key_scopes s \
         where s.tenant_id = k.tenant_id and s.key_id = k.key_id) \
    end as key_scopes, \
    (k.revoked_at is not null) as key_revoked, \
    (select a.state from accounts a where a.tenant_id = ?1 and a.user_id = ?2) as account_state, \
    (select json_group_array(m.role) from memberships m \
     where m.tenant_id = ?1 and m.user_id = ?2) as account_roles, \
    (select json_group_array(b.role) from role_binding_scopes b \
     where b.tenant_id = ?1 and b.scope = ?4) as scope_roles, \
    c.name as scope_name, c.description as scope_description, \
    c.platform_only as scope_platform_only, c.min_assurance as scope_min_assurance, \
    exists(select 1 from tenant_scopes s where s.tenant_id = ?1 and s.scope = ?4) \
        as scope_enabled, \
    case when tu.user_id is not null then \
        (select json_group_array(r.role) from user_platform_roles r where r.user_id = ?5) \
    end as target_platform_roles, \
    (select ta.state from accounts ta where ta.tenant_id = ?1 and ta.user_id = ?5) \
        as target_account_state \
    from (select 1) as one \
    left join users u on u.user_id = ?2 \
    left join api_keys k on k.key_id = ?3 \
    left join catalog_scopes c on c.name = ?4 \
    left join users tu on tu.user_id = ?5";

#[async_trait]
impl Decisions for SqliteTx {
    async fn authz_facts(&mut self, query: &FactsQuery) -> Result<AuthzFacts, StoreError> {
        if let Some(tenant) = &query.tenant {
            self.scope.allow(tenant)?;
        }
        let (user, key) = match &query.subject {
            SubjectRef::User(user) => (Some(user.to_string()), None),
            SubjectRef::ApiKey(key) => (None, Some(key.to_string())),
        };
        let connection = self.read().await?;
        let row = sqlx::query(FACTS_QUERY)
            .bind(query.tenant.as_ref().map(TenantId::as_str))
            .bind(user)
            .bind(key)
            .bind(query.scope.as_str())
            .bind(query.target.map(|target| target.to_string()))
            .fetch_one(connection)
            .await
            .map_err(store_error)?;
        FactsRow::read(&Lite(&row))?.into_facts(&query.subject, query.target, &self.scope)
    }
}
