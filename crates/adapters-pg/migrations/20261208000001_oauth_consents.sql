-- Consent for third-party clients (issue 17). A client is first-party unless registered
-- with `first_party: false`; a third-party client's sign-in asks the user to allow it,
-- once per tenant and set of scopes, and the answer is kept here until the user (or the
-- tenant's member administrators) revokes it. A consent is a tenant row of the member's
-- account (removing the member removes it), under forced row-level security.
alter table platform_oauth_clients add column first_party boolean not null default true;
alter table oauth_clients add column first_party boolean not null default true;

create table oauth_consents (
    tenant_id text not null,
    user_id uuid not null,
    -- The client's full id (`<uuid>` or `<tenant>.<uuid>`), as in `oauth_grants`.
    client_id text not null,
    -- The OpenID scopes allowed, space-separated.
    scope text not null,
    granted_at timestamptz not null,
    constraint oauth_consents_pkey primary key (tenant_id, user_id, client_id),
    constraint oauth_consents_account_fkey foreign key (tenant_id, user_id)
        references accounts (tenant_id, user_id) on delete cascade,
    constraint oauth_consents_scope_length check (char_length(scope) between 1 and 200)
);
create index oauth_consents_client_idx on oauth_consents (client_id);

alter table oauth_consents enable row level security;
alter table oauth_consents force row level security;
create policy tenant_isolation on oauth_consents
    using (app_platform() or tenant_id = app_tenant())
    with check (app_platform() or tenant_id = app_tenant());

grant select, insert, update, delete on oauth_consents to user_engine_app;
