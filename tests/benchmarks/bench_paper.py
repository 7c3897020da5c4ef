"""Paper broker benchmark (issue 9): submit -> filled events for a 4-leg order on a real-size simulated chain.

Chain: ``SimulatedMarket(SimulatorConfig(seed=1, start=2024-03-13 10:30 ET)).snapshot()`` (the SPX chain of
the chain benchmark). Order: a 25-wide iron condor sold at a marketable limit (0.20 through the natural price),
shorts 2% either side of the spot in the listed expiry nearest 30 days, quantity 1 (one fill per leg).
Figures: ``_submit`` to the last FILL event (SUBMITTED + 4 fills, fees, expiry and hours checks); one
``on_market`` over 100 resting 4-leg orders that do not fill (what every market update costs the app's loop).
Reference, same run: the unavoidable part, finding the 4 legs in the snapshot and reading their quotes
(``locate`` on the cached key + 4 quote reads).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from tests.benchmarks.report import Report, best_of

GROUP = "paper"
REF = "reference: locate 4 legs + read their quotes"


class _View:
    def __init__(self, snap) -> None:
        self.snap = snap

    def now_ns(self) -> int:
        return self.snap.time_ns

    def snapshot(self, underlying: str):
        return self.snap if underlying == self.snap.underlying else None


def _condor(snap):
    from spx_core.strategies import builders

    days = (snap.expiry.astype("datetime64[D]") - np.datetime64(snap.time.date(), "D")).astype(int)
    rows = np.flatnonzero(snap.root == 1)  # SPXW
    expiry = snap.expiry[rows[np.argmin(np.abs(days[rows] - 30))]].astype(object)
    put_short = np.floor(0.98 * snap.underlying_price / 5) * 5
    call_short = np.ceil(1.02 * snap.underlying_price / 5) * 5
    return builders.iron_condor("SPXW", expiry, put_short, call_short, 25, 25)


def run(report: Report) -> None:
    from spx_core.domain.calendar import ET
    from spx_core.execution.fill_model import LegQuotes, natural_price
    from spx_core.execution.orders import OrderRequest, Side, normalize_side
    from spx_core.execution.paper import PaperBroker
    from spx_core.execution.ticks import round_to_tick
    from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
    from spx_core.strategies.market import locate

    snap = SimulatedMarket(SimulatorConfig(seed=1, start=datetime(2024, 3, 13, 10, 30, tzinfo=ET))).snapshot()
    view = _View(snap)
    condor = _condor(snap)
    mids = 0.5 * (LegQuotes.from_market(condor.legs, view).bid + LegQuotes.from_market(condor.legs, view).ask)
    legs, side = normalize_side(condor.legs, Side.BUY, mids.tolist())  # opened as written: SOLD for a credit
    quotes = LegQuotes.from_market(legs, view)
    natural = natural_price(legs, side, quotes)
    # marketable by 0.20 (a SELL at or below the natural, a BUY at or above), on the 0.05 combo tick
    limit = round_to_tick(natural + 0.20 * side.sign, combo=True, root="SPXW",
                          direction="up" if side is Side.BUY else "down")
    note = f"{condor.name}; chain {len(snap)} quotes; natural {natural:.2f}"

    contracts = [leg.contract for leg in legs]
    locate(snap, contracts)  # warm the key cache, as the app's first look does

    def reference():
        rows = locate(snap, contracts)
        return [(snap.bid[r], snap.ask[r], snap.bid_size[r], snap.ask_size[r]) for r in rows]

    ref = best_of(reference, repeat=50, number=20)
    report.add(GROUP, REF, ref * 1e6, "us", note="cached snapshot keys")

    counter = iter(range(10**9))
    events: list = []

    def submit_to_filled():
        broker = PaperBroker(view)
        broker.bind(events.append)
        events.clear()
        broker._submit(OrderRequest(ref=f"b{next(counter)}", legs=legs, side=side, quantity=1, limit=limit,
                                    created_ns=snap.time_ns))

    submit_to_filled()  # loads the exchange calendar once
    if [e.kind.value for e in events] != ["status", "fill", "fill", "fill", "fill"]:
        raise AssertionError(f"the benchmark order did not fill at once: {events}")
    t = best_of(submit_to_filled, repeat=20, number=10)
    report.add(GROUP, "submit -> filled events, 4-leg condor", t * 1e6, "us", target=2000, reference=REF,
               note=note)

    broker = PaperBroker(view)
    broker.bind(events.append)
    for k in range(100):  # 100 resting condors, far from the market
        broker._submit(OrderRequest(ref=f"rest{k}", legs=legs, side=side, quantity=1,  # 5+ points away
                                    limit=round(natural - (5.0 + 0.05 * k) * side.sign, 2),
                                    created_ns=snap.time_ns))
    if len(broker.working_refs()) != 100:
        raise AssertionError("the resting orders did not all rest")
    # every update is a new snapshot (new checksum): the row look-up is redone each time, as live
    updates = [snap.replace_quotes(time=snap.time_ns + k * 10**9, underlying_price=snap.underlying_price)
               for k in range(1, 11)]

    def update():
        for u in updates:
            view.snap = u
            broker.on_market()

    t = best_of(update, repeat=5) / len(updates)
    report.add(GROUP, "on_market, 100 resting 4-leg orders", t * 1e3, "ms", target=10,
               note="per market update (a new snapshot each), none fills")
