-- The OpenID provider's clients and grants (SPEC §9), as in the PostgreSQL schema: ids
-- as text, times in microseconds since the epoch, lists as JSON arrays.
create table platform_oauth_clients (
    client_id text not null,
    name text not null,
    client_type text not null,
    secret_hash text,
    redirect_uris text not null,
    post_logout_redirect_uris text not null,
    created_at integer not null,
    constraint platform_oauth_clients_pkey primary key (client_id),
    constraint platform_oauth_clients_name_length check (length(name) between 1 and 200),
    constraint platform_oauth_clients_type_valid check (client_type in ('confidential', 'public')),
    constraint platform_oauth_clients_secret_by_type check (
        (client_type = 'public') = (secret_hash is null)
    ),
    constraint platform_oauth_clients_uris_arrays check (
        json_valid(redirect_uris) and json_type(redirect_uris) = 'array'
        and json_valid(post_logout_redirect_uris) and json_type(post_logout_redirect_uris) = 'array'
    )
) strict, without rowid;

create table oauth_clients (
    tenant_id text not null,
    client_id text not null,
    name text not null,
    client_type text not null,
    secret_hash text,
    redirect_uris text not null,
    post_logout_redirect_uris text not null,
    scopes text not null,
    created_at integer not null,
    constraint oauth_clients_pkey primary key (tenant_id, client_id),
    constraint oauth_clients_client_id_key unique (client_id),
    constraint oauth_clients_tenant_fkey foreign key (tenant_id) references tenants (tenant_id),
    constraint oauth_clients_name_length check (length(name) between 1 and 200),
    constraint oauth_clients_type_valid check (client_type in ('confidential', 'public')),
    constraint oauth_clients_secret_by_type check ((client_type = 'public') = (secret_hash is null)),
    constraint oauth_clients_lists_arrays check (
        json_valid(redirect_uris) and json_type(redirect_uris) = 'array'
        and json_valid(post_logout_redirect_uris) and json_type(post_logout_redirect_uris) = 'array'
        and json_valid(scopes) and json_type(scopes) = 'array'
    )
) strict, without rowid;

create table oauth_grants (
    tenant_id text not null,
    token_hash text not null,
    kind text not null,
    family_id text not null,
    client_id text not null,
    user_id text not null,
    session_id text not null,
    redirect_uri text,
    code_challenge text,
    nonce text,
    scope text not null,
    acr text not null,
    auth_time integer not null,
    created_at integer not null,
    expires_at integer not null,
    used_at integer,
    revoked_at integer,
    constraint oauth_grants_pkey primary key (tenant_id, token_hash),
    constraint oauth_grants_account_fkey foreign key (tenant_id, user_id)
        references accounts (tenant_id, user_id) on delete cascade,
    constraint oauth_grants_kind_valid check (kind in ('code', 'refresh')),
    constraint oauth_grants_acr_valid check (acr in ('aal1', 'aal2')),
    constraint oauth_grants_code_fields check (kind <> 'code' or redirect_uri is not null),
    constraint oauth_grants_expiry_after_creation check (expires_at > created_at)
) strict, without rowid;
create index oauth_grants_family_idx on oauth_grants (tenant_id, family_id);
create index oauth_grants_client_idx on oauth_grants (client_id);
