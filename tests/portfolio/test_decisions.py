import pytest

from spx_core.portfolio.decisions import DecisionError, TradeDecision


def test_a_decision_is_a_validated_frozen_record():
    d = TradeDecision(time_ns=1, strategy="0dte-pcs", action="trade", reasons=("credit 1.45 >= 1.20",),
                      snapshot_id=7, snapshot_checksum="ab" * 32, config_hash="c0", order_ref="spx-1")
    assert d.action == "TRADE" and d.traded
    skip = TradeDecision(time_ns=2, strategy="0dte-pcs", action="SKIP", reasons="delta above 0.16")
    assert skip.reasons == ("delta above 0.16",) and not skip.traded
    with pytest.raises(AttributeError):
        d.action = "SKIP"  # type: ignore[misc]


@pytest.mark.parametrize("kwargs, message", [
    ({"action": "HOLD"}, "must be TRADE or SKIP"),
    ({"action": "SKIP", "order_ref": "spx-1"}, "a SKIP sends no order"),
    ({"action": "TRADE", "strategy": ""}, "needs the strategy"),
])
def test_malformed_decisions_are_refused(kwargs, message):
    with pytest.raises(DecisionError, match=message):
        TradeDecision(**{"time_ns": 1, "strategy": "s", **kwargs})
