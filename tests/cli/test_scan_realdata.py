"""spx-data scan on the real Cboe DataShop chain of 2019-06-26 15:45 ET imported with ``spx-data import``:
every structure answers sanely in the documented JSON, and an empty answer is one line."""

from __future__ import annotations

import json
import math

import pytest

from spx_core.cli.main import main
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.shared_data

CANDIDATE_KEYS = {"structure", "expiry", "legs", "credit_mid", "credit_natural", "width", "max_loss", "pop", "ev",
                  "edge_volpts", "score"}
LEG_KEYS = {"root", "expiry", "strike", "right", "ratio"}
CREDIT = {"put-credit-vertical", "call-credit-vertical", "iron-condor", "iron-butterfly"}
DEBIT = {"put-debit-vertical", "call-debit-vertical", "butterfly", "calendar"}  # a BWB may be either


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    if not SHARED_DATA.is_dir():  # (the shared_data fixture is per test; this import is per module)
        pytest.skip(f"real market data folder {SHARED_DATA} is absent")
    path = tmp_path_factory.mktemp("realscan") / "real.sqlite"
    csv = SHARED_DATA / "cboe_datashop" / "spxw20190626.csv"
    assert main(["import", "--format", "cboe-datashop", "--db", str(path), str(csv)]) == 0
    return path


def _scan(capsys, db, structure: str, *args: str) -> tuple[int, dict | None, str]:
    code = main(["scan", "--db", str(db), "--snapshot", "1", "--structure", structure, "--json", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else None), err


@pytest.mark.parametrize("structure", sorted(CREDIT | DEBIT | {"bwb"}))
def test_every_structure_is_sane_on_every_expiry_including_0dte(db, capsys, structure):
    code, payload, _ = _scan(capsys, db, structure, "--short-delta", "0.20", "--width", "25", "--dte", "0-400",
                             "--top", "500", "--allow-flagged")
    assert code == 0 and payload["snapshot"] == 1 and len(payload["checksum"]) == 64
    cands = payload["candidates"]
    assert cands and min(c["expiry"] for c in cands) == "2019-06-26"  # 0DTE candidates too
    for c in cands:
        what = c.get("name", c)
        assert CANDIDATE_KEYS <= set(c) and all(set(leg) == LEG_KEYS for leg in c["legs"])
        assert c["structure"] == structure
        assert c["credit_natural"] <= c["credit_mid"], what
        if structure in CREDIT:
            assert c["credit_mid"] > 0, what
        elif structure in DEBIT:
            assert c["credit_mid"] < 0, what
        # max loss is a payoff figure: known for every candidate, also where no density could be fitted
        assert c["max_loss"] is not None and math.isfinite(c["max_loss"]) and c["max_loss"] > 0, what
        assert c["pop"] is None or 0.0 <= c["pop"] <= 1.0, what
        assert c["score"] is None or math.isfinite(c["score"]), what  # None: none of its weighted terms is known
    scored = [c["score"] is not None for c in cands]
    assert scored == sorted(scored, reverse=True), "unscored candidates rank after every scored one"


def test_an_empty_0dte_scan_says_which_filter_in_one_line(db, capsys):
    code, _, err = _scan(capsys, db, "put-credit-vertical", "--short-delta", "0.20", "--width", "25", "--dte", "0-0")
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "quote flags filter" in lines[0] and "zero bid" in lines[0], err


def test_flies_riskless_only_at_a_stale_mid_are_filtered_with_their_count(tmp_path, capsys):
    """After-hours delayed quotes (SPX AM June and SPXW PM June expiries in one file): some long butterflies'
    mids sum to a credit, so at the mid they cannot lose (max loss 0, POP 100%) and topped the ranking, while
    at the natural they are a debit. They are removed by a named filter; every candidate left can lose."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real market data folder {SHARED_DATA} is absent")
    db = tmp_path / "delayed.sqlite"
    csv = SHARED_DATA / "cboe_delayed_quotes" / "hgnicej_MIT__spx_quotedata-3.csv"
    assert main(["import", "--format", "cboe-delayed", "--db", str(db), str(csv)]) == 0
    capsys.readouterr()
    code, payload, _ = _scan(capsys, db, "butterfly", "--short-delta", "0.1-0.5", "--width", "25", "--dte", "0-400",
                             "--top", "500")
    assert code == 0
    assert payload["removed"]["riskless only at mid"] > 0
    assert {c["legs"][0]["root"] for c in payload["candidates"]} == {"SPX", "SPXW"}  # AM and PM roots both
    for c in payload["candidates"]:
        assert c["credit_mid"] < 0 and c["max_loss"] > 0 and c["pop"] < 1.0, c["name"]


def test_a_minute_bar_import_without_an_index_price_scans_and_says_so(tmp_path, capsys):
    """Lean minute quotes: 406 one-minute snapshots of 12 SPXW quotes, no index price (parity forward)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real market data folder {SHARED_DATA} is absent")
    db = tmp_path / "lean.sqlite"
    zipped = SHARED_DATA / "lean_minute" / "spxw" / "20210104_quote_european.zip"
    assert main(["import", "--format", "lean-minute", "--db", str(db), str(zipped)]) == 0
    capsys.readouterr()
    code = main(["scan", "--db", str(db), "--snapshot", "100", "--structure", "call-credit-vertical",
                 "--short-delta", "0.05-0.95", "--width", "100", "--allow-flagged"])
    out = capsys.readouterr().out
    assert code == 0
    head = out.splitlines()[0]
    assert "2021-01-04 11:10 ET, index price n/a;" in head and "nan" not in head, head
    code, payload, _ = _scan(capsys, db, "call-credit-vertical", "--short-delta", "0.05-0.95", "--width", "100",
                             "--allow-flagged", "--snapshot", "100")
    assert code == 0 and payload["candidates"]
    for c in payload["candidates"]:
        assert c["credit_natural"] <= c["credit_mid"] and c["credit_mid"] > 0 and c["max_loss"] > 0


def test_a_seed_preset_on_a_file_without_its_expiries_names_the_dtes_in_one_plain_line(tmp_path):
    """The 3/5/7-DTE credit-vertical preset on the delayed-quotes file (only a 272-DTE SPXW expiry)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real market data folder {SHARED_DATA} is absent")
    from spx_core.storage import Store
    from spx_core.strategies.scanner import PRESETS, scan
    from spx_core.surface import chain_iv, fit_surface

    db = tmp_path / "delayed.sqlite"
    assert main(["import", "--format", "cboe-delayed", "--db", str(db),
                 str(SHARED_DATA / "cboe_delayed_quotes" / "hgnicej_MIT__spx_quotedata-3.csv")]) == 0
    store = Store.open(db)
    try:
        snap = store.load_snapshot(1)
    finally:
        store.close()
    civ = chain_iv(snap)
    result = scan(snap, civ, fit_surface(civ), PRESETS["Credit vertical: 0.20 delta put, 25 wide, 3/5/7 DTE"])
    assert not result.candidates
    assert result.reason == ("no listed SPXW expiry has DTE 3-7 (only 3/5/7) on 2025-10-01; listed DTEs: 272; "
                             "widen the DTE range")
