"""A broker's positions differing from the book raise ONE alert naming each differing contract (a repeat while
unacknowledged folds into it); a clean check raises none. The session's signal is driven directly: the check itself
runs against the fake gateway in tests/app/test_trading_session_ib.py and tests/execution/ib/test_ib_positions.py."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace

from app.ops_session import OpsSession
from app.settings import AppSettings
from spx_core.domain import OptionContract, Right, Root
from spx_core.execution.ib.positions import compare_positions
from spx_core.portfolio.positions import Position
from spx_core.risk.alerts import Severity
from tests.app.test_alerts_panel import FakeDesktop
from tests.app.trading_factory import session_on


def _ib(strike: float, quantity: int):
    contract = SimpleNamespace(secType="OPT", symbol="SPX", tradingClass="SPXW", lastTradeDateOrContractMonth="20261218",
                               strike=strike, right="P", multiplier="100")
    return SimpleNamespace(account="DU1234567", contract=contract, position=quantity, avgCost=250.0)


def test_a_position_mismatch_is_one_alert_naming_each_contract(qapp, tmp_path):
    session, store = session_on(tmp_path / "positions.sqlite")
    desktop = FakeDesktop()
    ops = OpsSession(session, store, AppSettings(alert_sound=False), desktop=desktop)
    try:
        held = Position(OptionContract(Root.SPXW, date(2026, 12, 18), 5900.0, Right.PUT), -1, 2.5)
        session.positions_checked.emit(compare_positions([_ib(5900, -1)], [held], account="DU1234567"))
        assert ops.recent() == []  # a clean check is the status bar's tooltip and a log line, not an alert
        bad = compare_positions([_ib(5900, -2), _ib(5875, 1)], [held], account="DU1234567")
        session.positions_checked.emit(bad)
        session.positions_checked.emit(bad)  # the next reconnect finds the same
        (alert,) = ops.recent()
        assert (alert.key, alert.rule, alert.severity, alert.count) == \
            ("ib_positions:DU1234567", "ib_positions", Severity.WARNING, 2)
        assert alert.message.startswith("IB positions differ from the book: SPXW 2026-12-18 5875P ours +0, IB +1; "
                                        "SPXW 2026-12-18 5900P ours -1, IB -2 (trades placed outside the terminal")
        assert [m for _title, m, _sev in desktop.shown] == [alert.message]  # delivered once
    finally:
        ops.close()
        session.close()
        store.close()
