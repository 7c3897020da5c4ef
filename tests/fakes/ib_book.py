"""The simulated instruments and market of the fake IB Gateway: SPX index, SPX/SPXW options, Black-Scholes quotes.

Listing: SPXW dailies on the next ``daily_expiries`` weekdays from ``today`` (0DTE included) plus every listed
monthly; SPX monthly (AM) on the third Friday of the next ``monthly_expiries`` months. On a third Friday both
classes list the same strikes, which makes a request without tradingClass ambiguous, as on real IB.
Quotes come from Black-Scholes at a flat-plus-skew volatility; bid/ask straddle the model price on the SPX tick grid
(0.05 below 3.00, 0.10 above).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

EASTERN = ZoneInfo("America/New_York")
SPX_CON_ID = 416904
BAG_CON_ID = 28812380  # the conId TWS puts on every US combo (BAG) it echoes
_FIRST_OPTION_CON_ID = 700_000_001
YEAR_SECONDS = 365.0 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Instrument:
    """One listed contract, in IB's terms."""

    con_id: int
    symbol: str
    sec_type: str  # IND, STK, OPT
    exchange: str  # the primary/listing exchange
    currency: str = "USD"
    local_symbol: str = ""
    trading_class: str = ""
    expiry: date | None = None
    strike: float = 0.0
    right: str = ""  # C or P
    multiplier: str = ""
    long_name: str = ""
    min_tick: float = 0.01

    @property
    def last_trade_date(self) -> str:
        return self.expiry.strftime("%Y%m%d") if self.expiry else ""


def third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def occ_symbol(root: str, expiry: date, right: str, strike: float) -> str:
    """OCC local symbol, e.g. ``SPXW  261204P05800000``."""
    return f"{root:<6}{expiry:%y%m%d}{right}{round(strike * 1000):08d}"


def spx_tick(price: float) -> float:
    return 0.05 if price < 3.0 else 0.10


def _norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _norm_pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True, slots=True)
class Greeks:
    """IB's option computation units: vega per vol point (0.01), theta per calendar day."""

    iv: float
    delta: float
    price: float
    pv_dividend: float
    gamma: float
    vega: float
    theta: float
    und_price: float


def black_scholes(spot: float, strike: float, t: float, vol: float, rate: float, div: float,
                  right: str) -> Greeks:
    """European Black-Scholes-Merton price and greeks; ``t`` in years (floored at one minute)."""
    t = max(t, 60.0 / YEAR_SECONDS)
    sqrt_t = math.sqrt(t)
    d1 = (math.log(spot / strike) + (rate - div + 0.5 * vol * vol) * t) / (vol * sqrt_t)
    d2 = d1 - vol * sqrt_t
    disc_r, disc_q = math.exp(-rate * t), math.exp(-div * t)
    if right == "C":
        price = spot * disc_q * _norm_cdf(d1) - strike * disc_r * _norm_cdf(d2)
        delta = disc_q * _norm_cdf(d1)
        theta_y = (-spot * disc_q * _norm_pdf(d1) * vol / (2 * sqrt_t) - rate * strike * disc_r * _norm_cdf(d2)
                   + div * spot * disc_q * _norm_cdf(d1))
    else:
        price = strike * disc_r * _norm_cdf(-d2) - spot * disc_q * _norm_cdf(-d1)
        delta = -disc_q * _norm_cdf(-d1)
        theta_y = (-spot * disc_q * _norm_pdf(d1) * vol / (2 * sqrt_t) + rate * strike * disc_r * _norm_cdf(-d2)
                   - div * spot * disc_q * _norm_cdf(-d1))
    gamma = disc_q * _norm_pdf(d1) / (spot * vol * sqrt_t)
    vega = spot * disc_q * _norm_pdf(d1) * sqrt_t / 100.0
    pv_div = spot * (1.0 - disc_q)
    return Greeks(vol, delta, max(price, 0.0), pv_div, gamma, vega, theta_y / 365.0, spot)


@dataclass(frozen=True, slots=True)
class Quote:
    bid: float
    ask: float
    bid_size: int
    ask_size: int
    last: float
    greeks: Greeks | None = None


@dataclass(slots=True)
class MarketState:
    """The mutable market the hooks move: spot, volatility level and skew, rates."""

    spot: float = 5800.0
    vol: float = 0.16
    skew: float = -0.9  # vol change per unit of log-moneyness (puts richer)
    rate: float = 0.04
    dividend_yield: float = 0.013


