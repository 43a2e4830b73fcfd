-- What a session's owner is shown of it (SPEC §4 `GET /v1/me/sessions`): a public id,
-- the client address and the `User-Agent` of the login that opened it. As in
-- PostgreSQL's migration of the same name; SQLite cannot add a NOT NULL column without
-- a default, so the id is required by the unique index and the store, which always
-- writes one.
alter table sessions add column session_id text;
alter table sessions add column client_address text
    check (client_address is null or length(client_address) <= 64);
alter table sessions add column user_agent text
    check (user_agent is null or length(user_agent) <= 256);

-- Sessions opened before this migration get a UUIDv7 from their creation time
-- (microseconds since the epoch).
update sessions set session_id = lower(
    printf('%012x', created_at / 1000)
    || '7' || substr(hex(randomblob(2)), 1, 3)
    || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(hex(randomblob(8)), 1, 15)
);
update sessions set session_id = substr(session_id, 1, 8) || '-' || substr(session_id, 9, 4)
    || '-' || substr(session_id, 13, 4) || '-' || substr(session_id, 17, 4)
    || '-' || substr(session_id, 21, 12);

create unique index sessions_session_id_key on sessions (session_id);
create index sessions_user_idx on sessions (user_id, created_at);
