-- Throttle counters (SPEC §3.6): login attempts per email and per client address, failed
-- TOTP codes per user, failed bearer authentications per client address. They live here,
-- not in a node's memory, so a limit holds across every API node. One row per key and
-- fixed window: an attempt after `window_ends_at` starts a new window. Keys are
-- platform-wide (an email hash, an address, a user id), never a tenant's rows, so the
-- table has no tenant_id and no row-level security.
create table throttles (
    key text not null,
    window_ends_at timestamptz not null,
    hits integer not null,
    constraint throttles_pkey primary key (key),
    constraint throttles_key_length check (char_length(key) between 1 and 200),
    constraint throttles_hits_positive check (hits > 0)
);

-- Ended windows are swept by the adapter a few at a time; this finds them.
create index throttles_window_ends_at_idx on throttles (window_ends_at);

grant select, insert, update, delete on throttles to user_engine_app;
