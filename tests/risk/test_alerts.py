"""Alert value objects, and the whole path: rule -> repository (de-duplicated) -> delivery of new alerts only."""

from __future__ import annotations

import pytest

from spx_core.risk.alert_rules import AlertEngine, AlertInputs
from spx_core.risk.alerts import Alert, AlertDraft, Severity
from spx_core.risk.delivery import DeliverySettings, Notifier
from spx_core.storage import Store
from spx_core.storage.alerts_repo import AlertRepository
from tests.risk.test_alert_rules import NOON, SEC, delta_use
from tests.risk.test_delivery import Receiver


def test_severities_order_by_rank_not_by_text():
    assert [s.rank for s in (Severity.INFO, Severity.WARNING, Severity.CRITICAL)] == [0, 1, 2]
    assert max(Severity, key=lambda s: s.rank) is Severity.CRITICAL  # by text it would be "warning"
    assert Alert(1, "k:x", "k", "critical", "m", 1, 1).severity is Severity.CRITICAL


@pytest.mark.parametrize("key, rule, message, words", [
    ("", "limit_warning", "m", "needs a key and a rule"),
    ("limit_warning:x", "", "m", "needs a key and a rule"),
    ("limit_warning:x", "limit_warning", "two\nlines", "must be one line"),
])
def test_a_draft_needs_a_key_a_rule_and_one_line(key, rule, message, words):
    with pytest.raises(ValueError, match=words):
        AlertDraft(key, rule, Severity.INFO, message)
    with pytest.raises(ValueError):
        AlertDraft("k:x", "k", "loud", "m")  # not a severity


def test_a_standing_condition_is_delivered_once_and_again_only_after_acknowledgement(tmp_path):
    hook = Receiver()
    try:
        with Store.open(tmp_path / "alerts.sqlite") as store:
            repo, engine = AlertRepository(store), AlertEngine()
            notifier = Notifier(DeliverySettings(webhook_url=hook.url), backoff_s=0.01)

            def tick(now_ns: int, value: float) -> None:
                for draft in engine.evaluate(AlertInputs(now_ns=now_ns, last_data_ns=now_ns,
                                                         usage=[delta_use(value)])):
                    alert, new = repo.raise_alert(draft, now_ns)
                    if new:
                        notifier.send(alert)

            tick(NOON, 170)            # 85%: raised and delivered
            tick(NOON + SEC, 175)      # still true: nothing
            tick(NOON + 2 * SEC, 100)  # clears: re-armed
            tick(NOON + 3 * SEC, 180)  # true again, still unacknowledged: counted, not re-delivered
            [open_alert] = repo.open_alerts()
            assert (open_alert.count, open_alert.first_ns, open_alert.last_ns) == (2, NOON, NOON + 3 * SEC)
            repo.acknowledge(open_alert.id, NOON + 4 * SEC)
            tick(NOON + 5 * SEC, 100)
            tick(NOON + 6 * SEC, 190)  # acknowledged before: a new alert, delivered
            assert notifier.flush(10)
            notifier.close()
            assert [b["id"] for b in hook.bodies] == [open_alert.id, repo.open_alerts()[0].id]
            assert len(repo.recent()) == 2
    finally:
        hook.stop()
