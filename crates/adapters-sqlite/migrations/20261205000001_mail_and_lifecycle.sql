-- The account lifecycle and mail, as PostgreSQL's migration of the same name.
alter table users add column email_verified integer not null default 0
    check (email_verified in (0, 1));
alter table users add column erased_at integer;

create table email_verifications (
    token_hash text not null,
    user_id text not null,
    email text not null,
    expires_at integer not null,
    used_at integer,
    constraint email_verifications_pkey primary key (token_hash),
    constraint email_verifications_user_fkey foreign key (user_id) references users (user_id),
    constraint email_verifications_email_format check (
        email = lower(trim(email)) and length(email) <= 254
    )
) strict, without rowid;
create index email_verifications_user_idx on email_verifications (user_id);

create table recovery_codes (
    user_id text not null,
    code_hash text not null,
    used_at integer,
    constraint recovery_codes_pkey primary key (user_id, code_hash),
    constraint recovery_codes_user_fkey foreign key (user_id) references users (user_id)
) strict, without rowid;

create table mail_queue (
    mail_id text not null,
    user_id text,
    kind text not null,
    recipient text not null,
    subject text not null,
    text_body text not null,
    html_body text not null,
    queued_at integer not null,
    next_attempt_at integer not null,
    attempts integer not null default 0,
    leased_until integer,
    sent_at integer,
    gave_up_at integer,
    last_error text,
    constraint mail_queue_pkey primary key (mail_id),
    constraint mail_queue_user_fkey foreign key (user_id) references users (user_id),
    constraint mail_queue_attempts_valid check (attempts >= 0)
) strict, without rowid;
create index mail_queue_due_idx on mail_queue (next_attempt_at)
    where sent_at is null and gave_up_at is null;
create index mail_queue_user_idx on mail_queue (user_id) where user_id is not null;
