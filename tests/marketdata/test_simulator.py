"""SimulatedMarket: determinism, what is listed, intraday clock, roll-off/relisting, quotes on the tick grid."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pytest

from spx_core.domain.calendar import ET, default_calendar, from_ns, to_ns
from spx_core.domain.contracts import ROOTS, Root
from spx_core.domain.quotes import QuoteFlag
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig, SimulatorConfigError, SurfaceParams

OPEN = datetime(2025, 3, 12, 9, 30, tzinfo=ET)  # a Wednesday


@pytest.fixture(scope="module")
def market_run():
    """One market advanced 120 one-second ticks; the batches kept (module-scoped: listing costs ~0.3 s)."""
    m = SimulatedMarket(SimulatorConfig(seed=11, start=OPEN))
    first = m.snapshot()
    batches = [m.advance(1.0) for _ in range(120)]
    return m, first, batches


def _atm_call(snap, expiry_slice) -> int:
    strikes = snap.strike[expiry_slice.rows][::2]
    return expiry_slice.start + 2 * int(np.argmin(np.abs(strikes - snap.underlying_price)))


def _run(config: SimulatorConfig, ticks: int, seconds: float = 1.0) -> list[str]:
    m = SimulatedMarket(config)
    return [m.snapshot().checksum] + [m.advance(seconds).snapshot.checksum for _ in range(ticks)]


def test_same_seed_and_start_give_identical_snapshots():
    cfg = SimulatorConfig(seed=42, start=OPEN + timedelta(hours=1))
    assert _run(cfg, 30) == _run(cfg, 30)


def test_different_seed_or_start_give_different_paths():
    base = _run(SimulatorConfig(seed=42, start=OPEN), 5)
    assert _run(SimulatorConfig(seed=43, start=OPEN), 5)[1:] != base[1:]
    assert _run(SimulatorConfig(seed=42, start=OPEN + timedelta(minutes=1)), 5)[0] != base[0]


def test_chain_lists_what_spx_lists(market_run):
    _, snap, _ = market_run
    cal = default_calendar()
    listed = {(s.root, s.expiry) for s in snap.expiries()}
    expected = {(r, e) for r, e in cal.listed_expiries(OPEN.date())}
    assert listed == expected
    assert (Root.SPXW, OPEN.date()) in listed  # 0DTE
    assert (Root.SPX, date(2025, 3, 21)) in listed  # AM monthly (third Friday)
    assert (Root.SPXW, date(2025, 3, 31)) in listed  # quarterly
    assert max(e for _, e in listed) >= OPEN.date() + timedelta(days=365)
    assert 15_000 <= len(snap) <= 20_000


def test_strikes_are_5_points_near_the_money_and_wider_out(market_run):
    _, snap, _ = market_run
    zero_dte = next(s for s in snap.expiries() if s.expiry == OPEN.date())
    strikes = np.unique(snap.strike[zero_dte.rows])
    near = strikes[np.abs(strikes - snap.underlying_price) < 100]
    assert np.all(np.diff(near) == 5)
    far = strikes[strikes < snap.underlying_price * 0.95]
    assert len(far) and np.all(far % 25 == 0)
    longest = snap.expiries()[-1]
    assert np.all(snap.strike[longest.rows] % 25 == 0)
    assert np.ptp(snap.strike[longest.rows]) > 2 * np.ptp(snap.strike[zero_dte.rows])  # range grows with sqrt(T)


def test_quotes_sit_on_the_tick_grid_and_are_not_crossed(market_run):
    _, _, batches = market_run
    snap = batches[-1].snapshot
    bid, ask = snap.bid, snap.ask
    for px in (bid, ask):
        cents = np.rint(px * 100).astype(np.int64)
        assert np.all(np.abs(px * 100 - cents) < 1e-6)
        assert np.all(np.where(px < 3, cents % 5, cents % 10) == 0)
    assert np.all(ask > bid)
    assert not np.any(snap.flags & (QuoteFlag.CROSSED | QuoteFlag.OUTSIDE_BOUNDS | QuoteFlag.STALE))
    zero_bid = (snap.flags & QuoteFlag.ZERO_BID) > 0
    assert 0.005 < zero_bid.mean() < 0.2
    assert np.all(snap.ask[zero_bid] <= 0.3)  # zero bids only on cheap, far out-of-the-money options
    assert np.all(snap.bid_size[zero_bid] == 0) and np.all(snap.bid_size[~zero_bid] > 0)


def test_put_call_parity_holds_within_the_spreads(market_run):
    m, _, batches = market_run
    snap = batches[-1].snapshot
    cfg = m.config
    t = snap.time_to_expiry()
    mid = snap.mid
    calls, puts = np.flatnonzero(snap.is_call), np.flatnonzero(~snap.is_call)
    assert np.array_equal(snap.strike[calls], snap.strike[puts])
    lhs = mid[calls] - mid[puts]
    fwd = m.spot * np.exp((cfg.rate - cfg.div_yield) * t[calls])
    rhs = np.exp(-cfg.rate * t[calls]) * (fwd - snap.strike[calls])
    slack = 0.5 * ((snap.ask - snap.bid)[calls] + (snap.ask - snap.bid)[puts]) + 0.1
    assert np.all(np.abs(lhs - rhs) <= slack)


def test_batches_carry_only_changed_rows(market_run):
    _, first, batches = market_run
    assert batches[0].layout_changed and len(batches[0].changed) == len(first)
    later = batches[1:]
    assert not any(b.layout_changed for b in later)
    sizes = np.array([len(b.changed) for b in later])
    assert 0 < np.median(sizes) < 0.6 * len(first)  # far strikes do not requote every second
    for prev, cur in zip(batches[1:], batches[2:]):
        a, b = prev.snapshot, cur.snapshot
        differs = np.zeros(len(b), bool)
        for name in ("bid", "ask", "bid_size", "ask_size", "volume", "last", "quote_time"):
            x, y = a.columns[name], b.columns[name]
            differs |= ~((x == y) | (np.isnan(x) & np.isnan(y)) if x.dtype.kind == "f" else (x == y))
        assert set(np.flatnonzero(differs)) <= set(cur.changed.tolist())
        assert np.all(np.diff(cur.changed) > 0)


def test_liquid_strikes_requote_more_often_than_far_ones(market_run):
    _, first, batches = market_run
    counts = np.zeros(len(first))
    for b in batches[1:]:
        counts[b.changed] += 1
    money = np.abs(np.log(first.strike / first.underlying_price))
    near = (money < 0.01) & (first.time_to_expiry() < 30 / 365)
    far = money > 0.15
    assert counts[near].mean() > 3 * counts[far].mean()


def test_volume_and_open_interest_concentrate_near_the_money_and_round_strikes(market_run):
    _, _, batches = market_run
    snap = batches[-1].snapshot
    assert snap.volume.sum() > 0
    money = np.abs(np.log(snap.strike / snap.underlying_price))
    short = snap.time_to_expiry() < 60 / 365
    # real chain (2019-06-26, < 60 days): OI near/far ~2x, volume ~18x; 100-point strikes ~5x odd strikes
    assert snap.open_interest[short & (money < 0.03)].mean() > 1.5 * snap.open_interest[short & (money > 0.15)].mean()
    assert snap.volume[short & (money < 0.03)].mean() > 3 * snap.volume[short & (money > 0.15)].mean()
    near = money < 0.05
    round_100 = near & (snap.strike % 100 == 0)
    odd = near & (snap.strike % 25 != 0)
    assert snap.open_interest[round_100].mean() > 2 * snap.open_interest[odd].mean()


def test_zero_dte_decays_through_the_day_and_rolls_off_at_the_close():
    m = SimulatedMarket(SimulatorConfig(seed=5, start=datetime(2025, 3, 12, 15, 0, tzinfo=ET)))
    first = m.snapshot()
    zdte = next(s for s in first.expiries() if s.expiry == date(2025, 3, 12))
    t0 = first.time_to_expiry()[zdte.start]
    assert t0 == pytest.approx(3600 / (365 * 86400))
    batch = m.advance(3599.0)  # 15:59:59
    snap = batch.snapshot
    z = next(s for s in snap.expiries() if s.expiry == date(2025, 3, 12))
    assert snap.time_to_expiry()[z.start] == pytest.approx(1 / (365 * 86400))
    straddle_then = first.mid[_atm_call(first, zdte)] + first.mid[_atm_call(first, zdte) + 1]
    straddle_now = snap.mid[_atm_call(snap, z)] + snap.mid[_atm_call(snap, z) + 1]
    assert straddle_now < 0.5 * straddle_then  # time value melts into the close
    close = m.advance(60.0)  # stops at the 16:00 close; the same-day expiry rolls off
    assert from_ns(close.snapshot.time_ns) == datetime(2025, 3, 12, 16, 0, tzinfo=ET)
    assert close.layout_changed
    assert date(2025, 3, 12) not in {s.expiry for s in close.snapshot.expiries()}
    assert not m.is_open


def test_closed_market_skips_to_next_open_and_relists():
    m = SimulatedMarket(SimulatorConfig(seed=5, start=datetime(2025, 3, 14, 15, 59, 30, tzinfo=ET)))  # Friday
    keys_before = {(s.root, s.expiry) for s in m.snapshot().expiries()}
    m.advance(30.0)  # close
    reopened = m.advance(1.0)
    assert reopened.layout_changed
    assert from_ns(reopened.snapshot.time_ns) == datetime(2025, 3, 17, 9, 30, tzinfo=ET)  # Monday open
    keys_after = {(s.root, s.expiry) for s in reopened.snapshot.expiries()}
    assert keys_after == set(default_calendar().listed_expiries(date(2025, 3, 17)))
    assert (Root.SPXW, date(2025, 3, 14)) in keys_before - keys_after  # Friday's expiry is gone
    assert max(e for _, e in keys_after - keys_before) > date(2025, 4, 20)  # a new daily listed 45 days out


def test_start_outside_hours_moves_to_the_next_open():
    m = SimulatedMarket(SimulatorConfig(seed=1, start=datetime(2025, 7, 3, 20, 0, tzinfo=ET)))
    # July 4th is a holiday: next open is Monday July 7th
    assert from_ns(m.now_ns) == datetime(2025, 7, 7, 9, 30, tzinfo=ET)


def test_demo_mode_runs_through_the_night_and_relists_at_midnight():
    m = SimulatedMarket(SimulatorConfig(seed=2, start=datetime(2025, 3, 12, 23, 59, tzinfo=ET), market_hours=False))
    assert m.is_open
    b1 = m.advance(30.0)
    assert not b1.layout_changed or b1.sequence == 0
    b2 = m.advance(60.0)  # 00:00:30 on March 13th
    assert b2.layout_changed
    assert {s.expiry for s in b2.snapshot.expiries()} >= {date(2025, 3, 13)}
    assert date(2025, 3, 12) not in {s.expiry for s in b2.snapshot.expiries()}


def test_advance_zero_changes_nothing_and_negative_is_rejected(market_run):
    m = SimulatedMarket(SimulatorConfig(seed=9, start=OPEN))
    b0 = m.advance(0.0)
    assert b0.layout_changed and b0.snapshot is m.snapshot()
    b1 = m.advance(0.0)
    assert len(b1.changed) == 0 and b1.snapshot is b0.snapshot
    with pytest.raises(ValueError, match="seconds"):
        m.advance(-1.0)


def test_rate_and_dividend_yield_move_the_forward():
    lo = SimulatedMarket(SimulatorConfig(seed=3, start=OPEN, rate=0.0, div_yield=0.0)).snapshot()
    hi = SimulatedMarket(SimulatorConfig(seed=3, start=OPEN, rate=0.05, div_yield=0.0)).snapshot()
    def longest_at(snap, strike):
        e = snap.expiries()[-1]
        return e.start + 2 * int(np.flatnonzero(snap.strike[e.rows][::2] == strike)[0])

    i, j = longest_at(lo, 5800.0), longest_at(hi, 5800.0)
    assert lo.expiries()[-1].expiry == hi.expiries()[-1].expiry
    assert hi.mid[j] > lo.mid[i] + 100  # carry lifts the long-dated ATM call ...
    assert hi.mid[j + 1] < lo.mid[i + 1] - 100  # ... and lowers the put


@pytest.mark.parametrize("kwargs, match", [
    ({"seed": -1}, "seed"), ({"speed": 0}, "speed"), ({"tick_seconds": 0}, "tick_seconds"),
    ({"start": datetime(2025, 1, 2, 10)}, "naive"), ({"rate": 4.0}, "0.04"),
])
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(SimulatorConfigError, match=match):
        SimulatorConfig(**kwargs)


def test_surface_params_enforce_no_butterfly_condition():
    with pytest.raises(SimulatorConfigError, match="Gatheral-Jacquier"):
        SurfaceParams(rho=-0.9, eta=1.5)


def test_roots_are_spx_am_and_spxw_pm(market_run):
    _, snap, _ = market_run
    roots = {ROOTS[i] for i in np.unique(snap.root)}
    assert roots == {Root.SPX, Root.SPXW}
    am = snap.is_am
    assert np.all(snap.root[am] == ROOTS.index(Root.SPX))
    # an AM monthly expires at 09:30 on its date, a PM weekly at 16:00
    inst = snap.expiry_instants_ns()
    spx = int(np.flatnonzero(am)[0])
    assert from_ns(int(inst[spx])).astimezone(ET).hour == 9
    assert to_ns(datetime(2025, 3, 12, 16, 0, tzinfo=ET)) == int(inst[0])


def test_bigger_index_moves_requote_more_rows(market_run):
    _, _, batches = market_run
    moves = [abs(b.snapshot.underlying_price - a.snapshot.underlying_price) for a, b in zip(batches, batches[1:])]
    counts = [len(b.changed) for b in batches[1:]]
    ranks = lambda x: np.argsort(np.argsort(x))  # noqa: E731
    assert np.corrcoef(ranks(moves), ranks(counts))[0, 1] > 0.4  # Spearman rank correlation


def test_a_minute_step_requotes_most_of_the_chain():
    m = SimulatedMarket(SimulatorConfig(seed=12, start=OPEN))
    m.advance(1.0)
    batch = m.advance(60.0)
    assert not batch.layout_changed
    assert len(batch.changed) > 0.8 * len(batch.snapshot)
