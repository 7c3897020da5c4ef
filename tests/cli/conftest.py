"""CLI test fixtures: run the real ``spx-data`` as a process, and real small or read-only disks."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SPX_DATA = Path(sys.executable).parent / "spx-data"


@dataclass(frozen=True)
class Finished:
    """A finished ``spx-data`` process; ``messages`` is stderr as a terminal shows it (progress bars gone)."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def messages(self) -> list[str]:
        # tqdm redraws with "\r" and clears itself (leave=False): keep what each line ends up showing
        shown = (line.rsplit("\r", 1)[-1].strip() for line in self.stderr.split("\n"))
        return [line for line in shown if line]

    def assert_one_line_failure(self, *, codes: tuple[int, ...] = (1, 2)) -> str:
        """The process failed with exit 1 or 2 and told the user ONE line, no traceback; returns that line."""
        assert self.returncode in codes, (self.returncode, self.stderr)
        assert "Traceback" not in self.stderr and "Traceback" not in self.stdout, self.stderr
        assert len(self.messages) == 1, self.stderr
        return self.messages[0]


def run_spx_data(*args: object, env: dict[str, str] | None = None, timeout: float = 180) -> Finished:
    # bytes, not text=True: universal newlines would turn a progress bar's "\r" redraws into lines
    proc = subprocess.run([str(SPX_DATA), *map(str, args)], capture_output=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    return Finished(proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))


def _mount_tmpfs(where: Path, options: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    return done.returncode == 0


def _unmount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A real 1 MiB file system (tmpfs), so a write fails with a genuine ENOSPC / SQLITE_FULL."""
    where = tmp_path / "small_disk"
    if not _mount_tmpfs(where, "size=1m"):
        pytest.skip("mounting a size-limited tmpfs needs root (the in-process ENOSPC tests still run)")
    try:
        yield where
    finally:
        _unmount(where)


@pytest.fixture
def read_only_dir(tmp_path) -> Iterator[Path]:
    """A folder nobody can create files in: a read-only tmpfs as root, else a chmod 0555 folder."""
    where = tmp_path / "read_only"
    if os.geteuid() == 0:
        if not _mount_tmpfs(where, "ro,size=64k"):
            pytest.skip("root cannot make a folder unwritable without mounting a read-only tmpfs")
        try:
            yield where
        finally:
            _unmount(where)
        return
    where.mkdir()
    where.chmod(0o555)
    try:
        yield where
    finally:
        where.chmod(0o755)
