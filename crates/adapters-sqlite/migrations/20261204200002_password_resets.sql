-- Password reset tokens, as PostgreSQL's migration of the same name.
create table password_resets (
    token_hash text not null,
    user_id text not null,
    expires_at integer not null,
    used_at integer,
    constraint password_resets_pkey primary key (token_hash),
    constraint password_resets_user_fkey foreign key (user_id) references users (user_id)
) strict, without rowid;

create index password_resets_user_idx on password_resets (user_id) where used_at is null;
