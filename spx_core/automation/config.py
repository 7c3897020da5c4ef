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
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from spx_core.automation.config_parts import (
    EntryFilters,
    EntrySchedule,
    Exits,
    HedgeConfig,
    HedgeInstrument,
    PriceMode,
    Sizing,
    SizingMode,
    StrategyConfigError,
    StrategyMode,
    _fail,
    _set_number,
    parse_hhmm,
)
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
    entry: EntrySchedule = field(default_factory=EntrySchedule)
    filters: EntryFilters = field(default_factory=EntryFilters)
    sizing: Sizing = field(default_factory=Sizing)
    exits: Exits = field(default_factory=Exits)
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
