-- The authorize API's facts cache (adapter `facts_cache`): every snapshot carries the
-- partition heads it was read with, and `authorize_probe` reads the heads (and a
-- session, when the caller holds one) alone, so the adapter can tell in one cheap
-- statement whether facts it read before still hold.
--
-- Why the heads are a version of the facts: every change to what a decision reads —
-- tenants, users and their platform roles, accounts, memberships, bindings, enabled
-- scopes, the catalog, API keys — is a mutation, and every mutation appends its audit
-- record and its event in the same transaction (SPEC §3.3), to its tenant's partition
-- or to the platform's, moving that partition's `audit_seq` and `event_position`. The
-- heads of the tenant and of the platform, read in the same statement as the facts,
-- therefore change whenever any fact of a decision in that tenant does.

drop function authorize_snapshot(text, text, boolean, text, uuid[], text[], uuid[]);

-- As before (see 20261126000002), with the tenant's and the platform's heads, read in the
-- same statement, on every row.
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
    tenant_audit_seq bigint,
    tenant_event_position bigint,
    platform_audit_seq bigint,
    platform_event_position bigint,
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
            th.audit_seq, th.event_position, ph.audit_seq, ph.event_position,
            null::uuid, null::timestamptz, null::timestamptz, null::timestamptz, null::timestamptz,
            k.key_id, k.name, k.scopes, k.created_by, k.created_at, k.revoked_at,
            f.*
        from (select 1) as one
        left join lateral (select h.audit_seq, h.event_position from partition_heads h
                           where h.partition = p_tenant limit 1) th on true
        left join lateral (select h.audit_seq, h.event_position from partition_heads h
                           where h.partition = '_platform' limit 1) ph on true
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
            th.audit_seq, th.event_position, ph.audit_seq, ph.event_position,
            s.user_id, s.created_at, s.expires_at, s.last_seen_at, s.aal2_until,
            null::uuid, null::text, null::text[], null::uuid, null::timestamptz, null::timestamptz,
            f.*
        from (select 1) as one
        left join lateral (select h.audit_seq, h.event_position from partition_heads h
                           where h.partition = p_tenant limit 1) th on true
        left join lateral (select h.audit_seq, h.event_position from partition_heads h
                           where h.partition = '_platform' limit 1) ph on true
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

-- The heads of the tenant and of the platform (one row each, when they exist), with the
-- session a token hash names on every row (none when `p_session_hash` is null; then a
-- row with no partition when neither head exists). Like `authorize_snapshot` it sets
-- the tenant for the statement's own transaction, so row-level security shows the
-- tenant's head and the platform's, no other.
create function authorize_probe(p_tenant text, p_session_hash text)
returns table (
    partition text,
    audit_seq bigint,
    event_position bigint,
    session_user_id uuid,
    session_created_at timestamptz,
    session_expires_at timestamptz,
    session_last_seen_at timestamptz,
    session_aal2_until timestamptz
)
language plpgsql volatile
as $$
#variable_conflict use_column
begin
    perform set_config('app.tenant_id', p_tenant, true), set_config('app.platform', 'off', true);
    if p_session_hash is null then
        return query
        select h.partition, h.audit_seq, h.event_position,
            null::uuid, null::timestamptz, null::timestamptz, null::timestamptz, null::timestamptz
        from partition_heads h
        where h.partition in (p_tenant, '_platform');
    else
        return query
        select h.partition, h.audit_seq, h.event_position,
            s.user_id, s.created_at, s.expires_at, s.last_seen_at, s.aal2_until
        from (select 1) as one
        left join sessions s on s.token_hash = p_session_hash
        left join partition_heads h on h.partition in (p_tenant, '_platform');
    end if;
end
$$;

grant execute on function
    authorize_snapshot(text, text, boolean, text, uuid[], text[], uuid[]),
    authorize_probe(text, text)
    to user_engine_app;
