"""Pilot tests of the terminal UI: a whole synthetic exam reviewed, cropped, masked,
tagged and exported with the keyboard alone; resuming after a crash; keymaps."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import tomllib
import zipfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from conftest import real_files
from pty_session import signal_on_pty
from pydicom.uid import generate_uid
from textual.pilot import Pilot

from ustui.core.boxes import Box
from ustui.core.session import Session
from ustui.core.synthetic import Study, sector_box, sector_frame, us_dataset
from ustui.tui.app import make_app
from ustui.tui.messages import FrameDecoded
from ustui.tui.model import Status
from ustui.tui.screens.confirm import ConfirmScreen
from ustui.tui.screens.export import ExportScreen
from ustui.tui.screens.help import HelpScreen
from ustui.tui.screens.review import ReviewScreen
from ustui.tui.widgets.frame_view import HalfcellView
from ustui.tui.widgets.inspector import Inspector
from ustui.tui.widgets.preview import Preview

ROWS, COLUMNS = 120, 160
SIZE = (160, 50)


def pilot_test(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async Pilot test in its own event loop (no asyncio plugin needed)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


def write_exam(folder: Path) -> Path:
    """Four small US files (one a 6-frame cine, one colour without regions) and a stray
    text file, in ``folder``."""
    folder.mkdir(parents=True)
    study = Study()
    series = generate_uid()
    frames = [sector_frame(ROWS, COLUMNS, seed=1)]
    cine = [sector_frame(ROWS, COLUMNS, seed=2, t=t) for t in range(6)]
    datasets = [
        us_dataset(frames, study=study, series_uid=series, series_number=1, instance_number=1),
        us_dataset(cine, study=study, series_uid=series, series_number=1, instance_number=2),
        us_dataset(
            [sector_frame(ROWS, COLUMNS, seed=3)],
            study=study,
            series_uid=series,
            series_number=1,
            instance_number=3,
            photometric="RGB",
            regions=False,
        ),
        us_dataset(
            [sector_frame(ROWS, COLUMNS, seed=4)],
            study=study,
            series_uid=series,
            series_number=1,
            instance_number=4,
        ),
    ]
    for n, ds in enumerate(datasets, 1):
        ds.save_as(folder / f"IMG{n}.dcm", enforce_file_format=True)
    (folder / "notes.txt").write_text("not an image\n")
    return folder


@pytest.fixture
def exam(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The exam as a relative path, so labels (and snapshots) do not name tmp folders."""
    monkeypatch.chdir(tmp_path)
    write_exam(tmp_path / "exam")
    return "exam"


async def settle(pilot: Pilot[int]) -> ReviewScreen:
    """Wait until the workers have reported everything the screen asked for."""
    for _ in range(500):
        await pilot.pause(0.02)
        screen = pilot.app.screen
        if isinstance(screen, ReviewScreen) and not screen.busy:
            await pilot.pause()
            return screen
    raise AssertionError("the review screen did not settle")


def names(screen: ReviewScreen) -> list[str]:
    return [e.name for e in screen.workspace.entries]


@pilot_test
async def test_unsupported_file_is_listed_with_its_reason(exam: str) -> None:
    # notes.txt, met in the folder, is not DICOM: ignored, not listed.
    (Path(exam) / "IMG5.dcm").write_bytes((Path(exam) / "IMG1.dcm").read_bytes()[:700])
    app = make_app([exam], profile="dvt")
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        assert names(screen) == ["IMG1.dcm", "IMG2.dcm", "IMG3.dcm", "IMG4.dcm", "IMG5.dcm"]
        status, reason = screen.workspace.status(4)
        assert status is Status.UNSUPPORTED
        assert reason.startswith("truncated")
        needs = (Status.NEEDS_TAGS, "needs site, side, purpose")
        assert [screen.workspace.status(i) for i in range(4)] == [needs] * 4


