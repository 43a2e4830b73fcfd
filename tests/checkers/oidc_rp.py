"""An OpenID Connect relying party built on Authlib (not the engine's code): signs a user
in through the engine's OpenID provider as a browser would, then checks what the
provider hands back with a library no one here wrote.

Usage: oidc_rp.py ISSUER CLIENT_ID CLIENT_SECRET|- REDIRECT_URI EMAIL PASSWORD
                  [--tenant T] [--totp-secret BASE32]
(`-` as the secret: a public client, `none` at the token endpoint.)

Discovery, then the authorization code flow with PKCE (S256) and a nonce: the sign-in
pages are walked with one cookie-keeping `requests` session (redirects followed by hand,
stopping at the redirect back to REDIRECT_URI, which nothing serves); `--tenant` sends
`tenant=T` and answers a tenant choice; `--totp-secret` sends `acr_values=aal2`,
answers the TOTP step with an RFC 6238 code and expects `acr` "aal2". Authlib builds the
authorization URL and redeems the code; its `jose` verifies the ID token against the
JWKS (iss, aud, nonce, at_hash, ...) and the RFC 9068 access token. Then userinfo, one
refresh (rotated), the spent refresh token refused with `invalid_grant` and the newest
one with it (family revoked); a second flow whose refresh token is introspected
(active), revoked and introspected again (inactive).

Prints one line per check, `ok NAME` or `fail NAME DETAIL`, then one JSON line
{"sub", "tenant", "acr", "checks"}. Exits 0 only if every check passed. Each HTTP call
has a 10 s timeout, and each flow takes at most 10 requests.
"""

import argparse
import base64
import hashlib
import hmac
import json
import struct
import sys
import time
import warnings
from contextlib import contextmanager
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlsplit

import requests
from authlib.common.security import generate_token
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken

with warnings.catch_warnings():
    # The pinned Authlib warns on importing `authlib.jose` that joserfc replaces it in
    # 2.0; it is whole until then. Keep stderr for real errors.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.jose import JsonWebKey, JsonWebToken

TIMEOUT = 10  # seconds, every HTTP call
MAX_STEPS = 10  # requests per authorization flow
LEEWAY = 5  # seconds of clock skew allowed on exp / iat
SCOPE = "openid email"
STEPS = ("password", "tenant", "totp")  # the sign-in pages' hidden `step`
JWT = JsonWebToken(["RS256"])  # what discovery announces, and nothing else
DISCOVERY_MEMBERS = (
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "revocation_endpoint",
    "introspection_endpoint",
)


class Failed(Exception):
    """A check's expectation that did not hold."""


class Stop(Exception):
    """A check failed that the ones after it need."""


def expect(condition, detail):
    if not condition:
        raise Failed(detail)


class Checks:
    """Counts the checks and prints one line for each."""

    def __init__(self):
        self.count = 0
        self.failed = 0

    @contextmanager
    def check(self, name, needed=True):
        """Runs the block as check `name`: `ok` if it ends, `fail` with what it raised
        if not; after a failed `needed` check the run stops (Stop)."""
        self.count += 1
        try:
            yield
        except Exception as error:  # every failure is a verdict, not a crash
            self.failed += 1
            print("fail", name, describe(error), flush=True)
            if needed:
                raise Stop from error
        else:
            print("ok", name, flush=True)


def describe(error):
    if isinstance(error, Failed):
        text = str(error)
    elif isinstance(error, OAuthError):
        text = f"{type(error).__name__} {error.error}: {error.description}"
    else:
        text = f"{type(error).__name__}: {error}"
    return " ".join(text.split())[:500]


def snippet(text):
    return " ".join(text.split())[:200]


def totp(secret, at):
    """The RFC 6238 code of base32 `secret` at Unix time `at`: HMAC-SHA-1 over the
    30-second step, dynamically truncated to 6 digits."""
    secret = secret.replace(" ", "").upper().rstrip("=")
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{number % 1_000_000:06d}"


