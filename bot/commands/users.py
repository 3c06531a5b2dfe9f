"""``huaxiang users add|list|disable|enable|reset``: the team's review accounts.

Roles: viewer (reads), editor (edits and proposes, rejects, settles follow
to-dos), approver (also approves for sending), admin (everything). Once the
first account exists, every approval (page, API, ``queue approve --by``) must
name an active approver or admin account.

Passwords: ``--password-stdin`` reads one line from standard input (for
scripts); otherwise a strong password is generated and printed once.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys

from rich.table import Table

from bot.context import Context
from bot.engage import accounts
from bot.textsafe import terminal_safe


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("users", help="add, list, disable or reset review accounts (viewer/editor/approver/admin)",
                       description="Review accounts and roles. A viewer reads, an editor edits and proposes, an "
                                   "approver approves for sending, an admin may do everything.")
    s = p.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    add = s.add_parser("add", help="create an account")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=accounts.ROLES)
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    ls = s.add_parser("list", help="show the accounts")
    ls.add_argument("--json", action="store_true")
    for action, text in (("disable", "stop an account signing in or approving (ends its sessions)"),
                         ("enable", "let a disabled account sign in again")):
        a = s.add_parser(action, help=text)
        a.add_argument("name")
    rs = s.add_parser("reset", help="set a new password (and optionally role); ends the account's sessions")
    rs.add_argument("name")
    rs.add_argument("--role", choices=accounts.ROLES, help="also change the role")
    rs.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=run)


def _password(args) -> tuple[str, bool]:
    """(password, generated?)"""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    return secrets.token_urlsafe(12), True


def run(args: argparse.Namespace, ctx: Context) -> int:
    cmd = args.users_command
    say = ctx.console.print
    if cmd == "list":
        rows = accounts.list_all(ctx.db)
        if args.json:
            for r in rows:
                print(json.dumps(r, ensure_ascii=False))
            return 0
        if not rows:
            say("no accounts yet: `huaxiang users add NAME --role approver` creates one", markup=False)
            return 0
        from bot.i18n import fmt_time, zone

        tz = zone(ctx.settings.engagement.timezone)
        table = Table(caption=f"times in {ctx.settings.engagement.timezone}")
        for col in ("name", "role", "status", "created", "last sign-in", "failed sign-ins"):
            table.add_column(col)
        for r in rows:
            table.add_row(terminal_safe(r["name"]), r["role"], "disabled" if r["disabled"] else "active",
                          fmt_time(r["created_at"], tz), fmt_time(r["last_login_at"], tz), str(r["failed_logins"]))
        ctx.console.print(table)
        return 0
    if cmd in ("disable", "enable"):
        accounts.set_disabled(ctx.db, args.name, cmd == "disable")
        say(f"{args.name}: {cmd}d", markup=False)
        _say_held(ctx, args.name)
        return 0
    password, generated = _password(args)
    if cmd == "add":
        account = accounts.add(ctx.db, args.name, args.role, password)
        say(f"added {account.name} ({account.role})", markup=False)
    else:
        accounts.reset(ctx.db, args.name, password, args.role)
        say(f"reset {args.name}" + (f" (role {args.role})" if args.role else ""), markup=False)
        _say_held(ctx, args.name)
    if generated:
        say(f"password (shown once): {password}", markup=False)
    return 0


def _say_held(ctx: Context, name: str) -> None:
    """After disabling or demoting: what this account approved is now held by the sender (bot.engage.policy)."""
    account = accounts.active_account(ctx.db, name)
    if account is not None and account.can("approve"):
        return
    held = accounts.approved_pending_send(ctx.db, name)
    if held:
        ctx.console.print(f"{held} approved item(s) by {terminal_safe(name)} will not be sent until an approver approves them again "
                          "(edit them back to pending, or enable the account)", markup=False, soft_wrap=True)
