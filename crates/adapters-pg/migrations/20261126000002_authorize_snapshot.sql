-- The facts of decisions, and the authorize API's common path in one statement.
--
-- `authz_facts_rows` is the one definition of what a decision reads (SPEC §3.2): one row
-- per check, in the order given. `scope_roles` are the tenant's roles bound to the
-- scope; the roles that grant it are those the account holds among them. It is a plain SQL function, so the planner inlines it
-- into the query that calls it, and it runs with the caller's rights: row-level security
-- applies as for any query of the service role.
create function authz_facts_rows(
    p_tenant text,
    p_users uuid[],
    p_keys uuid[],
    p_scopes text[],
    p_targets uuid[]
)
returns table (
    ord bigint,
    tenant_state text,
    user_state text,
    user_platform_roles text[],
    key_tenant text,
    key_scopes text[],
    key_revoked boolean,
    account_state text,
    account_roles text[],
    scope_roles text[],
    scope_name text,
    scope_description text,
    scope_platform_only boolean,
    scope_min_assurance text,
    scope_enabled boolean,
    target_platform_roles text[],
    target_account_state text
)
language sql stable
as $$
    select
        c.ord,
        (select t.state from tenants t where t.tenant_id = p_tenant),
        u.state, u.platform_roles,
        k.tenant_id, k.scopes, (k.revoked_at is not null),
        a.state,
        array(select m.role from memberships m
              where m.tenant_id = p_tenant and m.user_id = c.user_id),
        array(select b.role from role_binding_scopes b
              where b.tenant_id = p_tenant and b.scope = c.scope),
        cs.name, cs.description, cs.platform_only, cs.min_assurance,
        exists(select 1 from tenant_scopes s where s.tenant_id = p_tenant and s.scope = c.scope),
        tu.platform_roles,
        ta.state
    from unnest(p_users, p_keys, p_scopes, p_targets)
        with ordinality as c (user_id, key_id, scope, target, ord)
    -- One primary-key lookup per check each: `limit 1` keeps every lookup a parameterised
    -- index scan, whatever the statistics say, instead of a join that may read a whole
    -- table (or a whole tenant's accounts) into a hash.
    left join lateral (select u.state, u.platform_roles from users u
                       where u.user_id = c.user_id limit 1) u on true
    left join lateral (select k.tenant_id, k.scopes, k.revoked_at from api_keys k
                       where k.key_id = c.key_id limit 1) k on true
    left join lateral (select a.state from accounts a
                       where a.tenant_id = p_tenant and a.user_id = c.user_id limit 1) a on true
    left join lateral (select cs.name, cs.description, cs.platform_only, cs.min_assurance
                       from catalog_scopes cs where cs.name = c.scope limit 1) cs on true
    left join lateral (select tu.platform_roles from users tu
                       where tu.user_id = c.target limit 1) tu on true
    left join lateral (select ta.state from accounts ta
                       where ta.tenant_id = p_tenant and ta.user_id = c.target limit 1) ta on true
$$;

-- Everything one authorize request reads (domain `Store::authorize_snapshot`), in one
-- round trip: the credential the token hash names (a session, or an API key of this
-- tenant), then one facts row for the caller's own scope (ord 1) and one per check
-- (ord 2…), in no particular order (the caller sorts by ord); the tenant's state is in
-- every facts row. The credential columns repeat on every row. A key and a session are
-- looked up by separate statements, so each plan holds only the table it reads.
--
-- It sets the tenant for the transaction it runs in (`set_config(…, true)`), as every
-- transaction of the service does, and is meant to be called as a statement of its own
-- outside an explicit transaction: the setting then ends with the statement, and
-- row-level security confines every read to the tenant (a key of another tenant is not
-- seen). It runs with the caller's rights (not security definer).
create function authorize_snapshot(
    p_tenant text,
    p_token_hash text,
    p_api_key boolean,
    p_caller_scope text,
    p_users uuid[],
    p_scopes text[],
    p_targets uuid[]
)
returns table (
    session_user_id uuid,
    session_created_at timestamptz,
    session_expires_at timestamptz,
    session_last_seen_at timestamptz,
    session_aal2_until timestamptz,
    api_key_id uuid,
    api_key_name text,
    api_key_scopes text[],
    api_key_created_by uuid,
    api_key_created_at timestamptz,
    api_key_revoked_at timestamptz,
    ord bigint,
    tenant_state text,
    user_state text,
    user_platform_roles text[],
    key_tenant text,
    key_scopes text[],
    key_revoked boolean,
    account_state text,
    account_roles text[],
    scope_roles text[],
    scope_name text,
    scope_description text,
    scope_platform_only boolean,
    scope_min_assurance text,
    scope_enabled boolean,
    target_platform_roles text[],
    target_account_state text
)
language plpgsql volatile
as $$
#variable_conflict use_column
begin
    perform set_config('app.tenant_id', p_tenant, true), set_config('app.platform', 'off', true);
    if p_api_key then
        return query
        select
            null::uuid, null::timestamptz, null::timestamptz, null::timestamptz, null::timestamptz,
            k.key_id, k.name, k.scopes, k.created_by, k.created_at, k.revoked_at,
            f.*
        from (select 1) as one
        left join api_keys k on k.secret_hash = p_token_hash and k.tenant_id = p_tenant
        cross join lateral authz_facts_rows(
            p_tenant,
            array[null::uuid] || p_users,
            array[k.key_id] || array_fill(null::uuid, array[cardinality(p_users)]),
            array[p_caller_scope] || p_scopes,
            array[null::uuid] || p_targets
        ) as f;
    else
        return query
        select
            s.user_id, s.created_at, s.expires_at, s.last_seen_at, s.aal2_until,
            null::uuid, null::text, null::text[], null::uuid, null::timestamptz, null::timestamptz,
            f.*
        from (select 1) as one
        left join sessions s on s.token_hash = p_token_hash
        cross join lateral authz_facts_rows(
            p_tenant,
            array[s.user_id] || p_users,
            array_fill(null::uuid, array[cardinality(p_users) + 1]),
            array[p_caller_scope] || p_scopes,
            array[null::uuid] || p_targets
        ) as f;
    end if;
end
$$;

grant execute on function authz_facts_rows(text, uuid[], uuid[], text[], uuid[]),
    authorize_snapshot(text, text, boolean, text, uuid[], text[], uuid[])
    to user_engine_app;
