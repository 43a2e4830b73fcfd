"""A webhook receiver for the webhook tests: an HTTP server on 127.0.0.1:PORT that checks
every request's signature with the `standardwebhooks` library (not the engine's code)
and prints one JSON line per request on stdout:
{"path", "id", "verified", "type", "tenant", "sequence", "status"}.

The secret of each path is read from `--secrets-file` (a JSON object path -> secret) at
each request, so a test can set it after creating the hook and after rotating it. While
`--fail-file` exists every request is answered 500. The first stdout line is `ready`.
"""

import argparse
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

LOCK = threading.Lock()


def emit(record):
    with LOCK:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()


def make_handler(secrets_file, fail_file):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            headers = {key.lower(): value for key, value in self.headers.items()}
            record = {"path": self.path, "id": headers.get("webhook-id")}
            if fail_file and os.path.exists(fail_file):
                record.update(verified=None, status=500)
                emit(record)
                self.send_response(500)
                self.end_headers()
                return
            try:
                with open(secrets_file) as handle:
                    secret = json.load(handle).get(self.path)
                payload = Webhook(secret).verify(body, headers)
                record.update(
                    verified=True,
                    type=payload.get("type"),
                    tenant=payload.get("tenant"),
                    sequence=payload.get("sequence"),
                    status=204,
                )
                emit(record)
                self.send_response(204)
                self.end_headers()
            except (WebhookVerificationError, OSError, ValueError, TypeError) as error:
                record.update(verified=False, error=str(error), status=400)
                emit(record)
                self.send_response(400)
                self.end_headers()

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secrets-file", required=True)
    parser.add_argument("--fail-file")
    args = parser.parse_args()
    server = ThreadingHTTPServer(
        ("127.0.0.1", args.port), make_handler(args.secrets_file, args.fail_file)
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    try:
        sys.stdin.read()
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
