"""Notices of the automation: each recorded decision (entry, exit, hedge, skip) as one alert draft.

    draft = decision_notice(decision, decision_id)            # AlertDraft, or None (a muted skip)
    drafts = decision_notices(recorded, skips=False)          # [(id, decision), ...] -> drafts, skips muted

The app raises them through the alert repository like every other alert (stored, de-duplicated, the panel, the
status bar, the tray, webhook / e-mail from the least severity set); the backtester can log the same lines.

=================  ========  =========================================================================
rule               severity  decision
=================  ========  =========================================================================
automation_entry   info      an entry TRADE (sent through the gate, or staged in the ticket)
automation_exit    info      an exit TRADE (``"<rule>: ..."`` first: take_profit, stop_loss, regime, dte, time,
                             or the breaker's close)
automation_hedge   info      a hedge TRADE (strategy ``"<name>/hedge"``, ``"hedge: ..."`` first)
automation_skip    info      an entry SKIP (a filter, the scan, sizing, data ... failed); mutable
automation_refused warning   an order the gate refused or that could not be staged (``"order refused: ..."`` /
                             ``"order not staged: ..."`` among the reasons): entry, exit or hedge alike, since a
                             refused exit leaves a position open that should be closed; never muted
=================  ========  =========================================================================

Key: ``"automation:<decision id>"`` (the store's id of the decision): one decision is one alert, and raising it
again (a restart that re-reads the decisions) folds into it. Messages are one line, strategy first, e.g.
``"credit verticals 3/5/7 DTE: SOLD 1 SPXW 5100/5075 put vertical for a credit of 1.45 (10:00 slot)"`` or
``"iron condor (regime filter): skipped at 10:00 — regime: crash is not one of calm, normal"``.

Only the decision is read (its reasons follow the runner's conventions, :mod:`spx_core.automation.runner`); a
reason that does not parse is quoted as it is. No clock, no Qt.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

from spx_core.automation.summary import is_exit_decision
from spx_core.domain.calendar import ET, from_ns
from spx_core.portfolio.decisions import Action, TradeDecision
from spx_core.risk.alerts import AlertDraft, Severity

__all__ = ["NOTICE_KEY", "NoticeKind", "decision_notice", "decision_notices", "notice_kind"]

#: The alert key prefix of decision notices (the key is ``"automation:<decision id>"``).
NOTICE_KEY = "automation"

_REFUSED = ("order refused:", "order not staged:")
_ENTRY = re.compile(r"^entry: (?P<side>BUY|SELL) (?P<qty>\d+) (?P<what>.+?) for an? (?P<cash>credit|debit) of "
                    r"(?P<price>-?[\d.,]+)")
_ORDER = re.compile(r"^order \S+: (?P<status>[a-z_]+)")
_TRADE = re.compile(r"^trade #\d+$")
_PAST = {"BUY": "BOUGHT", "SELL": "SOLD"}


class NoticeKind(StrEnum):
    """What a decision did, as its notice says (the alert's rule is ``"automation_<kind>"``)."""

    ENTRY = "entry"
    EXIT = "exit"
    HEDGE = "hedge"
    SKIP = "skip"
    REFUSED = "refused"

    @property
    def rule(self) -> str:
        return f"automation_{self.value}"

    @property
    def severity(self) -> Severity:
        return Severity.WARNING if self is NoticeKind.REFUSED else Severity.INFO


def notice_kind(decision: TradeDecision) -> NoticeKind:
    """Which kind of notice ``decision`` gives (see the module docstring)."""
    if any(r.startswith(_REFUSED) for r in decision.reasons):
        return NoticeKind.REFUSED
    if decision.action == Action.SKIP.value:
        return NoticeKind.SKIP
    if _is_hedge(decision):
        return NoticeKind.HEDGE
    return NoticeKind.EXIT if is_exit_decision(decision) else NoticeKind.ENTRY


def decision_notice(decision: TradeDecision, decision_id: int | str, *, skips: bool = True) -> AlertDraft | None:
    """The alert draft of one recorded decision; None for a SKIP when ``skips`` is False (refusals always)."""
    kind = notice_kind(decision)
    if kind is NoticeKind.SKIP and not skips:
        return None
    text = _MESSAGES[kind](decision)
    return AlertDraft(f"{NOTICE_KEY}:{decision_id}", kind.rule, kind.severity,
                      " ".join(f"{decision.strategy}: {text}".split()))  # one line whatever a reason holds


def decision_notices(recorded: Iterable[tuple[int | str, TradeDecision]], *, skips: bool = True) -> list[AlertDraft]:
    """Drafts of ``(decision id, decision)`` pairs in order (muted skips left out)."""
    drafts = (decision_notice(d, i, skips=skips) for i, d in recorded)
    return [d for d in drafts if d is not None]


# --- the messages -------------------------------------------------------------------------------------------
def _entry(d: TradeDecision) -> str:
    filled = _status(d) == "filled"
    outcome = "" if filled else _outcome(d)
    return f"{_order_text(d, past=filled)}{' ' + outcome if outcome else ''} ({_when(d)})"


def _exit(d: TradeDecision) -> str:
    subject, outcome = _subject(d), _outcome(d)
    if outcome == "filled":
        done = f"closed {subject}"
    elif outcome.startswith("staged"):
        done = f"exit of {subject} {outcome}"
    else:
        done = f"closing {subject}{', ' + outcome.removeprefix('sent, ') if outcome else ''}"
    return f"{done} — {_first(d)}"


def _hedge(d: TradeDecision) -> str:
    outcome = _outcome(d) or "decided"
    return f"{_first(d).removeprefix('hedge: ')} — {outcome}"


def _skip(d: TradeDecision) -> str:
    reasons = [r for r in d.reasons if not r.startswith("slot: ")]
    more = f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""
    return f"skipped {_at(d)} — {reasons[0] if reasons else 'no reason given'}{more}"


def _refused(d: TradeDecision) -> str:
    why = next(r for r in d.reasons if r.startswith(_REFUSED))
    why = why.removeprefix("order refused: ").replace("order not staged: ", "not staged: ", 1)
    if _is_hedge(d):
        return f"hedge refused — {why} ({_first(d)})"
    if is_exit_decision(d):
        rule = _first(d).partition(":")[0]
        return f"exit of {_subject(d)} ({rule}) refused — {why}"
    return f"{_order_text(d)} refused ({_when(d)}) — {why}"


_MESSAGES = {NoticeKind.ENTRY: _entry, NoticeKind.EXIT: _exit, NoticeKind.HEDGE: _hedge, NoticeKind.SKIP: _skip,
             NoticeKind.REFUSED: _refused}


# --- reading the reasons ------------------------------------------------------------------------------------
def _is_hedge(d: TradeDecision) -> bool:
    return d.strategy.endswith("/hedge") or _first(d).startswith("hedge:")


def _first(d: TradeDecision) -> str:
    """The decision's first reason that is not a refusal (an exit's rule, a hedge's band, an entry's order)."""
    return next((r for r in d.reasons if not r.startswith(_REFUSED)), "")


def _order_text(d: TradeDecision, *, past: bool = False) -> str:
    """``"SELL 1 <structure> for a credit of 1.45"`` from the entry reason (``SOLD`` when ``past``)."""
    entry = next((r for r in d.reasons if r.startswith("entry:")), "")
    m = _ENTRY.match(entry)
    if m is None:
        return entry.removeprefix("entry: ").partition(" (")[0] or "entry"
    side = _PAST[m["side"]] if past else m["side"]
    return f"{side} {m['qty']} {m['what']} for a {m['cash']} of {m['price']}"


def _status(d: TradeDecision) -> str | None:
    """The order's status when it was recorded ("submitted", "filled", ...), None when no order line says."""
    for r in d.reasons:
        m = _ORDER.match(r)
        if m is not None:
            return m["status"]
    return None


def _outcome(d: TradeDecision) -> str:
    """What became of the order: staged, filled, sent (with its status); "" when the reasons do not say."""
    if any(r.startswith("staged:") for r in d.reasons):
        return "staged in the order ticket"
    status = _status(d)
    if status is None:
        return ""
    return "filled" if status == "filled" else f"sent, order {status.replace('_', ' ')}"


def _subject(d: TradeDecision) -> str:
    return next((r for r in d.reasons if _TRADE.match(r)), "a position" if d.order_ref is None
                else f"order {d.order_ref}")


def _slots(d: TradeDecision) -> str | None:
    """``"10:00"`` or ``"10:00, 11:00"`` from the runner's ``"slot: 10:00 ET, 11:00 ET"`` reason."""
    slot = next((r for r in d.reasons if r.startswith("slot: ")), None)
    return None if slot is None else slot.removeprefix("slot: ").replace(" ET", "")


def _when(d: TradeDecision) -> str:
    """``"10:00 slot"``; a decision outside the schedule ("Decide now"): ``"decided at 10:03 ET"``."""
    slots = _slots(d)
    if slots is None:
        return f"decided at {_clock(d.time_ns)} ET"
    return f"{slots} slot{'s' if ',' in slots else ''}"


def _at(d: TradeDecision) -> str:
    slots = _slots(d)
    return f"at {slots}" if slots is not None else f"at {_clock(d.time_ns)} ET"


def _clock(ns: int) -> str:
    return f"{from_ns(ns).astimezone(ET):%H:%M}"
