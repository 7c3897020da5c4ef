"""Decision notices: each recorded decision (entry, exit, hedge, skip, refusal) -> one alert draft with its rule,
severity, key and one readable line; first on hand-written decisions in the runner's conventions, then on the
decisions the real runner records on the simulated market."""

from __future__ import annotations

from datetime import datetime

import pytest

from spx_core.automation.config import StrategyMode
from spx_core.automation.notices import (
    NoticeKind,
    decision_notice,
    decision_notices,
    notice_kind,
)
from spx_core.domain.calendar import ET, to_ns
from spx_core.execution.checks import CheckFailure
from spx_core.execution.orders import Intent
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.portfolio.decisions import TradeDecision
from spx_core.risk.alerts import Severity
from tests.automation.test_runner import PCS, SimView, World, at, take_profit_market

T = to_ns(datetime(2024, 3, 13, 10, 0, 1, tzinfo=ET))
PCS_NAME = "credit verticals 3/5/7 DTE"
ENTRY = "entry: SELL 1 SPXW 2024-03-20 5600/5575 put credit vertical (25 wide) for a credit of 1.45 (mid 1.452)"
ORDER = "SELL 1 SPXW 2024-03-20 5600/5575 put credit vertical (25 wide) for a credit of 1.45"
CANDIDATE = "candidate: 7 DTE, credit mid 1.45 / natural 1.30, width 25"


def trade(*reasons: str, strategy: str = PCS_NAME, ref: str | None = "spx-1", time_ns: int = T) -> TradeDecision:
    return TradeDecision(time_ns, strategy, "TRADE", reasons, order_ref=ref)


def skip(*reasons: str, strategy: str = "iron condor (regime filter)") -> TradeDecision:
    return TradeDecision(T, strategy, "SKIP", reasons)


CASES = [  # (decision, kind, message after "<strategy>: ")
    (trade(ENTRY, CANDIDATE, "slot: 10:00 ET", "order spx-1: filled at 10:00:01 ET"), NoticeKind.ENTRY,
     "SOLD 1 SPXW 2024-03-20 5600/5575 put credit vertical (25 wide) for a credit of 1.45 (10:00 slot)"),
    (trade(ENTRY, CANDIDATE, "slot: 10:00 ET, 11:00 ET", "order spx-1: submitted at 11:00:02 ET"), NoticeKind.ENTRY,
     f"{ORDER} sent, order submitted (10:00, 11:00 slots)"),
    (trade(ENTRY, "slot: 12:00 ET", "staged: in the order ticket for the user to send (manual mode)"),
     NoticeKind.ENTRY, f"{ORDER} staged in the order ticket (12:00 slot)"),
    (trade(ENTRY, CANDIDATE, "order spx-1: partially_filled"), NoticeKind.ENTRY,  # "Decide now": no slot
     f"{ORDER} sent, order partially filled (decided at 10:00 ET)"),
    (skip("regime: crash is not one of calm, normal", "iv rank 12 below 30", "slot: 10:00 ET"), NoticeKind.SKIP,
     "skipped at 10:00 — regime: crash is not one of calm, normal (+1 more)"),
    (skip("scan: no candidate"), NoticeKind.SKIP, "skipped at 10:00 ET — scan: no candidate"),
    (TradeDecision(T, PCS_NAME, "SKIP", ("order refused: refused by limits: max_new_trades_per_day 0: post-trade 1",
                                         ENTRY, CANDIDATE, "slot: 10:00 ET")), NoticeKind.REFUSED,
     f"{ORDER} refused (10:00 slot) — refused by limits: max_new_trades_per_day 0: post-trade 1"),
    (TradeDecision(T, PCS_NAME, "SKIP", ("order not staged: manual mode and no order ticket to stage it in", ENTRY,
                                         "slot: 10:00 ET")), NoticeKind.REFUSED,
     f"{ORDER} refused (10:00 slot) — not staged: manual mode and no order ticket to stage it in"),
    (trade("take_profit: cost to close 0.25 (natural) <= 0.65, 50% of the 1.30 credit kept", "trade #4",
           "order spx-2: filled at 10:01:00 ET"), NoticeKind.EXIT,
     "closed trade #4 — take_profit: cost to close 0.25 (natural) <= 0.65, 50% of the 1.30 credit kept"),
    (trade("stop_loss: cost to close 2.90 (natural) is a 1.45 loss, >= 100% of the 1.45 credit", "trade #4",
           "cancelled the unfilled rest of opening order spx-1", "order spx-2: submitted at 10:01:00 ET"),
     NoticeKind.EXIT, ("closing trade #4, order submitted — stop_loss: cost to close 2.90 (natural) is a 1.45 "
                       "loss, >= 100% of the 1.45 credit")),
    (trade("time: 15:45 ET reached on expiry day 2024-03-13 (now 15:45:02 ET)", "trade #9",
           "staged: in the order ticket for the user to send (manual mode)"), NoticeKind.EXIT,
     ("exit of trade #9 staged in the order ticket — time: 15:45 ET reached on expiry day 2024-03-13 "
      "(now 15:45:02 ET)")),
    (TradeDecision(T, PCS_NAME, "SKIP", ("dte: front expiry 2024-03-15 is 2 DTE, at or inside the close at 2 DTE",
                                         "order refused: refused by limits: test: closes refused", "trade #4")),
     NoticeKind.REFUSED, "exit of trade #4 (dte) refused — refused by limits: test: closes refused"),
    (trade("breaker: daily loss -5,100 $ reached the -5,000 $ limit", strategy="breaker", ref="spx-9"),
     NoticeKind.EXIT, "closing order spx-9 — breaker: daily loss -5,100 $ reached the -5,000 $ limit"),
    (trade("hedge: portfolio delta +1,230 $/pt outside ±500; sell 12 x SPXW synthetic at 5.10 (-1,200 $/pt) -> +30 "
           "$/pt", "order spx-3: filled at 10:00:01 ET", strategy="hedged/hedge"), NoticeKind.HEDGE,
     ("portfolio delta +1,230 $/pt outside ±500; sell 12 x SPXW synthetic at 5.10 (-1,200 $/pt) -> +30 $/pt "
      "— filled")),
    (TradeDecision(T, "hedged/hedge", "SKIP", ("hedge: portfolio delta +1,230 $/pt outside ±500; sell 12 x SPY",
                                               "order refused: refused by limits: max_delta 200: post-trade 310")),
     NoticeKind.REFUSED, ("hedge refused — refused by limits: max_delta 200: post-trade 310 (hedge: portfolio "
                          "delta +1,230 $/pt outside ±500; sell 12 x SPY)")),
]


