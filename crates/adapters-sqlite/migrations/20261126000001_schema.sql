-- user-engine schema for the embedded store (SQLite), mirroring the PostgreSQL schema:
-- every tenant-scoped table is keyed (tenant_id, ...) and refers to the tenant account
-- with a composite foreign key, so a row can never point into another tenant.
-- Constraints are named explicitly; SQLite reports the name of a failed CHECK, while
-- for keys the adapter checks before writing (its writes are serialised).
--
-- Differences from PostgreSQL, each deliberate:
-- * There is no row-level security in SQLite: the adapter scopes every statement to the
--   transaction's tenant and refuses other tenants' rows, as the in-memory store does.
-- * Tables are STRICT, so a column holds only its declared type. Timestamps are integer
--   microseconds since the Unix epoch (UTC): they compare and sort as numbers. Ids are
--   lowercase hyphenated UUID text. Booleans are 0 or 1.
-- * Formats are checked with GLOB and length instead of regular expressions, which
--   SQLite lacks; each check accepts exactly what the PostgreSQL regex accepts.
-- * Arrays (platform roles, API key scopes) are rows of their own tables.
-- * There are no partition heads: writers are serialised, so the next audit seq and
--   feed position are read from the trail itself, and triggers refuse any row that does
--   not extend its chain or feed by exactly one.

create table tenants (
    tenant_id text not null,
    display_name text not null,
    state text not null,
    created_at integer not null,
    updated_at integer not null,
    constraint tenants_pkey primary key (tenant_id),
    constraint tenants_id_format check (
        length(tenant_id) between 3 and 40
        and tenant_id glob '[a-z]*'
        and tenant_id glob '*[a-z0-9]'
        and tenant_id not glob '*[^a-z0-9-]*'
        and instr(tenant_id, '--') = 0
    ),
    constraint tenants_display_name_length check (length(display_name) between 1 and 200),
    constraint tenants_state_valid check (state in ('active', 'suspended'))
) strict, without rowid;

-- Every tenant id ever used; ids are never reused.
create table tenant_tombstones (
    tenant_id text not null,
    constraint tenant_tombstones_pkey primary key (tenant_id)
) strict, without rowid;

create table users (
    user_id text not null,
    email text not null,
    state text not null,
    has_totp integer not null default 0,
    created_at integer not null,
    updated_at integer not null,
    constraint users_pkey primary key (user_id),
    constraint users_id_format check (
        length(user_id) = 36 and user_id not glob '*[^0-9a-f-]*'
    ),
    constraint users_email_format check (
        email = lower(trim(email)) and length(email) <= 254
        and email glob '?*@?*' and email not glob '*@*@*'
    ),
    constraint users_state_valid check (state in ('invited', 'active', 'suspended')),
    constraint users_has_totp_boolean check (has_totp in (0, 1))
) strict, without rowid;
create unique index users_email_key on users (lower(email));

create table user_platform_roles (
    user_id text not null,
    role text not null,
    constraint user_platform_roles_pkey primary key (user_id, role),
    constraint user_platform_roles_user_fkey foreign key (user_id) references users (user_id)
        on delete cascade,
    constraint user_platform_roles_role_valid check (
        role in ('platform_root', 'platform_auditor')
    )
) strict, without rowid;
create index user_platform_roles_role on user_platform_roles (role);

create table user_credentials (
    user_id text not null,
    password_hash text,
    totp_secret text,
    totp_confirmed integer not null default 0,
    totp_last_step integer,
    constraint user_credentials_pkey primary key (user_id),
    constraint user_credentials_user_fkey foreign key (user_id) references users (user_id),
    constraint user_credentials_totp_confirmed_boolean check (totp_confirmed in (0, 1))
) strict, without rowid;

create table catalog_scopes (
    name text not null,
    description text not null,
    platform_only integer not null,
    min_assurance text not null,
    constraint catalog_scopes_pkey primary key (name),
    -- ^[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*){1,3}$
    constraint catalog_scopes_name_format check (
        name glob '[a-z]*'
        and name not glob '*[^a-z0-9_:]*'
        and name glob '*:*'
        and name not glob '*:*:*:*:*'
        and name not glob '*:[^a-z]*'
        and name not glob '*:'
    ),
    constraint catalog_scopes_platform_only_boolean check (platform_only in (0, 1)),
    constraint catalog_scopes_assurance_valid check (min_assurance in ('aal1', 'aal2'))
) strict, without rowid;

