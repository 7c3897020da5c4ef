"""Store on real SQLite files: pragmas, snapshots (bit-identical, checksum-verified), bars, instruments."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from spx_core.domain import COLUMNS, OptionContract
from spx_core.storage import SnapshotIntegrityError, SnapshotNotFoundError, Store, make_engine
from spx_core.storage.engine import WRITE_TIMEOUT_S
from tests.chains import T0, realistic_chain


@pytest.fixture
def db(tmp_path):
    return tmp_path / "sub" / "store.sqlite"


@pytest.fixture
def store(db):
    with Store.open(db) as s:
        yield s


def test_open_creates_the_file_in_wal_mode_with_foreign_keys_and_busy_timeout(db):
    store = Store.open(db)
    with store._engine.connect() as conn:
        pragmas = {p: conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in
                   ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")}
    store.close()

    assert db.is_file()
    busy_ms = pragmas.pop("busy_timeout")
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "synchronous": 1}
    assert WRITE_TIMEOUT_S * 1000 - 5_000 < busy_ms <= WRITE_TIMEOUT_S * 1000  # what is left of the write budget
    raw = sqlite3.connect(db)  # WAL is a property of the file: a plain sqlite3 client sees it too
    assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    raw.close()


def test_open_without_a_path_uses_the_env_var_then_the_data_folder(tmp_path, monkeypatch, _isolated_home):
    with Store.open() as store:
        assert store.path == _isolated_home / "spx_terminal.sqlite"
    monkeypatch.setenv("SPX_TERMINAL_DB", str(tmp_path / "env.sqlite"))
    with Store.open() as store:
        assert store.path == tmp_path / "env.sqlite" and store.path.is_file()


def test_foreign_keys_are_enforced(store):
    with pytest.raises(Exception, match="FOREIGN KEY"), store._write() as conn:
        conn.exec_driver_sql("INSERT INTO import_rejections (import_id, line, reason) VALUES (999, 1, 'x')")


def test_saved_snapshot_loads_bit_identical_with_the_same_checksum(store):
    snap = realistic_chain(n_quotes=4_000, seed=11)

    sid = store.save_snapshot(snap, source="test", session="s1")
    back = store.load_snapshot(sid)

    assert back.checksum == snap.checksum
    assert back.underlying == snap.underlying and back.time_ns == snap.time_ns
    for name in COLUMNS:
        assert back.columns[name].tobytes() == snap.columns[name].tobytes(), name
        assert not back.columns[name].flags.writeable
    back.verify()


def test_flags_are_kept_as_stored_not_recomputed(store):
    snap = realistic_chain(n_quotes=200, seed=12)
    odd_flags = np.arange(len(snap), dtype=np.uint16)  # no quality rule would produce these
    cols = dict(snap.columns) | {"flags": odd_flags}
    odd = type(snap)._make(snap.underlying, snap.time_ns, snap.underlying_price, cols, np.nan, np.nan)

    back = store.load_snapshot(store.save_snapshot(odd, source="test"))

    assert np.array_equal(back.columns["flags"], odd_flags)
    assert back.checksum == odd.checksum


def test_a_tampered_payload_raises_an_integrity_error_naming_the_snapshot(store, db):
    snap = realistic_chain(n_quotes=500, seed=13)
    store.save_snapshot(snap, source="test")
    sid = store.save_snapshot(snap, source="test")
    raw = sqlite3.connect(db)
    raw.execute("UPDATE snapshots SET checksum = ? WHERE id = ?", ("0" * 64, sid))
    raw.commit()

    with pytest.raises(SnapshotIntegrityError, match=rf"snapshot {sid}: checksum mismatch") as info:
        store.load_snapshot(sid)
    assert info.value.snapshot_id == sid

    raw.execute("UPDATE snapshots SET payload = substr(payload, 1, 100) WHERE id = 1")
    raw.commit()
    raw.close()
    with pytest.raises(SnapshotIntegrityError, match="snapshot 1: payload is unreadable"):
        store.load_snapshot(1)


def test_a_payload_whose_data_was_altered_fails_the_checksum(store, db):
    snap = realistic_chain(n_quotes=300, seed=14)
    other = snap.replace_quotes(time=snap.time_ns, underlying_price=snap.underlying_price,
                                bid=np.asarray(snap.columns["bid"]) + 0.05)
    sid = store.save_snapshot(snap, source="test")
    forged = store.save_snapshot(other, source="test")
    raw = sqlite3.connect(db)  # swap in the other snapshot's payload, keep this one's checksum
    raw.execute("UPDATE snapshots SET payload = (SELECT payload FROM snapshots WHERE id = ?) WHERE id = ?",
                (forged, sid))
    raw.commit()
    raw.close()

    with pytest.raises(SnapshotIntegrityError, match=f"snapshot {sid}"):
        store.load_snapshot(sid)


def test_missing_snapshot_raises_not_found(store):
    with pytest.raises(SnapshotNotFoundError, match="no snapshot with id 42"):
        store.load_snapshot(42)


def test_list_snapshots_filters_and_orders_by_time(store):
    times = [T0 + timedelta(seconds=s) for s in (30, 10, 20)]
    ids = [store.save_snapshot(realistic_chain(n_quotes=100, seed=i, time=ts), source="sim", session="a")
           for i, ts in enumerate(times)]
    spy = realistic_chain(n_quotes=100, seed=9, time=T0)
    spy = type(spy)._make("SPY", spy.time_ns, 470.0, dict(spy.columns), np.nan, np.nan)
    spy_id = store.save_snapshot(spy, source="csv")

    infos = store.list_snapshots(session="a")

    assert [i.id for i in infos] == [ids[1], ids[2], ids[0]]
    assert [i.time for i in infos] == sorted(times)
    assert infos[0].n_quotes == 100 and infos[0].n_expiries >= 1 and infos[0].source == "sim"
    assert [i.id for i in store.list_snapshots(underlying="SPY")] == [spy_id]
    assert store.list_snapshots(underlying="SPY")[0].underlying_price == 470.0
    assert len(store.list_snapshots()) == 4
    assert [i.id for i in store.list_snapshots(start=times[2], end=times[0])] == [ids[2], ids[0]]
    assert store.snapshot_ids("a") == [ids[1], ids[2], ids[0]]
    assert store.snapshot_ids("nope") == []


def test_nan_underlying_price_is_listed_as_nan(store):
    snap = realistic_chain(n_quotes=50, seed=15)
    snap = type(snap)._make("SPX", snap.time_ns, float("nan"), dict(snap.columns), np.nan, np.nan)
    sid = store.save_snapshot(snap, source="t")
    assert np.isnan(store.list_snapshots()[0].underlying_price)
    assert np.isnan(store.load_snapshot(sid).underlying_price)


def test_list_sessions_summarises_each_named_session(store):
    for i in range(3):
        store.save_snapshot(realistic_chain(n_quotes=50, seed=i, time=T0 + timedelta(minutes=i)),
                            source="Simulated", session="morning")
    store.save_snapshot(realistic_chain(n_quotes=50, seed=5, time=T0 + timedelta(hours=2)), source="Replay",
                        session="afternoon")
    store.save_snapshot(realistic_chain(n_quotes=50, seed=6, time=T0 + timedelta(hours=3)), source="Simulated",
                        session="afternoon")
    store.save_snapshot(realistic_chain(n_quotes=50, seed=7), source="x")  # no session: not listed

    sessions = store.list_sessions()

    assert [(s.name, s.source, s.n_snapshots) for s in sessions] == [
        ("morning", "Simulated", 3), ("afternoon", "Replay,Simulated", 2)]
    assert sessions[0].start == T0 and sessions[0].end == T0 + timedelta(minutes=2)


def test_save_snapshots_stores_all_or_none(store):
    good = realistic_chain(n_quotes=50, seed=1)
    with pytest.raises(AttributeError):
        store.save_snapshots([good, "not a snapshot"], source="t")
    assert store.list_snapshots() == []
    assert len(store.save_snapshots([good, good], source="t")) == 2


def test_store_accepts_an_engine_passed_in(db):
    engine = make_engine(db)
    store = Store(engine)
    sid = store.save_snapshot(realistic_chain(n_quotes=50, seed=1), source="t")
    store.close()  # does not dispose an engine it did not create
    assert Store(engine).load_snapshot(sid).checksum
    engine.dispose()


def test_instruments_upsert_by_occ_symbol_and_keep_broker_ids(store):
    plain = OptionContract(root="SPXW", expiry=date(2024, 1, 5), strike=4700, right="C")
    with_ids = OptionContract(root="SPXW", expiry=date(2024, 1, 5), strike=4700, right="C", con_id=123,
                              trading_class="SPXW")
    store.save_instruments([plain])
    store.save_instruments([with_ids])
    store.save_instruments([plain])  # a later file without ids must not erase them

    got = store.load_instrument("SPXW  240105C04700000")

    assert got == plain and got.con_id == 123 and got.trading_class == "SPXW"
    with store._read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM instruments").scalar() == 1
    assert store.load_instrument("SPX   240119P04000000") is None


def test_bars_round_trip_from_tz_aware_or_ns_times_and_filter_by_time(store):
    et = pd.date_range("2024-01-05 09:30", periods=5, freq="1min", tz="America/New_York")
    bars = pd.DataFrame({"time": et, "open": [1.0, 2, 3, 4, 5], "high": 2.0, "low": 0.5,
                         "close": [1.5, np.nan, 3, 4, 5], "volume": [10, 20, 30, 40, 50]})
    store.save_bars("SPX", bars)
    ns = bars.assign(time=et.as_unit("ns").asi8 + 60_000_000_000 * 5)
    store.save_bars("SPX", ns)

    out = store.load_bars("SPX")
    window = store.load_bars("SPX", start=et[1].to_pydatetime(), end=int(et[3].value))

    assert list(out.columns) == ["time", "open", "high", "low", "close", "volume"]
    assert len(out) == 10 and out["time"].is_monotonic_increasing
    assert out["time"].iloc[0] == pd.Timestamp("2024-01-05 14:30", tz="UTC")
    assert np.isnan(out["close"].iloc[1]) and out["volume"].iloc[4] == 50
    assert list(window["open"]) == [2.0, 3.0, 4.0]
    assert store.load_bars("NDX").empty


def test_bars_replace_on_same_symbol_and_time(store):
    t = int(datetime(2024, 1, 5, 15, tzinfo=UTC).timestamp()) * 10**9
    store.save_bars("SPX", pd.DataFrame({"time": [t], "open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0],
                                         "volume": [0]}))
    store.save_bars("SPX", pd.DataFrame({"time": [t], "open": [2.0], "high": [2.0], "low": [2.0], "close": [2.0],
                                         "volume": [5]}))
    assert store.load_bars("SPX")["close"].tolist() == [2.0]


def test_naive_bar_times_are_refused_with_a_fix(store):
    bars = pd.DataFrame({"time": pd.date_range("2024-01-05", periods=2, freq="1min"), "open": 1.0, "high": 1.0,
                         "low": 1.0, "close": 1.0, "volume": 1})
    with pytest.raises(Exception, match="tz_localize"):
        store.save_bars("SPX", bars)


def test_one_store_serves_several_threads(store):
    snap = realistic_chain(n_quotes=300, seed=21)
    errors: list[BaseException] = []
    ids: list[int] = []
    lock = threading.Lock()

    def work():
        try:
            for _ in range(5):
                sid = store.save_snapshot(snap, source="thread")
                assert store.load_snapshot(sid).checksum == snap.checksum
                with lock:
                    ids.append(sid)
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)

    assert errors == []
    assert sorted(ids) == [i.id for i in store.list_snapshots()]
    assert len(ids) == 20


@pytest.mark.parametrize(("column", "value"), [("time_ns", "time_ns - 3600000000000"), ("underlying_price", "4800.0"),
                                               ("underlying", "'SPY'"), ("n_quotes", "n_quotes + 1")])
def test_an_edited_time_or_price_column_is_caught_on_load(db, column, value):
    # The plain columns are what listings show and replay orders by; the payload's checksum covers
    # the same fields, so a row that disagrees with its verified payload was edited.
    with Store.open(db) as store:
        sid = store.save_snapshot(realistic_chain(n_quotes=50), source="t", session="s")
    con = sqlite3.connect(db)
    con.execute(f"UPDATE snapshots SET {column} = {value} WHERE id = ?", (sid,))
    con.commit()
    con.close()
    with Store.open(db) as store, pytest.raises(SnapshotIntegrityError, match=rf"snapshot {sid}: its {column} column"):
        store.load_snapshot(sid)
