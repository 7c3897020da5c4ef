"""The backtest TOML config: the documented example loads and maps onto the live objects; every bad key or value
is one line naming the key; the canonical TOML round-trips and names the config; overrides; data ranges."""

from __future__ import annotations

import dataclasses
import pickle
import tomllib
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from spx_core.automation.config import PriceMode, SizingMode
from spx_core.automation.presets import PRESETS
from spx_core.backtest.config import BacktestConfigError, fee_schedule, load_spec
from spx_core.cli.simulate_command import record_session
from spx_core.domain.calendar import ET, to_ns
from spx_core.domain.contracts import OptionContract, Right, Root
from spx_core.execution.fees import DEFAULT_FEES
from spx_core.execution.fill_model import FillMode, FillModel, LegQuotes
from spx_core.execution.orders import OrderType, Side
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.storage.store import Store
from spx_core.strategies.structure import Leg

EXAMPLE = Path(__file__).resolve().parents[2] / "resources" / "backtest" / "example.toml"
SESSION = '[data]\nsession = "s"\n'
MINIMAL = SESSION + '[strategy]\nstructure = "put-credit-vertical"\n'


def test_the_documented_example_maps_onto_the_live_objects():
    spec = load_spec(EXAMPLE)
    assert spec.name == "put credit vertical, 0.20 delta, 25 wide"
    assert (spec.data.start, spec.data.end, spec.data.session) == (date(2018, 1, 2), date(2018, 2, 28), None)
    s = spec.strategy
    assert s.name == "pcs 0.20d 25w" and s.structure == "put-credit-vertical"
    assert dict(s.scan) == {"short_delta": 0.2, "widths": (25.0,), "dte": (0, 30)}
    assert s.entry.times == ("10:00",) and s.entry.window is None
    assert s.sizing.mode is SizingMode.FIXED and s.sizing.quantity == 1
    # fractions of the credit -> the monitor's percent; close_dte 0 = hold to expiry (no DTE exit)
    assert (s.exits.take_profit_pct, s.exits.stop_loss_pct, s.exits.close_dte) == (50.0, 100.0, None)
    assert s.price is PriceMode.NATURAL  # marketable: the fill model sets the price
    assert spec.fill == FillModel(mode=FillMode.MID, offset=0.30, per_leg=False)
    assert spec.bad_quote == "skip" and spec.starting_cash == 100_000.0 and spec.close_on_breaker is False
    assert spec.profile.name == "credit verticals" and spec.profile.max_open_trades == 1
    assert s.limit_profile == "credit verticals"
    assert spec.fees.commission_rate(0.01) == spec.fees.commission_rate(5.0) == 0.65


@pytest.mark.parametrize("root", list(Root))
@pytest.mark.parametrize("premium", [0.03, 0.5, 4.0])
def test_fees_per_contract_is_what_every_contract_pays(root, premium):
    contract = OptionContract(root, date(2024, 3, 15), 5000.0, Right.PUT)
    for total in (0.49, 0.02, 0.0):
        fees = fee_schedule(fees_per_contract=total)
        assert fees.fee_rate(contract, premium) == pytest.approx(total, abs=1e-12)
        assert fees.charges(contract, 3, premium)[1] == pytest.approx(3 * total, abs=1e-6)
    assert fee_schedule() is DEFAULT_FEES  # no [costs]: the paper broker's own schedule


