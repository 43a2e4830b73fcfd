-- Signed webhooks, as PostgreSQL's migration of the same name.
create table webhooks (
    tenant_id text not null,
    name text not null,
    url text not null,
    types text not null,
    secret text not null,
    created_at integer not null,
    updated_at integer not null,
    cursor_position integer not null,
    head_attempts integer not null default 0,
    head_since integer,
    next_attempt_at integer not null,
    leased_until integer,
    constraint webhooks_pkey primary key (tenant_id, name),
    constraint webhooks_tenant_fkey foreign key (tenant_id) references tenants (tenant_id),
    constraint webhooks_name_format check (
        length(name) between 1 and 63 and name not glob '*[^a-z0-9_-]*'
        and substr(name, 1, 1) not in ('-', '_')
    ),
    constraint webhooks_types_array check (json_valid(types) and json_type(types) = 'array'),
    constraint webhooks_cursor_valid check (cursor_position >= 0 and head_attempts >= 0)
) strict, without rowid;
create index webhooks_due_idx on webhooks (next_attempt_at);

create table webhook_deliveries (
    tenant_id text not null,
    name text not null,
    position integer not null,
    event_id text not null,
    event_type text not null,
    status text not null,
    attempts integer not null,
    last_status_code integer,
    last_error text,
    first_attempt_at integer not null,
    last_attempt_at integer not null,
    constraint webhook_deliveries_pkey primary key (tenant_id, name, position),
    constraint webhook_deliveries_hook_fkey foreign key (tenant_id, name)
        references webhooks (tenant_id, name) on delete cascade,
    constraint webhook_deliveries_status_valid check (status in ('delivered', 'retrying', 'failed'))
) strict, without rowid;
