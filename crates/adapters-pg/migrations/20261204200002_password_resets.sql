-- Password reset tokens (SPEC §4 `password-reset`): single-use, stored as hashes,
-- shaped as invitations; a platform table like `invitations` (no tenant, no row-level
-- security: only platform transactions reach it).
create table password_resets (
    token_hash text not null,
    user_id uuid not null,
    expires_at timestamptz not null,
    used_at timestamptz,
    constraint password_resets_pkey primary key (token_hash),
    constraint password_resets_user_fkey foreign key (user_id) references users (user_id)
);

-- A successful reset voids the user's other tokens.
create index password_resets_user_idx on password_resets (user_id) where used_at is null;

grant select, insert, update, delete on password_resets to user_engine_app;
