"""A strategy: a frozen, validated config (issue 10 §5) with a canonical JSON form and a stable hash.

:class:`StrategyConfig` names what to trade (a scanner structure and its :class:`ScanParams` overrides, or the
SPX vs 10x SPY pair), when (:class:`EntrySchedule`, US/Eastern), under which market (:class:`EntryFilters`),
how much (:class:`Sizing`), how it leaves (:class:`Exits`), the limit profile it runs under, an optional delta
hedge (:class:`HedgeConfig`) and the limit price it asks (:class:`PriceMode`).

Every check runs at construction and fails with one :class:`StrategyConfigError` line naming the field, the
value and how to fix it. ``to_json()`` is canonical (sorted keys, no whitespace, every field written), so
``config_hash`` (sha256 of it) is the same across runs and whatever key order a stored JSON had.
``from_json`` refuses unknown keys by name: a typo must not silently become a default.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from spx_core.analytics.filters import regime_names
from spx_core.strategies.scanner_params import (
    ScanParams,
    ScanParamsError,
    ScanStructure,
    ScoreWeights,
    params_for,
)

__all__ = [
    "PAIR_STRUCTURE", "EntryFilters", "EntrySchedule", "Exits", "HedgeConfig", "HedgeInstrument", "PriceMode",
    "Sizing", "SizingMode", "StoredStrategy", "StrategyConfig", "StrategyConfigError", "StrategyMode", "parse_hhmm",
]

#: The structure value of the SPX vs 10x SPY pair (built by :mod:`spx_core.automation.pair`, not scanned).
PAIR_STRUCTURE = "spx-spy-pair"
_SESSION = (9 * 60 + 30, 16 * 60 + 15)  # entries and closes between 09:30 and 16:15 ET (SPX options trade to 16:15)
_HHMM = re.compile(r"^(\d{2}):(\d{2})$")


class StrategyConfigError(ValueError):
    """A strategy config is invalid; one line naming the field and how to fix it."""


class SizingMode(StrEnum):
    FIXED = "fixed"  # always ``quantity`` units
    RISK_BUDGET = "risk_budget"  # floor(budget / max loss per unit), capped at ``max_quantity``


class PriceMode(StrEnum):
    MID = "mid"  # the package mid, rounded to the nearest tick
    NATURAL = "natural"  # cross the spread: sell at the bid side, buy at the ask side
    MID_OFFSET = "mid_offset"  # the mid moved ``price_offset`` points toward the natural


class StrategyMode(StrEnum):
    """What an enabled strategy does with a TRADE decision."""

    MANUAL = "manual"  # stage the order in the ticket for the user to send
    AUTO = "auto"  # send it through the pre-trade gate


class HedgeInstrument(StrEnum):
    SPY = "SPY"  # SPY shares
    SYNTHETIC = "synthetic"  # an SPX synthetic future (long call + short put, same strike)


def _fail(msg: str) -> None:
    raise StrategyConfigError(msg)


def parse_hhmm(value: str, where: str) -> int:
    """Minutes after midnight of an "HH:MM" US/Eastern time inside 09:30-16:15 ET."""
    m = _HHMM.match(value) if isinstance(value, str) else None
    if m is None or int(m[1]) > 23 or int(m[2]) > 59:
        _fail(f"{where} {value!r} is not a time HH:MM; write e.g. '10:00' (US/Eastern)")
    minutes = int(m[1]) * 60 + int(m[2])
    if not _SESSION[0] <= minutes <= _SESSION[1]:
        _fail(f"{where} {value} ET is outside the session; use a time between 09:30 and 16:15 ET")
    return minutes


def _number(where: str, value: Any, *, low: float | None = None, high: float | None = None,
            allow_none: bool = True) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(f"{where} must be a finite number{' or null' if allow_none else ''}, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        _fail(f"{where} {value!r} must be within {low if low is not None else '-inf'}..{high if high is not None else 'inf'}")
    return float(value)


def _set_number(obj: Any, name: str, where: str, **bounds: Any) -> None:
    """Validate a number field and store it as a float (so 2500 and 2500.0 write, and hash, the same)."""
    object.__setattr__(obj, name, _number(where, getattr(obj, name), **bounds))


def _whole(where: str, value: Any, *, low: int, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        _fail(f"{where} must be a whole number >= {low}{' or null' if allow_none else ''}, got {value!r}")
    return int(value)


def _bounds(where: str, low: float | None, high: float | None) -> None:
    if low is not None and high is not None and low > high:
        _fail(f"{where}: the minimum {low:g} is above the maximum {high:g}; swap them")


@dataclass(frozen=True, slots=True)
class EntrySchedule:
    """When entries are due, US/Eastern, on trading days only (:mod:`spx_core.automation.schedule`).

    Attributes:
        times: fixed entry times "HH:MM" ET (e.g. ("10:00", "11:00", "12:00")).
        window: an entry window ("09:35", "10:00") ET: entries are due from its start every ``every_s``
            seconds until its end (the runner stops once the limit profile allows no more trades).
        every_s: seconds between the entry slots of a window (s, >= 60).
        grace_s: a slot is due only within this many seconds after it (s): a runner that was not running at
            10:00 does not enter at 14:00 on a 10:00 signal.
    """

    times: tuple[str, ...] = ("10:00",)
    window: tuple[str, str] | None = None
    every_s: int = 300
    grace_s: int = 300

    def __post_init__(self) -> None:
        if isinstance(self.times, str):
            _fail(f"entry.times {self.times!r} must be a list of times, e.g. ['10:00']")
        times = tuple(self.times)
        minutes = [parse_hhmm(t, f"entry.times[{i}]") for i, t in enumerate(times)]
        object.__setattr__(self, "times", tuple(t for _, t in sorted(zip(minutes, times, strict=True))))
        if len(set(minutes)) != len(minutes):
            _fail(f"entry.times {list(times)} lists a time twice; list each once")
        if self.window is not None:
            if isinstance(self.window, str) or len(self.window) != 2:
                _fail(f"entry.window {self.window!r} must be two times [start, end], e.g. ['09:35', '10:00']")
            start, end = (parse_hhmm(t, f"entry.window[{i}]") for i, t in enumerate(self.window))
            if start >= end:
                _fail(f"entry.window {list(self.window)} must start before it ends")
            object.__setattr__(self, "window", tuple(self.window))
        if not times and self.window is None:
            _fail("entry has neither times nor a window; give times ['10:00'] or a window ['09:35', '10:00']")
        _whole("entry.every_s", self.every_s, low=60)
        _whole("entry.grace_s", self.grace_s, low=0)

    @property
    def minutes(self) -> tuple[int, ...]:
        """The fixed times in minutes after midnight ET."""
        return tuple(parse_hhmm(t, "entry.times") for t in self.times)


@dataclass(frozen=True, slots=True)
class EntryFilters:
    """The market an entry needs; None switches a condition off. Every failing condition is reported.

    Attributes:
        iv_rank_min / iv_rank_max: bounds of the context's IV rank (percent, 0-100, inclusive).
        vix_min / vix_max: bounds of VIX (index points, inclusive).
        regimes: allowed regime names per dimension (trend, mixture state, VIX bucket; see
            :func:`spx_core.analytics.filters.regime_dimensions`): a dimension none of whose names is listed is
            free. E.g. {"range", "calm", "normal"} = trend range and VIX bucket calm or normal.
        missing_passes: a condition whose input is unknown passes (True) or fails (False, the default).
    """

    iv_rank_min: float | None = None
    iv_rank_max: float | None = None
    vix_min: float | None = None
    vix_max: float | None = None
    regimes: frozenset[str] | None = None
    missing_passes: bool = False

    def __post_init__(self) -> None:
        for name in ("iv_rank_min", "iv_rank_max"):
            _set_number(self, name, f"filters.{name}", low=0.0, high=100.0)
        for name in ("vix_min", "vix_max"):
            _set_number(self, name, f"filters.{name}", low=0.0)
        _bounds("filters.iv_rank", self.iv_rank_min, self.iv_rank_max)
        _bounds("filters.vix", self.vix_min, self.vix_max)
        if self.regimes is not None:
            if isinstance(self.regimes, str) or not self.regimes:
                _fail("filters.regimes must be a non-empty list of regime names, or null for any regime")
            names = frozenset(str(r).lower() for r in self.regimes)
            unknown = sorted(names - regime_names())
            if unknown:
                _fail(f"filters.regimes: unknown regime {', '.join(unknown)}; "
                      f"choose from {', '.join(sorted(regime_names()))}")
            object.__setattr__(self, "regimes", names)
        if type(self.missing_passes) is not bool:
            _fail(f"filters.missing_passes must be true or false, got {self.missing_passes!r}")


@dataclass(frozen=True, slots=True)
class Sizing:
    """How many units an entry orders.

    Attributes:
        mode: FIXED (``quantity``) or RISK_BUDGET (floor(``budget_usd`` / max loss per unit in dollars)).
        quantity: units of a FIXED entry (count, >= 1).
        budget_usd: dollars at risk per entry of a RISK_BUDGET entry ($).
        max_quantity: cap on the units of any entry (count, >= 1).
    """

    mode: SizingMode = SizingMode.FIXED
    quantity: int = 1
    budget_usd: float | None = None
    max_quantity: int = 10

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "mode", SizingMode(self.mode))
        except ValueError:
            _fail(f"sizing.mode {self.mode!r} must be one of: {', '.join(m.value for m in SizingMode)}")
        _whole("sizing.quantity", self.quantity, low=1)
        _whole("sizing.max_quantity", self.max_quantity, low=1)
        _set_number(self, "budget_usd", "sizing.budget_usd", low=0.0)
        if self.mode is SizingMode.RISK_BUDGET and not (self.budget_usd or 0) > 0:
            _fail("sizing.budget_usd must be > 0 dollars for mode risk_budget (e.g. 2000)")
        if self.mode is SizingMode.FIXED and self.quantity > self.max_quantity:
            _fail(f"sizing.quantity {self.quantity} is above sizing.max_quantity {self.max_quantity}; "
                  f"raise the cap or lower the quantity")


@dataclass(frozen=True, slots=True)
class Exits:
    """When the position monitor closes a trade (helper ``monitor``), in its priority order.

    Attributes:
        take_profit_pct: close when the profit reaches this % of the entry credit (or debit) (percent; None off).
        stop_loss_pct: close when the loss reaches this % of the entry credit (or debit) (percent; None off).
        close_dte: close when the trade's nearest expiry is this many calendar days away or fewer (days).
        close_time: close at this ET time "HH:MM" on the trade's expiry day (0DTE: "15:45").
        regime_exit: close when the regime filter stops passing (crash mode).
    """

    take_profit_pct: float | None = 50.0
    stop_loss_pct: float | None = 100.0
    close_dte: int | None = None
    close_time: str | None = None
    regime_exit: bool = False

    def __post_init__(self) -> None:
        _set_number(self, "take_profit_pct", "exits.take_profit_pct", low=1e-9, high=100.0)
        _set_number(self, "stop_loss_pct", "exits.stop_loss_pct", low=1e-9)
        _whole("exits.close_dte", self.close_dte, low=0, allow_none=True)
        if self.close_time is not None:
            parse_hhmm(self.close_time, "exits.close_time")
        if type(self.regime_exit) is not bool:
            _fail(f"exits.regime_exit must be true or false, got {self.regime_exit!r}")


@dataclass(frozen=True, slots=True)
class HedgeConfig:
    """Keep the portfolio delta within a band (helper ``monitor``'s DeltaHedger).

    Attributes:
        band_delta: |portfolio delta| allowed before a hedge, in dollars per SPX point (the unit of
            :attr:`LimitProfile.max_delta`).
        instrument: SPY shares or an SPX synthetic.
        min_interval_s: least seconds between two hedges (s).
    """

    band_delta: float = 100.0
    instrument: HedgeInstrument = HedgeInstrument.SPY
    min_interval_s: float = 300.0

    def __post_init__(self) -> None:
        _set_number(self, "band_delta", "hedge.band_delta", low=1e-9, allow_none=False)
        _set_number(self, "min_interval_s", "hedge.min_interval_s", low=0.0, allow_none=False)
        try:
            object.__setattr__(self, "instrument", HedgeInstrument(self.instrument))
        except ValueError:
            _fail(f"hedge.instrument {self.instrument!r} must be one of: {', '.join(h.value for h in HedgeInstrument)}")


def _freeze(value: Any) -> Any:
    """Lists -> tuples, dicts -> read-only sorted mappings: a config's scan overrides cannot change."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): _freeze(value[k]) for k in sorted(value)})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _plain(value: Any) -> Any:
    """The JSON form of a frozen value (enums as values, sets sorted, mappings as dicts)."""
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (frozenset, set)):
        return sorted(_plain(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _scan_value(key: str, value: Any) -> Any:
    """A scan override as ScanParams takes it (JSON lists -> tuples, weights dict -> ScoreWeights)."""
    if key == "weights" and isinstance(value, Mapping):
        try:
            return ScoreWeights(**dict(value))
        except TypeError as exc:
            raise ScanParamsError(f"weights: {exc}; fields: {', '.join(f.name for f in fields(ScoreWeights))}") \
                from None
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _canonical_scan(structure: str, scan: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the overrides through their params class; return them as that class normalized them
    (25 -> 25.0, widths sorted, enums as values), so equal selections write the same JSON and hash."""
    if structure == PAIR_STRUCTURE:
        from spx_core.automation.pair import PairParams  # the pair's own parameters

        allowed = {f.name for f in fields(PairParams)}
        _known_scan(scan, allowed)
        params: Any = PairParams(**{k: _scan_value(k, v) for k, v in scan.items()})
    else:
        allowed = {f.name for f in fields(ScanParams)} - {"structure"}
        _known_scan(scan, allowed)
        try:
            params = params_for(structure, **{k: _scan_value(k, v) for k, v in scan.items() if v is not None})
        except (ScanParamsError, ValueError, TypeError) as exc:
            _fail(f"scan: {exc}")
    return {k: _plain_value(getattr(params, k)) for k in scan if scan[k] is not None}


def _known_scan(scan: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(scan) - allowed)
    if unknown:
        _fail(f"scan: unknown field {', '.join(map(repr, unknown))}; allowed: {', '.join(sorted(allowed))}")


def _plain_value(value: Any) -> Any:
    if isinstance(value, ScoreWeights):
        return {f.name: getattr(value, f.name) for f in fields(value)}
    return _plain(value)


_NESTED = {"entry": EntrySchedule, "filters": EntryFilters, "sizing": Sizing, "exits": Exits, "hedge": HedgeConfig}


@dataclass(frozen=True, slots=True)
class StrategyConfig:
    """One automated strategy. See the module docstring; every nested part documents its units.

    Attributes:
        name: unique name (the decisions' ``strategy``).
        structure: a :class:`ScanStructure` value, or :data:`PAIR_STRUCTURE`.
        scan: overrides of :func:`params_for` (ScanParams field -> value; JSON-able), or the pair's
            :class:`~spx_core.automation.pair.PairParams` fields.
        limit_profile: the limit profile the strategy runs under (stored with every decision).
        price: how the limit price is set; ``price_offset`` (index points) for MID_OFFSET.
    """

    name: str
    structure: str
    scan: Mapping[str, Any] = field(default_factory=dict)
    entry: EntrySchedule = EntrySchedule()
    filters: EntryFilters = EntryFilters()
    sizing: Sizing = Sizing()
    exits: Exits = Exits()
    limit_profile: str = "credit verticals"
    hedge: HedgeConfig | None = None
    price: PriceMode = PriceMode.MID
    price_offset: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            _fail("name must be a non-empty string (the strategy's name)")
        structure = str(self.structure)
        known = [s.value for s in ScanStructure] + [PAIR_STRUCTURE]
        if structure not in known:
            _fail(f"structure {self.structure!r} is not one of: {', '.join(known)}")
        object.__setattr__(self, "structure", structure)
        if not isinstance(self.scan, Mapping):
            _fail(f"scan must be a mapping of scan parameters, got {type(self.scan).__name__}")
        object.__setattr__(self, "scan", _freeze(_canonical_scan(structure, self.scan)))
        for name, kind in _NESTED.items():
            value = getattr(self, name)
            if not (isinstance(value, kind) or (name == "hedge" and value is None)):
                _fail(f"{name} must be a {kind.__name__}, got {type(value).__name__}")
        if not isinstance(self.limit_profile, str) or not self.limit_profile.strip():
            _fail("limit_profile must name a limit profile, e.g. 'credit verticals'")
        try:
            object.__setattr__(self, "price", PriceMode(self.price))
        except ValueError:
            _fail(f"price {self.price!r} must be one of: {', '.join(p.value for p in PriceMode)}")
        _set_number(self, "price_offset", "price_offset", low=0.0, allow_none=False)
        if structure == PAIR_STRUCTURE and self.sizing.mode is SizingMode.RISK_BUDGET:
            _fail("sizing.mode risk_budget needs a max loss per unit, which the SPX/SPY pair does not bound; "
                  "use mode fixed")

    def __hash__(self) -> int:
        return hash(self.config_hash)

    @property
    def is_pair(self) -> bool:
        return self.structure == PAIR_STRUCTURE

    @property
    def scan_params(self) -> ScanParams:
        """The scanner's parameters (structure defaults, then ``scan``); not for the pair."""
        if self.is_pair:
            raise StrategyConfigError(f"{self.name}: the SPX/SPY pair is built, not scanned; use pair_params")
        return params_for(self.structure, **{k: _scan_value(k, v) for k, v in self.scan.items()})

    @property
    def pair_params(self):
        """The pair's :class:`~spx_core.automation.pair.PairParams` (only for :data:`PAIR_STRUCTURE`)."""
        from spx_core.automation.pair import PairParams

        if not self.is_pair:
            raise StrategyConfigError(f"{self.name}: structure {self.structure} is scanned; use scan_params")
        return PairParams(**dict(self.scan))

    # --- canonical JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every field as plain JSON values (nested parts as objects, enums as their values)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _NESTED and value is not None:
                value = {g.name: _plain(getattr(value, g.name)) for g in fields(value)}
            out[f.name] = _plain(value)
        return out

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces, every field (the hash is taken over this text)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    @property
    def config_hash(self) -> str:
        """sha256 hex of :meth:`to_json`: equal configs hash equal, whatever order their JSON was written in."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StrategyConfig:
        """Build from :meth:`to_dict`'s form; unknown keys are refused by name, missing ones take defaults."""
        if not isinstance(data, Mapping):
            _fail(f"a strategy config is a JSON object, got {type(data).__name__}")
        _known_keys("strategy", data, cls)
        kwargs = dict(data)
        for name, kind in _NESTED.items():
            part = kwargs.get(name)
            if part is None:
                continue
            if not isinstance(part, Mapping):
                _fail(f"{name} must be an object, got {part!r}")
            _known_keys(name, part, kind)
            kwargs[name] = kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in part.items()})
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> StrategyConfig:
        """Parse :meth:`to_json`'s text (any key order)."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise StrategyConfigError(f"strategy config is not valid JSON ({exc}); check the stored text") \
                from None
        return cls.from_dict(data)


def _known_keys(where: str, data: Mapping[str, Any], kind: type) -> None:
    allowed = {f.name for f in fields(kind)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        _fail(f"{where}: unknown key {', '.join(map(repr, unknown))}; allowed: {', '.join(sorted(allowed))}")
    if where == "strategy":
        missing = sorted({"name", "structure"} - set(data))
        if missing:
            _fail(f"strategy: missing key {', '.join(map(repr, missing))}")


@dataclass(frozen=True, slots=True)
class StoredStrategy:
    """A strategy as the user keeps it: its config, on/off, and what a TRADE does (manual / auto)."""

    config: StrategyConfig
    enabled: bool = False
    mode: StrategyMode = StrategyMode.MANUAL

    def __post_init__(self) -> None:
        if not isinstance(self.config, StrategyConfig):
            _fail(f"StoredStrategy.config must be a StrategyConfig, got {type(self.config).__name__}")
        if type(self.enabled) is not bool:
            _fail(f"{self.config.name}: enabled must be true or false, got {self.enabled!r}")
        try:
            object.__setattr__(self, "mode", StrategyMode(self.mode))
        except ValueError:
            _fail(f"{self.config.name}: mode {self.mode!r} must be one of: {', '.join(m.value for m in StrategyMode)}")

    @property
    def name(self) -> str:
        return self.config.name
