-- Throttle counters (SPEC §3.6), as in the PostgreSQL schema: one row per key and fixed
-- window, an attempt after `window_ends_at` (microseconds since the epoch) starts a new
-- window. The embedded store is one process, so the table is the one place its counts
-- live, and they survive a restart.
create table throttles (
    key text not null,
    window_ends_at integer not null,
    hits integer not null,
    constraint throttles_pkey primary key (key),
    constraint throttles_key_length check (length(key) between 1 and 200),
    constraint throttles_hits_positive check (hits > 0)
) strict;

create index throttles_window_ends_at_idx on throttles (window_ends_at);