@pytest.mark.parametrize(("decision", "kind", "message"), CASES)
def test_each_decision_kind_gives_its_rule_severity_key_and_line(decision, kind, message):
    assert notice_kind(decision) is kind
    draft = decision_notice(decision, 42)
    assert draft.key == "automation:42" and draft.rule == f"automation_{kind.value}"
    assert draft.severity is (Severity.WARNING if kind is NoticeKind.REFUSED else Severity.INFO)
    assert draft.message == f"{decision.strategy}: {message}"


def test_only_refused_orders_are_warnings():
    severities = {kind: decision_notice(d, 1).severity for d, kind, _ in CASES}
    assert severities == {NoticeKind.ENTRY: Severity.INFO, NoticeKind.EXIT: Severity.INFO,
                          NoticeKind.HEDGE: Severity.INFO, NoticeKind.SKIP: Severity.INFO,
                          NoticeKind.REFUSED: Severity.WARNING}


def test_muted_skips_leave_out_skips_but_never_refusals():
    recorded = list(enumerate((d for d, _, _ in CASES), start=1))
    every = decision_notices(recorded)
    muted = decision_notices(recorded, skips=False)
    assert [d.key for d in every] == [f"automation:{i}" for i, _ in recorded]  # one alert per decision, in order
    assert {d.rule for d in every} - {d.rule for d in muted} == {"automation_skip"}
    assert len(every) - len(muted) == sum(1 for _, kind, _ in CASES if kind is NoticeKind.SKIP)
    assert all(d.rule != "automation_skip" for d in muted)
    assert any(d.rule == "automation_refused" for d in muted)


def test_a_reason_that_does_not_parse_is_quoted_and_a_line_break_never_reaches_the_message():
    odd = trade("entry: something new\nwith a second line", "order spx-1: filled at 10:00:01 ET")
    draft = decision_notice(odd, 7)
    assert draft.rule == "automation_entry" and "\n" not in draft.message
    assert draft.message == f"{PCS_NAME}: something new with a second line (decided at 10:00 ET)"
    bare = skip()
    assert decision_notice(bare, 8).message == "iron condor (regime filter): skipped at 10:00 ET — no reason given"


# --- the real runner's decisions --------------------------------------------------------------------------------
@pytest.fixture
def view():
    return SimView(SimulatedMarket(SimulatorConfig(seed=5, start=datetime(2024, 3, 13, 9, 59, 0, tzinfo=ET))))


def test_the_runners_entry_and_take_profit_exit_read_as_one_line_each(tmp_path, view):
    w = World(tmp_path / "n.sqlite", view)
    try:
        w.strategies.save(PCS, enabled=True, mode=StrategyMode.AUTO, now_ns=at(9, 0))
        (entry,) = w.step(at(10, 0, 1)).decisions
        (held,) = w.repo.trades(open_only=True)
        take_profit_market(view, held, at(10, 1))
        (exit_,) = w.step(at(10, 1)).decisions
    finally:
        w.close()
    first, second = decision_notices([(1, entry), (2, exit_)])
    assert first.rule == "automation_entry" and first.severity is Severity.INFO
    assert first.message.startswith("pcs auto: SOLD 1 SPXW ") and first.message.endswith(" (10:00 slot)")
    assert " for a credit of " in first.message and "candidate" not in first.message
    assert second.rule == "automation_exit"
    assert second.message.startswith(f"pcs auto: closed trade #{held.id} — take_profit: cost to close 0.25")


def test_the_runners_refused_entry_is_a_warning_that_says_what_and_why(tmp_path, view):
    def refuse_openings(request, market):
        return [CheckFailure("max_new_trades_per_day 0", "post-trade 1")] if request.intent is Intent.OPEN else []

    w = World(tmp_path / "r.sqlite", view, limits=refuse_openings)
    try:
        w.strategies.save(PCS, enabled=True, mode=StrategyMode.AUTO, now_ns=at(9, 0))
        (decision,) = w.step(at(10, 0, 1)).decisions
    finally:
        w.close()
    draft = decision_notice(decision, 3, skips=False)
    assert draft.severity is Severity.WARNING and draft.rule == "automation_refused"
    assert draft.message.startswith("pcs auto: SELL 1 SPXW ")
    assert draft.message.endswith("refused (10:00 slot) — refused by limits: max_new_trades_per_day 0: post-trade 1")
