"""Fixtures of the fake-gateway tests: every test fails on an unexpected ERROR from the IB client library."""

from __future__ import annotations

import pytest

from tests.fakes.fixtures import fail_on_client_errors

__all__ = ["fail_on_client_errors"]


@pytest.fixture(autouse=True)
def ib_decoder_errors(fail_on_client_errors):
    """Autouse alias: the collector of client-library ERROR records (``.allow(code_or_regex)``)."""
    return fail_on_client_errors