@pilot_test
async def test_frames_step_and_the_crop_is_nudged_and_resized(exam: str) -> None:
    app = make_app([exam], profile="dvt")
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        await pilot.press("j")
        screen = await settle(pilot)
        assert (screen.index, screen.frame, screen.frame_count) == (1, 0, 6)
        await pilot.press("right_square_bracket", "right_square_bracket")
        await settle(pilot)
        assert screen.frame == 2
        await pilot.press("right_square_bracket", "right_square_bracket", "left_square_bracket")
        await settle(pilot)
        assert screen.frame == 3
        await pilot.press(*["left_square_bracket"] * 4)  # wraps around to the last frame
        await settle(pilot)
        assert screen.frame == 5
        ws = screen.workspace
        assert app.workspace.session.cursor_frame == 5
        regions = sector_box(ROWS, COLUMNS)
        assert ws.decision(1).crop is None  # the regions' crop, not yet the user's
        # Whole box: one step right and down, then ten steps left.
        await pilot.press("right", "down", "shift+left")
        assert ws.decision(1).crop == regions.translate(-9, 1)
        # Top edge down by 2, right edge in by 10.
        await pilot.press("tab", "down", "down", "tab", "shift+left")
        box = regions.translate(-9, 1)
        assert ws.decision(1).crop == Box(box.left, box.top + 2, box.right - 10, box.bottom)
        # Edges never cross: the bottom edge stops one pixel below the top one.
        await pilot.press("tab", *["shift+up"] * 20)
        crop = ws.decision(1).crop
        assert crop is not None and crop.height == 1
        # a: back to the automatic crop (ultrasound regions), now as the user's decision.
        await pilot.press("a")
        assert ws.decision(1).crop == regions
        saved = Session.load([exam]).decision(ws.entries[1].file.key)
        assert saved.crop == regions


@pilot_test
async def test_nudging_moves_only_the_overlay(exam: str, monkeypatch: pytest.MonkeyPatch) -> None:
    shows: list[int] = []
    original = HalfcellView.show
    monkeypatch.setattr(
        HalfcellView, "show", lambda self, *a: (shows.append(1), original(self, *a))[1]
    )
    app = make_app([exam], profile="dvt")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        drawn = len(shows)
        await pilot.press("tab", "down", "shift+down", "tab", "left", "m", "right")
        await pilot.pause()
        assert len(shows) == drawn  # the frame was not drawn again
        await pilot.press("v")  # the export view does redraw: it shows the cropped frame
        await pilot.pause()
        assert len(shows) == drawn + 1


