-- user-engine schema. Every tenant-scoped table is keyed (tenant_id, ...) and refers to
-- the tenant account with a composite foreign key, so a row can never point into
-- another tenant; row-level security (forced) hides other tenants from the service role.
-- Constraints are named explicitly: the adapter maps violations to domain errors by name.

-- The role the service runs its queries as: not the owner, not a superuser, no BYPASSRLS.
do $$
begin
    create role user_engine_app nologin nosuperuser nobypassrls noinherit;
exception
    when duplicate_object or unique_violation then null;
end
$$;

-- Platform mode or the transaction's tenant; unset settings mean neither.
create function app_tenant() returns text
    language sql stable
    as $$ select nullif(current_setting('app.tenant_id', true), '') $$;

create function app_platform() returns boolean
    language sql stable
    as $$ select coalesce(nullif(current_setting('app.platform', true), ''), 'off') = 'on' $$;

create table tenants (
    tenant_id text not null,
    display_name text not null,
    state text not null,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    constraint tenants_pkey primary key (tenant_id),
    constraint tenants_id_format check (
        tenant_id ~ '^[a-z][a-z0-9-]{1,38}[a-z0-9]$' and tenant_id not like '%--%'
    ),
    constraint tenants_display_name_length check (char_length(display_name) between 1 and 200),
    constraint tenants_state_valid check (state in ('active', 'suspended'))
);

-- Every tenant id ever used; ids are never reused.
create table tenant_tombstones (
    tenant_id text not null,
    constraint tenant_tombstones_pkey primary key (tenant_id)
);

create table users (
    user_id uuid not null,
    email text not null,
    state text not null,
    platform_roles text[] not null default '{}',
    has_totp boolean not null default false,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    constraint users_pkey primary key (user_id),
    constraint users_email_format check (
        email = lower(btrim(email)) and char_length(email) <= 254 and email ~ '^[^@]+@[^@]+$'
    ),
    constraint users_state_valid check (state in ('invited', 'active', 'suspended')),
    constraint users_platform_roles_valid check (
        platform_roles <@ array['platform_root', 'platform_auditor']::text[]
    )
);
create unique index users_email_key on users (lower(email));

create table user_credentials (
    user_id uuid not null,
    password_hash text,
    totp_secret text,
    totp_confirmed boolean not null default false,
    totp_last_step bigint,
    constraint user_credentials_pkey primary key (user_id),
    constraint user_credentials_user_fkey foreign key (user_id) references users (user_id)
);

create table catalog_scopes (
    name text not null,
    description text not null,
    platform_only boolean not null,
    min_assurance text not null,
    constraint catalog_scopes_pkey primary key (name),
    constraint catalog_scopes_name_format check (
        name ~ '^[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*){1,3}$'
    ),
    constraint catalog_scopes_assurance_valid check (min_assurance in ('aal1', 'aal2'))
);

create table profile_schema (
    key text not null,
    value_type text not null,
    user_editable boolean not null,
    tenant_overridable boolean not null,
    constraint profile_schema_pkey primary key (key),
    constraint profile_schema_key_format check (key ~ '^[a-z][a-z0-9_]{0,39}$'),
    constraint profile_schema_type_valid check (value_type in ('string', 'number', 'boolean'))
);

create table tenant_scopes (
    tenant_id text not null,
    scope text not null,
    constraint tenant_scopes_pkey primary key (tenant_id, scope),
    constraint tenant_scopes_tenant_fkey foreign key (tenant_id) references tenants (tenant_id),
    constraint tenant_scopes_scope_fkey foreign key (scope) references catalog_scopes (name)
);

create table role_bindings (
    tenant_id text not null,
    role text not null,
    constraint role_bindings_pkey primary key (tenant_id, role),
    constraint role_bindings_tenant_fkey foreign key (tenant_id) references tenants (tenant_id),
    constraint role_bindings_role_format check (role ~ '^[a-z][a-z0-9_]{0,39}$'),
    constraint role_bindings_not_tenant_admin check (role <> 'tenant_admin')
);

create table role_binding_scopes (
    tenant_id text not null,
    role text not null,
    scope text not null,
    constraint role_binding_scopes_pkey primary key (tenant_id, role, scope),
    constraint role_binding_scopes_binding_fkey foreign key (tenant_id, role)
        references role_bindings (tenant_id, role) on delete cascade,
    constraint role_binding_scopes_scope_fkey foreign key (scope) references catalog_scopes (name)
);