def test_canonical_toml_round_trips_and_names_the_config_however_it_was_written():
    spec = load_spec(EXAMPLE)
    assert load_spec(spec.source_toml) == spec and load_spec(spec.source_toml).source_toml == spec.source_toml
    assert load_spec(spec.to_dict()) == spec
    assert pickle.loads(pickle.dumps(spec)) == spec  # a sweep worker process can be handed a spec
    assert tomllib.loads(spec.source_toml)["strategy"]["width"] == 25.0
    # the same config in another order, with ints for floats, TOML dates and max_open under [risk]
    text = ('name = "put credit vertical, 0.20 delta, 25 wide"\n'
            '[risk]\nmax_open = 1\nprofile = "credit verticals"\nstarting_cash = 100000\n'
            '[costs]\nfees_per_contract = 0.49\ncommission_per_contract = 0.65\n'
            '[fills]\nbad_quote = "skip"\nper = "package"\nspread_fraction = 0.3\nmodel = "mid"\n'
            '[exits]\nclose_dte = 0\nstop_loss = 1\ntake_profit = 0.5\n'
            '[strategy]\nquantity = 1\nentry_times = ["10:00"]\ndte_max = 30\ndte_min = 0\nwidth = 25\n'
            'short_delta = 0.2\nstructure = "put-credit-vertical"\nname = "pcs 0.20d 25w"\n'
            '[data]\nend = 2018-02-28\nstart = 2018-01-02\n')
    again = load_spec(text)
    assert again == spec and again.source_toml == spec.source_toml and again.config_sha256 == spec.config_sha256
    assert load_spec(text.replace("0.49", "0.5")).config_sha256 != spec.config_sha256


def test_a_preset_is_the_start_and_keys_override_it():
    base = PRESETS["credit verticals 3/5/7 DTE"]
    spec = load_spec(SESSION + '[strategy]\npreset = "credit verticals 3/5/7 DTE"\nshort_delta = 0.15\n'
                               '[exits]\ntake_profit = false\n')
    s = spec.strategy
    assert s.name == base.name and s.entry == base.entry and s.sizing == base.sizing
    assert dict(s.scan) == {**base.scan, "short_delta": 0.15}
    assert s.exits == dataclasses.replace(base.exits, take_profit_pct=None)
    assert spec.profile.name == base.limit_profile  # no [risk] profile: the strategy's own
    assert load_spec(MINIMAL + '[risk]\nprofile = "none"\n').profile is None
    window = load_spec(SESSION + '[strategy]\npreset = "credit verticals 3/5/7 DTE"\nentry_window = ["09:35", "10:00"]')
    assert window.strategy.entry.times == () and window.strategy.entry.window == ("09:35", "10:00")


def test_fill_models_and_costs():
    fill = load_spec(MINIMAL).fill
    assert fill.mode is FillMode.MID_OFFSET and fill.offset == 0.30  # the default: mid -/+ 0.30 x spread
    assert load_spec(MINIMAL + '[fills]\nmodel = "natural"\n').fill.mode is FillMode.NATURAL
    k = load_spec(MINIMAL + '[fills]\nmodel = "spread-fraction"\nspread_fraction = 0.1\n').fill
    assert (k.mode, k.offset) == (FillMode.MID_OFFSET, 0.1)
    fees = load_spec(MINIMAL + '[costs]\ncommission_per_contract = 0.5\norder_minimum = 0\n').fees
    assert (fees.commission, fees.commission_low, fees.order_minimum, fees.cboe_fee) == (0.5, 0.5, 0.0, 0.45)
    risk = load_spec(MINIMAL + '[risk]\nprofile = "iron condor"\nmax_open = 3\nstarting_cash = 25000\n'
                               'close_on_breaker = true\n')
    assert risk.profile.max_open_trades == 3 and risk.profile.max_delta == 200.0 and risk.starting_cash == 25_000.0
    assert risk.close_on_breaker is True


def test_per_leg_fills_put_each_leg_on_its_own_tick_adverse_side():
    # a put credit vertical SOLD (order convention: the SELL sells the +1 leg and buys the -1 leg)
    legs = [Leg(OptionContract(Root.SPXW, date(2024, 3, 15), 5000.0, Right.PUT), 1),
            Leg(OptionContract(Root.SPXW, date(2024, 3, 15), 4975.0, Right.PUT), -1)]
    quotes = LegQuotes(bid=np.array([2.00, 1.00]), ask=np.array([2.30, 1.20]), bid_size=np.array([10, 10]),
                       ask_size=np.array([10, 10]), flags=np.zeros(2, np.uint16), rows=np.array([0, 1]),
                       books=(("SPX", "x"), ("SPX", "x")), missing=("", ""))
    fills = {per: load_spec(MINIMAL + f'[fills]\nper = "{per}"\nspread_fraction = 0.1\n').fill
             for per in ("package", "leg")}
    assert (fills["package"].per_leg, fills["leg"].per_leg) == (False, True)
    prices = {per: fill.decide(legs, Side.SELL, quotes, order_type=OrderType.LMT, limit=0.5, resting=False,
                               wanted=1).price for per, fill in fills.items()}
    # sold 2.15 - 0.03 = 2.12 and bought 1.10 + 0.02 = 1.12: 1.00 as a package; legged, 2.10 - 1.15 = 0.95
    assert prices == {"package": pytest.approx(1.00), "leg": pytest.approx(0.95)}


