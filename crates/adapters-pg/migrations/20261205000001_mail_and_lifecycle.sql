-- The account lifecycle and mail (SPEC §4 from `password-reset` on, §6 mail).

-- `email_verified`: the address came back through a token mailed to it. `erased_at`: the
-- user was erased (SPEC §4 `DELETE /v1/users/{user}`); the row stays as a tombstone so
-- the id is never reused, with an address derived from the id and nothing personal.
alter table users
    add column email_verified boolean not null default false,
    add column erased_at timestamptz;

-- A pending email change: single-use, stored hashed; the new address waits here until
-- the token mailed to it comes back. A platform table, like `password_resets`.
create table email_verifications (
    token_hash text not null,
    user_id uuid not null,
    email text not null,
    expires_at timestamptz not null,
    used_at timestamptz,
    constraint email_verifications_pkey primary key (token_hash),
    constraint email_verifications_user_fkey foreign key (user_id) references users (user_id),
    constraint email_verifications_email_format check (
        email = lower(btrim(email)) and char_length(email) <= 254
    )
);
create index email_verifications_user_idx on email_verifications (user_id);

-- Recovery codes, stored hashed; each raises a session to aal2 once.
create table recovery_codes (
    user_id uuid not null,
    code_hash text not null,
    used_at timestamptz,
    constraint recovery_codes_pkey primary key (user_id, code_hash),
    constraint recovery_codes_user_fkey foreign key (user_id) references users (user_id)
);

-- The mail queue: a mail is queued in the transaction of the change that causes it and
-- sent by a worker that leases it (`leased_until`), so several nodes send at once and a
-- dead worker's lease expires. A sent or given up mail keeps no body (it may hold a
-- token); erasing a user deletes the mails that concern them.
create table mail_queue (
    mail_id uuid not null,
    user_id uuid,
    kind text not null,
    recipient text not null,
    subject text not null,
    text_body text not null,
    html_body text not null,
    queued_at timestamptz not null,
    next_attempt_at timestamptz not null,
    attempts bigint not null default 0,
    leased_until timestamptz,
    sent_at timestamptz,
    gave_up_at timestamptz,
    last_error text,
    constraint mail_queue_pkey primary key (mail_id),
    constraint mail_queue_user_fkey foreign key (user_id) references users (user_id),
    constraint mail_queue_attempts_valid check (attempts >= 0)
);
create index mail_queue_due_idx on mail_queue (next_attempt_at)
    where sent_at is null and gave_up_at is null;
create index mail_queue_user_idx on mail_queue (user_id) where user_id is not null;

grant select, insert, update, delete on email_verifications, recovery_codes, mail_queue
    to user_engine_app;
