"""The chain panel shows SPY (the simulator's companion chain) with American-model IVs and greeks."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from app.panels.base import coalesce
from app.panels.chain_panel import ChainPanel, compute_expiry_chain
from spx_core.domain import ET, Root
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.marketdata.simulator.surface import atm_total_variance, ssvi_total_variance
from spx_core.pricing.american import american_price
from spx_core.surface.chain_iv import american_forward_config

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")

START = datetime(2025, 3, 12, 10, 30, tzinfo=ET)


@pytest.fixture(scope="module")
def sim():
    market = SimulatedMarket(SimulatorConfig(seed=11, start=START))
    return market, [market.advance(1.0) for _ in range(4)]


def _populated(panel, qtbot, underlying: str, batch) -> None:
    time_ns = batch.for_underlying(underlying).snapshot.time_ns
    qtbot.waitUntil(lambda: panel.model.snapshot is not None and panel.model.snapshot.underlying == underlying
                    and panel.model.snapshot.time_ns == time_ns, timeout=15_000)


def test_spy_iv_inverts_the_american_model_near_the_simulators_surface(sim):
    """What the panel computes for SPY: American IVs, on SPX's discount factor, that reprice the mids."""
    market, batches = sim
    batch = batches[-1]
    spy = batch.for_underlying("SPY").snapshot
    cfg = market.config
    for days in (7, 28, 91, 189):
        sl = min(spy.expiries(), key=lambda s: abs((s.expiry - START.date()).days - days))
        res = compute_expiry_chain(spy, (sl.root, sl.expiry), None, None, batch.snapshot)
        civ = res.served.civ
        assert civ.american.all() and civ.spot == spy.underlying_price
        fwd = civ.forwards[0]
        # the discount factor is SPX parity's (SPY's own slope is biased by the put's early-exercise premium)
        ref_rate = american_forward_config(batch.snapshot, fwd.t).fallback_rate
        assert abs(ref_rate - cfg.rate) < 0.015
        assert fwd.discount == pytest.approx(np.exp(-ref_rate * fwd.t), rel=1e-12)
        c = civ.snapshot.columns
        mid = 0.5 * (c["bid"] + c["ask"])
        near = np.abs(civ.k) < 0.03
        ok = near & np.isfinite(civ.iv_mid)
        assert ok.sum() >= 10
        # the IV reprices the mid with the same model and inputs
        rate = -np.log(civ.discount[ok]) / civ.t[ok]
        q = rate - np.log(civ.forward[ok] / civ.spot) / civ.t[ok]
        back = american_price(civ.spot, c["strike"][ok], civ.t[ok], rate, q, civ.iv_mid[ok], c["is_call"][ok])
        np.testing.assert_allclose(back, mid[ok], atol=1e-8)
        # and sits near the simulator's own surface (tick rounding and SPY's forward bias aside)
        times, amounts = market.spy.dividends(spy.time_ns)
        t = civ.t[0]
        pv = np.sum(amounts[times < t] * np.exp(-cfg.rate * times[times < t]))
        forward = (market.spy.spot - pv) * np.exp(cfg.rate * t)
        theta = atm_total_variance(variance=market.variance, t=np.array([t]), process=cfg.process,
                                   surface=cfg.surface)
        truth = np.sqrt(ssvi_total_variance(k=np.log(c["strike"][ok] / forward), theta=theta,
                                            surface=cfg.surface) / t)
        # measured: medians of 0.01-0.05 vol points, forward within 0.15 of SPY's (cash dividends, 6 months)
        assert np.median(np.abs(civ.iv_mid[ok] - truth)) < 0.001, sl.expiry  # 0.1 vol points
        assert abs(civ.forwards[0].forward - forward) < 0.3, sl.expiry
        # greeks are the American model's (bumped model prices), signed as they should be
        assert np.all(res.served.delta[c["is_call"] & ok] > 0) and np.all(res.served.delta[~c["is_call"] & ok] < 0)
        assert np.all(res.served.gamma[ok] > 0) and np.all(res.served.vega[ok] > 0)


def test_chain_panel_switches_to_spy_in_the_window(make_window, qtbot, run_async):
    window = make_window()
    run_async(window.start_feed(), timeout=30)
    panel: ChainPanel = window.panels["chain"]
    qtbot.waitUntil(lambda: panel.self_test_status()[0], timeout=30_000)
    assert panel.underlying() == "SPX" and panel.model.block.root in (Root.SPX, Root.SPXW)
    panel.underlying_combo.setCurrentText("SPY")
    qtbot.waitUntil(lambda: panel.model.snapshot is not None and panel.model.snapshot.underlying == "SPY",
                    timeout=30_000)
    qtbot.waitUntil(lambda: panel.self_test_status()[0], timeout=30_000)
    block = panel.model.block
    assert block.root is Root.SPY
    assert "SPY" in panel.expiry_combo.currentText() and "American" in panel.info_label.text()
    spx_price = window.feed.last_batch.snapshot.underlying_price
    assert abs(block.underlying / spx_price - 0.1) < 0.002  # SPY ~ SPX/10
    lo, hi = panel.model.window()
    strikes = block.strikes[lo:hi]
    assert np.all(np.diff(strikes[np.abs(strikes - block.underlying) < 5]) == 1.0)  # $1 strikes at the money
    ok, message = panel.health()
    assert ok and "SPY" in message, message
    # and back: the SPX chain returns with SPX's expiries
    panel.set_underlying("SPX")
    qtbot.waitUntil(lambda: panel.model.snapshot is not None and panel.model.snapshot.underlying == "SPX",
                    timeout=30_000)
    assert panel.underlying_combo.currentText() == "SPX"
    assert "SPX" in panel.expiry_combo.currentText()