create table profile_schema (
    key text not null,
    value_type text not null,
    user_editable integer not null,
    tenant_overridable integer not null,
    constraint profile_schema_pkey primary key (key),
    constraint profile_schema_key_format check (
        length(key) between 1 and 40 and key glob '[a-z]*' and key not glob '*[^a-z0-9_]*'
    ),
    constraint profile_schema_type_valid check (value_type in ('string', 'number', 'boolean')),
    constraint profile_schema_flags_boolean check (
        user_editable in (0, 1) and tenant_overridable in (0, 1)
    )
) strict, without rowid;

create table tenant_scopes (
    tenant_id text not null,
    scope text not null,
    constraint tenant_scopes_pkey primary key (tenant_id, scope),
    constraint tenant_scopes_tenant_fkey foreign key (tenant_id) references tenants (tenant_id),
    constraint tenant_scopes_scope_fkey foreign key (scope) references catalog_scopes (name)
) strict, without rowid;

create table role_bindings (
    tenant_id text not null,
    role text not null,
    constraint role_bindings_pkey primary key (tenant_id, role),
    constraint role_bindings_tenant_fkey foreign key (tenant_id) references tenants (tenant_id),
    constraint role_bindings_role_format check (
        length(role) between 1 and 40 and role glob '[a-z]*' and role not glob '*[^a-z0-9_]*'
    ),
    constraint role_bindings_not_tenant_admin check (role <> 'tenant_admin')
) strict, without rowid;

create table role_binding_scopes (
    tenant_id text not null,
    role text not null,
    scope text not null,
    constraint role_binding_scopes_pkey primary key (tenant_id, role, scope),
    constraint role_binding_scopes_binding_fkey foreign key (tenant_id, role)
        references role_bindings (tenant_id, role) on delete cascade,
    constraint role_binding_scopes_scope_fkey foreign key (scope) references catalog_scopes (name)
) strict, without rowid;

-- A user's tenant account.
create table accounts (
    tenant_id text not null,
    user_id text not null,
    state text not null,
    version integer not null,
    created_at integer not null,
    updated_at integer not null,
    constraint accounts_pkey primary key (tenant_id, user_id),
    constraint accounts_tenant_fkey foreign key (tenant_id) references tenants (tenant_id),
    constraint accounts_user_fkey foreign key (user_id) references users (user_id),
    constraint accounts_state_valid check (state in ('active', 'suspended')),
    constraint accounts_version_positive check (version >= 1)
) strict, without rowid;
create index accounts_user on accounts (user_id);

-- The roles of a tenant account.
create table memberships (
    tenant_id text not null,
    user_id text not null,
    role text not null,
    constraint memberships_pkey primary key (tenant_id, user_id, role),
    constraint memberships_account_fkey foreign key (tenant_id, user_id)
        references accounts (tenant_id, user_id) on delete cascade,
    constraint memberships_role_format check (
        length(role) between 1 and 40 and role glob '[a-z]*' and role not glob '*[^a-z0-9_]*'
    )
) strict, without rowid;

create table member_profile_values (
    tenant_id text not null,
    user_id text not null,
    key text not null,
    value text not null,
    constraint member_profile_values_pkey primary key (tenant_id, user_id, key),
    constraint member_profile_values_account_fkey foreign key (tenant_id, user_id)
        references accounts (tenant_id, user_id) on delete cascade,
    constraint member_profile_values_key_fkey foreign key (key) references profile_schema (key),
    constraint member_profile_values_value_valid check (
        json_valid(value) and json_type(value) in ('text', 'integer', 'real', 'true', 'false')
    )
) strict, without rowid;

create table tenant_profile_defaults (
    tenant_id text not null,
    key text not null,
    value text not null,
    constraint tenant_profile_defaults_pkey primary key (tenant_id, key),
    constraint tenant_profile_defaults_tenant_fkey foreign key (tenant_id) references tenants (tenant_id),
    constraint tenant_profile_defaults_key_fkey foreign key (key) references profile_schema (key),
    constraint tenant_profile_defaults_value_valid check (
        json_valid(value) and json_type(value) in ('text', 'integer', 'real', 'true', 'false')
    )
) strict, without rowid;

create table platform_profile_values (
    user_id text not null,
    key text not null,
    value text not null,
    constraint platform_profile_values_pkey primary key (user_id, key),
    constraint platform_profile_values_user_fkey foreign key (user_id) references users (user_id),
    constraint platform_profile_values_key_fkey foreign key (key) references profile_schema (key),
    constraint platform_profile_values_value_valid check (
        json_valid(value) and json_type(value) in ('text', 'integer', 'real', 'true', 'false')
    )
) strict, without rowid;

