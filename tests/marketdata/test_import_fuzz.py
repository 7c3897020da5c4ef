"""Bounded fuzz test of every importer: mutated real files must be stored or rejected line by line, never crash.

Each case mutates a real file (the fixtures, plus ../shared/data when present) with a fixed seed: byte
flips, truncation, a duplicated or deleted line, a stray quote, a garbage field. Most cases run
in-process through ``import_files`` into one temporary store per format; a few go through the real
``spx-data import`` in a subprocess. What must hold for every case:

* the import never raises, and the CLI exits 0, 1 or 2 without a traceback;
* all or nothing per file: a failed file stored nothing, an imported one stored what it reports;
* every physical data line is accounted for: stored in a snapshot or rejected with its own number
  (CSV formats; LEAN by count per member; DBN records are checked for all-or-nothing only).

The whole module runs in well under a minute on one core (CASES sets the size).
"""

from __future__ import annotations

import io
import random
import re
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from spx_core.marketdata.importers import ImportStatus, import_files
from spx_core.marketdata.importers.chains import ChainBuffer
from spx_core.storage import Store
from tests.conftest import SHARED_DATA
from tests.marketdata.dbn_files import MINUTE, T0, Quote, cbbo, definition, metadata
from tests.marketdata.import_helpers import DATASHOP_CUT, DELAYED_CUT, LEAN_INDEX, LEAN_QUOTES

SEED = 20261203
CASES = {"cboe-datashop": 240, "cboe-delayed": 240, "lean-minute": 160, "databento": 240}
#: The fallback message of base.import_files for an exception no importer turned into a message.
_UNEXPLAINED = re.compile(r": [A-Za-z_]\w*(Error|Exception|Warning|Exit)\b: ")
_GARBAGE = [b"", b"abc", b"-1", b"0", b"1e308", b"inf", b"NaN", b"-0.0", b"\x00", b"9" * 40, b'"', b"2019-13-45",
            b"1970-01-01", b"\xff\xfe", b" ", b"C", b"SPXW999999C99999999", b"Date: garbage"]


