"""``spx-data greeks`` and ``spx-data surface``: IVs, greeks and the fitted surface of a stored snapshot.

Interface (scripts depend on it; keep it exactly):
    spx-data greeks --db PATH --snapshot ID --csv OUT
        one CSV row per quote: contract, bid/ask, forward, T, bid/ask/mid IV, delta, gamma, vega (per vol
        point), theta (per calendar day) and, when an IV is NaN, the reason code's name.
        ``--csv -`` writes to stdout.
    spx-data surface --db PATH --snapshot ID --json
        one JSON object on stdout: per expiry T, forward, discount factor, ATM IV, SVI parameters,
        fit RMSE (vol points), share of quotes inside the bid/ask IV band (and both for raw SVI alone),
        whether a spline correction and how many earlier-expiry calendar layers the slice carries,
        25-delta RR/BF, skew and the arbitrage flags found in the market quotes and in the fit.

Exit codes: 0 done, 1 the snapshot could not be read or the output not written, 2 bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from spx_core.cli.helpers import (
    DbAccess,
    add_db_option,
    add_snapshot_option,
    command,
    json_num,
    open_store,
    output_file,
)

__all__ = ["register", "cmd_greeks", "cmd_surface", "greeks_frame", "surface_payload"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("greeks", help="per-quote forward, T, bid/ask/mid IV and greeks of a snapshot")
    add_db_option(p)
    add_snapshot_option(p)
    p.add_argument("--csv", required=True, metavar="OUT", help="CSV file to write ('-' for stdout)")
    p.set_defaults(func=cmd_greeks)

    p = subparsers.add_parser("surface", help="fit the SVI surface of a snapshot and print it as JSON")
    add_db_option(p)
    add_snapshot_option(p)
    p.add_argument("--json", required=True, action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_surface)


def _load(args: argparse.Namespace):
    store = open_store(args.db_path, create=False)
    try:
        return store.load_snapshot(args.snapshot)
    finally:
        store.close()


def greeks_frame(civ):
    """One row per quote of ``civ.snapshot`` (pandas DataFrame)."""
    import numpy as np
    import pandas as pd

    from spx_core.domain.contracts import ROOTS
    from spx_core.pricing.iv import IVReason

    c = civ.snapshot.columns
    lut = np.full(256, "UNKNOWN", dtype=object)
    for r in IVReason:
        lut[int(r)] = r.name

    def reason(col, vol):
        return np.where(np.isfinite(vol), "", lut[col])

    return pd.DataFrame({
        "root": [ROOTS[i].value for i in c["root"]],
        "expiry": np.datetime_as_string(c["expiry"], unit="D"),
        "strike": c["strike"],
        "right": np.where(c["is_call"], "C", "P"),
        "bid": c["bid"], "ask": c["ask"],
        "forward": civ.forward, "discount": civ.discount, "t": civ.t,
        "iv_bid": civ.iv_bid, "iv_ask": civ.iv_ask, "iv_mid": civ.iv_mid,
        "delta": civ.delta, "gamma": civ.gamma, "vega": civ.vega, "theta": civ.theta,
        "reason": reason(civ.reason, civ.iv_mid),
        "reason_bid": reason(civ.reason_bid, civ.iv_bid),
        "reason_ask": reason(civ.reason_ask, civ.iv_ask),
    })


def _greeks(args: argparse.Namespace) -> int:
    from spx_core.surface import chain_iv

    snap = _load(args)
    frame = greeks_frame(chain_iv(snap))
    with output_file(args.csv) as out:
        frame.to_csv(out, index=False, na_rep="", float_format="%.17g")
    if args.csv == "-":
        return 0
    print(f"wrote {len(frame)} quotes of snapshot {args.snapshot} (checksum {snap.checksum}) to {args.csv}",
          file=sys.stderr)
    return 0


def surface_payload(surf, snapshot_id: int | None = None) -> dict:
    """The ``spx-data surface --json`` object for a fitted :class:`VolSurface`."""
    from spx_core.domain.calendar import from_ns

    expiries = []
    for f in surf.expiries:
        expiries.append({
            "root": f.root.value, "expiry": f.expiry.isoformat(), "t": json_num(f.t), "forward": json_num(f.forward),
            "discount": json_num(f.discount), "atm_iv": json_num(f.atm_iv),
            "svi": {k: json_num(v) for k, v in f.svi.as_dict().items()},
            "rmse_volpts": json_num(f.rmse_volpts), "in_band_share": json_num(f.in_band_share),
            "n_fit": f.n_fit, "n_scored": f.n_scored,
            "in_band_share_svi": json_num(f.in_band_share_svi), "rmse_volpts_svi": json_num(f.rmse_volpts_svi),
            "corrected": f.correction is not None, "calendar_layers": len(f.floor_layers),
            "rr25": json_num(f.rr25), "bf25": json_num(f.bf25), "skew": json_num(f.skew),
            "market_arb": {k: (json_num(v) if isinstance(v, float) else v) for k, v in f.market_arb.as_dict().items()},
            "fit_arb": {k: (json_num(v) if isinstance(v, float) else v) for k, v in f.fit_arb.as_dict().items()},
            "status": f.status,
        })
    return {"snapshot": snapshot_id, "checksum": surf.snapshot_checksum, "time": from_ns(surf.time_ns).isoformat(),
            "underlying_price": json_num(surf.underlying_price), "expiries": expiries}


def _surface(args: argparse.Namespace) -> int:
    from spx_core.surface import fit_surface

    snap = _load(args)
    payload = surface_payload(fit_surface(snap), args.snapshot)
    json.dump(payload, sys.stdout, indent=1, allow_nan=False)
    sys.stdout.write("\n")
    return 0


cmd_greeks = command(_greeks, db=DbAccess.READ)
cmd_surface = command(_surface, db=DbAccess.READ)
