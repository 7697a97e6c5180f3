"""Run localstripe, the local Stripe, the way Flywheel needs it.

localstripe on its own listens on every interface and pickles its whole state to
/tmp/localstripe.pickle after every write. This launcher binds 127.0.0.1 only, keeps state in
memory only, and registers Flywheel's webhook endpoint (URL and signing secret) at each start.

    python -m billing.localstripe_server --port 8420 \\
        --webhook-url http://127.0.0.1:8000/stripe/webhook --webhook-secret whsec_...

It imports no Django; `make run` and the test suite start it as a process of its own.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import threading

from aiohttp import web
from localstripe import resources, server, webhooks


def _no_disk(*args: object, **kwargs: object) -> None:
    """localstripe's persistence, turned off: state lives and dies with the process."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--webhook-url", default="")
    parser.add_argument("--webhook-secret", default="")
    parser.add_argument(
        "--unless-real-stripe",
        action="store_true",
        help="do nothing (and stay up, so the Procfile runner keeps the other processes) when STRIPE_SECRET_KEY "
        "is set: the app talks to real Stripe then",
    )
    args = parser.parse_args(argv)
    if args.unless_real_stripe and os.environ.get("STRIPE_SECRET_KEY"):
        print("STRIPE_SECRET_KEY is set: Flywheel talks to Stripe; localstripe is not started", flush=True)
        threading.Event().wait()
        return

    resources.Store.dump_to_disk = _no_disk  # type: ignore[method-assign]
    resources.Store.try_load_from_disk = _no_disk  # type: ignore[method-assign]
    resources.store.clear()
    if args.webhook_url:
        if not args.webhook_secret:
            parser.error("--webhook-secret is required with --webhook-url")
        webhooks.register_webhook("flywheel", args.webhook_url, args.webhook_secret, None)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s localstripe %(message)s")
    print(f"localstripe listening on http://{args.host}:{args.port}", flush=True)
    web.run_app(server.app, sock=sock, print=None, access_log=logging.getLogger("aiohttp.access"))


if __name__ == "__main__":
    main()
