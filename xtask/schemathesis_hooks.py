"""Schemathesis hooks of `cargo xtask schemathesis` (loaded through SCHEMATHESIS_HOOKS).

The generator draws an `Idempotency-Key` from a handful of short strings ("0", "A", ...)
and sends the same one again with other bodies, which the server rightly refuses with
422 `idempotency_key_reused` (SPEC section 4): most POSTs would never reach their
handler. A well-formed key (1 to 255 characters) is therefore made unique per request;
a malformed one (empty, too long) is sent as generated, so its 400 is still tested.
"""

import uuid

import schemathesis


@schemathesis.hook
def before_call(context, case, kwargs):
    headers = case.headers or {}
    for name, value in list(headers.items()):
        if name.lower() == "idempotency-key" and isinstance(value, str) and 1 <= len(value) <= 255:
            headers[name] = str(uuid.uuid4())
            # A valid key for a valid key: nothing about the case's validity changed, so
            # its bookkeeping (which header a "missing header" case left out) must not be
            # recomputed as if the hook had edited the case (schemathesis 4.32 internals).
            case._sync_validated_hashes()