# --- mutations: bytes -> bytes ---------------------------------------------------------------------
def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def flip_bytes(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[:rng.randrange(1, len(data))]


def duplicate_line(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    i = rng.randrange(len(lines))
    return b"\n".join([*lines[:i + 1], lines[i], *lines[i + 1:]])


def delete_line(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    del lines[rng.randrange(len(lines))]
    return b"\n".join(lines)


def stray_quote(rng: random.Random, data: bytes) -> bytes:
    commas = [m.end() for m in re.finditer(rb",", data)] or [0]
    at = rng.choice(commas) if rng.random() < 0.7 else rng.randrange(len(data))
    return data[:at] + b'"' + data[at:]


def garbage_field(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    i = rng.randrange(len(lines))
    fields = lines[i].split(b",")
    fields[rng.randrange(len(fields))] = rng.choice(_GARBAGE)
    lines[i] = b",".join(fields)
    return b"\n".join(lines)


MUTATIONS: list[Callable[[random.Random, bytes], bytes]] = [flip_bytes, truncate, duplicate_line, delete_line,
                                                            stray_quote, garbage_field]


def mutate(rng: random.Random, data: bytes) -> bytes:
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        data = rng.choice(MUTATIONS)(rng, data) or data
    return data


def mutate_zip(rng: random.Random, src: Path) -> bytes:
    """Mostly mutate one member's text (recompressed); sometimes the zip's own bytes."""
    raw = src.read_bytes()
    if rng.random() < 0.2:
        return rng.choice((flip_bytes, truncate))(rng, raw)
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    for name in rng.sample(sorted(members), k=min(len(members), rng.choice((1, 1, 2)))):
        members[name] = mutate(rng, members[name])
    if rng.random() < 0.1:  # a member under a wrong name, or a stray one
        members[rng.choice(("readme.txt", "20210104_spxw_minute_quote_european_call_1_19700101.csv"))] = b"1,2\n"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def _dbn_source() -> bytes:
    syms = ["SPXW  210104C03700000", "SPXW  210104P03700000", "SPX   210115C03800000"]
    records = [definition(i + 1, s) for i, s in enumerate(syms)]
    records += [cbbo(Quote(1 + k % 3, T0 + (1 + k // 3) * MINUTE, T0 + k * 10**9, 10.0 + k, 10.5 + k))
                for k in range(12)]
    return bytes(metadata()) + b"".join(bytes(r) for r in records)


def mutate_dbn(rng: random.Random, data: bytes) -> bytes:
    """Byte flips, truncation, or a record-sized chunk duplicated or removed (DBN has no lines)."""
    kind = rng.random()
    if kind < 0.5:
        return flip_bytes(rng, data)
    if kind < 0.7:
        return truncate(rng, data)
    at, size = rng.randrange(200, len(data)), rng.choice((16, 80, 520))
    return data[:at] + data[at:at + size] + data[at:] if kind < 0.85 else data[:at] + data[at + size:]


@pytest.fixture
def db_dir(tmp_path):
    """A folder for the fuzz databases: in memory (/dev/shm) where there is one, since a few hundred
    committed imports are otherwise bound by the disk's fsync, not by the importers."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir=shm, prefix="spx-fuzz-") as folder:
        yield Path(folder)


# --- what must hold --------------------------------------------------------------------------------
def _physical_lines(text: str) -> list[str]:
    lines = re.split(r"\r\n|\r|\n", text)
    return lines[:-1] if lines and lines[-1] == "" else lines


def _blank(line: str) -> bool:
    return not line.replace(",", "").strip()


def _data_lines(data: bytes, fmt: str) -> tuple[int, int, set[int]] | None:
    """(header lines, all lines, numbers of non-blank data lines), read independently of the importer."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    lines = _physical_lines(text)
    header = 1
    if fmt == "cboe-delayed":
        found = [i for i, line in enumerate(lines[:12], 1) if {"calls", "puts"} <= {
            c.strip().strip('"').lower() for c in line.split(",")}]
        if not found:
            return None
        header = found[0]
    return header, len(lines), {n for n, line in enumerate(lines, 1) if n > header and not _blank(line)}


def _check_accounting(report, data: bytes, fmt: str, stored: set[int]) -> None:
    rejected = {r.line for r in report.rejected}
    parsed = _data_lines(data, fmt)
    assert parsed is not None, "a file that is not text (or has no header) cannot have imported"
    header, total, lines = parsed
    missing = lines - stored - rejected
    assert not missing, f"lines neither stored nor rejected: {sorted(missing)[:10]}"
    assert all(0 <= n <= total for n in rejected), f"a rejection names no line of the file: {sorted(rejected)}"
    if fmt == "cboe-datashop":
        assert not stored & rejected, f"lines both stored and rejected: {sorted(stored & rejected)[:10]}"
        assert report.quotes_stored == len(stored)


def _check_lean_counts(report, data: bytes) -> None:
    """Rows read = the non-blank lines of the members not rejected by name; each is a quote, a bar or a rejection."""
    skipped = {r.reason.split(":", 1)[0] for r in report.rejected if r.line == 0}
    seen, expected = set(), 0
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            name = Path(info.filename).name
            if info.is_dir() or (name in skipped and (name in seen or not _first_kept(report, name))):
                continue
            seen.add(name)
            expected += sum(not _blank(line) for line in _physical_lines(z.read(info).decode("utf-8")))
    assert report.rows_read == expected
    row_rejections = sum(1 for r in report.rejected if r.line > 0)
    assert report.quotes_stored + report.bars + row_rejections == report.rows_read


def _first_kept(report, name: str) -> bool:
    """A member rejected only as a repeat of its name: its first copy was imported."""
    reasons = [r.reason for r in report.rejected if r.line == 0 and r.reason.startswith(f"{name}:")]
    return all("appears twice in the zip" in reason for reason in reasons)


class _Recorder:
    """Records the line numbers the chain buffer hands to snapshots (what was stored)."""

    def __init__(self, monkeypatch) -> None:
        self.lines: set[int] = set()
        original = ChainBuffer.pop

        def pop(buffer, key, reject):
            cols, lines = original(buffer, key, reject)
            self.lines.update(int(x) for x in lines)
            return cols, lines

        monkeypatch.setattr(ChainBuffer, "pop", pop)


def _sources(fmt: str) -> list[Path]:
    shared = SHARED_DATA if SHARED_DATA.is_dir() else None
    if fmt == "cboe-datashop":
        return [DATASHOP_CUT] + ([shared / "cboe_datashop/spxw20190626.csv"] if shared else [])
    if fmt == "cboe-delayed":
        return [DELAYED_CUT] + (sorted((shared / "cboe_delayed_quotes").glob("*.csv")) if shared else [])
    if fmt == "lean-minute":
        return [LEAN_QUOTES, LEAN_INDEX]
    return []


def _cases(fmt: str, tmp_path: Path, n: int) -> list[tuple[Path, bytes]]:
    rng = random.Random(f"{SEED}:{fmt}")
    sources = _sources(fmt)
    dbn = _dbn_source() if fmt == "databento" else b""
    out = []
    for k in range(n):
        if fmt == "databento":
            data, name = mutate_dbn(rng, dbn), f"case{k:03d}.dbn"
        else:
            # the small fixtures most of the time; a big real file now and then (they cost more)
            src = sources[0] if rng.random() < 0.75 or len(sources) == 1 else rng.choice(sources[1:])
            if fmt == "lean-minute":
                src = rng.choice(sources)
                data = mutate_zip(rng, src)
                name = f"c{k:03d}_{src.name}"
            else:
                data, name = mutate(rng, src.read_bytes()), f"case{k:03d}_{src.name}"
        path = tmp_path / name
        path.write_bytes(data)
        out.append((path, data))
    return out


@pytest.mark.parametrize("fmt", list(CASES))
def test_mutated_files_are_stored_or_rejected_line_by_line(fmt, tmp_path, db_dir, monkeypatch):
    recorder = _Recorder(monkeypatch)
    cases = _cases(fmt, tmp_path, CASES[fmt])
    statuses = set()
    with Store.open(db_dir / "fuzz.sqlite") as store:
        for path, data in cases:
            recorder.lines = set()
            bars_before = _bar_count(store)
            [report] = import_files(store, [path], fmt)  # raising here fails the test: nothing may escape
            statuses.add(report.status)
            stored = store.snapshot_ids(f"{fmt}:{path.name}")
            context = f"{path.name}: {report.status} {report.error} {report.rejected[:3]}"
            if report.status is not ImportStatus.IMPORTED:
                assert stored == [] and _bar_count(store) == bars_before, context
                assert report.status is ImportStatus.DUPLICATE or report.error, context
                # explained: an importer's own message, not the fallback "path: SomeError: ..." of a bug
                assert not _UNEXPLAINED.match(report.error or "", len(str(path))), context
                continue
            assert len(stored) == report.snapshots, context
            if fmt in ("cboe-datashop", "cboe-delayed"):
                _check_accounting(report, data, fmt, recorder.lines)
            elif fmt == "lean-minute":
                _check_lean_counts(report, data)
    assert {ImportStatus.IMPORTED, ImportStatus.FAILED} <= statuses  # the mutations reach both outcomes


def _bar_count(store: Store) -> int:
    bars = store.load_bars("SPX")
    return 0 if bars is None else len(bars)


def test_mutated_files_through_the_real_cli_exit_cleanly(tmp_path, db_dir):
    spx_data = Path(sys.executable).parent / "spx-data"
    command = [str(spx_data)] if spx_data.exists() else [sys.executable, "-m", "spx_core.cli.main"]
    for fmt in CASES:
        (tmp_path / fmt).mkdir()
        cases = _cases(fmt, tmp_path / fmt, 6)
        out = subprocess.run([*command, "import", "--format", fmt, "--db", str(db_dir / "cli.sqlite"),
                              *(str(p) for p, _ in cases)], capture_output=True, text=True, timeout=120)
        assert out.returncode in (0, 1, 2), (fmt, out.returncode, out.stderr[-2000:])
        assert "Traceback" not in out.stdout + out.stderr and "panicked" not in out.stderr, (fmt, out.stderr[-2000:])
        assert out.stdout.count("\n") >= len(cases), out.stdout  # one report line per file at least
