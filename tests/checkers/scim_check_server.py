"""Runs scim2-tester (not the engine's code) against a tenant's SCIM 2.0 base: every check
category, with the server described only by what its own ServiceProviderConfig,
ResourceTypes and Schemas endpoints publish (the client starts with no models, so
`check_server` discovers them itself).

Usage: scim_check_server.py --base URL --token TOKEN
  URL    the tenant's SCIM base, e.g. http://127.0.0.1:PORT/scim/v2/tenants/acme
  TOKEN  a tenant API key holding scim:write, sent as `Authorization: Bearer TOKEN`

Prints ONE JSON document on stdout: a list with one object per check result,
{"status", "title", "reason", "resource_type", "tags", "data"}, status being the name of
scim2_tester.Status (SUCCESS, COMPLIANT, ACCEPTABLE, DEVIATION, ERROR, CRITICAL,
SKIPPED), tags sorted, data a short text of what the checker kept to debug (or null).
Exits 0 whenever the checker ran, whatever it found (the calling test judges); non-zero,
with the cause on stderr, only when it could not run.
"""

import argparse
import json
import sys

# How much of a result's debugging data is kept: enough to see the server's answer.
DATA_LIMIT = 2000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the tenant's SCIM base URL")
    parser.add_argument("--token", required=True, help="a tenant API key (scim:write)")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per HTTP request"
    )
    args = parser.parse_args()

    try:
        import httpx2
        from scim2_client.engines.httpx2 import SyncSCIMClient
        from scim2_tester import check_server
    except ImportError as error:
        print(
            f"scim2-tester is not installed in {sys.executable} ({error}): run "
            "`cargo xtask checkers` (pinned in xtask/checkers-requirements.txt)",
            file=sys.stderr,
        )
        return 2

    with httpx2.Client(
        base_url=args.base,
        headers={"Authorization": f"Bearer {args.token}"},
        timeout=args.timeout,
    ) as http:
        client = SyncSCIMClient(http)
        results = check_server(client)

    # One result per line, so that a log of it reads as a list of checks.
    lines = ",\n".join(json.dumps(describe(result)) for result in results)
    print(f"[\n{lines}\n]" if lines else "[]")
    return 0


def describe(result) -> dict:
    return {
        "status": result.status.name,
        "title": result.title,
        "reason": result.reason,
        "resource_type": result.resource_type,
        "tags": sorted(result.tags or ()),
        "data": short(result.data),
    }


def short(data):
    if data is None:
        return None
    if isinstance(data, (dict, list, str, int, float, bool)):
        try:
            text = data if isinstance(data, str) else json.dumps(data, default=repr)
        except (TypeError, ValueError):
            text = repr(data)
    else:
        text = repr(data)
    return text if len(text) <= DATA_LIMIT else text[:DATA_LIMIT] + "…"


if __name__ == "__main__":
    sys.exit(main())
