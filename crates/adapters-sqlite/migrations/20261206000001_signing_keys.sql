-- The OpenID provider's signing keys (SPEC §9), as in the PostgreSQL schema: times in
-- microseconds since the epoch, `public_jwk` JSON text, `sealed_private` the private key
-- sealed under the key-encryption key.
create table signing_keys (
    kid text not null,
    algorithm text not null,
    public_jwk text not null,
    sealed_private blob not null,
    created_at integer not null,
    retired_at integer,
    constraint signing_keys_pkey primary key (kid),
    constraint signing_keys_kid_length check (length(kid) between 1 and 64),
    constraint signing_keys_algorithm_valid check (algorithm in ('RS256', 'ES256')),
    constraint signing_keys_public_jwk_object check (
        json_valid(public_jwk) and json_type(public_jwk) = 'object'
    ),
    constraint signing_keys_retired_after_created check (
        retired_at is null or retired_at >= created_at
    )
) strict, without rowid;
create index signing_keys_active_idx on signing_keys (created_at) where retired_at is null;
