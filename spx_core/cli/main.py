"""``spx-data``: the data tool. Subcommands live in their own modules and register here.

Exit codes: 0 success, 1 a command failed (e.g. a file failed to import), 2 bad usage. Every failure
is one line on stderr: :func:`spx_core.cli.helpers.command` wraps each subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Re-exported: subcommand modules written against this module keep working; the helpers live in one place.
from spx_core.cli.helpers import (
    DB_HELP,
    CommandFailed,
    UsageError,
    add_db_option,
    add_snapshot_option,
    run_cli,
)

#: Modules that define ``register(subparsers)``; each subcommand sets ``func(args) -> int``.
COMMAND_MODULES = (
    "spx_core.cli.data_commands",  # import, snapshots, export
    "spx_core.cli.simulate_command",  # simulate
    "spx_core.cli.numerics_commands",  # greeks, surface
    "spx_core.cli.scan_command",  # scan
    "spx_core.cli.orders_commands",  # orders, positions
    "spx_core.cli.risk_commands",  # risk, decisions
    "spx_core.cli.summary_command",  # summary
)


__all__ = [
    "COMMAND_MODULES",
    "DB_HELP",
    "CommandFailed",
    "UsageError",
    "add_db_option",
    "add_snapshot_option",
    "build_parser",
    "main",
]


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
    return run_cli(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
