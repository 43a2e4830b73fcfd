-- What a session's owner is shown of it (SPEC §4 `GET /v1/me/sessions`): a public id
-- (the token is never shown again, and its hash is not an id to hand out), the client
-- address and the `User-Agent` of the login that opened it.
alter table sessions
    add column session_id uuid,
    add column client_address text,
    add column user_agent text;

-- Sessions opened before this migration get a UUIDv7 from their creation time, so every
-- session can be listed and ended by id.
update sessions set session_id = (
    lpad(to_hex((extract(epoch from created_at) * 1000)::bigint), 12, '0')
    || '7' || substr(md5(random()::text), 1, 3)
    || to_hex(8 + floor(random() * 4)::int) || substr(md5(random()::text), 1, 15)
)::uuid;

alter table sessions
    alter column session_id set not null,
    add constraint sessions_session_id_key unique (session_id),
    add constraint sessions_user_agent_length check (char_length(user_agent) <= 256),
    add constraint sessions_client_address_length check (char_length(client_address) <= 64);

-- A user's sessions are listed and ended by user.
create index sessions_user_idx on sessions (user_id, created_at);
