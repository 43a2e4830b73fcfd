-- SCIM 2.0 provisioning (issue 18), as in the PostgreSQL schema: ids as text, times in
-- microseconds since the epoch.
create table scim_users (
    tenant_id text not null,
    user_id text not null,
    user_name text not null,
    user_name_key text not null,
    external_id text,
    emails text,
    active_set integer not null default 1 check (active_set in (0, 1)),
    constraint scim_users_pkey primary key (tenant_id, user_id),
    constraint scim_users_account_fkey foreign key (tenant_id, user_id)
        references accounts (tenant_id, user_id) on delete cascade,
    constraint scim_users_user_name_unique unique (tenant_id, user_name_key),
    constraint scim_users_user_name_length check (length(user_name) between 1 and 256),
    constraint scim_users_user_name_key_length check (length(user_name_key) between 1 and 256),
    constraint scim_users_external_id_length check (
        external_id is null or length(external_id) between 1 and 256
    ),
    constraint scim_users_emails_array check (
        emails is null or (json_valid(emails) and json_type(emails) = 'array')
    )
) strict, without rowid;

create table scim_groups (
    tenant_id text not null,
    role text not null,
    display_name text not null,
    display_name_key text not null,
    external_id text,
    created_at integer not null,
    updated_at integer not null,
    version integer not null,
    constraint scim_groups_pkey primary key (tenant_id, role),
    constraint scim_groups_binding_fkey foreign key (tenant_id, role)
        references role_bindings (tenant_id, role) on delete cascade,
    constraint scim_groups_display_name_unique unique (tenant_id, display_name_key),
    constraint scim_groups_display_name_length check (length(display_name) between 1 and 256),
    constraint scim_groups_display_name_key_length check (
        length(display_name_key) between 1 and 256
    ),
    constraint scim_groups_external_id_length check (
        external_id is null or length(external_id) between 1 and 256
    ),
    constraint scim_groups_version_positive check (version > 0)
) strict, without rowid;
