from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import real_files

from ustui.core.autocrop import analysis_crop
from ustui.core.boxes import Box
from ustui.core.frames import FrameReader, display_rgb
from ustui.core.inputs import discover
from ustui.core.reading import read_header
from ustui.core.regions import regions_crop
from ustui.core.synthetic import burn_text, sector_box, sector_frame

ROWS, COLUMNS = 480, 640


def _with_side_bar(frame: np.ndarray) -> np.ndarray:
    frame = frame.copy()
    frame[100:400, 620:628] = np.linspace(0, 255, 300, dtype=np.uint8)[:, None]  # grey scale bar
    return frame


def _contains(outer: Box, inner: Box, slack: int) -> bool:
    return (
        outer.left <= inner.left + slack
        and outer.top <= inner.top + slack
        and outer.right >= inner.right - slack
        and outer.bottom >= inner.bottom - slack
    )


@pytest.mark.parametrize("frames", [1, 10])
def test_finds_the_sector_and_leaves_out_the_banner(frames: int) -> None:
    images = [
        _with_side_bar(burn_text(sector_frame(ROWS, COLUMNS, seed=3, t=t), "DOE^JANE 01-01-2000"))
        for t in range(frames)
    ]
    box = analysis_crop(images, rows=ROWS, columns=COLUMNS)
    assert box is not None
    sector = sector_box(ROWS, COLUMNS)
    live = Box(sector.left + 1, sector.top, sector.right - 1, sector.bottom)  # the fan's extent
    assert box.top > 20, "the banner must be cut away"
    assert _contains(box, live.intersect(Box(0, sector.top, COLUMNS, sector.bottom)), slack=40)
    assert box.right <= 620, "the grey bar at the side is not part of the image"


def test_a_linear_probe_rectangle_is_found() -> None:
    rng = np.random.default_rng(1)
    frame = np.zeros((ROWS, COLUMNS), np.uint8)
    frame[80:440, 150:490] = rng.integers(20, 255, (360, 340))
    frame = burn_text(frame, "PATIENT NAME")
    assert analysis_crop([frame], rows=ROWS, columns=COLUMNS) == Box(150, 80, 490, 440)


def test_black_or_mismatched_frames_give_no_crop() -> None:
    black = np.zeros((ROWS, COLUMNS), np.uint8)
    assert analysis_crop([black], rows=ROWS, columns=COLUMNS) is None
    assert analysis_crop([], rows=ROWS, columns=COLUMNS) is None
    assert analysis_crop([black], rows=ROWS + 1, columns=COLUMNS) is None


def _display_frames(path: Path) -> tuple[list[np.ndarray], Box | None, int, int]:
    source = discover([path]).files[0]
    header = read_header(source)
    with FrameReader(source, header) as reader:
        count = reader.number_of_frames
        picks = sorted({round(i * (count - 1) / 7) for i in range(8)})
        frames = [display_rgb(reader.frame(i), reader) for i in picks]
    return frames, regions_crop(header), reader.rows, reader.columns


@pytest.mark.parametrize("path", real_files(), ids=lambda p: p.name)
def test_real_files_analysis_never_keeps_less_than_a_quarter_or_escapes(
    real_dir: Path, path: Path
) -> None:
    if path.name.startswith("jpegxl"):
        pytest.skip("no decoder for JPEG XL")
    frames, regions, rows, columns = _display_frames(path)
    box = analysis_crop(frames, rows=rows, columns=columns)
    if box is None:
        return  # the export then falls back to the whole image, marked for review
    assert box == box.clip(columns, rows)
    assert box.width >= columns // 4 and box.height >= rows // 4
    if regions is not None:
        overlap = box.intersect(regions)
        assert not overlap.is_empty
        # Most of what analysis keeps is inside the scanner's own image regions.
        assert overlap.width * overlap.height >= 0.5 * box.width * box.height