def test_overrides_are_dotted_keys_validated_like_the_toml():
    spec = load_spec(EXAMPLE)
    other = spec.with_overrides({"strategy.short_delta": 0.1, "strategy.widths": [10, 25], "risk.max_open": 2})
    assert dict(other.strategy.scan)["short_delta"] == 0.1 and dict(other.strategy.scan)["widths"] == (10.0, 25.0)
    assert other.profile.max_open_trades == 2 and other.config_sha256 != spec.config_sha256
    assert other.with_overrides({"strategy.width": 5}).strategy.scan["widths"] == (5.0,)  # width replaces widths
    assert spec.with_overrides({"data.session": "s"}).data.session == "s"  # a session replaces the dates
    assert spec.with_overrides({"strategy.max_open": 4}).profile.max_open_trades == 4
    assert spec.with_overrides({}) == spec
    with pytest.raises(BacktestConfigError, match=r"^\[strategy\] short_delta: 1.5 must be in \(0, 1\)"):
        spec.with_overrides({"strategy.short_delta": 1.5})
    with pytest.raises(BacktestConfigError, match=r"^override 'strategy.delta': unknown key; use section.key"):
        spec.with_overrides({"strategy.delta": 0.1})


BAD = [
    ('[strategy]\nshort_delta = -0.2', r"^\[strategy\] short_delta: -0.2 must be in \(0, 1\)"),
    ('[strategy]\nshort_delta = [0.4, 0.2]', r"^\[strategy\] short_delta: \[0.4, 0.2\] must be a range"),
    ('[strategy]\nshort_delta = "x"', r'^\[strategy\] short_delta: "x" must be a number'),
    ('[strategy]\nwidth = 0', r"^\[strategy\] width: 0 must be in \(0, inf\)"),
    ('[strategy]\nwidth = 5\nwidths = [5]', r"^\[strategy\] width: give width or widths, not both"),
    ('[strategy]\nwidths = []', r"^\[strategy\] widths: \[\] must be a non-empty list, e.g. \[10, 25\]"),
    ('[strategy]\ndte_min = -1', r"^\[strategy\] dte_min: -1 must be a whole number >= 0"),
    ('[strategy]\ndte_min = 9\ndte_max = 3', r"^\[strategy\] dte_min: 9 is above dte_max 3; swap them"),
    ('[strategy]\ndte_days = [60]', r"^\[strategy\] dte_days: 60 is outside dte_min..dte_max 0..45"),
    ('[strategy]\nentry_times = ["25:00"]', r"^\[strategy\] entry_times\[0\]: '25:00' is not a time HH:MM"),
    ('[strategy]\nentry_times = ["08:00"]', r"^\[strategy\] entry_times\[0\]: 08:00 ET is outside the session"),
    ('[strategy]\nentry_times = "10:00"', r'^\[strategy\] entry_times: "10:00" must be a non-empty list, e.g.'),
    ('[strategy]\nentry_window = ["10:00"]', r"^\[strategy\] entry_window: \['10:00'\] must be a list of two"),
    ('[strategy]\nquantity = 0', r"^\[strategy\] quantity: 0 must be a whole number >= 1"),
    ('[strategy]\nquantity = 1.5', r"^\[strategy\] quantity: 1.5 must be a whole number >= 1"),
    ('[strategy]\nmax_open = -1', r"^\[strategy\] max_open: -1 must be a whole number >= 0"),
    ('[strategy]\nprice = "best"', r'^\[strategy\] price: "best" is not one of: mid, natural, mid_offset'),
    ('[strategy]\nstructure = "strangle"', r'^\[strategy\] structure: "strangle" is not one of: put-credit-vert'),
    ('[strategy]\npreset = "nope"', r'^\[strategy\] preset: "nope" is not one of: credit verticals 3/5/7 DTE'),
    ('[strategy]\nshortdelta = 0.2', r"^\[strategy\] shortdelta: unknown key; \[strategy\] takes: preset, name,"),
    ('[exits]\ntake_profit = 50', r"^\[exits\] take_profit: 50 must be in \(0, 1\]"),
    ('[exits]\ntake_profit = true', r"^\[exits\] take_profit: true is not a value; give a number, or false"),
    ('[exits]\nstop_loss = 0', r"^\[exits\] stop_loss: 0 must be in \(0, inf\)"),
    ('[exits]\nclose_time = "17:00"', r"^\[exits\] close_time: 17:00 ET is outside the session"),
    ('[exits]\nregime_exit = 1', r"^\[exits\] regime_exit: 1 must be true or false"),
    ('[fills]\nmodel = "best"', r'^\[fills\] model: "best" is not one of: mid, spread-fraction, natural'),
    ('[fills]\nspread_fraction = 0.7', r"^\[fills\] spread_fraction: 0.7 must be in \[0, 0.5\]"),
    ('[fills]\nper = "order"', r'^\[fills\] per: "order" is not one of: package, leg'),
    ('[fills]\nbad_quote = "mid"', r'^\[fills\] bad_quote: "mid" is not one of: skip, surface, raw'),
    ('[costs]\nfees_per_contract = -1', r"^\[costs\] fees_per_contract: -1 must be in \[0, inf\)"),
    ('[costs]\ncommission = 1', r"^\[costs\] commission: unknown key; \[costs\] takes: commission_per_contract"),
    ('[risk]\nprofile = "yolo"', r"^\[risk\] profile: 'yolo' is not a limit profile; choose one of: 'standard'"),
    ('[risk]\nstarting_cash = 0', r"^\[risk\] starting_cash: 0 must be in \(0, inf\)"),
    ('[risk]\nclose_on_breaker = "yes"', r'^\[risk\] close_on_breaker: "yes" must be true or false'),
    ('[strategy]\nmax_open = 1\n[risk]\nmax_open = 2', (r"^\[risk\] max_open: given twice with different values "
                                                     r"\(as \[strategy\] max_open and as \[risk\] max_open\)")),
    ('[riks]\nprofile = "x"', r"^\[riks\]: unknown section; sections: \[data\], \[strategy\]"),
    ('short_delta = 0.2', r"^short_delta: belongs in a section: write it under \[strategy\]"),
    ('risk = "none"', r"^risk: 'none' must be a section: write \[risk\] and its keys under it"),
    ('nme = "x"', r"^nme: unknown top-level key; the top level takes: name and the sections"),
    ('[strategy]\nstructure = "spx-spy-pair"\nshort_delta = 0.2', r"^\[strategy\] scan: unknown field 'short_delta'"),
]


