-- The OpenID provider's clients and grants (SPEC §9).
--
-- A platform client (`platform:catalog:write`) may sign in members of any tenant: a
-- platform table, read and written only by platform transactions. A tenant client
-- (`tenant:write`) signs in only its tenant's members: a tenant row, keyed by tenant
-- first, under forced row-level security. Redirect URIs are kept as given and compared
-- exactly. A confidential client's secret is kept only as its SHA-256.
create table platform_oauth_clients (
    client_id uuid not null,
    name text not null,
    client_type text not null,
    secret_hash text,
    redirect_uris jsonb not null,
    post_logout_redirect_uris jsonb not null,
    created_at timestamptz not null,
    constraint platform_oauth_clients_pkey primary key (client_id),
    constraint platform_oauth_clients_name_length check (char_length(name) between 1 and 200),
    constraint platform_oauth_clients_type_valid check (client_type in ('confidential', 'public')),
    constraint platform_oauth_clients_secret_by_type check (
        (client_type = 'public') = (secret_hash is null)
    ),
    constraint platform_oauth_clients_uris_arrays check (
        jsonb_typeof(redirect_uris) = 'array' and jsonb_typeof(post_logout_redirect_uris) = 'array'
    )
);

create table oauth_clients (
    tenant_id text not null,
    client_id uuid not null,
    name text not null,
    client_type text not null,
    secret_hash text,
    redirect_uris jsonb not null,
    post_logout_redirect_uris jsonb not null,
    -- What the client's `client_credentials` tokens may do, like an API key's scopes.
    scopes jsonb not null,
    created_at timestamptz not null,
    constraint oauth_clients_pkey primary key (tenant_id, client_id),
    constraint oauth_clients_client_id_key unique (client_id),
    constraint oauth_clients_tenant_fkey foreign key (tenant_id) references tenants (tenant_id),
    constraint oauth_clients_name_length check (char_length(name) between 1 and 200),
    constraint oauth_clients_type_valid check (client_type in ('confidential', 'public')),
    constraint oauth_clients_secret_by_type check ((client_type = 'public') = (secret_hash is null)),
    constraint oauth_clients_lists_arrays check (
        jsonb_typeof(redirect_uris) = 'array' and jsonb_typeof(post_logout_redirect_uris) = 'array'
        and jsonb_typeof(scopes) = 'array'
    )
);

-- Authorization codes and refresh tokens: rows of the tenant the user signed in to,
-- referencing the member's account (removing the member ends them). A code and the
-- refresh tokens that follow it share a family, revoked together when a spent one comes
-- back. `client_id` is the client's full id (`<uuid>` or `<tenant>.<uuid>`).
create table oauth_grants (
    tenant_id text not null,
    token_hash text not null,
    kind text not null,
    family_id uuid not null,
    client_id text not null,
    user_id uuid not null,
    session_id uuid not null,
    redirect_uri text,
    code_challenge text,
    nonce text,
    scope text not null,
    acr text not null,
    auth_time timestamptz not null,
    created_at timestamptz not null,
    expires_at timestamptz not null,
    used_at timestamptz,
    revoked_at timestamptz,
    constraint oauth_grants_pkey primary key (tenant_id, token_hash),
    constraint oauth_grants_account_fkey foreign key (tenant_id, user_id)
        references accounts (tenant_id, user_id) on delete cascade,
    constraint oauth_grants_kind_valid check (kind in ('code', 'refresh')),
    constraint oauth_grants_acr_valid check (acr in ('aal1', 'aal2')),
    constraint oauth_grants_code_fields check (
        kind <> 'code' or redirect_uri is not null
    ),
    constraint oauth_grants_expiry_after_creation check (expires_at > created_at)
);
create index oauth_grants_family_idx on oauth_grants (tenant_id, family_id);
create index oauth_grants_client_idx on oauth_grants (client_id);

alter table oauth_clients enable row level security;
alter table oauth_clients force row level security;
create policy tenant_isolation on oauth_clients
    using (app_platform() or tenant_id = app_tenant())
    with check (app_platform() or tenant_id = app_tenant());

alter table oauth_grants enable row level security;
alter table oauth_grants force row level security;
create policy tenant_isolation on oauth_grants
    using (app_platform() or tenant_id = app_tenant())
    with check (app_platform() or tenant_id = app_tenant());

grant select, insert, delete on platform_oauth_clients, oauth_clients to user_engine_app;
grant select, insert, update, delete on oauth_grants to user_engine_app;