-- A user's tenant account.
create table accounts (
    tenant_id text not null,
    user_id uuid not null,
    state text not null,
    version bigint not null,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    constraint accounts_pkey primary key (tenant_id, user_id),
    constraint accounts_tenant_fkey foreign key (tenant_id) references tenants (tenant_id),
    constraint accounts_user_fkey foreign key (user_id) references users (user_id),
    constraint accounts_state_valid check (state in ('active', 'suspended'))
);

-- The roles of a tenant account.
create table memberships (
    tenant_id text not null,
    user_id uuid not null,
    role text not null,
    constraint memberships_pkey primary key (tenant_id, user_id, role),
    constraint memberships_account_fkey foreign key (tenant_id, user_id)
        references accounts (tenant_id, user_id) on delete cascade,
    constraint memberships_role_format check (role ~ '^[a-z][a-z0-9_]{0,39}$')
);

create table member_profile_values (
    tenant_id text not null,
    user_id uuid not null,
    key text not null,
    value jsonb not null,
    constraint member_profile_values_pkey primary key (tenant_id, user_id, key),
    constraint member_profile_values_account_fkey foreign key (tenant_id, user_id)
        references accounts (tenant_id, user_id) on delete cascade,
    constraint member_profile_values_key_fkey foreign key (key) references profile_schema (key),
    constraint member_profile_values_value_valid check (
        jsonb_typeof(value) in ('string', 'number', 'boolean')
    )
);

create table tenant_profile_defaults (
    tenant_id text not null,
    key text not null,
    value jsonb not null,
    constraint tenant_profile_defaults_pkey primary key (tenant_id, key),
    constraint tenant_profile_defaults_tenant_fkey foreign key (tenant_id) references tenants (tenant_id),
    constraint tenant_profile_defaults_key_fkey foreign key (key) references profile_schema (key),
    constraint tenant_profile_defaults_value_valid check (
        jsonb_typeof(value) in ('string', 'number', 'boolean')
    )
);

create table platform_profile_values (
    user_id uuid not null,
    key text not null,
    value jsonb not null,
    constraint platform_profile_values_pkey primary key (user_id, key),
    constraint platform_profile_values_user_fkey foreign key (user_id) references users (user_id),
    constraint platform_profile_values_key_fkey foreign key (key) references profile_schema (key),
    constraint platform_profile_values_value_valid check (
        jsonb_typeof(value) in ('string', 'number', 'boolean')
    )
);

create table api_keys (
    tenant_id text not null,
    key_id uuid not null,
    name text not null,
    scopes text[] not null,
    secret_hash text not null,
    created_by uuid,
    created_at timestamptz not null,
    revoked_at timestamptz,
    constraint api_keys_pkey primary key (tenant_id, key_id),
    constraint api_keys_key_id_key unique (key_id),
    constraint api_keys_secret_hash_key unique (secret_hash),
    constraint api_keys_tenant_fkey foreign key (tenant_id) references tenants (tenant_id),
    constraint api_keys_creator_fkey foreign key (tenant_id, created_by)
        references accounts (tenant_id, user_id) on delete set null (created_by),
    constraint api_keys_name_length check (char_length(name) between 1 and 200)
);

create table sessions (
    token_hash text not null,
    user_id uuid not null,
    created_at timestamptz not null,
    expires_at timestamptz not null,
    last_seen_at timestamptz not null,
    aal2_until timestamptz,
    constraint sessions_pkey primary key (token_hash),
    constraint sessions_user_fkey foreign key (user_id) references users (user_id)
);

create table invitations (
    token_hash text not null,
    user_id uuid not null,
    expires_at timestamptz not null,
    used_at timestamptz,
    constraint invitations_pkey primary key (token_hash),
    constraint invitations_user_fkey foreign key (user_id) references users (user_id)
);

-- The head of each partition's audit chain and event feed ('_platform' or a tenant id).
-- A mutating transaction locks its partition's row first and holds it to commit, so
-- invariant checks cannot race and seq/positions follow commit order.
create table partition_heads (
    partition text not null,
    audit_seq bigint not null default 0,
    audit_hash text not null default repeat('0', 64),
    event_position bigint not null default 0,
    constraint partition_heads_pkey primary key (partition)
);

