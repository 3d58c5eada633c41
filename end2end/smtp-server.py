#!/usr/bin/env python3
"""Test tooling: a real SMTP server (aiosmtpd) that stores every message it receives in a
maildir, as `python -m aiosmtpd -n -c aiosmtpd.handlers.Mailbox MAILDIR` does, but on a port
it chooses itself, so that no other process can take the port between choosing and listening.

Usage: smtp-server.py MAILDIR [PORT]   (PORT defaults to 0: a port the system chooses)
Once it listens it prints `smtp-server: listening on 127.0.0.1:PORT` on stdout.
"""

import asyncio
import sys

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP


async def main():
    maildir = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    handler = Mailbox(maildir)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler), host="127.0.0.1", port=port)
    port = server.sockets[0].getsockname()[1]
    print("smtp-server: listening on 127.0.0.1:%d" % port, flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
