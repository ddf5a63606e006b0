"""The terminal UI shows the text found in the pixels and lets a person review it."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from test_pixel_text import IDENTIFYING, _exam, _stroke_pixels, needs_reader
from test_tui import SIZE, pilot_test, settle

from ustui.cli import main
from ustui.core.session import Session
from ustui.tui.app import make_app
from ustui.tui.widgets.preview import Preview


@pytest.fixture
def exam(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    _exam(tmp_path / "exam")
    return "exam"


@needs_reader
@pilot_test
async def test_found_text_is_drawn_and_a_key_turns_a_box_into_a_mask_or_back(exam: str) -> None:
    app = make_app([exam], profile="generic-us")
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        boxes = screen._boxes()
        assert boxes is not None and len(boxes.texts) == 5
        assert sum(t.masked for t in boxes.texts) == 3  # name, ID and date, not the rest
        status = str(screen.query_one("#status-line").render())
        assert "text found: 3 masked, 2 kept (t to review)" in status
        # Masked text is drawn red, kept text green, in the overlay.
        edges = screen.query_one("#preview", Preview)._edges
        assert sum(e[0].has_class("text", "masked") for e in edges if e[0].display) == 3
        # t selects the first box (the name, top left), T unmasks it.
        first = next(i for i, t in enumerate(boxes.texts) if t.masked)
        for _ in range(first + 1):
            await pilot.press("t")
        await pilot.press("T")
        await pilot.pause()
        decision = Session.load([exam]).files[screen.workspace.entries[0].file.key]
        assert decision.text_masks is not None and len(decision.text_masks) == 2
        assert "2 masked, 3 kept (reviewed)" in str(screen.query_one("#status-line").render())
        await pilot.press("T")  # and back
        await pilot.pause()
        decision = Session.load([exam]).files[screen.workspace.entries[0].file.key]
        assert decision.text_masks is not None and len(decision.text_masks) == 3


@needs_reader
@pilot_test
async def test_stepping_through_every_box_reviews_the_text_as_it_is(
    exam: str, tmp_path: Path
) -> None:
    app = make_app([exam], profile="generic-us")
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        assert screen.workspace.peek(0).text_masks is None
        for _ in range(6):  # five boxes, then past the last
            await pilot.press("t")
        await pilot.pause()
        reviewed = screen.workspace.peek(0).text_masks
        assert reviewed is not None and len(reviewed) == 3
    # The export applies exactly what was reviewed, and says so.
    assert main(["export", exam, "--out", str(tmp_path / "out.zip"), "--no-require-tags"]) == 0
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        row = json.loads(zf.read("manifest.json"))["files"][0]
        ds = dcmread(zf.open(row["path"]))
    assert row["pixel_text"] == "reviewed" and ds.BurnedInAnnotation == "NO"
    for text in IDENTIFYING:
        assert np.max(_stroke_pixels(ds, text, row["crop"])) == 0