@pilot_test
async def test_masks_are_added_moved_and_deleted(exam: str) -> None:
    app = make_app([exam], profile="dvt")
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        ws = screen.workspace
        crop = sector_box(ROWS, COLUMNS)
        await pilot.press("m")
        first = Box(crop.left, crop.top, crop.left + crop.width // 4, crop.top + crop.height // 4)
        assert ws.decision(0).masks == [first]
        assert ws.decision(0).crop == crop  # editing masks pins the crop the user saw
        assert screen.handle.target == 1 and screen.handle.part == "box"
        await pilot.press("shift+right", "tab", "tab", "right")  # move it, then its right edge
        assert ws.decision(0).masks == [
            Box(first.left + 10, first.top, first.right + 11, first.bottom)
        ]
        await pilot.press("m", "escape")
        assert len(ws.decision(0).masks) == 2 and screen.handle.target == 0
        await pilot.press("shift+tab", "delete")  # shift+tab wraps to the last mask's left edge
        assert len(ws.decision(0).masks) == 1
        await pilot.press("shift+tab", "delete")
        assert ws.decision(0).masks == []  # stays empty: no fall-back to preset masks
        assert Session.load([exam]).decision(ws.entries[0].file.key).masks == ws.decision(0).masks


@pilot_test
async def test_tagging_a_file_completely_moves_to_the_next_that_needs_work(exam: str) -> None:
    app = make_app([exam], profile="dvt")
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        ws = screen.workspace
        await pilot.press("x")  # exclude IMG1
        assert ws.status(0)[0] is Status.EXCLUDED
        await pilot.press("j", "1", "l")
        assert screen.index == 1
        assert ws.decision(1).tags == {"site": "CFV", "side": "left"}
        await pilot.press("l")  # the same key again clears the tag
        assert ws.decision(1).tags == {"site": "CFV"}
        await pilot.press("r", "d")
        assert ws.status(1)[0] is Status.READY
        screen = await settle(pilot)
        assert screen.index == 2  # the next file that needs work
        await pilot.press("j", "k", "k")
        assert screen.index == 1


@pilot_test
async def test_the_whole_exam_is_reviewed_tagged_and_exported(
    exam: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Worker processes even for 4 files: they must start from inside the running app.
    monkeypatch.setattr("ustui.tui.screens.export.PARALLEL_FROM", 2)
    app = make_app([exam], profile="dvt")
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        ws = screen.workspace
        regions = sector_box(ROWS, COLUMNS)
        # IMG1: crop 3 px narrower on the left, a mask, then tagged.
        await pilot.press("tab", "tab", "tab", "tab", "right", "right", "right")
        await pilot.press("m", "1", "l", "d")
        screen = await settle(pilot)
        assert screen.index == 1
        # IMG2 (cine): step to frame 3, tag; IMG3 (no regions): tag; IMG4: tag.
        await pilot.press("right_square_bracket", "right_square_bracket", "2", "r", "n")
        screen = await settle(pilot)
        assert screen.index == 2
        await pilot.press("3", "l", "d")
        screen = await settle(pilot)
        assert screen.index == 3
        await pilot.press("5", "r", "d")
        await settle(pilot)
        assert [ws.status(i)[0] for i in range(len(ws.entries))] == [Status.READY] * 4
        expected_crop = Box(regions.left + 3, regions.top, regions.right, regions.bottom)
        assert ws.decision(0).crop == expected_crop
        mask = ws.decision(0).masks[0]

        await pilot.press("e")
        await pilot.pause()
        export = app.screen
        assert isinstance(export, ExportScreen)
        assert len(export.plan.exported) == 4
        assert export.plan.skipped == []  # notes.txt is ignored, not an input
        out = tmp_path / "out.zip"
        export.query_one("#destination").value = str(out)  # type: ignore[attr-defined]
        await pilot.press("enter")
        for _ in range(1000):
            await pilot.pause(0.02)
            if not export.running:
                break
        assert export.error is None
        assert export.result is not None and export.report is not None
        assert len(export.result.exported) == 4
        assert export.result.skipped == []
        assert export.report.leaks == []
        first = export.result
        await pilot.press("enter")  # the destination exists now: a warning first
        assert not export.running and export.result is first
        await pilot.press("enter")  # then it is replaced
        for _ in range(1000):
            await pilot.pause(0.02)
            if not export.running:
                break
        assert export.result is not first and export.error is None
        await pilot.press("escape")
        assert isinstance(app.screen, ReviewScreen)

    with zipfile.ZipFile(out) as zf:
        members = zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
        dicoms = {m: pydicom.dcmread(zf.open(m)) for m in members if m.endswith(".dcm")}
    assert sorted(m for m in members if not m.endswith(".dcm")) == ["manifest.csv", "manifest.json"]
    assert len(dicoms) == 4
    rows = {row["tags"]["site"]: row for row in manifest["files"]}
    assert set(rows) == {"CFV", "GSV", "FV-proximal", "PV"}
    assert rows["CFV"]["tags"] == {"site": "CFV", "side": "left", "purpose": "diagnostic"}
    assert rows["CFV"]["crop"] == expected_crop.as_list()
    assert rows["CFV"]["masks"] == [mask.as_list()]
    assert rows["GSV"]["frames"] == 6
    assert rows["GSV"]["crop"] == regions.as_list()
    first = dicoms[rows["CFV"]["path"]]
    assert (first.Rows, first.Columns) == (expected_crop.height, expected_crop.width)
    assert first.ImageLaterality == "L"
    inside = mask.translate(-expected_crop.left, -expected_crop.top).clip(first.Columns, first.Rows)
    pixels = first.pixel_array
    assert not pixels[inside.top : inside.bottom, inside.left : inside.right].any()
    assert "DEMO" not in json.dumps(manifest)


@pilot_test
async def test_a_killed_session_resumes_with_every_decision(exam: str) -> None:
    app = make_app([exam], profile="dvt")
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        await pilot.press("down", "m", "1", "r", "n")  # IMG1: crop, mask, tags -> moves on
        screen = await settle(pilot)
        await pilot.press("x", "j")  # exclude IMG2, go to IMG3
        await settle(pilot)
        await pilot.press("k")  # back to the cine
        screen = await settle(pilot)
        await pilot.press("right_square_bracket", "right_square_bracket", "right_square_bracket")
        screen = await settle(pilot)
        assert (screen.index, screen.frame) == (1, 3)
        decisions = {k: d.to_json() for k, d in screen.workspace.session.files.items()}
        # The process dies here: keep the session file as it is at this moment.
        path = screen.workspace.session.path
        saved = path.read_bytes()
    path.write_bytes(saved)

    again = make_app([exam], profile=None)  # the profile comes back from the session
    async with again.run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        assert again.workspace.profile.name == "dvt"
        assert (screen.index, screen.frame) == (1, 3)
        assert {k: d.to_json() for k, d in again.workspace.session.files.items()} == decisions
        assert screen.workspace.status(0)[0] is Status.READY
        assert screen.workspace.status(1)[0] is Status.EXCLUDED


@pilot_test
async def test_keys_are_remapped_from_the_config_file(exam: str, isolated_home: Path) -> None:
    config = isolated_home / "xdg_config_home" / "ustui" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[keymap]\n"file.next" = "n"\n"crop.auto" = "ctrl+a"\n')
    app = make_app([exam], profile="generic-us")
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        await pilot.press("j")
        assert screen.index == 0
        await pilot.press("n")
        screen = await settle(pilot)
        assert screen.index == 1
        await pilot.press("?")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        rows = help_screen.rows()
        assert ("Files", "n", "next file", "file.next") in rows
        assert ("Crop box", "^a", "auto crop", "crop.auto") in rows
        assert ("Tags (from the profile)", "g", "quality = good", "tag.quality.good") in rows
        await pilot.press("escape")
        assert isinstance(app.screen, ReviewScreen)


@pilot_test
async def test_the_command_palette_jumps_to_a_file(exam: str) -> None:
    app = make_app([exam], profile="dvt")
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        await pilot.press("ctrl+p", *"IMG3")
        await pilot.pause(0.5)
        await pilot.press("enter")
        screen = await settle(pilot)
        assert screen.index == 2


@pytest.mark.filterwarnings("ignore:Image.Image.getdata:DeprecationWarning")  # textual-image
@pilot_test
async def test_unicode_rendering_shows_the_same_boxes(exam: str) -> None:
    app = make_app([exam], profile="dvt", image_protocol="unicode")
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        await pilot.press("down")
        assert screen.workspace.decision(0).crop == sector_box(ROWS, COLUMNS).translate(0, 1)


@pilot_test
async def test_a_cine_plays_and_stops_where_it_was(exam: str) -> None:
    app = make_app([exam], profile="dvt")
    shown: list[int] = []

    def record(message: object) -> None:
        if isinstance(message, FrameDecoded):
            shown.append(message.index)

    async with app.run_test(size=SIZE, message_hook=record) as pilot:
        await pilot.press("j")
        screen = await settle(pilot)
        shown.clear()
        await pilot.press("space")
        assert screen.playing
        for _ in range(200):
            await pilot.pause(0.02)
            if len(set(shown)) == 6:
                break
        await pilot.press("space")
        await settle(pilot)
        assert set(shown) == set(range(6))  # every frame of the loop came by
        assert not screen.playing
        assert app.workspace.session.cursor_frame == screen.frame
        assert Session.load([exam]).cursor_frame == screen.frame


@pilot_test
async def test_the_inspector_shows_the_header_and_takes_the_arrows(exam: str) -> None:
    app = make_app([exam], profile="dvt")
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        inspector = screen.query_one(Inspector)
        assert not inspector.display
        await pilot.press("i")
        assert inspector.display and app.focused is inspector
        keywords = {inspector.get_row_at(r)[1].strip() for r in range(inspector.row_count)}
        assert {"PatientName", "TransferSyntaxUID", "SequenceOfUltrasoundRegions"} <= keywords
        await pilot.press("down", "down")  # scrolls the table, not the crop box
        assert screen.workspace.peek(0).crop is None
        await pilot.press("i", "down")
        assert not inspector.display and app.focused is None
        assert screen.workspace.peek(0).crop == sector_box(ROWS, COLUMNS).translate(0, 1)


@pilot_test
async def test_the_export_view_shows_the_cropped_frame(exam: str) -> None:
    app = make_app([exam], profile="dvt")
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        preview = screen.query_one(Preview)
        full = preview.frame_fit
        assert full is not None and (full.columns, full.rows) == (COLUMNS, ROWS)
        await pilot.press("v")
        assert preview.export_mode and preview.frame_fit is None  # no boxes over it
        frame = screen.query_one("#frame", HalfcellView)
        crop = sector_box(ROWS, COLUMNS)
        # Drawn at the crop's aspect ratio: 120x98 pixels into cells of 1x2 pixels.
        assert abs(frame.size.width / (2 * frame.size.height) - crop.width / crop.height) < 0.1
        await pilot.press("v")
        assert not preview.export_mode


@pilot_test
async def test_a_crop_saved_as_preset_applies_to_the_same_device(
    exam: str, isolated_home: Path
) -> None:
    app = make_app([exam], profile="dvt")
    user_profiles = isolated_home / "xdg_config_home" / "ustui" / "profiles.toml"
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        await pilot.press("down", "s")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # asked first: nothing is written on "no"
        assert isinstance(app.screen, ReviewScreen) and not user_profiles.exists()
        await pilot.press("s", "y")
        screen = await settle(pilot)
        crop = sector_box(ROWS, COLUMNS).translate(0, 1)
        saved = tomllib.loads(user_profiles.read_text())
        # Only the preset is written: an override that layers on the shipped profile.
        assert list(saved) == ["dvt"] and list(saved["dvt"]) == ["devices"]
        device = saved["dvt"]["devices"][0]
        assert device["crop"] == crop.as_list()
        assert (device["rows"], device["columns"], device["frames"]) == (ROWS, COLUMNS, "single")
        ws = screen.workspace
        assert [t.name for t in ws.profile.tags] == ["site", "side", "purpose"]  # still shipped
        # IMG4 (same device, single frame) now takes the preset; the cine does not.
        assert ws.entries[3].info is not None and ws.entries[3].info.auto.source == "preset"
        assert ws.entries[3].info.auto.box == crop
        assert ws.entries[1].info is not None and ws.entries[1].info.auto.source == "regions"


@pilot_test
async def test_every_real_file_is_shown_or_explained(real_dir: Path) -> None:
    app = make_app([str(real_dir)], profile="generic-us")
    async with app.run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        ws = screen.workspace
        dicoms = [i for i, e in enumerate(ws.entries) if e.name.endswith(".dcm")]
        assert len(dicoms) == len(real_files())
        for index in dicoms:
            screen.open_file(index)
            screen = await settle(pilot)
            entry = ws.entries[index]
            if entry.problem:
                assert ws.status(index) == (Status.UNSUPPORTED, entry.problem)
                continue
            assert entry.info is not None
            fit = screen.query_one(Preview).frame_fit
            assert fit is not None and (fit.columns, fit.rows) == (
                entry.info.columns,
                entry.info.rows,
            )


def test_a_dropped_ssh_link_saves_and_exits(exam: str) -> None:
    """Run the app on a real pseudo-terminal, move to the second file, hang up."""
    project = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(project), "TERM": "xterm-256color"}
    code = (
        "import sys\n"
        "from ustui.tui.app import run_app\n"
        "sys.exit(run_app(['exam'], profile='dvt', image_protocol='halfcell'))\n"
    )
    session = Session.load([exam]).path
    status = signal_on_pty(code, env, session, signal.SIGHUP, _cursor)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert _cursor(session).endswith("IMG2.dcm")


def _cursor(session: Path) -> str:
    try:
        return str(json.loads(session.read_text()).get("cursor_file") or "")
    except (OSError, ValueError):
        return ""


# --- snapshots (halfcell, synthetic data only) --------------------------------------


def test_snapshot_main_screen(exam: str, snap_compare: object) -> None:
    async def ready(pilot: Pilot[int]) -> None:
        await settle(pilot)
        await pilot.press("j", "tab", "m", "1", "l")
        await settle(pilot)

    assert snap_compare(make_app([exam], profile="dvt"), terminal_size=SIZE, run_before=ready)  # type: ignore[operator]


def test_snapshot_main_screen_80x24(exam: str, snap_compare: object) -> None:
    async def ready(pilot: Pilot[int]) -> None:
        await settle(pilot)

    assert snap_compare(make_app([exam], profile="dvt"), terminal_size=(80, 24), run_before=ready)  # type: ignore[operator]


@pytest.mark.parametrize("size", [(60, 20), (40, 12)])
def test_snapshot_main_screen_small(exam: str, snap_compare: object, size: tuple[int, int]) -> None:
    async def ready(pilot: Pilot[int]) -> None:
        await settle(pilot)
        await pilot.press("j", "1")
        await settle(pilot)

    assert snap_compare(make_app([exam], profile="dvt"), terminal_size=size, run_before=ready)  # type: ignore[operator]


def test_snapshot_too_small(exam: str, snap_compare: object) -> None:
    async def ready(pilot: Pilot[int]) -> None:
        await pilot.pause(0.3)

    assert snap_compare(make_app([exam], profile="dvt"), terminal_size=(36, 10), run_before=ready)  # type: ignore[operator]


def test_snapshot_help(exam: str, snap_compare: object) -> None:
    async def ready(pilot: Pilot[int]) -> None:
        await settle(pilot)
        await pilot.press("question_mark")

    assert snap_compare(make_app([exam], profile="dvt"), terminal_size=SIZE, run_before=ready)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("size", "keys"), [(SIZE, ("1", "l", "d", "x", "e")), ((80, 24), ("1", "l", "d", "e"))]
)
def test_snapshot_export_screen(
    exam: str,
    snap_compare: object,
    monkeypatch: pytest.MonkeyPatch,
    size: tuple[int, int],
    keys: tuple[str, ...],
) -> None:
    monkeypatch.setattr(
        "ustui.tui.screens.export.default_destination", lambda: Path("ustui-export.zip")
    )

    async def ready(pilot: Pilot[int]) -> None:
        await settle(pilot)
        await pilot.press(*keys)

    assert snap_compare(make_app([exam], profile="dvt"), terminal_size=size, run_before=ready)  # type: ignore[operator]


def test_pixels_used_by_the_tests_are_not_blank() -> None:
    frame = sector_frame(ROWS, COLUMNS, seed=1)
    assert np.count_nonzero(frame) > frame.size // 4
    assert os.environ["XDG_STATE_HOME"]  # isolated by conftest
