"""An SMTP server for the mail tests: aiosmtpd on 127.0.0.1:PORT, printing every
accepted message as one JSON line on stdout ({"mail_from", "rcpt_tos", "data"}).

With `--tempfail-file F`, while F exists every message is answered 451 (try again
later), as a server that is up but cannot take mail. The first stdout line is
`ready <port>`.
"""

import argparse
import asyncio
import json
import os
import sys

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, tempfail_file):
        self.tempfail_file = tempfail_file

    async def handle_DATA(self, server, session, envelope):
        if self.tempfail_file and os.path.exists(self.tempfail_file):
            return "451 4.3.0 try again later"
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
        }
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()
        return "250 OK"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tempfail-file")
    args = parser.parse_args()
    controller = Controller(
        Sink(args.tempfail_file), hostname="127.0.0.1", port=args.port
    )
    controller.start()
    sys.stdout.write(f"ready {args.port}\n")
    sys.stdout.flush()
    try:
        # Until stdin closes or the process is killed.
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