def test_spy_without_a_companion_says_so(qtbot, sim):
    _, batches = sim
    panel = ChainPanel(strike_window=21, refresh_hz=50.0)
    qtbot.addWidget(panel)
    panel.show()
    try:
        spx_only = batches[0].__class__(batches[0].snapshot, batches[0].changed, True, 0)  # e.g. a replay
        panel.set_underlying("SPY")
        panel.on_batch(spx_only)
        qtbot.waitUntil(lambda: "lists no SPY" in panel.info_label.text(), timeout=10_000)
        for batch in batches:  # a burst inside one refresh interval: coalesced, the SPY companion kept
            panel.on_batch(batch)
        _populated(panel, qtbot, "SPY", batches[-1])
        assert panel.model.block.root is Root.SPY
    finally:
        panel.shutdown()


def test_coalesced_batches_keep_the_newest_companions(sim):
    _, batches = sim
    assert coalesce(batches[1], batches[2]).for_underlying("SPY") is batches[2].companions[0]
    assert coalesce(batches[0], batches[3]).for_underlying("SPY") is batches[3].companions[0]  # layout change


def test_whole_spy_chain_iv_with_spx_as_reference(sim):
    """``chain_iv(spy, reference=spx)``: every SPY expiry on SPX parity's rate, American IVs near the surface."""
    from spx_core.surface.chain_iv import chain_iv

    market, batches = sim
    spy = batches[-1].for_underlying("SPY").snapshot
    own = chain_iv(spy)
    civ = chain_iv(spy, reference=batches[-1].snapshot)
    rates = np.array([f.rate for f in civ.forwards if f.t > 0])
    assert np.ptp(rates) < 1e-9 and abs(rates[0] - market.config.rate) < 0.015  # one rate: SPX parity's
    # SPY's own parity slopes imply far too low a rate: early exercise steepens them
    assert max(f.rate for f in own.forwards if f.t > 0.2) < market.config.rate - 0.02
    near = (np.abs(civ.k) < 0.02) & (civ.t > 7 / 365)
    assert civ.american.all() and np.isfinite(civ.iv_mid[near]).mean() > 0.95
    solved = civ.iv_mid[near & np.isfinite(civ.iv_mid)]
    assert np.all((solved > 0.05) & (solved < 0.4))


def test_spy_view_works_in_a_replay_of_a_simulated_session(qtbot, tmp_path):
    """``spx-data simulate`` records SPY beside SPX; the replay brings it back as the companion."""
    import asyncio

    from spx_core.cli.simulate_command import record_session
    from spx_core.marketdata.replay import ReplaySource
    from spx_core.marketdata.source import SourceState
    from spx_core.storage import Store

    with Store.open(tmp_path / "rec.sqlite") as store:
        record_session(store, SimulatedMarket(SimulatorConfig(seed=11, start=START)), "rec", 3, replace=False)
        batches, states = [], []

        async def play():
            src = ReplaySource(store, session="rec", speed=0)
            src.subscribe(on_batch=batches.append, on_status=states.append)
            await src.start()
            while not any(s.state is SourceState.FINISHED for s in states):
                await asyncio.sleep(0.005)
            await src.stop()

        asyncio.run(asyncio.wait_for(play(), 30))
    assert [b.snapshot.underlying for b in batches] == ["SPX"] * 3  # what every other consumer reads
    panel = ChainPanel(strike_window=21, refresh_hz=50.0)
    qtbot.addWidget(panel)
    panel.show()
    try:
        panel.set_underlying("SPY")
        for batch in batches:
            panel.on_batch(batch)
        _populated(panel, qtbot, "SPY", batches[-1])
        assert panel.model.block.root is Root.SPY and "lists no SPY" not in panel.info_label.text()
        spy = batches[-1].for_underlying("SPY").snapshot
        assert panel.model.block.underlying == pytest.approx(spy.underlying_price)  # the recorded SPY chain
        panel.set_underlying("SPX")  # and back to the replay's index chain
        _populated(panel, qtbot, "SPX", batches[-1])
    finally:
        panel.shutdown()
