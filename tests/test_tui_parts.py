"""The TUI's pure parts: box editing, fitting frames into cells, half-block strips, the
zoom's markup, statuses, the config file and the partial-update patch."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from textual._compositor import ChopsUpdate
from textual.strip import Strip

from ustui.core.boxes import Box
from ustui.core.cropping import CropChoice
from ustui.core.errors import UstuiError
from ustui.core.fan import Sector
from ustui.core.inputs import InputFile
from ustui.core.profiles import get_profile
from ustui.core.session import FileDecision
from ustui.tui import partial_updates
from ustui.tui.config import Settings, load_settings
from ustui.tui.editing import Handle, cycle, new_mask, nudge
from ustui.tui.imaging import StyleCache, export_view, fit, halfcell_strips
from ustui.tui.model import Entry, FileInfo, Status, effective_crop, status
from ustui.tui.names import shortened
from ustui.tui.widgets.preview import Boxes
from ustui.tui.widgets.zoom import render_window
from ustui.tui.written import fan_mask_on

COLUMNS, ROWS = 200, 100


def _box(v: tuple[int, int, int, int]) -> Box:
    return Box(min(v[0], v[2]), min(v[1], v[3]), max(v[0], v[2]) + 1, max(v[1], v[3]) + 1)


@given(
    box=st.tuples(*[st.integers(0, 200)] * 4).map(_box),
    part=st.sampled_from(["box", "top", "right", "bottom", "left"]),
    dx=st.integers(-300, 300),
    dy=st.integers(-300, 300),
)
def test_a_nudged_box_stays_inside_the_image_and_never_empty(
    box: Box, part: str, dx: int, dy: int
) -> None:
    box = box.clip(COLUMNS, ROWS)
    if box.is_empty:
        return
    moved = nudge(box, part, dx, dy, columns=COLUMNS, rows=ROWS)
    assert 0 <= moved.left < moved.right <= COLUMNS
    assert 0 <= moved.top < moved.bottom <= ROWS
    if part == "box":
        assert (moved.width, moved.height) == (box.width, box.height)


def test_edges_move_only_along_their_axis() -> None:
    box = Box(10, 10, 50, 50)
    assert nudge(box, "top", 5, 3, columns=COLUMNS, rows=ROWS) == Box(10, 13, 50, 50)
    assert nudge(box, "right", 5, 3, columns=COLUMNS, rows=ROWS) == Box(10, 10, 55, 50)
    assert nudge(box, "left", -20, 0, columns=COLUMNS, rows=ROWS) == Box(0, 10, 50, 50)
    assert nudge(box, "bottom", 0, -100, columns=COLUMNS, rows=ROWS) == Box(10, 10, 50, 11)


def test_tab_visits_every_part_of_the_crop_then_of_each_mask() -> None:
    handle, seen = Handle(), []
    for _ in range(10):
        handle = cycle(handle, masks=1)
        seen.append((handle.target, handle.part))
    assert seen[:4] == [(0, "top"), (0, "right"), (0, "bottom"), (0, "left")]
    assert seen[4:9] == [(1, p) for p in ("box", "top", "right", "bottom", "left")]
    assert seen[9] == (0, "box")
    assert cycle(Handle(), masks=1, step=-1) == Handle(1, "left")
    assert new_mask(Box(10, 20, 50, 60), columns=COLUMNS, rows=ROWS) == Box(10, 20, 20, 30)


def test_a_frame_fits_its_pane_undistorted_and_pixels_map_to_cells() -> None:
    placed = fit(640, 480, 96, 43)  # half blocks: a cell is one pixel across, two down
    assert (placed.width, placed.height) == (96, 36)
    assert (placed.x, placed.y) == (0, 3)
    assert placed.cell_x(0) == 0 and placed.cell_x(639) == 95
    assert placed.cell_y(0) == 3 and placed.cell_y(479) == 38
    tall = fit(100, 400, 96, 43)
    assert tall.height == 43 and tall.width == round(100 * 86 / 400)


def test_half_blocks_carry_two_pixel_rows_and_merge_runs() -> None:
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[0, 3:] = 255  # upper row of the first line: right half white
    strips = halfcell_strips(rgb, StyleCache())
    assert len(strips) == 2 and all(s.cell_length == 6 for s in strips)
    first = list(strips[0])
    assert [s.text for s in first] == ["   ", "▀▀▀"]  # black run, then white over black
    assert first[1].style is not None and first[1].style.color is not None
    assert first[1].style.color.triplet == (255, 255, 255)
    assert [s.text for s in strips[1]] == ["      "]  # all black: one run of spaces


def test_the_export_view_blackens_masks_then_crops() -> None:
    rgb = np.full((10, 10, 3), 200, np.uint8)
    out = export_view(rgb, Box(2, 2, 8, 8), [Box(0, 0, 4, 4)])
    assert out.shape == (6, 6, 3)
    assert not out[:2, :2].any() and out[2:, 2:].all()
    assert rgb.all()  # the frame itself is untouched


def test_the_zoom_dims_dropped_pixels_and_lines_the_active_edge() -> None:
    rgb = np.full((40, 40, 3), 100, np.uint8)
    boxes = Boxes(Box(10, 10, 30, 30), (), Handle(0, "top"), reviewed=True)
    window = render_window(rgb, boxes, 0, 0, 40, 40)
    assert (window[9, 15] == [255, 215, 0]).all()  # the line, just outside the top edge
    assert (window[10, 15] == 100).all()  # the first kept row is untouched
    assert (window[5, 5] == 30).all()  # dropped: dimmed
    assert (window[20, 9] == 30).all()  # the left edge is not the active one: no line
    outside = render_window(rgb, boxes, -10, -10, 20, 20)
    assert (outside[0, 0] == 40).all()  # beyond the image


def _entry(source: str) -> Entry:
    auto = CropChoice(Box(0, 0, 10, 10), (), source)
    info = FileInfo(10, 10, 1, "m", "x", "Explicit VR Little Endian", 20.0, auto)
    return Entry(InputFile("k", "exam/a.dcm", 1, Path("a.dcm")), info)


def test_statuses_follow_tags_crop_exclusion_and_problems() -> None:
    dvt = get_profile("dvt")
    tagged = FileDecision(tags={"site": "CFV", "side": "left", "purpose": "diagnostic"})
    assert status(_entry("regions"), FileDecision(), dvt)[0] is Status.NEEDS_TAGS
    assert status(_entry("regions"), tagged, dvt) == (Status.READY, "ready")
    assert status(_entry("full"), tagged, dvt) == (Status.NEEDS_CROP, "no crop found")
    tagged.crop = Box(1, 1, 9, 9)
    assert status(_entry("full"), tagged, dvt)[0] is Status.READY
    tagged.excluded = True
    assert status(_entry("full"), tagged, dvt)[0] is Status.EXCLUDED
    broken = _entry("regions")
    broken.problem = "no decoder for JPEG XL"
    assert status(broken, tagged, dvt) == (Status.UNSUPPORTED, "no decoder for JPEG XL")


def test_the_effective_crop_is_the_users_else_the_automatic_one() -> None:
    entry = _entry("preset")
    assert entry.info is not None
    preset = CropChoice(Box(0, 0, 5, 5), (Box(0, 0, 1, 1),), "preset")
    entry.info = FileInfo(**{**entry.info.__dict__, "auto": preset})
    assert effective_crop(entry, FileDecision()) == preset
    mine = effective_crop(entry, FileDecision(crop=Box(1, 1, 4, 4), masks=[Box(2, 2, 3, 3)]))
    assert mine == CropChoice(Box(1, 1, 4, 4), (Box(2, 2, 3, 3),), "session", confirmed=True)
    # A box pinned by `a` or by adding a mask keeps its automatic source until moved.
    kept = FileDecision(crop=Box(0, 0, 5, 5), masks=[Box(2, 2, 3, 3)], crop_source="preset")
    pinned = effective_crop(entry, kept)
    assert pinned is not None and pinned.source == "preset" and pinned.reviewed
    assert FileDecision.from_json(kept.to_json()) == kept
    assert FileDecision.from_json({**kept.to_json(), "crop_source": "bogus"}).crop_source is None


def test_long_names_keep_their_start_and_end() -> None:
    assert shortened("short.dcm", 20) == "short.dcm"
    cut = shortened("jpeg_baseline_34frame.dcm", 16)
    assert cut == "jpeg_base…me.dcm"


def test_settings_come_from_the_config_file(isolated_home: Path) -> None:
    assert load_settings() == Settings()
    path = isolated_home / "xdg_config_home" / "ustui" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text('image_protocol = "unicode"\n[keymap]\n"file.next" = "n"\n')
    assert load_settings() == Settings("unicode", {"file.next": "n"})
    path.write_text('image_protocol = "retina"\n')
    with pytest.raises(UstuiError, match="image_protocol must be one of"):
        load_settings()
    path.write_text("colour = 1\n")
    with pytest.raises(UstuiError, match="unknown setting 'colour'"):
        load_settings()


def test_partial_updates_send_only_the_changed_cells() -> None:
    assert partial_updates.install()
    console = Console(force_terminal=True, color_system="truecolor", width=40)
    row = Strip([Segment(ch, Style(bgcolor=f"#{i:02x}0000")) for i, ch in enumerate("x" * 30)], 30)
    # One widget run from column 0 to 30; only columns 20-21 changed.
    update = ChopsUpdate([{0: row}], [(0, 20, 22)], [[30]])
    sent = update.render_segments(console)
    assert sent.startswith("\x1b[1;21H")  # the cursor goes straight to the change
    assert sent.count("x") == 2


def test_export_view_shows_the_written_box_with_its_margin_black() -> None:
    rgb = np.full((40, 60, 3), 200, np.uint8)
    view = export_view(rgb, Box(5, 3, 50, 30), [], written=Box(0, 0, 50, 30))
    assert view.shape == (30, 50, 3)
    assert not view[:3].any() and not view[:, :5].any()
    assert (view[3:, 5:] == 200).all()


def test_the_fan_mask_follows_the_profile_until_the_file_says_otherwise() -> None:
    profile = get_profile("generic-us")
    assert fan_mask_on(FileDecision(), profile) is profile.export.fan_mask
    assert fan_mask_on(FileDecision(fan_mask=True), profile)
    assert not fan_mask_on(
        FileDecision(fan_mask=False),
        dataclasses.replace(profile, export=dataclasses.replace(profile.export, fan_mask=True)),
    )


def test_export_view_blacks_out_what_lies_outside_the_fan() -> None:
    rgb = np.full((40, 60, 3), 200, np.uint8)
    fan = Sector(30, 0, -0.5, 0.5, 0.0, 35.0)
    view = export_view(rgb, Box(0, 0, 60, 40), [], fan=fan)
    assert (view[20, 30] == 200).all() and not view[2, 2].any() and not view[39, 59].any()
