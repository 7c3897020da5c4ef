"""IB adapter tests run the real client library against the fake gateway; any unexpected ERROR record from the
client library fails the test (tests that provoke one declare it with ``ib_client_errors.allow(...)``), and so
does any ERROR from the adapter itself (a failed send task, a report handler that raised)."""

from __future__ import annotations

import logging

import pytest

from tests.fakes.fixtures import fail_on_client_errors

__all__ = ["fail_on_client_errors"]


@pytest.fixture(autouse=True)
def ib_client_errors(fail_on_client_errors):
    return fail_on_client_errors


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def adapter_errors():
    """Fail the test on any ERROR record of ``spx_core.execution.ib``."""
    handler = _Collect()
    logger = logging.getLogger("spx_core.execution.ib")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
    if handler.records:
        pytest.fail("the IB adapter logged errors:\n" + "\n".join(
            f"{r.name}: {r.getMessage()} {r.exc_info[1]!r}" if r.exc_info else f"{r.name}: {r.getMessage()}"
            for r in handler.records), pytrace=False)
