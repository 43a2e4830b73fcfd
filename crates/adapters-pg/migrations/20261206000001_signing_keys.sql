-- The OpenID provider's signing keys (SPEC §9): a platform table, read and written only
-- by platform transactions. `sealed_private` is the private key sealed by the server
-- under the key-encryption key (USER_ENGINE_KEY_ENCRYPTION_KEY_FILE) before it reaches
-- the database; without that key it cannot be read. A key is never deleted by the
-- engine: retired keys stay for the record and are no longer published once their
-- tokens have expired.
create table signing_keys (
    kid text not null,
    algorithm text not null,
    public_jwk jsonb not null,
    sealed_private bytea not null,
    created_at timestamptz not null,
    retired_at timestamptz,
    constraint signing_keys_pkey primary key (kid),
    constraint signing_keys_kid_length check (length(kid) between 1 and 64),
    constraint signing_keys_algorithm_valid check (algorithm in ('RS256', 'ES256')),
    constraint signing_keys_public_jwk_object check (jsonb_typeof(public_jwk) = 'object'),
    constraint signing_keys_retired_after_created check (
        retired_at is null or retired_at >= created_at
    )
);
create index signing_keys_active_idx on signing_keys (created_at) where retired_at is null;

grant select, insert, update on signing_keys to user_engine_app;
