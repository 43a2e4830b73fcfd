-- SCIM 2.0 provisioning (issue 18, SPEC §8). A provisioned member keeps, per tenant, the
-- `userName` and `externalId` their identity provider knows them by; a SCIM Group is a
-- tenant role, and a role created through SCIM keeps the provider's free-text
-- `displayName` and `externalId` here. Both are tenant rows under forced row-level
-- security; removing the member, or the role's binding, removes them.
create table scim_users (
    tenant_id text not null,
    user_id uuid not null,
    -- The userName as sent, and its ASCII-lowercased form (RFC 7643: userName is unique
    -- and not case-exact), which is what uniqueness and filters compare.
    user_name text not null,
    user_name_key text not null,
    external_id text,
    -- The `emails` the provider last sent (a JSON array of {value, type, primary,
    -- display}), rendered back while it holds the user's email; the user's email itself
    -- lives in `users`.
    emails text,
    -- Whether the provider said `active` (a removed `active` is not rendered).
    active_set boolean not null default true,
    constraint scim_users_pkey primary key (tenant_id, user_id),
    constraint scim_users_account_fkey foreign key (tenant_id, user_id)
        references accounts (tenant_id, user_id) on delete cascade,
    constraint scim_users_user_name_unique unique (tenant_id, user_name_key),
    constraint scim_users_user_name_length check (char_length(user_name) between 1 and 256),
    constraint scim_users_user_name_key_length check (char_length(user_name_key) between 1 and 256),
    constraint scim_users_external_id_length check (
        external_id is null or char_length(external_id) between 1 and 256
    ),
    constraint scim_users_emails_array check (
        emails is null or jsonb_typeof(emails::jsonb) = 'array'
    )
);

alter table scim_users enable row level security;
alter table scim_users force row level security;
create policy tenant_isolation on scim_users
    using (app_platform() or tenant_id = app_tenant())
    with check (app_platform() or tenant_id = app_tenant());
grant select, insert, update, delete on scim_users to user_engine_app;

create table scim_groups (
    tenant_id text not null,
    role text not null,
    display_name text not null,
    display_name_key text not null,
    external_id text,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    version bigint not null,
    constraint scim_groups_pkey primary key (tenant_id, role),
    constraint scim_groups_binding_fkey foreign key (tenant_id, role)
        references role_bindings (tenant_id, role) on delete cascade,
    constraint scim_groups_display_name_unique unique (tenant_id, display_name_key),
    constraint scim_groups_display_name_length check (char_length(display_name) between 1 and 256),
    constraint scim_groups_display_name_key_length check (
        char_length(display_name_key) between 1 and 256
    ),
    constraint scim_groups_external_id_length check (
        external_id is null or char_length(external_id) between 1 and 256
    ),
    constraint scim_groups_version_positive check (version > 0)
);

alter table scim_groups enable row level security;
alter table scim_groups force row level security;
create policy tenant_isolation on scim_groups
    using (app_platform() or tenant_id = app_tenant())
    with check (app_platform() or tenant_id = app_tenant());
grant select, insert, update, delete on scim_groups to user_engine_app;
