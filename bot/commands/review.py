"""``huaxiang review [--port P] [--host H]``: the local review page.

The access token is generated on first run and kept beside the database in
``<db>.review-token`` (mode 0600): outside the database, so it never appears
in a database copy or an export, and stable across restarts so a bookmarked
link keeps working. Delete the file to issue a new token.
"""

from __future__ import annotations

import argparse
import ipaddress

from bot.argtypes import PORT
from bot.context import Context
from bot.engage.review.address import review_url
from bot.errors import HuaxiangError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("review", help="serve the review page on this computer (prints the URL with its token)",
                       description="Serve the review queue as a local web page: approve, edit and reject with the "
                                   "keyboard. Binds 127.0.0.1 unless --host says otherwise.")
    p.add_argument("--port", type=PORT, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1, this computer only; 0.0.0.0 serves the LAN: "
                        "put it behind a TLS reverse proxy, see docs/review.md)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also accept this Host name on a loopback bind (the name a reverse proxy forwards); repeatable")
    p.add_argument("--print-only", action="store_true", help="print the URL and token, do not serve")
    p.set_defaults(func=run)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def lan_warning(host: str, with_accounts: bool) -> str:
    """What serving beyond this computer means, said plainly before the first request."""
    who = ("anyone who can reach it can try to sign in; accounts and roles decide who may approve"
           if with_accounts else
           "there are no review accounts yet, so anyone with the token can read, edit and reject the queue "
           "(approving needs an approver account; create accounts first: `huaxiang users add NAME --role approver`)")
    return (f"warning: serving the review page on {host} without TLS: {who}. Passwords and session cookies cross "
            "the network in clear unless a TLS reverse proxy (Caddy or nginx, see docs/review.md) is in front.")


def run(args: argparse.Namespace, ctx: Context) -> int:
    from bot.engage.accounts import accounts_enabled
    from bot.engage.review.app import create_app
    from bot.engage.review.auth import load_or_create_token, token_path
    from bot.report import render_report

    ctx.db  # create/migrate the database before serving
    token = load_or_create_token(ctx.db_path)
    if args.print_only:
        ctx.console.print(f"open {review_url(args.host, args.port, token)}", markup=False)
        ctx.console.print(f"(token kept in {token_path(ctx.db_path)}; start the page with `huaxiang review`)", markup=False)
        return 0
    import socket

    import uvicorn

    allowed = ({"127.0.0.1", "localhost", "::1"} | set(args.allow_host)) if _loopback(args.host) else None
    app = create_app(ctx.db_path, ctx.settings, token, allowed_hosts=allowed, report=render_report)
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        raise HuaxiangError(f"cannot listen on {args.host}:{args.port} ({exc.strerror}); try --port") from None
    port = sock.getsockname()[1]
    with_accounts = accounts_enabled(ctx.db)
    if not _loopback(args.host):
        ctx.err.print(lan_warning(args.host, with_accounts), markup=False)
    if with_accounts:
        shown = review_url(args.host, port, token).split("/?token=")[0] + "/"
        ctx.console.print(f"review page: {shown} (sign in with your account; `huaxiang users list`)", markup=False)
    else:
        ctx.console.print(f"review page: {review_url(args.host, port, token)}", markup=False)
        ctx.console.print("to approve, create an approver account (roles: viewer, editor, approver): "
                          "`huaxiang users add NAME --role approver`",
                          markup=False)
    ctx.console.print("press Ctrl+C to stop", markup=False)
    # proxy_headers: behind a local TLS proxy the scheme is https, so the session cookie is marked Secure.
    config = uvicorn.Config(app, log_level="warning", access_log=False, proxy_headers=True,
                            forwarded_allow_ips="127.0.0.1,::1")
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return 0
