"""A backtest's TOML config (issue 11 §4): what ``spx-backtest run --config FILE.toml`` reads, validated per key.

    spec = load_spec(Path("run.toml"))            # TOML text, a file, or the parsed mapping
    result = spec.backtest(store).run()           # a configured :class:`~spx_core.backtest.engine.Backtest`
    spec.source_toml                              # the canonical TOML (stored with the run; its SHA-256 names it)

Every refusal is one :class:`BacktestConfigError` line naming the key (``[strategy] short_delta: -0.2 must be in
(0, 1)``); unknown sections and keys are refused by name (a typo must not become a default). The documented
example is ``resources/backtest/example.toml``. How the keys map onto the live objects:

[data]      ``session = "NAME"`` (every stored snapshot of that session), or ``start``/``end`` US/Eastern dates:
            the whole days, midnight to midnight ET, inclusive (UTC ns bounds; :meth:`BacktestSpec.range_ns`).
[strategy]  a :class:`StrategyConfig`: ``preset`` (a name of :data:`spx_core.automation.presets.PRESETS`) to
            start from, then ``name``, ``structure`` (a scanner structure), the scan's ``short_delta`` (a number
            or [low, high]), ``width`` (or ``widths``), ``dte_min``/``dte_max``, ``dte_days``; the schedule's
            ``entry_times``/``entry_window``/``entry_every_s`` (given, they replace the preset's whole schedule);
            ``quantity`` (fixed sizing); ``price``/``price_offset``: the limit the entry asks. By default the
            limit is ``natural`` (marketable), so an order fills at once at the [fills] model's price (the fill
            model gives the better of limit and model price): the fill model, not the limit, sets the price.
[exits]     fractions of the entry credit: ``take_profit = 0.50`` -> ``Exits.take_profit_pct = 50``,
            ``stop_loss = 1.00`` -> 100 (``false`` switches a rule off); ``close_dte`` (days; 0 = hold to
            expiry); ``close_time`` ("HH:MM" ET on the expiry day); ``regime_exit``.
[fills]     ``model``: mid | spread-fraction (``FillMode.MID_OFFSET`` with ``offset = spread_fraction``,
            0.30 by default) | natural; ``per``: package (the package on the cent) | leg (``FillModel.per_leg``:
            each leg on its own single-leg tick, adverse side, as legging in costs); ``bad_quote``: skip | surface |
            raw.
[costs]     ``commission_per_contract``: a flat IBKR commission (every premium tier); ``order_minimum``;
            ``fees_per_contract``: the third-party fees per contract, see :func:`fee_schedule`.
[risk]      ``profile`` (a :data:`~spx_core.risk.profiles.PROFILES` name, or "none" for no limits; default the
            strategy's ``limit_profile``); ``max_open`` replaces its ``max_open_trades`` (also accepted under
            [strategy], as the issue's example writes it); ``starting_cash`` (dollars, 100000 by default);
            ``close_on_breaker``: a circuit-breaker trip also closes every open trade (false: it only stops new
            ones and cancels working orders).
A top-level ``name`` names the run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

from spx_core.automation.config import StrategyConfig
from spx_core.backtest.config_keys import (
    ALIASES,
    SECTIONS,
    BacktestConfigError,
    fail,
    write_toml,
)
from spx_core.backtest.config_strategy import strategy_config
from spx_core.domain.contracts import Root
from spx_core.execution.fees import DEFAULT_FEES, FeeSchedule
from spx_core.execution.fill_model import FillMode, FillModel
from spx_core.risk.profiles import PROFILES, LimitProfile

__all__ = ["BacktestConfigError", "BacktestSpec", "DataRange", "fee_schedule", "load_spec"]

NO_PROFILE = "none"
DEFAULT_CASH = 100_000.0
DEFAULT_SPREAD_FRACTION = 0.30  # the SPX Tools plan's k
_MODES = {"mid": FillMode.MID, "spread-fraction": FillMode.MID_OFFSET, "natural": FillMode.NATURAL}


@dataclass(frozen=True, slots=True)
class DataRange:
    """The stored snapshots a run reads: one ``session``, or the US/Eastern dates ``start``..``end`` inclusive."""

    session: str | None = None
    start: date | None = None
    end: date | None = None

    def day_bounds_ns(self) -> tuple[int, int]:
        """UTC ns of ``start``'s midnight ET and the last nanosecond of ``end``'s day ET (dates only)."""
        from spx_core.domain.calendar import ET, to_ns

        assert self.start is not None and self.end is not None
        first = to_ns(datetime.combine(self.start, time(0), tzinfo=ET))
        return first, to_ns(datetime.combine(self.end + timedelta(days=1), time(0), tzinfo=ET)) - 1

    def describe(self) -> str:
        return f"session {self.session!r}" if self.session is not None else f"{self.start} to {self.end} (ET)"


@dataclass(frozen=True)
class BacktestSpec:
    """One validated backtest config (module docstring). ``source_toml`` is its canonical TOML text."""

    data: DataRange
    strategy: StrategyConfig
    fill: FillModel
    fees: FeeSchedule
    profile: LimitProfile | None
    bad_quote: str
    starting_cash: float
    close_on_breaker: bool
    name: str
    source_toml: str
    doc: Mapping[str, Mapping[str, Any]] = field(compare=False, hash=False, repr=False)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # rebuilt from its canonical text: the live objects hold read-only mappings, which do not pickle
        return load_spec, (self.source_toml,)

    @property
    def config_sha256(self) -> str:
        """SHA-256 of :attr:`source_toml` (equal configs, however written, have equal text)."""
        return hashlib.sha256(self.source_toml.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """The normalized document (sections -> keys -> plain values; the top level's keys under ""):
        ``load_spec(spec.to_dict()) == spec``."""
        top = dict(self.doc.get("", {}))
        return {**top, **{s: dict(v) for s, v in self.doc.items() if s}}

    def with_overrides(self, overrides: Mapping[str, Any]) -> BacktestSpec:
        """A copy with dotted keys replaced (``{"strategy.short_delta": 0.1, "strategy.width": 10}``), validated
        as if written in the TOML. Setting ``width`` drops ``widths`` (and the reverse); ``session`` drops
        ``start``/``end`` (and the reverse), so an override replaces what the config said."""
        doc = {s: dict(v) for s, v in self.doc.items()}
        for dotted, value in overrides.items():
            section, _, key = str(dotted).rpartition(".")
            section, key = ALIASES.get((section, key), (section, key))
            if section not in SECTIONS or key not in SECTIONS[section]:
                raise BacktestConfigError(f"override {dotted!r}: unknown key; use section.key, one of: "
                                          f"{', '.join(_dotted_keys())}")
            part = doc.setdefault(section, {})
            for other in _REPLACES.get(key, ()):
                part.pop(other, None)
            part[key] = value
        return load_spec({**doc.pop("", {}), **doc})

    def range_ns(self, store: Any) -> tuple[int, int]:
        """The run's UTC ns bounds: a session's first and last snapshot instants, or the whole ET days of
        ``start``..``end``. Raises :class:`BacktestConfigError` (saying what IS stored) when nothing is."""
        if self.data.session is not None:
            infos = store.list_snapshots(session=self.data.session)
            if not infos:
                names = [s.name for s in store.list_sessions()]
                listed = f"stored sessions: {', '.join(map(repr, names[:10]))}" + (" ..." if len(names) > 10 else "") \
                    if names else "the database holds no named session"
                fail("[data] session", f"no stored snapshots in session {self.data.session!r}; {listed} "
                                       f"(spx-data snapshots lists them)")
            return _ns(infos[0]), _ns(infos[-1])
        start, end = self.data.day_bounds_ns()
        if not store.list_snapshots(start=start, end=end):
            fail("[data] start/end", f"no stored snapshots from {self.data.start} to {self.data.end} (ET); "
                                     f"{_stored_range(store)}")
        return start, end

    def backtest(self, store: Any) -> Any:
        """The configured :class:`~spx_core.backtest.engine.Backtest` over ``store`` (its range checked first)."""
        from spx_core.backtest.engine import Backtest

        start, end = self.range_ns(store)
        where: dict[str, Any] = ({"session": self.data.session} if self.data.session is not None
                                 else {"start_ns": start, "end_ns": end})
        return Backtest(store, [self.strategy], fill=self.fill, fees=self.fees, profile=self.profile,
                        bad_quote=self.bad_quote, starting_cash=self.starting_cash,
                        close_on_breaker=self.close_on_breaker, **where)


_REPLACES = {"width": ("widths",), "widths": ("width",), "session": ("start", "end"), "start": ("session",),
             "end": ("session",)}


def _dotted_keys() -> list[str]:
    return [f"{s}.{k}" if s else k for s, keys in SECTIONS.items() for k in keys]


def _ns(info: Any) -> int:
    from spx_core.domain.calendar import to_ns

    return int(to_ns(info.time))


def _stored_range(store: Any) -> str:
    from spx_core.domain.calendar import ET

    infos = store.list_snapshots()
    if not infos:
        return "the database holds no snapshots: import some (spx-data import) or record them (spx-data simulate)"
    first, last = (i.time.astimezone(ET).date() for i in (infos[0], infos[-1]))
    return f"the database holds snapshots from {first} to {last} (ET); pick dates in that range"


# --- loading ----------------------------------------------------------------------------------------------------
def load_spec(source: str | Path | Mapping[str, Any]) -> BacktestSpec:
    """A validated spec from TOML text, a TOML file, or the parsed mapping (see the module docstring)."""
    if isinstance(source, Path):
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise BacktestConfigError(f"cannot read config {source}: {exc.strerror or exc}; check the path") \
                from None
        except UnicodeDecodeError:
            raise BacktestConfigError(f"config {source} is not UTF-8 text; save it as UTF-8") from None
        return load_spec(text)
    if isinstance(source, str):
        try:
            source = tomllib.loads(source)
        except tomllib.TOMLDecodeError as exc:
            raise BacktestConfigError(f"the config is not valid TOML: {exc}; fix that line") from None
    if not isinstance(source, Mapping):
        raise BacktestConfigError(f"a backtest config is a TOML table, got {type(source).__name__}")
    return _build(_normalize(source))


def _normalize(raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Sections and keys checked by name, values by their checks, aliases moved to their canonical place."""
    doc: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for key, value in raw.items():
        if isinstance(value, Mapping):
            if key not in SECTIONS or not key:
                fail(f"[{key}]", f"unknown section; sections: {', '.join(f'[{s}]' for s in SECTIONS if s)}")
            for sub, item in value.items():
                _put(doc, key, sub, item)
        elif key in SECTIONS and key:
            fail(key, f"{value!r} must be a section: write [{key}] and its keys under it")
        else:
            _put(doc, "", key, value)
    return doc


def _put(doc: dict[str, dict[str, Any]], section: str, key: str, value: Any) -> None:
    where = f"[{section}] {key}" if section else key
    home = ALIASES.get((section, key), (section, key))
    if key not in SECTIONS[section] and home == (section, key):
        if not section and key in {k for keys in SECTIONS.values() for k in keys}:
            owner = next(s for s, keys in SECTIONS.items() if s and key in keys)
            fail(key, f"belongs in a section: write it under [{owner}]")
        fail(where, f"unknown key; [{section}] takes: {', '.join(SECTIONS[section])}" if section else
             f"unknown top-level key; the top level takes: {', '.join(SECTIONS[''])} and the sections "
             f"{', '.join(f'[{s}]' for s in SECTIONS if s)}")
    normalized = SECTIONS[home[0]][home[1]](where, value)
    if home[1] in doc[home[0]] and doc[home[0]][home[1]] != normalized:
        others = [f"[{a}] {b}" for (a, b), to in ALIASES.items() if to == home] + [f"[{home[0]}] {home[1]}"]
        fail(where, f"given twice with different values (as {' and as '.join(others)}); keep one")
    doc[home[0]][home[1]] = normalized


def _build(doc: dict[str, dict[str, Any]]) -> BacktestSpec:
    data = _data_range(doc["data"])
    strategy = strategy_config(doc["strategy"], doc["exits"])
    f, c, r = doc["fills"], doc["costs"], doc["risk"]
    mode = _MODES[f.get("model", "spread-fraction")]
    fill = FillModel(mode=mode, offset=f.get("spread_fraction", DEFAULT_SPREAD_FRACTION),
                     per_leg=f.get("per", "package") == "leg")
    fees = fee_schedule(c.get("commission_per_contract"), c.get("fees_per_contract"), c.get("order_minimum"))
    profile = _profile(r, strategy)
    if "profile" in r and r["profile"] != NO_PROFILE:
        strategy = dataclasses.replace(strategy, limit_profile=r["profile"])  # the decisions name it
    source = write_toml(doc)
    frozen = MappingProxyType({s: MappingProxyType(dict(v)) for s, v in doc.items() if v})
    return BacktestSpec(data=data, strategy=strategy, fill=fill, fees=fees, profile=profile,
                        bad_quote=f.get("bad_quote", "skip"), starting_cash=r.get("starting_cash", DEFAULT_CASH),
                        close_on_breaker=r.get("close_on_breaker", False), name=doc[""].get("name", ""),
                        source_toml=source, doc=frozen)


def _data_range(d: Mapping[str, Any]) -> DataRange:
    if "session" in d:
        if "start" in d or "end" in d:
            fail("[data]", "give session, or start and end, not both")
        return DataRange(session=d["session"])
    missing = [k for k in ("start", "end") if k not in d]
    if missing:
        fail(f"[data] {missing[0]}", 'missing; give session = "NAME", or start and end dates ("2018-01-02")')
    start, end = date.fromisoformat(d["start"]), date.fromisoformat(d["end"])
    if end < start:
        fail("[data] end", f"{d['end']} is before start {d['start']}; swap them")
    return DataRange(start=start, end=end)


# --- [risk] and [costs] ------------------------------------------------------------------------------------------
def _profile(r: Mapping[str, Any], strategy: StrategyConfig) -> LimitProfile | None:
    name = r.get("profile", strategy.limit_profile)
    if name == NO_PROFILE:
        chosen = None
    elif name in PROFILES:
        chosen = PROFILES[name]
    else:
        where = "[risk] profile" if "profile" in r else "[strategy] preset's limit_profile"
        fail(where, f"{name!r} is not a limit profile; choose one of: {', '.join(map(repr, PROFILES))}, or "
                    f"{NO_PROFILE!r} for no limits")
    if "max_open" in r:
        chosen = dataclasses.replace(chosen or LimitProfile("backtest"), max_open_trades=r["max_open"])
    return chosen


#: the clearing and regulatory fees every option contract pays (OCC, ORF, CAT), whatever its root
_CLEARING = ("occ_fee", "orf_fee", "cat_fee")


def fee_schedule(commission_per_contract: float | None = None, fees_per_contract: float | None = None,
                 order_minimum: float | None = None) -> FeeSchedule:
    """The paper broker's schedule (:data:`DEFAULT_FEES`) with the [costs] figures given (dollars).

    ``commission_per_contract``: the commission at every premium tier (flat). ``order_minimum``: the per-order
    minimum. ``fees_per_contract`` F is spread over the fee fields so that EVERY contract, of any root and at any
    premium, pays exactly F: the clearing and regulatory fees keep their schedule figures (OCC + ORF + CAT =
    $0.045 together) and the rest, F - 0.045, is the exchange fee (``cboe_fee`` = ``cboe_fee_low``, applied to
    every root); an F below $0.045 scales the three down to F with no exchange fee. A flat F has no sell-side
    part: the FINRA TAF (per contract sold) is off.
    """
    changes: dict[str, Any] = {}
    if commission_per_contract is not None:
        c = float(commission_per_contract)
        changes.update(commission=c, commission_mid=c, commission_low=c)
    if order_minimum is not None:
        changes["order_minimum"] = float(order_minimum)
    if fees_per_contract is not None:
        total = float(fees_per_contract)
        clearing = sum(getattr(DEFAULT_FEES, n) for n in _CLEARING)
        scale = min(1.0, total / clearing) if clearing > 0 else 0.0
        changes.update({n: getattr(DEFAULT_FEES, n) * scale for n in _CLEARING})
        rest = max(total - clearing, 0.0)
        changes.update(cboe_fee=rest, cboe_fee_low=rest, cboe_fee_roots=frozenset(Root), taf_fee=0.0)
    return dataclasses.replace(DEFAULT_FEES, **changes) if changes else DEFAULT_FEES
