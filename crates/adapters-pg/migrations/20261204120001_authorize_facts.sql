-- The authorize API's facts cache, kept in parts (adapter `facts_cache`): the facts of a
-- tenant (state, enabled scopes, bindings, API keys, accounts) are versioned by the
-- tenant's partition head, the platform's facts (users, the catalog) by the platform's.
-- Every change to a tenant's facts is a mutation that appends to that tenant's partition,
-- every change to a user or to the catalog one that appends to the platform's (SPEC §3.3),
-- so a part read with a head is what the database holds for as long as that head has
-- not moved.
--
-- `partition_versions` lets the service read every partition's head — its position
-- only, never its hash — in a plain statement, with no tenant setting and no function
-- call: the per-request probe stays a prepared one-row select. The view runs with the
-- rights of `user_engine_facts`, a role that may read those three columns of
-- `partition_heads` and nothing else; the tenant isolation of every other table is
-- untouched.
do $$
begin
    create role user_engine_facts nologin nosuperuser nobypassrls noinherit;
exception
    when duplicate_object or unique_violation then null;
end
$$;

grant select (partition, audit_seq, event_position) on partition_heads to user_engine_facts;
create policy versions_readable on partition_heads for select to user_engine_facts using (true);

create view partition_versions as
    select partition, audit_seq, event_position from partition_heads;

-- Changing the owner needs membership in the new owner for a role that is not a
-- superuser (one with CREATEROLE, as this migration needs for its roles anyway).
do $$
begin
    execute format('grant user_engine_facts to %I', current_user);
exception
    when insufficient_privilege or invalid_grant_operation then null;
end
$$;
alter view partition_versions owner to user_engine_facts;
grant select on partition_versions to user_engine_app;

-- The parts of the facts the cache lacks, with the heads they are valid for and the
-- session a token hash names, in one round trip: one row whose `facts` is a JSON
-- document of
--   tenant:   {state, scopes: [enabled], bindings: [[role, scope]]}
--             when `p_tenant_facts` and the tenant exists, else null;
--   key:      {id, name, scopes, created_by, created_at, revoked_at} (times in µs
--             since the epoch) for the tenant's key with secret hash `p_key_hash`, else null;
--   catalog:  [{name, description, platform_only, min_assurance}] when `p_catalog`;
--   users:    [[user_id, state, platform_roles]] of the users of `p_users` that exist;
--   accounts: [[user_id, state, roles]] of the tenant's accounts of `p_accounts`.
--
-- The heads are read first, each fact by a later statement: in READ COMMITTED every
-- statement of a volatile function takes a new snapshot, so the facts are at least as
-- new as the heads. A part kept with heads that were already old when it was read is
-- never served, because heads only move forward and the probe then finds them moved.
-- Like `authorize_snapshot` it sets the tenant for the statement's own transaction.
create function authorize_facts(
    p_tenant text,
    p_session_hash text,
    p_key_hash text,
    p_tenant_facts boolean,
    p_catalog boolean,
    p_users uuid[],
    p_accounts uuid[]
)
returns table (
    tenant_audit_seq bigint,
    tenant_event_position bigint,
    platform_audit_seq bigint,
    platform_event_position bigint,
    session_user_id uuid,
    session_created_at timestamptz,
    session_expires_at timestamptz,
    session_last_seen_at timestamptz,
    session_aal2_until timestamptz,
    facts text
)
language plpgsql volatile
as $$
#variable_conflict use_column
declare
    v_tenant_seq bigint;
    v_tenant_position bigint;
    v_platform_seq bigint;
    v_platform_position bigint;
begin
    perform set_config('app.tenant_id', p_tenant, true), set_config('app.platform', 'off', true);
    select h.audit_seq, h.event_position into v_tenant_seq, v_tenant_position
        from partition_heads h where h.partition = p_tenant;
    select h.audit_seq, h.event_position into v_platform_seq, v_platform_position
        from partition_heads h where h.partition = '_platform';
    return query
    select
        v_tenant_seq, v_tenant_position, v_platform_seq, v_platform_position,
        s.user_id, s.created_at, s.expires_at, s.last_seen_at, s.aal2_until,
        jsonb_build_object(
            'tenant', case when p_tenant_facts then (
                select jsonb_build_object(
                    'state', t.state,
                    'scopes', coalesce((select jsonb_agg(ts.scope) from tenant_scopes ts
                                        where ts.tenant_id = p_tenant), '[]'::jsonb),
                    'bindings', coalesce((select jsonb_agg(jsonb_build_array(b.role, b.scope))
                                          from role_binding_scopes b
                                          where b.tenant_id = p_tenant), '[]'::jsonb))
                from tenants t where t.tenant_id = p_tenant) end,
            'key', (select jsonb_build_object(
                        'id', k.key_id, 'name', k.name, 'scopes', to_jsonb(k.scopes),
                        'created_by', k.created_by,
                        'created_at', (extract(epoch from k.created_at) * 1000000)::bigint,
                        'revoked_at', (extract(epoch from k.revoked_at) * 1000000)::bigint)
                    from api_keys k
                    where k.secret_hash = p_key_hash and k.tenant_id = p_tenant),
            'catalog', case when p_catalog then (
                select jsonb_agg(jsonb_build_object(
                    'name', c.name, 'description', c.description,
                    'platform_only', c.platform_only, 'min_assurance', c.min_assurance))
                from catalog_scopes c) end,
            'users', coalesce((select jsonb_agg(jsonb_build_array(
                                   u.user_id, u.state, to_jsonb(u.platform_roles)))
                               from users u where u.user_id = any(p_users)), '[]'::jsonb),
            'accounts', coalesce((select jsonb_agg(jsonb_build_array(
                                      a.user_id, a.state,
                                      coalesce((select jsonb_agg(m.role) from memberships m
                                                where m.tenant_id = p_tenant
                                                  and m.user_id = a.user_id), '[]'::jsonb)))
                                  from accounts a
                                  where a.tenant_id = p_tenant
                                    and a.user_id = any(p_accounts)), '[]'::jsonb)
        )::text
    from (select 1) as one
    left join sessions s on s.token_hash = p_session_hash;
end
$$;

grant execute on function authorize_facts(text, text, text, boolean, boolean, uuid[], uuid[])
    to user_engine_app;

-- The common path no longer reads whole snapshots or probes through plpgsql.
drop function authorize_snapshot(text, text, boolean, text, uuid[], text[], uuid[]);
drop function authorize_probe(text, text);
