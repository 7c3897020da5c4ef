"""The simulator's defaults against the real SPXW chain of 2019-06-26 15:45 ET (Cboe DataShop file).

Both chains are measured by the same code (:func:`chain_metrics`: parity forwards, Black-76 IVs of
out-of-the-money mids, 30-day interpolation, spreads). The simulator runs with its defaults except the
start instant and the index level, set to the file's. Measured when written (seed 7):

    real: 30d ATM IV 14.06%, IV(0.9F)-IV(F) +9.07 pts, RR25 +4.91 pts; near-money rel. spread
          0-7d 0.029, 8-60d 0.012, 61d+ 0.008; OTM abs. spread <3 0.10, 3-10 0.20, 10-50 0.30, 50+ 0.70
    sim:  30d ATM IV 14.11%, IV(0.9F)-IV(F) +8.86 pts, RR25 +5.23 pts; near-money rel. spread
          0-7d 0.032, 8-60d 0.010, 61d+ 0.010; OTM abs. spread <3 0.10, 3-10 0.20, 10-50 0.30, 50+ 0.70
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from spx_core.domain.calendar import ET
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.marketdata.simulator.calibration import chain_metrics

pytestmark = pytest.mark.shared_data

QUOTE_TIME = datetime(2019, 6, 26, 15, 45, tzinfo=ET)


def _real_snapshot(path) -> ChainSnapshot:
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(path, encoding="utf-8-sig")
    spot = float((df.underlying_bid_1545.iloc[0] + df.underlying_ask_1545.iloc[0]) / 2)
    return ChainSnapshot.from_columns(
        underlying="SPX", time=QUOTE_TIME, underlying_price=spot, root=np.full(len(df), "SPXW"),
        expiry=pd.to_datetime(df.expiration).to_numpy().astype("datetime64[D]"),
        strike=df.strike.to_numpy(dtype=float), is_call=df.option_type.to_numpy(), bid=df.bid_1545.to_numpy(),
        ask=df.ask_1545.to_numpy(), bid_size=df.bid_size_1545.to_numpy(), ask_size=df.ask_size_1545.to_numpy(),
        volume=df.trade_volume.to_numpy(), open_interest=df.open_interest.to_numpy())


@pytest.fixture(scope="module")
def metrics(request):
    from tests.conftest import SHARED_DATA

    path = SHARED_DATA / "cboe_datashop" / "spxw20190626.csv"
    if not path.is_file():
        pytest.skip(f"real chain {path} is absent")
    real = chain_metrics(_real_snapshot(path))
    market = SimulatedMarket(SimulatorConfig(start=QUOTE_TIME, spot=real.spot))
    for _ in range(30):  # let the quotes go through a few refresh cycles
        market.advance(1.0)
    sim = chain_metrics(market.snapshot())
    print("\nreal:", real.as_text(), "\nsim: ", sim.as_text())
    return real, sim


def test_real_file_measures_as_expected(metrics, shared_data):
    real, _ = metrics
    assert real.spot == pytest.approx(2918.11)
    assert 0.12 < real.atm_iv_30d < 0.16
    assert real.skew_90_30d > 0.05 and real.rr25_30d > 0.02


def test_30_day_atm_vol_within_one_vol_point(metrics, shared_data):
    real, sim = metrics
    assert sim.atm_iv_30d == pytest.approx(real.atm_iv_30d, abs=0.01)


def test_30_day_skew_within_one_and_a_half_vol_points(metrics, shared_data):
    real, sim = metrics
    assert sim.skew_90_30d == pytest.approx(real.skew_90_30d, abs=0.015)
    assert sim.rr25_30d == pytest.approx(real.rr25_30d, abs=0.015)


@pytest.mark.parametrize("bucket", ["0-7d", "8-60d", "61d+"])
def test_near_money_relative_spreads_within_a_factor_of_one_and_a_half(metrics, shared_data, bucket):
    real, sim = metrics
    ratio = sim.rel_spread_near[bucket] / real.rel_spread_near[bucket]
    assert 1 / 1.5 <= ratio <= 1.5, (bucket, sim.rel_spread_near, real.rel_spread_near)


@pytest.mark.parametrize("bucket, tolerance", [("<3", 0.05), ("3-10", 0.1), ("10-50", 0.1), ("50+", 0.3)])
def test_out_of_the_money_spreads_by_price_within_a_tick_or_two(metrics, shared_data, bucket, tolerance):
    real, sim = metrics
    assert sim.abs_spread_otm[bucket] == pytest.approx(real.abs_spread_otm[bucket], abs=tolerance + 1e-9)


def test_zero_bid_share_is_realistic(metrics, shared_data):
    real, sim = metrics
    assert 0.3 * real.zero_bid_share < sim.zero_bid_share < 2 * real.zero_bid_share
