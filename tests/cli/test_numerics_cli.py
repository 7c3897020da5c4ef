"""spx-data greeks / surface on snapshots stored in a real SQLite file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from spx_core.cli.main import main
from spx_core.storage import Store
from tests.chains import make_chain


@pytest.fixture
def db(tmp_path):
    snap, truth = make_chain(n_expiries=4, noise=0.2, half_spread_vol=0.002, seed=41)
    path = tmp_path / "cli.sqlite"
    store = Store.open(path)
    try:
        sid = store.save_snapshot(snap, source="test")
    finally:
        store.close()
    return path, sid, snap, truth


def test_greeks_writes_one_row_per_quote(db, tmp_path, capsys):
    path, sid, snap, truth = db
    out = tmp_path / "greeks.csv"
    assert main(["greeks", "--db", str(path), "--snapshot", str(sid), "--csv", str(out)]) == 0
    frame = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert len(frame) == len(snap)
    for col in ("forward", "t", "iv_bid", "iv_ask", "iv_mid", "delta", "gamma", "vega", "theta", "reason"):
        assert col in frame.columns
    assert np.allclose(frame["strike"], snap.columns["strike"])
    nan_mid = frame["iv_mid"].isna()
    assert (frame.loc[nan_mid, "reason"].str.len() > 0).all()
    assert (frame.loc[~nan_mid, "reason"].isna() | (frame.loc[~nan_mid, "reason"] == "")).all()
    assert frame["reason_bid"].dropna().isin(["BELOW_INTRINSIC", "NO_TIME_VALUE", "BAD_INPUT", "ABOVE_MAX",
                                               "EXPIRED", ""]).all()
    first = frame[frame["expiry"] == str(truth[0].expiry)]
    assert first["forward"].iloc[0] == pytest.approx(truth[0].forward, abs=0.5)
    assert "wrote" in capsys.readouterr().err


def test_surface_prints_one_json_object(db, capsys):
    path, sid, snap, truth = db
    assert main(["surface", "--db", str(path), "--snapshot", str(sid), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["snapshot"] == sid and payload["checksum"] == snap.checksum
    assert len(payload["expiries"]) == len(truth)
    for e, x in zip(payload["expiries"], truth, strict=True):
        assert e["expiry"] == x.expiry.isoformat()
        assert e["t"] == pytest.approx(x.t)
        assert e["discount"] == pytest.approx(x.discount, abs=5e-3)
        assert set(e["svi"]) == {"a", "b", "rho", "m", "sigma"}
        assert 0.05 < e["atm_iv"] < 0.5 and e["rmse_volpts"] < 0.5 and e["in_band_share"] > 0.8
        assert e["market_arb"]["flags"] == [] and e["fit_arb"]["flags"] == []
        assert 0.0 <= e["in_band_share_svi"] <= 1.0 and isinstance(e["corrected"], bool)
        assert isinstance(e["calendar_layers"], int) and e["calendar_layers"] >= 0


def test_unknown_snapshot_fails_with_exit_1(db, capsys):
    path, _, _, _ = db
    assert main(["surface", "--db", str(path), "--snapshot", "999", "--json"]) == 1
    assert "999" in capsys.readouterr().err


def test_missing_arguments_are_usage_errors(db):
    path, sid, _, _ = db
    with pytest.raises(SystemExit) as exc:
        main(["greeks", "--db", str(path), "--snapshot", str(sid)])
    assert exc.value.code == 2


@pytest.mark.shared_data
def test_surface_on_an_imported_datashop_file(shared_data, tmp_path, capsys):
    path = tmp_path / "real.sqlite"
    src = shared_data / "cboe_datashop" / "spxw20190626.csv"
    assert main(["import", "--format", "cboe-datashop", "--db", str(path), "--json", str(src)]) == 0
    sid = json.loads(capsys.readouterr().out)["files"][0]
    store = Store.open(path)
    try:
        sid = store.list_snapshots()[0].id
    finally:
        store.close()
    assert main(["surface", "--db", str(path), "--snapshot", str(sid), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["expiries"]) >= 29
    fitted = [e for e in payload["expiries"] if e["status"] == ""]
    scored = sum(e["n_scored"] for e in fitted)
    assert sum(e["in_band_share"] * e["n_scored"] for e in fitted) / scored >= 0.95
    assert all(e["fit_arb"]["flags"] == [] for e in fitted)
    out = tmp_path / "g.csv"
    assert main(["greeks", "--db", str(path), "--snapshot", str(sid), "--csv", str(out)]) == 0
    assert len(pd.read_csv(out)) > 10_000