class Form(HTMLParser):
    """The POST forms of a page: each one's action, its inputs (name, type, value,
    checked) and its buttons (name, value)."""

    def __init__(self, text):
        super().__init__()
        self.forms = []
        self._open = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = {name: value or "" for name, value in attrs}
        if tag == "form" and attrs.get("method", "get").lower() == "post":
            self._open = {"action": attrs.get("action", ""), "inputs": [], "buttons": []}
            self.forms.append(self._open)
        elif self._open is not None and tag == "input" and attrs.get("name"):
            kind = attrs.get("type", "text").lower()
            entry = (attrs["name"], kind, attrs.get("value", ""), "checked" in attrs)
            self._open["inputs"].append(entry)
        elif self._open is not None and tag == "button" and attrs.get("name"):
            self._open["buttons"].append((attrs["name"], attrs.get("value", "")))

    def handle_endtag(self, tag):
        if tag == "form":
            self._open = None

    def step_form(self):
        """The form of a step this checker takes (a page may offer others, such as a
        recovery code beside the TOTP code), else the first form."""
        for form in self.forms:
            if form_fields(form).get("step") in STEPS:
                return form
        return self.forms[0] if self.forms else None


def form_fields(form):
    """What a browser submits of `form`'s inputs, before the user types anything."""
    fields = {}
    for name, kind, value, checked in form["inputs"]:
        if kind in ("submit", "button", "reset", "image", "file"):
            continue
        if kind in ("checkbox", "radio") and not checked:
            continue
        fields[name] = value
    return fields


def returns_to(url, redirect_uri):
    """Whether `url` is `redirect_uri` with the authorization response appended."""
    rest = url[len(redirect_uri) :]
    return url.startswith(redirect_uri) and rest[:1] in ("", "?", "&", "#")