class OptionBook:
    """Listing and pricing of the simulated contracts; ``today`` fixes the listing and the clock (10:00 ET)."""

    def __init__(self, *, today: date, spot: float = 5800.0, vol: float = 0.16, strike_step: float = 5.0,
                 strike_width: float = 0.10, daily_expiries: int = 5, monthly_expiries: int = 2) -> None:
        self.today = today
        self.market = MarketState(spot=spot, vol=vol)
        self.previous_close = spot
        self.now = datetime.combine(today, time(10, 0), EASTERN)
        self.by_con_id: dict[int, Instrument] = {}
        self._by_date: dict[tuple[str, str], list[Instrument]] = {}  # (symbol, YYYYMMDD) -> options
        self._add(Instrument(SPX_CON_ID, "SPX", "IND", "CBOE", local_symbol="SPX", trading_class="SPX",
                             long_name="S&P 500 Stock Index", min_tick=0.01))
        self._add(Instrument(13455763, "VIX", "IND", "CBOE", local_symbol="VIX", trading_class="VIX",
                             long_name="CBOE Volatility Index", min_tick=0.01))
        self._add(Instrument(756733, "SPY", "STK", "ARCA", local_symbol="SPY", trading_class="SPY",
                             long_name="SPDR S&P 500 ETF TRUST"))
        low = math.floor(spot * (1 - strike_width) / strike_step) * strike_step
        high = math.ceil(spot * (1 + strike_width) / strike_step) * strike_step
        self.strikes = tuple(low + i * strike_step for i in range(round((high - low) / strike_step) + 1))
        self.expiries = {"SPX": self._monthlies(monthly_expiries),
                         "SPXW": sorted(set(self._dailies(daily_expiries)) | set(self._monthlies(monthly_expiries)))}
        con_id = _FIRST_OPTION_CON_ID
        for trading_class, expiries in self.expiries.items():
            for expiry in expiries:
                for strike in self.strikes:
                    for right in ("C", "P"):
                        self._add(Instrument(
                            con_id, "SPX", "OPT", "CBOE", local_symbol=occ_symbol(trading_class, expiry, right, strike),
                            trading_class=trading_class, expiry=expiry, strike=strike, right=right, multiplier="100",
                            long_name="S&P 500 Stock Index", min_tick=0.05))
                        con_id += 1

    def _add(self, instrument: Instrument) -> None:
        self.by_con_id[instrument.con_id] = instrument
        if instrument.expiry is not None:
            self._by_date.setdefault((instrument.symbol, instrument.last_trade_date), []).append(instrument)

    def _dailies(self, n: int) -> list[date]:
        days, day = [], self.today
        while len(days) < n:
            if day.weekday() < 5:
                days.append(day)
            day += timedelta(days=1)
        return days

    def _monthlies(self, n: int) -> list[date]:
        out, year, month = [], self.today.year, self.today.month
        while len(out) < n:
            friday = third_friday(year, month)
            if friday >= self.today:
                out.append(friday)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return out

    def instruments(self, symbol: str = "", last_trade_date: str = "") -> Iterator[Instrument]:
        """All instruments, or only the options of one full expiry date when both are given (a fast path)."""
        if symbol and len(last_trade_date) == 8:
            return iter(self._by_date.get((symbol, last_trade_date), []))
        return iter(self.by_con_id.values())

    # --- pricing -------------------------------------------------------------------------------------------
    def year_fraction(self, expiry: date, trading_class: str) -> float:
        """Years to settlement: SPX AM settles at the open (09:30 ET), SPXW at the 16:00 close."""
        settle = time(9, 30) if trading_class == "SPX" else time(16, 0)
        return (datetime.combine(expiry, settle, EASTERN) - self.now).total_seconds() / YEAR_SECONDS

    def vol_for(self, strike: float) -> float:
        m = self.market
        return max(0.05, m.vol + m.skew * m.vol * math.log(strike / m.spot))

    def greeks(self, inst: Instrument) -> Greeks:
        m = self.market
        assert inst.expiry is not None
        return black_scholes(m.spot, inst.strike, self.year_fraction(inst.expiry, inst.trading_class),
                             self.vol_for(inst.strike), m.rate, m.dividend_yield, inst.right)

    def quote(self, inst: Instrument) -> Quote:
        """Current quote; options carry the model greeks, indices only a last price."""
        if inst.sec_type != "OPT":
            price = self.market.spot if inst.con_id == SPX_CON_ID else _static_price(inst)
            return Quote(0.0, 0.0, 0, 0, round(price, 2))
        g = self.greeks(inst)
        tick = spx_tick(g.price)
        half = max(tick, 0.03 * g.price) / 2
        bid = max(0.0, math.floor((g.price - half) / tick + 1e-9) * tick)
        ask = max(tick, math.ceil((g.price + half) / tick - 1e-9) * tick)
        size = 10 + int(inst.strike) % 40
        last = round(round(g.price / tick) * tick, 2)
        return Quote(round(bid, 2), round(ask, 2), size, size + 5, last, g)

    def close_of(self, inst: Instrument) -> float:
        return self.previous_close if inst.con_id == SPX_CON_ID else _static_price(inst)

    def move(self, *, spot: float | None = None, vol: float | None = None) -> None:
        if spot is not None:
            self.market = replace(self.market, spot=spot)
        if vol is not None:
            self.market = replace(self.market, vol=vol)


def _static_price(inst: Instrument) -> float:
    return {"VIX": 15.5, "SPY": 579.0}.get(inst.symbol, 100.0)


def implied_vol(book: OptionBook, inst: Instrument, price: float) -> float:
    """Black-Scholes implied volatility of ``price`` by bisection; -1 (IB's "not computed") when none exists."""
    m = book.market
    assert inst.expiry is not None
    t = book.year_fraction(inst.expiry, inst.trading_class)

    def value(vol: float) -> float:
        return black_scholes(m.spot, inst.strike, t, vol, m.rate, m.dividend_yield, inst.right).price

    low, high = 0.005, 5.0
    if not value(low) < price < value(high):
        return -1.0
    for _ in range(60):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if value(mid) < price else (low, mid)
    return 0.5 * (low + high)