@pytest.mark.parametrize(("fragment", "message"), BAD, ids=[m.split(":")[0].strip("^\\") for _, m in BAD])
def test_every_bad_key_or_value_is_one_line_naming_it(fragment, message):
    if not fragment.startswith("["):  # top-level keys come before the first section
        text = fragment + "\n" + MINIMAL
    elif fragment.startswith("[strategy]") and "structure =" not in fragment and "preset =" not in fragment:
        text = SESSION + fragment.replace("[strategy]\n", '[strategy]\nstructure = "put-credit-vertical"\n', 1)
    else:
        text = (SESSION if fragment.startswith("[strategy]") else MINIMAL) + fragment
    with pytest.raises(BacktestConfigError, match=message) as err:
        load_spec(text)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("text", "message"), [
    ('[strategy]\nstructure = "bwb"', r'^\[data\] start: missing; give session = "NAME", or start and end'),
    ('[data]\nstart = "2018-01-02"\n[strategy]\nstructure = "bwb"', r"^\[data\] end: missing"),
    ('[data]\nsession = "s"\nstart = 2018-01-02\n[strategy]\nstructure = "bwb"', r"^\[data\]: give session, or"),
    ('[data]\nstart = "2018-02-30"\nend = "2018-03-01"', r'^\[data\] start: "2018-02-30" must be a date YYYY-MM-DD'),
    ('[data]\nstart = 2018-03-02\nend = 2018-03-01\n[strategy]\nstructure = "bwb"',
     r"^\[data\] end: 2018-03-01 is before start 2018-03-02; swap them"),
    (SESSION, r'^\[strategy\] structure: missing; give a scanner structure \(e.g. "put-credit-vertical"\)'),
    (SESSION + "[strategy\n", r"^the config is not valid TOML: .*line 3.*; fix that line"),
])
def test_data_and_structure_are_required_and_toml_errors_name_the_line(text, message):
    with pytest.raises(BacktestConfigError, match=message):
        load_spec(text)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = Store.open(tmp_path_factory.mktemp("cfg") / "data.sqlite")
    market = SimulatedMarket(SimulatorConfig(seed=2, start=datetime(2024, 3, 13, 10, 0, tzinfo=ET)))
    record_session(s, market, "s", 3, replace=False)
    yield s
    s.close()