def sign_in(browser, url, args):
    """Walks the authorization endpoint's pages from `url` as a browser would (sign-in,
    tenant choice, TOTP step-up) to its redirect back to the relying party, whose URL
    it returns without following it."""
    method, data = "GET", None
    password_sent = False
    steps_sent = []
    for _ in range(MAX_STEPS):
        response = browser.request(method, url, data=data, allow_redirects=False, timeout=TIMEOUT)
        if response.is_redirect:
            target = urljoin(response.url, response.headers["Location"])
            if returns_to(target, args.redirect_uri):
                return target
            method, data, url = "GET", None, target
            continue
        # A page: 200, or 401 when it asks again after a wrong password or TOTP code.
        expect(
            response.status_code in (200, 401),
            f"{method} {urlsplit(url).path} answered {response.status_code}: "
            f"{snippet(response.text)}",
        )
        form = Form(response.text).step_form()
        expect(
            form is not None,
            f"a page with no form ({response.status_code}): {snippet(response.text)}",
        )
        fields = form_fields(form)
        step = fields.get("step")
        button = next(iter(form["buttons"]), None)
        if step == "password":
            expect(
                not password_sent,
                "sign-in refused: Incorrect email or password"
                if "Incorrect email or password" in response.text
                else f"the sign-in page again: {snippet(response.text)}",
            )
            fields.update(email=args.email, password=args.password)
            password_sent = True
        elif step == "tenant":
            offered = [value for name, value in form["buttons"] if name == "tenant"]
            expect(args.tenant, f"a tenant to choose among {offered}: pass --tenant")
            expect(args.tenant in offered, f"a tenant to choose among {offered}, not {args.tenant}")
            button = ("tenant", args.tenant)
        elif step == "totp":
            expect(args.totp_secret, "a TOTP code is asked for: pass --totp-secret")
            expect(len(steps_sent) < 2, "the TOTP step refused two codes")
            now = time.time()
            if steps_sent and now // 30 <= steps_sent[-1]:
                # The engine takes each time step's code once per user, and the refused
                # code's step may have been spent already (say, confirming the
                # enrolment). RFC 6238 verifiers accept one step of drift, as an
                # authenticator app's clock may run ahead: send the next step's code
                # rather than wait up to 30 s for it.
                now = (steps_sent[-1] + 1) * 30
            fields["code"] = totp(args.totp_secret, now)
            steps_sent.append(now // 30)
        else:
            expect(False, f"an unexpected page (step {step!r}): {snippet(response.text)}")
        if button is not None:
            fields[button[0]] = button[1]
        method, data, url = "POST", fields, urljoin(response.url, form["action"])
    raise Failed(f"no redirect to {args.redirect_uri} within {MAX_STEPS} requests")


def authorize(oauth, browser, discovery, args):
    """One authorization code flow with PKCE and a nonce, up to the token response.
    Returns (token, nonce)."""
    verifier = generate_token(48)
    nonce = generate_token(32)
    extra = {}
    if args.tenant:
        extra["tenant"] = args.tenant
    if args.totp_secret:
        extra["acr_values"] = "aal2"
    url, state = oauth.create_authorization_url(
        discovery["authorization_endpoint"],
        code_verifier=verifier,
        nonce=nonce,
        scope=SCOPE,
        **extra,
    )
    back = sign_in(browser, url, args)
    params = dict(parse_qsl(urlsplit(back).query))
    expect("error" not in params, f"authorization error: {params}")
    expect(params.get("state") == state, "the state did not come back")
    # RFC 9207: the redirect names the issuer it comes from.
    expect(params.get("iss") == discovery["issuer"], f"iss {params.get('iss')!r} in the redirect")
    # Authlib takes the code from the redirect (checking the state again) and redeems it.
    token = oauth.fetch_token(
        discovery["token_endpoint"],
        authorization_response=back,
        state=state,
        code_verifier=verifier,
    )
    return dict(token), nonce


def check_token_response(token):
    for member in ("access_token", "token_type", "expires_in", "refresh_token", "id_token"):
        expect(token.get(member), f"no {member} in the token response")
    expect(token["token_type"].lower() == "bearer", f"token_type {token['token_type']!r}")


def verify_id_token(keys, discovery, client_id, token, nonce):
    """The ID token of `token`, verified by Authlib: signature (RS256, a JWKS key), iss,
    aud, exp, iat, azp, at_hash against the access token, and the nonce when one is
    given (a refreshed ID token need not carry it)."""
    options = {
        "iss": {"essential": True, "value": discovery["issuer"]},
        "aud": {"essential": True, "value": client_id},
        "at_hash": {"essential": True},
        "auth_time": {"essential": True},
    }
    params = {"client_id": client_id, "access_token": token["access_token"]}
    if nonce is not None:
        options["nonce"] = {"essential": True, "value": nonce}
        params["nonce"] = nonce
    claims = JWT.decode(
        token["id_token"],
        keys,
        claims_cls=CodeIDToken,
        claims_options=options,
        claims_params=params,
    )
    claims.validate(leeway=LEEWAY)
    expect(claims.header.get("alg") == "RS256", f"alg {claims.header.get('alg')!r}")
    expect(claims["iss"] == discovery["issuer"], f"iss {claims['iss']!r}")
    expect(claims["aud"] in (client_id, [client_id]), f"aud {claims['aud']!r}")
    return claims


def verify_access_token(keys, discovery, client_id, token, id_claims):
    """The access token as RFC 9068 has it: `typ: at+jwt`, signed by a JWKS key, for this
    client and the ID token's user, session and tenant."""
    options = {
        "iss": {"essential": True, "value": discovery["issuer"]},
        "sub": {"essential": True, "value": id_claims["sub"]},
        "client_id": {"essential": True, "value": client_id},
        "exp": {"essential": True},
        "iat": {"essential": True},
        "jti": {"essential": True},
        "aud": {"essential": True},
    }
    claims = JWT.decode(token["access_token"], keys, claims_options=options)
    claims.validate(leeway=LEEWAY)
    typ = claims.header.get("typ", "").lower()
    expect(typ in ("at+jwt", "application/at+jwt"), f"typ {claims.header.get('typ')!r}")
    for claim in ("tenant", "sid", "acr", "auth_time"):
        expect(
            claims.get(claim) == id_claims.get(claim),
            f"{claim} {claims.get(claim)!r}, the ID token's {id_claims.get(claim)!r}",
        )


def expect_refused(call, error):
    """`call` must raise Authlib's OAuthError with this `error` code."""
    try:
        call()
    except OAuthError as refusal:
        expect(refusal.error == error, f"refused with {refusal.error}, not {error}")
    else:
        raise Failed(f"accepted, not refused with {error}")


def get_json(session, url, **kwargs):
    response = session.get(url, timeout=TIMEOUT, **kwargs)
    expect(
        response.status_code == 200,
        f"GET {url} answered {response.status_code}: {snippet(response.text)}",
    )
    return response.json()


def run(args, checks, summary):
    secret = None if args.client_secret == "-" else args.client_secret
    auth_method = "client_secret_basic" if secret else "none"
    # No proxy or .netrc between the checker and the provider.
    browser = requests.Session()  # the user's browser: the pages and their cookies
    browser.trust_env = False
    plain = requests.Session()  # discovery, JWKS, userinfo: no cookies
    plain.trust_env = False

    with checks.check("discovery"):
        discovery = get_json(plain, args.issuer + "/.well-known/openid-configuration")
        missing = [member for member in DISCOVERY_MEMBERS if not discovery.get(member)]
        expect(not missing, f"missing {missing}")
        for member, value in (
            ("code_challenge_methods_supported", "S256"),
            ("id_token_signing_alg_values_supported", "RS256"),
            ("token_endpoint_auth_methods_supported", auth_method),
        ):
            expect(value in discovery.get(member, []), f"{member} lacks {value}")
    with checks.check("discovery_issuer", needed=False):
        # OpenID Connect Discovery §4.3: the issuer is the URL discovery was read from.
        expect(discovery["issuer"] == args.issuer, f"issuer {discovery['issuer']!r}")
    with checks.check("jwks"):
        keys = JsonWebKey.import_key_set(get_json(plain, discovery["jwks_uri"]))

    oauth = OAuth2Session(
        client_id=args.client_id,
        client_secret=secret,
        token_endpoint_auth_method=auth_method,
        revocation_endpoint_auth_method=auth_method,
        redirect_uri=args.redirect_uri,
        code_challenge_method="S256",
        default_timeout=TIMEOUT,
        trust_env=False,
    )
    token_endpoint = discovery["token_endpoint"]

    # The first flow: sign in, tokens, userinfo, refresh and its rotation.
    with checks.check("authorize"):
        token, nonce = authorize(oauth, browser, discovery, args)
    with checks.check("token_response"):
        check_token_response(token)
    with checks.check("id_token"):
        claims = verify_id_token(keys, discovery, args.client_id, token, nonce)
        summary.update(sub=claims["sub"], tenant=claims.get("tenant"), acr=claims.get("acr"))
    if args.tenant:
        with checks.check("tenant", needed=False):
            expect(claims.get("tenant") == args.tenant, f"tenant {claims.get('tenant')!r}")
    if args.totp_secret:
        with checks.check("acr_aal2", needed=False):
            expect(claims.get("acr") == "aal2", f"acr {claims.get('acr')!r}")
    with checks.check("access_token", needed=False):
        verify_access_token(keys, discovery, args.client_id, token, claims)
    with checks.check("userinfo", needed=False):
        info = get_json(
            plain,
            discovery["userinfo_endpoint"],
            headers={"Authorization": f"Bearer {token['access_token']}"},
        )
        expect(info.get("sub") == claims["sub"], f"sub {info.get('sub')!r}")
        expect(info.get("tenant") == claims.get("tenant"), f"tenant {info.get('tenant')!r}")
        expect(
            str(info.get("email", "")).casefold() == args.email.casefold(),
            f"email {info.get('email')!r}",
        )

    spent = token["refresh_token"]
    with checks.check("refresh"):
        refreshed = dict(oauth.refresh_token(token_endpoint, refresh_token=spent))
        # Authlib keeps the old refresh token when the answer has none: rotation means
        # a different one.
        expect(refreshed.get("refresh_token") != spent, "the refresh token did not rotate")
        expect(
            refreshed.get("access_token") not in (None, token["access_token"]),
            "no new access token",
        )
    if refreshed.get("id_token"):
        with checks.check("refresh_id_token", needed=False):
            again = verify_id_token(keys, discovery, args.client_id, refreshed, None)
            # OpenID Connect Core §12.2: same user, same original authentication.
            for claim in ("sub", "auth_time"):
                expect(again.get(claim) == claims.get(claim), f"{claim} {again.get(claim)!r}")
    with checks.check("refresh_reuse_refused", needed=False):
        expect_refused(
            lambda: oauth.refresh_token(token_endpoint, refresh_token=spent), "invalid_grant"
        )
    with checks.check("refresh_family_revoked", needed=False):
        newest = refreshed["refresh_token"]
        expect_refused(
            lambda: oauth.refresh_token(token_endpoint, refresh_token=newest), "invalid_grant"
        )

    # The second flow (the browser's session may spare the sign-in): introspect, revoke.
    with checks.check("authorize_again"):
        token, nonce = authorize(oauth, browser, discovery, args)
        check_token_response(token)
        claims_again = verify_id_token(keys, discovery, args.client_id, token, nonce)
        expect(claims_again["sub"] == claims["sub"], f"sub {claims_again['sub']!r}")
    fresh = token["refresh_token"]
    endpoint = discovery["introspection_endpoint"]
    with checks.check("introspect_active"):
        response = oauth.introspect_token(endpoint, token=fresh, token_type_hint="refresh_token")
        expect(response.status_code == 200, f"answered {response.status_code}")
        answer = response.json()
        expect(answer.get("active") is True, f"answered {snippet(response.text)}")
        expect(answer.get("client_id") == args.client_id, f"client_id {answer.get('client_id')!r}")
    with checks.check("revoke"):
        response = oauth.revoke_token(
            discovery["revocation_endpoint"], token=fresh, token_type_hint="refresh_token"
        )
        expect(
            response.status_code == 200,
            f"answered {response.status_code}: {snippet(response.text)}",
        )
    with checks.check("introspect_revoked", needed=False):
        response = oauth.introspect_token(endpoint, token=fresh, token_type_hint="refresh_token")
        expect(response.status_code == 200, f"answered {response.status_code}")
        expect(response.json().get("active") is False, f"answered {snippet(response.text)}")


def main():
    parser = argparse.ArgumentParser(
        description="An Authlib relying party checking the engine's OpenID provider."
    )
    parser.add_argument("issuer", help="the provider's base URL, e.g. http://127.0.0.1:43117")
    parser.add_argument("client_id")
    parser.add_argument("client_secret", help="the client's secret, or - for a public client")
    parser.add_argument("redirect_uri", help="a registered redirect URI (never requested)")
    parser.add_argument("email")
    parser.add_argument("password")
    parser.add_argument("--tenant", help="send tenant=T, and choose T if asked")
    parser.add_argument(
        "--totp-secret", help="base32 TOTP secret: ask for aal2 and answer the TOTP step"
    )
    args = parser.parse_args()

    checks = Checks()
    summary = {"sub": None, "tenant": None, "acr": None}
    try:
        run(args, checks, summary)
    except Stop:
        pass
    summary["checks"] = checks.count
    print(json.dumps(summary), flush=True)
    sys.exit(0 if checks.failed == 0 else 1)


if __name__ == "__main__":
    main()
