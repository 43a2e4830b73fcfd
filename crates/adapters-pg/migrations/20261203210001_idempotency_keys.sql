-- Idempotency-Key records (SPEC §4, §7): kept here, not in a node's memory, so a retry
-- that reaches another API node replays the first answer. `key` is a hash of the caller,
-- the path and the client's key; `body_tag` a keyed hash of the first body; `response`
-- the first answer sealed by the API with a key derived from the caller's secrets (it may
-- hold a session token or an API key), or null while the first request runs.
-- Platform-wide rows, no tenant: no row-level security, like `throttles`.
create table idempotency_keys (
    key text not null,
    body_tag text not null,
    response bytea,
    expires_at timestamptz not null,
    constraint idempotency_keys_pkey primary key (key),
    constraint idempotency_keys_key_length check (char_length(key) between 1 and 128),
    constraint idempotency_keys_body_tag_length check (char_length(body_tag) between 1 and 128)
);

-- Expired records are swept a few at a time by each claim; this finds them.
create index idempotency_keys_expires_at_idx on idempotency_keys (expires_at);

grant select, insert, update, delete on idempotency_keys to user_engine_app;
