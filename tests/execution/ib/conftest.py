"""IB adapter tests run the real client library against the fake gateway; any unexpected ERROR record from the
client library fails the test (tests that provoke one declare it with ``ib_client_errors.allow(...)``)."""

from __future__ import annotations

import pytest

from tests.fakes.fixtures import fail_on_client_errors

__all__ = ["fail_on_client_errors"]


@pytest.fixture(autouse=True)
def ib_client_errors(fail_on_client_errors):
    return fail_on_client_errors