-- The creator reference has no ON DELETE action: SQLite's SET NULL would null the
-- tenant too. The trigger below forgets the creator when their account goes.
create table api_keys (
    tenant_id text not null,
    key_id text not null,
    name text not null,
    secret_hash text not null,
    created_by text,
    created_at integer not null,
    revoked_at integer,
    constraint api_keys_pkey primary key (tenant_id, key_id),
    constraint api_keys_key_id_key unique (key_id),
    constraint api_keys_secret_hash_key unique (secret_hash),
    constraint api_keys_tenant_fkey foreign key (tenant_id) references tenants (tenant_id),
    constraint api_keys_creator_fkey foreign key (tenant_id, created_by)
        references accounts (tenant_id, user_id),
    constraint api_keys_key_id_format check (
        length(key_id) = 36 and key_id not glob '*[^0-9a-f-]*'
    ),
    constraint api_keys_name_length check (length(name) between 1 and 200)
) strict, without rowid;
create index api_keys_creator on api_keys (tenant_id, created_by);

create table api_key_scopes (
    tenant_id text not null,
    key_id text not null,
    scope text not null,
    constraint api_key_scopes_pkey primary key (tenant_id, key_id, scope),
    constraint api_key_scopes_key_fkey foreign key (tenant_id, key_id)
        references api_keys (tenant_id, key_id) on delete cascade,
    constraint api_key_scopes_scope_fkey foreign key (scope) references catalog_scopes (name)
) strict, without rowid;

create trigger accounts_forget_key_creator
    before delete on accounts
    for each row
begin
    update api_keys set created_by = null
    where tenant_id = old.tenant_id and created_by = old.user_id;
end;

create table sessions (
    token_hash text not null,
    user_id text not null,
    created_at integer not null,
    expires_at integer not null,
    last_seen_at integer not null,
    aal2_until integer,
    constraint sessions_pkey primary key (token_hash),
    constraint sessions_user_fkey foreign key (user_id) references users (user_id)
) strict, without rowid;

create table invitations (
    token_hash text not null,
    user_id text not null,
    expires_at integer not null,
    used_at integer,
    constraint invitations_pkey primary key (token_hash),
    constraint invitations_user_fkey foreign key (user_id) references users (user_id)
) strict, without rowid;

create table audit_records (
    partition text not null,
    seq integer not null,
    tenant_id text,
    audit_id text not null,
    at integer not null,
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
    constraint audit_records_outcome_valid check (outcome in ('allowed', 'denied')),
    constraint audit_records_seq_positive check (seq >= 1)
) strict, without rowid;

create table outbox_events (
    partition text not null,
    position integer not null,
    tenant_id text,
    event_id text not null,
    event_type text not null,
    subject text not null,
    time integer not null,
    data text not null,
    published_at integer,
    constraint outbox_events_pkey primary key (partition, position),
    constraint outbox_events_event_id_key unique (event_id),
    constraint outbox_events_tenant_fkey foreign key (tenant_id) references tenants (tenant_id),
    constraint outbox_events_partition_matches check (
        partition = coalesce(tenant_id, '_platform')
    ),
    constraint outbox_events_position_positive check (position >= 1),
    constraint outbox_events_data_valid check (json_valid(data))
) strict, without rowid;
create index outbox_events_unpublished on outbox_events (time) where published_at is null;

-- Audit records are never updated or deleted, whoever asks. (A DELETE without WHERE
-- would otherwise truncate; SQLite skips that shortcut on tables with delete triggers.)
create trigger audit_records_no_update
    before update on audit_records
begin
    select raise(abort, 'audit records are append-only');
end;

create trigger audit_records_no_delete
    before delete on audit_records
begin
    select raise(abort, 'audit records are append-only');
end;

-- A record extends its trail's chain: the next seq, after the last record's hash.
create trigger audit_records_extend_chain
    before insert on audit_records
    for each row
    when new.seq <> coalesce(
            (select max(r.seq) from audit_records r where r.partition = new.partition), 0) + 1
        or new.prev_hash <> coalesce(
            (select r.hash from audit_records r where r.partition = new.partition
             order by r.seq desc limit 1),
            '0000000000000000000000000000000000000000000000000000000000000000')
begin
    select raise(abort, 'audit records must extend their chain');
end;

-- An event takes the next position of its feed, without gaps.
create trigger outbox_events_next_position
    before insert on outbox_events
    for each row
    when new.position <> coalesce(
            (select max(e.position) from outbox_events e where e.partition = new.partition), 0) + 1
begin
    select raise(abort, 'events must take the next position of their feed');
end;

create trigger tenants_tombstone
    before insert on tenants
    for each row
begin
    insert into tenant_tombstones (tenant_id) values (new.tenant_id);
end;
