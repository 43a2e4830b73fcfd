-- The version of the platform's decision facts: users' states and platform roles, and
-- the scope catalog. The authorize API's facts cache kept users and the catalog under the
-- platform trail's head, which every platform-trail append moves — every login appends
-- `session.create` — so one login anywhere made every cached user stale on every node.
-- This version moves only when those facts change: statement triggers bump it in the
-- changing transaction itself, so no code path can forget it, and a part read with
-- version v is what the database holds for as long as the version is still v.
--
-- A user's creation does not move it: the cache keeps no user that was not found.
-- Bumping takes the row's lock until commit, which serialises the rare changes of users'
-- states, platform roles and the catalog (they append to the platform trail, whose head
-- lock already serialises them).
create table platform_facts_version (
    singleton boolean not null default true,
    version bigint not null default 1,
    constraint platform_facts_version_pkey primary key (singleton),
    constraint platform_facts_version_singleton check (singleton)
);
insert into platform_facts_version default values;
grant select on platform_facts_version to user_engine_app;

-- Runs with the owner's rights: the service role reads the version but never writes it
-- but through these triggers.
create function bump_platform_facts_version() returns trigger
language plpgsql security definer set search_path = public
as $$
begin
    update platform_facts_version set version = version + 1;
    return null;
end
$$;

create trigger users_platform_facts_changed
    after update of state, platform_roles or delete on users
    for each statement execute function bump_platform_facts_version();
create trigger catalog_platform_facts_changed
    after insert or update or delete on catalog_scopes
    for each statement execute function bump_platform_facts_version();

-- `authorize_facts` reports the platform facts version where it reported the platform
-- head (in both of its columns), read before the facts as the heads are.
create or replace function authorize_facts(
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
    v_platform_version bigint;
begin
    perform set_config('app.tenant_id', p_tenant, true), set_config('app.platform', 'off', true);
    select h.audit_seq, h.event_position into v_tenant_seq, v_tenant_position
        from partition_heads h where h.partition = p_tenant;
    select v.version into v_platform_version from platform_facts_version v;
    return query
    select
        v_tenant_seq, v_tenant_position, v_platform_version, v_platform_version,
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
