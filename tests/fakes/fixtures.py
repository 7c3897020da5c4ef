"""pytest helpers for tests that drive the real IB client library: fail on its ERROR log records.

The client's decoder catches its own exceptions, logs "Error handling fields" and drops the message, so a layout
bug in a fake (or an unexpected error from it) would otherwise pass silently. Tests that provoke an error on
purpose declare it: ``fail_on_client_errors.allow(200)`` (error codes) or ``.allow("Peer closed")`` (text).
"""

from __future__ import annotations

import logging
import re
import socket

import pytest

from tests.fakes.ib_client import logger_names


def free_port() -> int:
    """A loopback port nothing listens on (yet): for "TWS is started after the app" scenarios."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ClientErrorLog(logging.Handler):
    """Collects ERROR records of the client libraries' loggers; some may be declared expected."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self._allowed: list[re.Pattern[str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def allow(self, *what: int | str) -> None:
        """Expect errors: an int is an IB error code ("Error 200, reqId"), a str a regex on the message."""
        for item in what:
            pattern = rf"\bError {item}, reqId" if isinstance(item, int) else item
            self._allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        out = []
        for record in self.records:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += f" [{record.exc_info[1]!r}]"
            if not any(p.search(text) for p in self._allowed):
                out.append(f"{record.name}: {text}")
        return out


@pytest.fixture
def fail_on_client_errors():
    """Fail the test on any unexpected ERROR record from ``ib_insync.*`` / ``ib_async.*``; yields the collector."""
    handler = ClientErrorLog()
    loggers = [logging.getLogger(name) for name in logger_names()]
    saved = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        if lg.getEffectiveLevel() > logging.ERROR:
            lg.setLevel(logging.ERROR)
    try:
        yield handler
    finally:
        for lg, level in saved:
            lg.removeHandler(handler)
            lg.setLevel(level)
    problems = handler.unexpected()
    if problems:
        pytest.fail("IB client library logged errors:\n" + "\n".join(problems), pytrace=False)
