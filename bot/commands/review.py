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
from bot.errors import HuaxiangError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("review", help="serve the review page on this computer (prints the URL with its token)",
                       description="Serve the review queue as a local web page: approve, edit and reject with the "
                                   "keyboard. Binds 127.0.0.1 unless --host says otherwise.")
    p.add_argument("--port", type=PORT, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, this computer only)")
    p.add_argument("--print-only", action="store_true", help="print the URL and token, do not serve")
    p.set_defaults(func=run)


def review_url(host: str, port: int, token: str) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/?token={token}"


def review_instructions(db_path, port: int = 8765) -> str:
    """How to open the review page for this database (for `demo` and `plan`)."""
    from bot.review.app import load_or_create_token

    token = load_or_create_token(db_path)
    db_arg = "" if str(db_path) == "huaxiang.db" else f" --db {db_path}"
    return (f"review the queue in your browser: run `huaxiang{db_arg} review --port {port}`, "
            f"then open {review_url('127.0.0.1', port, token)}")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace, ctx: Context) -> int:
    from bot.review.app import create_app, load_or_create_token, token_path

    ctx.db  # create/migrate the database before serving
    token = load_or_create_token(ctx.db_path)
    if args.print_only:
        ctx.console.print(f"open {review_url(args.host, args.port, token)}", markup=False)
        ctx.console.print(f"(token kept in {token_path(ctx.db_path)}; start the page with `huaxiang review`)", markup=False)
        return 0
    import socket

    import uvicorn

    allowed = {"127.0.0.1", "localhost", "::1"} if _loopback(args.host) else None
    app = create_app(ctx.db_path, ctx.settings, token, allowed_hosts=allowed)
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        raise HuaxiangError(f"cannot listen on {args.host}:{args.port} ({exc.strerror}); try --port") from None
    port = sock.getsockname()[1]
    if not _loopback(args.host):
        ctx.err.print(f"warning: serving on {args.host}: anyone who can reach it and has the token can approve sends",
                      markup=False)
    ctx.console.print(f"review page: {review_url(args.host, port, token)}", markup=False)
    ctx.console.print("press Ctrl+C to stop", markup=False)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    return 0
