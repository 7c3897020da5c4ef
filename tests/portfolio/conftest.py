import pytest

from tests.portfolio.helpers import Desk


@pytest.fixture
def desk() -> Desk:
    return Desk()
