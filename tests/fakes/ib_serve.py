"""Run the fake IB Gateway on its own, for trying the app's IB connection without TWS.

    PYTHONPATH=. python -m tests.fakes.ib_serve --port 7497 --version 176 --walk 1.0

The market follows a random walk (one step every ``--walk`` seconds, 0 = still); orders fill when marketable.
Stop it with Ctrl+C. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random

from tests.fakes.ib_gateway import FakeGateway


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.fakes.ib_serve", description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=7497, help="TCP port on 127.0.0.1 (default 7497, TWS paper)")
    p.add_argument("--version", type=int, default=176, help="server version to announce (157..178)")
    p.add_argument("--account", default="DU1234567", help="managed account (paper accounts start with D)")
    p.add_argument("--spot", type=float, default=5800.0, help="SPX level to start from")
    p.add_argument("--walk", type=float, default=1.0, help="seconds between market steps (0: no movement)")
    p.add_argument("--seed", type=int, default=1, help="random walk seed")
    return p


async def serve(args: argparse.Namespace) -> None:
    gw = FakeGateway(server_version=args.version, account=args.account, spot=args.spot, port=args.port)
    async with gw:
        print(f"fake IB Gateway v{args.version} on {gw.host}:{gw.port}, account {args.account}", flush=True)
        rng = random.Random(args.seed)
        while True:
            await asyncio.sleep(args.walk or 3600)
            if args.walk:  # ~16% a year of SPX moves, scaled to the step
                step = 0.16 * math.sqrt(args.walk / (252 * 6.5 * 3600)) * rng.gauss(0.0, 1.0)
                gw.move_market(spot=round(gw.book.market.spot * math.exp(step), 2))


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args))


if __name__ == "__main__":
    main()
