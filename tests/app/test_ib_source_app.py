"""The IB market-data source in the app: ``--source ib`` / the toolbar's "IB" choice on the qasync loop against the
fake gateway (in its own thread, as TWS is another process), the chain panel's subscription note, and the
settings that say where TWS is."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import datetime

import pytest

from app.feed import ib_data_settings
from app.main import parse_args
from app.settings import AppSettings, SettingsError
from spx_core.domain.calendar import ET
from spx_core.marketdata.source import SourceKind, SourceState
from tests.fakes.fixtures import fail_on_client_errors
from tests.fakes.ib_gateway import FakeGateway

__all__ = ["fail_on_client_errors"]


@pytest.fixture
def gateway(fail_on_client_errors):
    gw = FakeGateway(today=datetime.now(ET).date())  # the source picks expiries from today's New York date
    host, port = gw.start_in_thread()
    yield gw, host, port
    gw.stop()


def _ib_window(make_window, host: str, port: int):
    return make_window(AppSettings(seed=3, ib_host=host, ib_port=port, ib_client_id=40), source="ib")


def test_source_ib_streams_the_chain_and_says_what_is_subscribed(gateway, make_window, qtbot, run_async):
    _, host, port = gateway
    window = _ib_window(make_window, host, port)
    run_async(window.start_feed(), timeout=20)
    qtbot.waitUntil(lambda: window.feed.kind is SourceKind.IB and window.feed.last_batch is not None, timeout=10_000)
    source = window.feed.source
    assert source.status.state is SourceState.RUNNING
    note = window.panels["chain"].source_label
    qtbot.waitUntil(lambda: note.text() == source.subscriptions().text, timeout=5_000)
    assert note.text().startswith("IB: 98 of ") and "contracts subscribed (ticker limit 99)" in note.text()
    assert note.isVisible()
    toolbar = window.toolbar
    assert SourceKind(toolbar.source_combo.currentData()) is SourceKind.IB
    assert not toolbar.speed_combo.isVisible()  # a live market has no speed
    assert len(window.feed.last_batch.snapshot) == 98
    toolbar.source_requested.emit(SourceKind.SIM, "")  # back to the simulator: the IB connection is closed
    qtbot.waitUntil(lambda: window.feed.kind is SourceKind.SIM and window.feed.source.running, timeout=10_000)
    qtbot.waitUntil(lambda: toolbar.speed_combo.isVisible() and not note.isVisible(), timeout=5_000)
    assert not source.connection.ib.isConnected()


def test_unreachable_tws_is_one_status_line_and_the_app_runs_on(make_window, qtbot, run_async,
                                                               fail_on_client_errors):
    fail_on_client_errors.allow("API connection failed", "Make sure API port")
    window = _ib_window(make_window, "127.0.0.1", 1)  # nothing listens on port 1
    run_async(window.start_feed(), timeout=20)
    status = window.feed.source.status
    assert status.state is SourceState.ERROR and "\n" not in status.message
    assert status.message.startswith("IB market data: cannot reach TWS/IB Gateway at 127.0.0.1:1")
    window.toolbar.source_requested.emit(SourceKind.SIM, "")
    qtbot.waitUntil(lambda: window.feed.kind is SourceKind.SIM and window.feed.last_batch is not None,
                    timeout=10_000)


def test_ib_settings_and_the_command_line():
    assert parse_args(["--source", "ib"]).source == "ib"
    s = ib_data_settings(AppSettings(ib_host="10.0.0.5", ib_port=4002, ib_client_id=9, ib_account="DU7"))
    # its own client id beside the order connection's (TWS refuses an id in use)
    assert (s.host, s.port, s.client_id, s.account) == ("10.0.0.5", 4002, 10, "DU7")
    assert not s.live_allowed
    with pytest.raises(SettingsError, match="IB port 0 is not a TCP port"):
        AppSettings(ib_port=0)


@pytest.mark.slow
def test_self_test_on_ib_market_data(gateway, tmp_path):
    """The app as started from the command line: its loop must be the one the IB client library finds through
    asyncio's policy (a Runner with a loop factory leaves it unset: "attached to a different loop")."""
    gw, host, port = gateway
    (tmp_path / "settings.ini").write_text(f"[settings]\nib_host={host}\nib_port={port}\nib_client_id=43\n")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", SPX_TERMINAL_HOME=str(tmp_path))
    stop = threading.Event()

    def walk() -> None:  # a live market: the self-test wants the feed to keep flowing
        step = 0
        while not stop.wait(0.5):
            step += 1
            gw.move_market(spot=5800.0 + (step % 7) * 0.4)

    mover = threading.Thread(target=walk, daemon=True)
    mover.start()
    try:
        result = subprocess.run([sys.executable, "-m", "app.main", "--source", "ib", "--self-test", "60"], env=env,
                                check=False, capture_output=True, text=True, timeout=180)
    finally:
        stop.set()
        mover.join(5)
    out = result.stdout
    assert result.returncode == 0, f"exit {result.returncode}\n{out}\n{result.stderr[-3000:]}"
    assert "PASS feed: IB running" in out and "98 quotes" in out and "PASS chain" in out, out
    # on the wall clock: a round trip in market hours, else the line says the market is closed (never a FAIL)
    assert "PASS trading: paper order" in out or "PASS trading: not checked: market closed" in out, out
