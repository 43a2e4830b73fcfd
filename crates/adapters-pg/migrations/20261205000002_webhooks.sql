-- Signed webhooks (SPEC §6): a tenant's hooks, each with a cursor into the tenant's feed
-- and the state of the event at its head, and a row per event attempted. Tenant rows,
-- keyed by tenant first, under forced row-level security; the delivery worker leases
-- hooks (`leased_until`, `for update skip locked`) in platform mode.
create table webhooks (
    tenant_id text not null,
    name text not null,
    url text not null,
    types jsonb not null,
    -- The signing secret: HMAC needs it whole, so it is kept as given (never shown again).
    secret text not null,
    created_at timestamptz not null,
    updated_at timestamptz not null,
    cursor_position bigint not null,
    head_attempts bigint not null default 0,
    head_since timestamptz,
    next_attempt_at timestamptz not null,
    leased_until timestamptz,
    constraint webhooks_pkey primary key (tenant_id, name),
    constraint webhooks_tenant_fkey foreign key (tenant_id) references tenants (tenant_id),
    constraint webhooks_name_format check (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    constraint webhooks_types_array check (jsonb_typeof(types) = 'array'),
    constraint webhooks_cursor_valid check (cursor_position >= 0 and head_attempts >= 0)
);
create index webhooks_due_idx on webhooks (next_attempt_at);

create table webhook_deliveries (
    tenant_id text not null,
    name text not null,
    position bigint not null,
    event_id uuid not null,
    event_type text not null,
    status text not null,
    attempts bigint not null,
    last_status_code bigint,
    last_error text,
    first_attempt_at timestamptz not null,
    last_attempt_at timestamptz not null,
    constraint webhook_deliveries_pkey primary key (tenant_id, name, position),
    constraint webhook_deliveries_hook_fkey foreign key (tenant_id, name)
        references webhooks (tenant_id, name) on delete cascade,
    constraint webhook_deliveries_status_valid check (status in ('delivered', 'retrying', 'failed'))
);

alter table webhooks enable row level security;
alter table webhooks force row level security;
create policy tenant_isolation on webhooks
    using (app_platform() or tenant_id = app_tenant())
    with check (app_platform() or tenant_id = app_tenant());

alter table webhook_deliveries enable row level security;
alter table webhook_deliveries force row level security;
create policy tenant_isolation on webhook_deliveries
    using (app_platform() or tenant_id = app_tenant())
    with check (app_platform() or tenant_id = app_tenant());

grant select, insert, update, delete on webhooks, webhook_deliveries to user_engine_app;
