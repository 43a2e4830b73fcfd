"""Verifies JWTs with PyJWT against a JWK Set fetched over HTTP: the engine's tokens
checked by a library no one here wrote.

Usage: verify_jwt.py JWKS_URL ISSUER AUDIENCE TOKEN...
Prints one line per token: `valid SUB` or `invalid ERROR`.
"""

import sys

import jwt


def main() -> None:
    url, issuer, audience, *tokens = sys.argv[1:]
    client = jwt.PyJWKClient(url, cache_jwk_set=False, cache_keys=False)
    for token in tokens:
        try:
            key = client.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256", "ES256"],
                issuer=issuer,
                audience=audience,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
            print("valid", claims["sub"], flush=True)
        except Exception as error:  # every refusal is a verdict, not a crash
            print("invalid", type(error).__name__, flush=True)


if __name__ == "__main__":
    main()
