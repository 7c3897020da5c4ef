"""The screenshot tests' shared helpers that run without a display: the copy into resources/screenshots/ happens
only when asked for (a normal test run never rewrites the README's pictures)."""

from __future__ import annotations

import pytest

from tests.app import screenshot_driver


@pytest.fixture
def pngs(tmp_path, monkeypatch):
    monkeypatch.setattr(screenshot_driver, "REPO", tmp_path / "repo")
    shots = tmp_path / "shots"
    shots.mkdir()
    for name in ("a.png", "b.png"):
        (shots / name).write_bytes(name.encode())
    return [shots / "a.png", shots / "b.png"]


def test_update_screenshots_copies_only_when_asked(pngs, tmp_path, monkeypatch):
    target = tmp_path / "repo" / "resources" / "screenshots"
    monkeypatch.delenv("SPX_UPDATE_SCREENSHOTS", raising=False)
    screenshot_driver.update_screenshots(pngs)
    assert not target.exists()
    monkeypatch.setenv("SPX_UPDATE_SCREENSHOTS", "1")
    screenshot_driver.update_screenshots(iter(pngs))  # a generator, as the tests pass it
    assert sorted(p.name for p in target.iterdir()) == ["a.png", "b.png"]
    assert (target / "b.png").read_bytes() == b"b.png"
