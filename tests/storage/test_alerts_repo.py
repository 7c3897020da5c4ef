"""AlertRepository on a real SQLite file: de-duplication by open key, acknowledgement, listing, restarts."""

import pytest

from spx_core.risk.alerts import AlertDraft, Severity
from spx_core.storage import Store
from spx_core.storage.alerts_repo import AlertRepository, UnknownAlertError

DELTA = AlertDraft("limit_warning:max_delta", "limit_warning", Severity.WARNING,
                   "Portfolio delta 182 is 91% of the 200 limit (iron condor)")


@pytest.fixture
def path(tmp_path):
    return tmp_path / "alerts.sqlite"


@pytest.fixture
def repo(path):
    with Store.open(path) as store:
        yield AlertRepository(store)


def _rows(path) -> int:
    with Store.open(path) as store:
        return len(AlertRepository(store).recent(1000))


def test_a_new_key_makes_a_new_open_alert_to_deliver(repo):
    alert, new = repo.raise_alert(DELTA, 100)
    assert new
    assert (alert.key, alert.severity, alert.count, alert.first_ns, alert.last_ns) == (DELTA.key, Severity.WARNING,
                                                                                      1, 100, 100)
    assert alert.is_open
    assert repo.open_alerts() == [alert]


def test_a_repeat_of_an_open_key_bumps_count_and_last_time_without_a_new_row(repo):
    first, _ = repo.raise_alert(DELTA, 100)
    repeat = AlertDraft(DELTA.key, DELTA.rule, Severity.WARNING, "Portfolio delta 190 is 95% of the 200 limit")
    again, new = repo.raise_alert(repeat, 250)
    assert not new
    assert again.id == first.id
    assert (again.count, again.first_ns, again.last_ns) == (2, 100, 250)
    assert again.message == repeat.message  # the latest figures
    assert len(repo.recent()) == 1


def test_after_acknowledgement_the_same_key_makes_a_new_row(repo):
    first, _ = repo.raise_alert(DELTA, 100)
    acked = repo.acknowledge(first.id, 150)
    assert acked.acknowledged_ns == 150 and not acked.is_open
    assert repo.open_alerts() == []
    second, new = repo.raise_alert(DELTA, 200)
    assert new and second.id != first.id and second.count == 1
    assert [a.id for a in repo.recent()] == [second.id, first.id]
    assert [a.id for a in repo.open_alerts()] == [second.id]


def test_acknowledging_twice_keeps_the_first_time_and_an_unknown_id_says_so(repo):
    alert, _ = repo.raise_alert(DELTA, 100)
    repo.acknowledge(alert.id, 150)
    assert repo.acknowledge(alert.id, 999).acknowledged_ns == 150
    with pytest.raises(UnknownAlertError, match="no stored alert with id 12345"):
        repo.acknowledge(12345, 1)


def test_acknowledge_all_closes_every_open_alert(repo):
    repo.raise_alert(DELTA, 100)
    other = AlertDraft("broker_disconnected:ib", "broker_disconnected", Severity.CRITICAL, "Broker ib disconnected")
    repo.raise_alert(other, 110)
    assert repo.acknowledge_all(200) == 2
    assert repo.open_alerts() == []
    assert repo.acknowledge_all(300) == 0
    assert {a.acknowledged_ns for a in repo.recent()} == {200}


def test_open_alerts_are_ordered_by_last_raise_and_recent_is_limited(repo):
    a, _ = repo.raise_alert(DELTA, 100)
    b, _ = repo.raise_alert(AlertDraft("stale_data", "stale_data", "warning", "No quote for 45 s"), 200)
    repo.raise_alert(DELTA, 300)  # bumps a above b
    assert [x.id for x in repo.open_alerts()] == [a.id, b.id]
    assert [x.id for x in repo.recent(1)] == [b.id]
    with pytest.raises(ValueError, match="must be positive"):
        repo.recent(0)


def test_de_duplication_holds_across_a_restart(path):
    with Store.open(path) as store:
        first, new = AlertRepository(store).raise_alert(DELTA, 100)
        assert new
    with Store.open(path) as store:
        again, new = AlertRepository(store).raise_alert(DELTA, 200)
    assert not new and again.id == first.id and again.count == 2
    assert _rows(path) == 1
