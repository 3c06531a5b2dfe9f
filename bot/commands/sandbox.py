"""``huaxiang sandbox serve|world``: the local stand-in platform.

``serve`` runs it in the foreground for a config whose source has
``platform = "sandbox"`` and ``base_url = "http://127.0.0.1:PORT"``;
``world`` prints the generated world's topics, super-topic ids and tags (what
queries can use) without starting a server.
"""

from __future__ import annotations

import argparse

from bot.argtypes import PORT, RATE, SEED, float_range, int_range
from bot.context import Context
from bot.errors import HuaxiangError
from bot.find.sandbox.faults import KINDS, FaultConfig
from bot.find.sandbox.world import DEFAULT_USERS, World
from bot.find.sources import local_platforms

# A world is generated in memory: 20,000 users take ~9 s and ~220 MB.
WORLD_USERS = int_range(1, 50_000)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sandbox", help="the local sandbox platform (Weibo-shaped, generated, offline)",
                       description="A deterministic generated Weibo-like platform on loopback, for trying the "
                                   "whole loop offline and for reliability tests with injected faults.")
    sp = p.add_subparsers(dest="sandbox_command", metavar="ACTION")
    serve = sp.add_parser("serve", help="serve the sandbox in the foreground (Ctrl-C stops)")
    serve.add_argument("--port", type=PORT, default=8765, help="loopback port (default 8765; 0 = any free port)")
    serve.add_argument("--seed", type=SEED, default=0, help="world seed (default 0)")
    serve.add_argument("--users", type=WORLD_USERS, default=DEFAULT_USERS, help=f"world size (default {DEFAULT_USERS})")
    serve.add_argument("--token", default=None, help="require exactly this write token (default: any non-empty)")
    serve.add_argument("--require-session", action="store_true",
                       help="reads need a signed-in or visitor session, as on m.weibo.cn (sign in at /signin)")
    serve.add_argument("--faults", type=RATE, default=0.0, metavar="RATE",
                       help="total fault rate spread over every kind, e.g. 0.2")
    for kind in KINDS:
        serve.add_argument(f"--{kind.replace('_', '-')}", type=RATE, default=None, metavar="RATE",
                           help=f"rate of {kind} faults (overrides --faults for this kind)")
    serve.add_argument("--slow-s", type=float_range(0, 600), default=3.0, help="how long slow responses take (default 3)")
    serve.add_argument("--retry-after-s", type=float_range(0, 86400), default=1.0, help="Retry-After sent with 429 (default 1)")
    serve.add_argument("--fault-seed", type=SEED, default=0, help="seed of the fault dice (default 0)")
    serve.add_argument("--write-faults", action="store_true", help="inject faults into write endpoints too")
    serve.set_defaults(func=run_serve)
    world = sp.add_parser("world", help="print the world's communities, topics, super-topic ids and tags")
    world.add_argument("--seed", type=SEED, default=0)
    world.add_argument("--users", type=WORLD_USERS, default=DEFAULT_USERS)
    world.set_defaults(func=run_world)
    p.set_defaults(func=lambda args, ctx: (p.print_help(), 2)[1])


def fault_config(args: argparse.Namespace) -> FaultConfig:
    cfg = FaultConfig.spread(args.faults) if args.faults else FaultConfig()
    for kind in KINDS:
        value = getattr(args, kind)
        if value is not None:
            setattr(cfg, kind, value)
    cfg.slow_s, cfg.retry_after_s, cfg.seed, cfg.writes = args.slow_s, args.retry_after_s, args.fault_seed, args.write_faults
    if not 0 <= cfg.total <= 1:
        raise HuaxiangError(f"fault rates add up to {cfg.total:.2f}; they must be between 0 and 1")
    return cfg


def run_serve(args: argparse.Namespace, ctx: Context) -> int:
    from bot.find.sandbox.server import SandboxServer

    faults = fault_config(args)
    world = World(seed=args.seed, n_users=args.users)
    try:
        server = SandboxServer(world, port=args.port, faults=faults, token=args.token,
                               require_session=args.require_session)
    except OSError as exc:
        raise HuaxiangError(f"cannot listen on 127.0.0.1:{args.port} ({exc.strerror}); try another --port") from None
    s = world.summary()
    ctx.console.print(f"sandbox serving {s['users']} users, {s['posts']} posts (seed {args.seed}) at {server.base_url}",
                      markup=False)
    if faults.active():
        ctx.console.print(f"injecting faults at {faults.total:.0%} of requests", markup=False)
    ctx.console.print(f'use it with: [[sources]] platform = "{local_platforms()[0]}", base_url = "{server.base_url}"; '
                      'Ctrl-C stops',
                      markup=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    ctx.console.print(f"stopped after {server.total_requests} requests", markup=False)
    return 0


def run_world(args: argparse.Namespace, ctx: Context) -> int:
    """Plain lines rather than a table: the ids are meant to be copied into a config."""
    s = World(seed=args.seed, n_users=args.users).summary()
    out = ctx.console
    out.print(f"sandbox world (seed {args.seed}): {s['users']} users, {s['posts']} posts", markup=False)
    for name, c in s["communities"].items():
        out.print(f"\n{name} ({c['users']} users)", markup=False)
        out.print(f"  topic: {', '.join(c['topics'])}", markup=False)
        out.print(f"  group: {c['group_name']} = {c['group_id']}", markup=False)
        out.print(f"  tag:   {', '.join(c['tags'])}", markup=False)
    return 0
