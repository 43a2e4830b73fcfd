-- Consent for third-party clients (issue 17), as in the PostgreSQL schema: ids as text,
-- times in microseconds since the epoch, booleans as 0/1.
alter table platform_oauth_clients add column first_party integer not null default 1
    check (first_party in (0, 1));
alter table oauth_clients add column first_party integer not null default 1
    check (first_party in (0, 1));

create table oauth_consents (
    tenant_id text not null,
    user_id text not null,
    client_id text not null,
    scope text not null,
    granted_at integer not null,
    constraint oauth_consents_pkey primary key (tenant_id, user_id, client_id),
    constraint oauth_consents_account_fkey foreign key (tenant_id, user_id)
        references accounts (tenant_id, user_id) on delete cascade,
    constraint oauth_consents_scope_length check (length(scope) between 1 and 200)
) strict, without rowid;
create index oauth_consents_client_idx on oauth_consents (client_id);
