"""``spx-data``: the data tool. Subcommands live in their own modules and register here.

Exit codes: 0 success, 1 a command failed (e.g. a file failed to import), 2 bad usage.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

#: Modules that define ``register(subparsers)``; each subcommand sets ``func(args) -> int``.
COMMAND_MODULES = (
    "spx_core.cli.data_commands",  # import, snapshots, export, simulate
    "spx_core.cli.numerics_commands",  # greeks, surface
)


DB_HELP = "SQLite database file (default: $SPX_TERMINAL_DB, else the user data folder's database)"


def add_db_option(parser: argparse.ArgumentParser) -> None:
    """``--db PATH`` as every subcommand spells it."""
    parser.add_argument("--db", metavar="PATH", help=DB_HELP)


def add_snapshot_option(parser: argparse.ArgumentParser) -> None:
    """``--snapshot ID`` (required) as every subcommand spells it."""
    parser.add_argument("--snapshot", required=True, type=int, metavar="ID",
                        help="snapshot id (see `spx-data snapshots`)")


class UsageError(Exception):
    """Bad command-line usage; printed to stderr with exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spx-data", description="SPX Terminal data tool")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug output to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad usage
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.func(args))
    except UsageError as exc:
        parser.error(str(exc))  # exits 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