def test_ranges_are_whole_et_days_or_a_sessions_snapshots_and_say_what_is_stored(store):
    days = load_spec('[data]\nstart = 2024-03-13\nend = 2024-03-13\n[strategy]\nstructure = "bwb"')
    start, end = days.range_ns(store)
    assert start == to_ns(datetime(2024, 3, 13, tzinfo=ET)) and end == to_ns(datetime(2024, 3, 14, tzinfo=ET)) - 1
    first, last = load_spec(MINIMAL).range_ns(store)
    assert (first, last) == (to_ns(datetime(2024, 3, 13, 10, 0, tzinfo=ET)), to_ns(datetime(2024, 3, 13, 10, 2,
                                                                                                tzinfo=ET)))
    bt = days.backtest(store)
    assert (bt.start_ns, bt.end_ns, bt.session) == (start, end, None)
    spec = load_spec(MINIMAL + '[fills]\nbad_quote = "raw"\nper = "leg"\n[costs]\nfees_per_contract = 0.3\n'
                               '[risk]\nprofile = "algo"\nstarting_cash = 5000\nclose_on_breaker = true\n')
    bt = spec.backtest(store)
    assert bt.strategies == (spec.strategy,) and (bt.fill, bt.fees, bt.profile) == (spec.fill, spec.fees, spec.profile)
    assert (bt.bad_quote.value, bt.starting_cash, bt.close_on_breaker) == ("raw", 5000.0, True)
    assert load_spec(MINIMAL).backtest(store).session == "s"
    elsewhere = days.with_overrides({"data.start": "2018-01-02", "data.end": "2018-02-28"})
    with pytest.raises(BacktestConfigError, match=r"^\[data\] start/end: no stored snapshots from 2018-01-02 to "
                                                  r"2018-02-28 \(ET\); the database holds snapshots from 2024-03-13 "
                                                  r"to 2024-03-13 \(ET\); pick dates in that range$"):
        elsewhere.backtest(store)
    with pytest.raises(BacktestConfigError, match=r"^\[data\] session: no stored snapshots in session 'nope'; "
                                                  r"stored sessions: 's' \(spx-data snapshots lists them\)$"):
        days.with_overrides({"data.session": "nope"}).range_ns(store)


def test_an_empty_database_says_how_to_get_data(tmp_path):
    message = r"the database holds no snapshots: import some \(spx-data import\) or record them \(spx-data simulate\)$"
    with Store.open(tmp_path / "empty.sqlite") as empty, pytest.raises(BacktestConfigError, match=message):
        load_spec(EXAMPLE).range_ns(empty)
