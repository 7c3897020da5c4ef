"""What a scan returns: every passing candidate as arrays (:class:`ScanTable`), the best N as
:class:`Candidate` objects carrying a real :class:`Structure`, and the filter counts (:class:`ScanResult`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from spx_core.domain.contracts import OptionContract
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.strategies.recognize import recognize
from spx_core.strategies.scanner_candidates import Candidates
from spx_core.strategies.scanner_params import ScanParams, ScanStructure
from spx_core.strategies.structure import Leg, Structure, StructureKind

__all__ = ["Candidate", "ScanResult", "ScanTable", "build_structure"]

_KIND = {
    ScanStructure.PUT_CREDIT_VERTICAL: (StructureKind.VERTICAL, "put credit vertical"),
    ScanStructure.CALL_CREDIT_VERTICAL: (StructureKind.VERTICAL, "call credit vertical"),
    ScanStructure.PUT_DEBIT_VERTICAL: (StructureKind.VERTICAL, "put debit vertical"),
    ScanStructure.CALL_DEBIT_VERTICAL: (StructureKind.VERTICAL, "call debit vertical"),
    ScanStructure.IRON_CONDOR: (StructureKind.IRON_CONDOR, "iron condor"),
    ScanStructure.IRON_BUTTERFLY: (StructureKind.IRON_BUTTERFLY, "iron butterfly"),
    ScanStructure.BUTTERFLY: (StructureKind.BUTTERFLY, "butterfly"),
    ScanStructure.BWB: (StructureKind.BROKEN_WING_BUTTERFLY, "broken-wing butterfly"),
    ScanStructure.CALENDAR: (StructureKind.CALENDAR, "calendar"),
}


def build_structure(snapshot: ChainSnapshot, kind: ScanStructure, rows: np.ndarray, ratios: np.ndarray) -> Structure:
    """The :class:`Structure` of one candidate, named as the builders and the chain's leg picker name it
    (:func:`~spx_core.strategies.recognize.recognize`, e.g. "SPXW 2024-01-05 4700/4675 put credit vertical
    (25 wide)"), so a scanned structure and the same legs picked by hand read the same."""
    contracts: list[OptionContract] = [snapshot.contract(int(r)) for r in rows]
    legs = tuple(Leg(c, int(q)) for c, q in zip(contracts, ratios, strict=True))
    structure = recognize(legs)
    if structure.kind is not _KIND[kind][0]:  # never expected: keep the scan's own reading rather than guess
        structure_kind, label = _KIND[kind]
        strikes = "/".join(f"{c.strike:g}" for c in contracts)
        return Structure(legs, structure_kind, f"{contracts[0].root.value} {contracts[0].expiry} {strikes} {label}")
    return structure


def _num(x: float) -> float | None:
    """JSON has no NaN or infinity: an unknown (or unlimited) figure is null."""
    return float(x) if math.isfinite(x) else None


@dataclass(frozen=True, slots=True)
class Candidate:
    """One scanned structure and its figures.

    Prices, width, max loss and EV are index points per unit (x100 for dollars); credits are signed
    (positive = credit received, negative = debit paid). ``pop`` is a probability; ``edge_usd`` dollars
    per unit; ``edge_volpts`` vol points; ``score`` the weighted total (see :class:`ScoreWeights`).
    """

    structure: Structure
    kind: ScanStructure
    expiry: date
    dte: int
    credit_mid: float
    credit_natural: float
    width: float
    max_loss: float
    pop: float
    ev: float
    ev_per_max_loss: float
    edge_usd: float
    edge_volpts: float
    credit_per_width: float
    package_spread: float
    score: float

    def to_json(self) -> dict:
        """The ``spx-data scan --json`` candidate object (legs with signed ratios; NaN -> null)."""
        legs = [{"root": leg.contract.root.value, "expiry": leg.contract.expiry.isoformat(),
                 "strike": leg.contract.strike, "right": leg.contract.right.value, "ratio": leg.ratio}
                for leg in self.structure.legs]
        return {"structure": self.kind.value, "name": self.structure.name, "expiry": self.expiry.isoformat(),
                "dte": self.dte, "legs": legs,
                "credit_mid": _num(self.credit_mid), "credit_natural": _num(self.credit_natural),
                "width": _num(self.width), "max_loss": _num(self.max_loss), "pop": _num(self.pop),
                "ev": _num(self.ev), "edge_volpts": _num(self.edge_volpts), "score": _num(self.score),
                "edge_usd": _num(self.edge_usd), "credit_per_width": _num(self.credit_per_width),
                "ev_per_max_loss": _num(self.ev_per_max_loss), "package_spread": _num(self.package_spread)}


@dataclass(frozen=True, slots=True, eq=False)
class ScanTable:
    """Every candidate that passed the filters, best score first, as aligned arrays (units as Candidate)."""

    candidates: Candidates
    dte: np.ndarray
    credit_mid: np.ndarray
    credit_natural: np.ndarray
    package_spread: np.ndarray
    max_loss: np.ndarray
    pop: np.ndarray
    ev: np.ndarray
    ev_per_max_loss: np.ndarray
    edge_usd: np.ndarray
    edge_volpts: np.ndarray
    credit_per_width: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return len(self.candidates)

    @property
    def width(self) -> np.ndarray:
        return self.candidates.width

    def take(self, index: np.ndarray) -> ScanTable:
        fields = {name: getattr(self, name)[index] for name in self.__dataclass_fields__ if name != "candidates"}
        return ScanTable(self.candidates.take(index), **fields)

    def candidate(self, i: int, snapshot: ChainSnapshot, kind: ScanStructure, expiry: date) -> Candidate:
        """Row ``i`` as a :class:`Candidate` with its structure."""
        c = self.candidates
        return Candidate(build_structure(snapshot, kind, c.rows[i], c.ratios), kind, expiry, int(self.dte[i]),
                         *(float(getattr(self, n)[i]) for n in (
                             "credit_mid", "credit_natural", "width", "max_loss", "pop", "ev", "ev_per_max_loss",
                             "edge_usd", "edge_volpts", "credit_per_width", "package_spread", "score")))


@dataclass(frozen=True, slots=True, eq=False)
class ScanResult:
    """A scan of one snapshot.

    Attributes:
        params: what was asked.
        snapshot_checksum: the checksum of the snapshot scanned (record it with any decision taken).
        time_ns: the snapshot's time (ns since epoch, UTC).
        candidates: the best ``params.top`` candidates, best first, each with its structure.
        table: every candidate that passed, best first (arrays; ``candidates`` are its first rows).
        n_expiries: expiries scanned (in the DTE range and roots asked for).
        n_considered: candidates built (listed strikes, delta and width matched) before the quote filters.
        removed: (filter name, candidates it removed), in the order the filters ran.
        reason: "" when candidates were found; else one line saying what left nothing and how to widen it.
        densities: the risk-neutral densities by (root, expiry) a calendar scan integrated over (given or
            computed), for the caller to reuse; empty for single-expiry structures (their POP needs none).
    """

    params: ScanParams
    snapshot_checksum: str
    time_ns: int
    candidates: list[Candidate]
    table: ScanTable | None
    n_expiries: int
    n_considered: int
    removed: tuple[tuple[str, int], ...] = ()
    reason: str = ""
    densities: dict = field(default_factory=dict, repr=False)

    @property
    def n_passed(self) -> int:
        return 0 if self.table is None else len(self.table)

    def to_json(self, snapshot_id: int | None = None) -> dict:
        """``{"snapshot", "checksum", "candidates": [...]}`` as ``spx-data scan --json`` prints it."""
        return {"snapshot": snapshot_id, "checksum": self.snapshot_checksum,
                "structure": self.params.structure.value, "n_expiries": self.n_expiries,
                "n_considered": self.n_considered, "n_passed": self.n_passed,
                "removed": {name: count for name, count in self.removed}, "reason": self.reason,
                "candidates": [c.to_json() for c in self.candidates]}