create table audit_records (
    partition text not null,
    seq bigint not null,
    tenant_id text,
    audit_id uuid not null,
    at timestamptz not null,
    actor_type text not null,
    actor_id text not null,
    action text not null,
    target_type text not null,
    target_id text not null,
    outcome text not null,
    reason text not null,
    request_id text not null,
    prev_hash text not null,
    hash text not null,
    constraint audit_records_pkey primary key (partition, seq),
    constraint audit_records_audit_id_key unique (audit_id),
    constraint audit_records_tenant_fkey foreign key (tenant_id) references tenants (tenant_id),
    constraint audit_records_partition_matches check (
        partition = coalesce(tenant_id, '_platform')
    ),
    constraint audit_records_outcome_valid check (outcome in ('allowed', 'denied'))
);

create table outbox_events (
    partition text not null,
    position bigint not null,
    tenant_id text,
    event_id uuid not null,
    event_type text not null,
    subject text not null,
    time timestamptz not null,
    data jsonb not null,
    published_at timestamptz,
    constraint outbox_events_pkey primary key (partition, position),
    constraint outbox_events_event_id_key unique (event_id),
    constraint outbox_events_tenant_fkey foreign key (tenant_id) references tenants (tenant_id),
    constraint outbox_events_partition_matches check (
        partition = coalesce(tenant_id, '_platform')
    )
);
create index outbox_events_unpublished on outbox_events (time) where published_at is null;

-- Audit records are never updated or deleted, whoever asks.
create function audit_records_append_only() returns trigger
    language plpgsql
    as $$
begin
    raise exception 'audit records are append-only' using errcode = 'insufficient_privilege';
end
$$;

create trigger audit_records_append_only
    before update or delete on audit_records
    for each row execute function audit_records_append_only();

create trigger audit_records_no_truncate
    before truncate on audit_records
    for each statement execute function audit_records_append_only();

create function tenants_tombstone() returns trigger
    language plpgsql
    as $$
begin
    insert into tenant_tombstones (tenant_id) values (new.tenant_id);
    return new;
end
$$;

create trigger tenants_tombstone
    before insert on tenants
    for each row execute function tenants_tombstone();

-- Row-level security on every table with a tenant_id column (and the partition heads):
-- the transaction's tenant, or platform mode.
do $$
declare
    table_name text;
begin
    foreach table_name in array array[
        'tenants', 'tenant_tombstones', 'tenant_scopes', 'role_bindings',
        'role_binding_scopes', 'accounts', 'memberships', 'member_profile_values',
        'tenant_profile_defaults', 'api_keys'
    ] loop
        execute format('alter table %I enable row level security', table_name);
        execute format('alter table %I force row level security', table_name);
        execute format(
            'create policy tenant_isolation on %I using (app_platform() or tenant_id = app_tenant()) '
            'with check (app_platform() or tenant_id = app_tenant())',
            table_name
        );
    end loop;
end
$$;

-- Trails and feeds: a tenant transaction reads its own, and may append to the platform's
-- (a user created while adding a member belongs to the platform feed).
alter table audit_records enable row level security;
alter table audit_records force row level security;
create policy tenant_isolation on audit_records
    using (app_platform() or tenant_id = app_tenant())
    with check (app_platform() or tenant_id = app_tenant() or tenant_id is null);

alter table outbox_events enable row level security;
alter table outbox_events force row level security;
create policy tenant_isolation on outbox_events
    using (app_platform() or tenant_id = app_tenant())
    with check (app_platform() or tenant_id = app_tenant() or tenant_id is null);

alter table partition_heads enable row level security;
alter table partition_heads force row level security;
create policy tenant_isolation on partition_heads
    using (app_platform() or partition = app_tenant() or partition = '_platform')
    with check (app_platform() or partition = app_tenant() or partition = '_platform');

-- The service role's rights: everything it needs, and no changes to audit records.
grant usage on schema public to user_engine_app;
grant select, insert, update, delete on
    tenants, users, user_credentials, catalog_scopes, profile_schema, tenant_scopes,
    role_bindings, role_binding_scopes, accounts, memberships, member_profile_values,
    tenant_profile_defaults, platform_profile_values, api_keys, sessions, invitations,
    partition_heads, outbox_events
    to user_engine_app;
grant select, insert on tenant_tombstones, audit_records to user_engine_app;
grant execute on function app_tenant(), app_platform() to user_engine_app;

-- Whoever runs the migrations may act as the service role (a superuser can anyway).
do $$
begin
    execute format('grant user_engine_app to %I', current_user);
exception
    when others then null;
end
$$;
