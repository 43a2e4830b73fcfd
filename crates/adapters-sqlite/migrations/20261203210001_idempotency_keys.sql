-- Idempotency-Key records (SPEC §4), as in the PostgreSQL schema; `expires_at` in
-- microseconds since the epoch, `response` a blob sealed by the API.
create table idempotency_keys (
    key text not null,
    body_tag text not null,
    response blob,
    expires_at integer not null,
    constraint idempotency_keys_pkey primary key (key),
    constraint idempotency_keys_key_length check (length(key) between 1 and 128),
    constraint idempotency_keys_body_tag_length check (length(body_tag) between 1 and 128)
) strict;

create index idempotency_keys_expires_at_idx on idempotency_keys (expires_at);
