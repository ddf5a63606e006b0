"""Fan-aware crops and fan masks: synthetic sectors with faint far fields and what
scanners draw around them, a JPEG region starting mid-block under a text line, and
exports that black out what lies outside the sector or the requested crop."""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageDraw, ImageFont, features
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit
from test_frames import build_file

from ustui.cli import main
from ustui.core.autocrop import analyse
from ustui.core.boxes import Box
from ustui.core.fan import Sector
from ustui.core.profiles import user_file

ROWS, COLUMNS = 480, 640


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size) if features.check("freetype2") else ImageFont.load_default()


def sector_screen(
    sector: Sector, *, seed: int, doppler: bool = True, frames: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """RGB frames of a speckled sector whose far field fades to a few grey levels, with
    a colour-Doppler box inside, text banners above and below and depth ticks beside;
    and the sector's pixels (the area no crop may cut)."""
    yy, xx = np.mgrid[0:ROWS, 0:COLUMNS]
    area = sector.contains(xx.astype(float), yy.astype(float)) & _strict(sector, xx, yy)
    radius = np.hypot(xx + 0.5 - sector.apex_x, yy + 0.5 - sector.apex_y)
    depth = (radius - sector.near_radius) / (sector.far_radius - sector.near_radius)
    out = []
    for t in range(frames):
        rng = np.random.default_rng(seed * 100 + t)
        level = 120 * np.exp(-3.0 * depth)  # about 6 grey levels at the far arc
        speckle = rng.gamma(2.0, 0.5, (ROWS, COLUMNS)) * level
        grey = np.where(area, np.clip(speckle, 1, 255), 0).astype(np.uint8)
        rgb = np.repeat(grey[..., None], 3, axis=2)
        if doppler:
            box = area & (np.abs(xx - sector.apex_x) < 40) & (radius > 150) & (radius < 230)
            rgb[box] = (200 + 10 * t, 30, 40)
        picture = Image.fromarray(rgb)
        draw = ImageDraw.Draw(picture)
        draw.text((10, 4), "DOE^JANE  ID 123456  01-01-2000", fill=(255, 255, 255), font=_font(16))
        draw.text((10, ROWS - 22), "GENERAL HOSPITAL  LIVER", fill=(230, 230, 0), font=_font(16))
        right = int(np.flatnonzero(area.any(axis=0))[-1]) + 14
        for y in range(60, ROWS - 60, 30):
            draw.line([(right, y), (right + 8, y)], fill=(190, 190, 190))
        draw.text((right + 2, 200), "5", fill=(190, 190, 190), font=_font(14))
        out.append(np.asarray(picture))
    return np.stack(out), area


def _strict(sector: Sector, xx: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """The sector without ``contains``'s padding."""
    dx, dy = xx + 0.5 - sector.apex_x, yy + 0.5 - sector.apex_y
    radius, angle = np.hypot(dx, dy), np.arctan2(dx, dy)
    return np.asarray(
        (radius >= sector.near_radius)
        & (radius <= sector.far_radius)
        & (angle >= sector.left_angle)
        & (angle <= sector.right_angle)
    )


PHASED = Sector(320, 44, -0.75, 0.75, 0.0, 400.0)  # apex inside the image
CURVED = Sector(300, -140, -0.5, 0.55, 215.0, 575.0)  # apex above it: a curved array


def _box_of(area: np.ndarray) -> Box:
    ys, xs = np.nonzero(area)
    return Box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


@pytest.mark.parametrize("sector", [PHASED, CURVED], ids=["apex-inside", "apex-above"])
@pytest.mark.parametrize("frames", [1, 6])
def test_the_crop_holds_the_whole_sector_and_no_text_or_ticks(sector: Sector, frames: int) -> None:
    screens, area = sector_screen(sector, seed=3, frames=frames)
    found = analyse(list(screens), rows=ROWS, columns=COLUMNS)
    assert found is not None
    box, truth = found.box, _box_of(area)
    inside = np.zeros_like(area)
    inside[box.top : box.bottom, box.left : box.right] = True
    assert not (area & ~inside).any(), f"{box} cuts the sector {truth}"
    assert box.top >= 26, "the banner above is in the crop"
    assert box.bottom <= ROWS - 24, "the banner below is in the crop"
    assert box.right <= truth.right + 12, "the depth ticks are in the crop"
    assert box.left >= truth.left - 12


@pytest.mark.parametrize("sector", [PHASED, CURVED], ids=["apex-inside", "apex-above"])
def test_the_sector_geometry_is_found(sector: Sector) -> None:
    screens, _ = sector_screen(sector, seed=5)
    found = analyse(list(screens), rows=ROWS, columns=COLUMNS)
    assert found is not None and found.sector is not None
    fit = found.sector
    assert math.hypot(fit.apex_x - sector.apex_x, fit.apex_y - sector.apex_y) < 12
    assert abs(fit.left_angle - sector.left_angle) < 0.03
    assert abs(fit.right_angle - sector.right_angle) < 0.03
    assert abs(fit.far_radius - sector.far_radius) < 12


def test_a_rectangle_has_no_sector() -> None:
    rng = np.random.default_rng(2)
    frame = np.zeros((ROWS, COLUMNS), np.uint8)
    frame[60:420, 100:540] = np.clip(rng.gamma(2.0, 30.0, (360, 440)), 1, 255)
    found = analyse([frame], rows=ROWS, columns=COLUMNS)
    assert found is not None and found.sector is None
    assert found.box == Box(100, 60, 540, 420)


# --- exports -----------------------------------------------------------------------------


def _export(tmp_path: Path, profile: str, toml: str, *files: Path) -> tuple[dict, list[Dataset]]:
    user_file().parent.mkdir(parents=True, exist_ok=True)
    user_file().write_text(toml)
    out = tmp_path / f"{profile}.zip"
    args = ["export", *map(str, files), "--out", str(out), "--profile", profile]
    assert main([*args, "--no-require-tags", "--workers", "1"]) == 0
    with zipfile.ZipFile(out) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        members = [
            pydicom.dcmread(io.BytesIO(archive.read(row["path"]))) for row in manifest["files"]
        ]
    return manifest, members


FAN_PROFILE = '[fan]\n[fan.export]\nfan_mask = true\nlossy = "keep"\n'


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, JPEGBaseline8Bit])
def test_fan_mask_blacks_out_what_lies_outside_the_sector_in_every_frame(
    tmp_path: Path, syntax: str
) -> None:
    screens, area = sector_screen(PHASED, seed=9, frames=3)
    photometric = "RGB" if syntax == ExplicitVRLittleEndian else "YBR_FULL_422"
    source = build_file(tmp_path / "fan.dcm", screens, photometric=photometric, syntax=syntax)
    manifest, (ds,) = _export(tmp_path, "fan", FAN_PROFILE, source.path)
    row = manifest["files"][0]
    assert row["crop_source"] == "analysis"
    fan = row["fan"]
    assert fan is not None
    assert abs(fan["apex_x"] - PHASED.apex_x) < 12 and abs(fan["apex_y"] - PHASED.apex_y) < 12
    assert abs(fan["right_angle_deg"] - math.degrees(PHASED.right_angle)) < 2
    left, top, right, bottom = row["crop"]
    pixels = pydicom.pixels.pixel_array(ds, as_rgb=True).astype(int)
    assert pixels.shape[0] == 3
    fitted = Sector(
        fan["apex_x"],
        fan["apex_y"],
        math.radians(fan["left_angle_deg"]),
        math.radians(fan["right_angle_deg"]),
        fan["near_radius"],
        fan["far_radius"],
    )
    yy, xx = np.mgrid[top:bottom, left:right]
    outside = ~fitted.contains(xx, yy)
    clear = outside.copy()  # a few pixels from the fan's edge, JPEG may ring
    if syntax == JPEGBaseline8Bit:
        grown = Sector(
            fitted.apex_x,
            fitted.apex_y,
            fitted.left_angle - 0.03,
            fitted.right_angle + 0.03,
            max(fitted.near_radius - 6, 0),
            fitted.far_radius + 6,
        )
        clear &= ~grown.contains(xx, yy)
    for frame in pixels:
        assert frame[clear].max() <= (0 if syntax == ExplicitVRLittleEndian else 3)
        kept = area[top:bottom, left:right] & ~outside
        assert frame[kept].mean() > 5  # the image inside stays
    # the text and ticks are gone, the colour box is still there
    assert (pixels[0][..., 0] - pixels[0][..., 2] > 100).sum() > 500


JPEG_PROFILE = '[keep]\n[keep.export]\nlossy = "keep"\n'
INWARD_PROFILE = '[inward]\n[inward.export]\nlossy = "keep"\ncrop_snap = "inward"\n'


def _region(box: Box) -> Dataset:
    item = Dataset()
    item.RegionSpatialFormat = 1
    item.RegionDataType = 1
    item.RegionFlags = 0
    item.RegionLocationMinX0, item.RegionLocationMinY0 = box.left, box.top
    item.RegionLocationMaxX1, item.RegionLocationMaxY1 = box.right - 1, box.bottom - 1
    item.PhysicalUnitsXDirection = item.PhysicalUnitsYDirection = 3
    item.PhysicalDeltaX = item.PhysicalDeltaY = 0.01
    item.ReferencePixelX0, item.ReferencePixelY0 = 100, 0
    return item


def _jpeg_with_text_above(tmp_path: Path) -> tuple[Path, Box, np.ndarray]:
    """A JPEG Baseline cine whose region starts mid-block, a white text line just above."""
    rng = np.random.default_rng(4)
    region = Box(21, 45, 300, 230)  # 5 px into its 16-px MCU column, 5 px into its row
    frames = np.zeros((2, 240, 320, 3), np.uint8)
    frames[:, region.top : region.bottom, region.left : region.right] = np.clip(
        rng.gamma(2.0, 30.0, (2, region.height, region.width, 1)), 1, 255
    )
    frames[:, 38:44, 10:310] = 255  # "DOE^JANE" ends one pixel above the region
    header = {"SequenceOfUltrasoundRegions": pydicom.Sequence([_region(region)])}
    source = build_file(
        tmp_path / "text.dcm",
        frames,
        photometric="YBR_FULL_422",
        syntax=JPEGBaseline8Bit,
        header=header,
    )
    return source.path, region, frames


def test_jpeg_region_mid_block_under_text_exports_no_text(tmp_path: Path) -> None:
    path, region, _ = _jpeg_with_text_above(tmp_path)
    manifest, (ds,) = _export(tmp_path, "keep", JPEG_PROFILE, path)
    row = manifest["files"][0]
    assert row["crop_source"] == "regions"
    assert row["crop_requested"] == region.as_list()
    assert row["crop"] == [16, 40, 300, 230]  # on the 16x8 block grid, before the region
    assert row["transfer_syntax_out"] == JPEGBaseline8Bit and not row["reencoded"]
    assert (ds.Rows, ds.Columns) == (190, 284) == (row["rows"], row["columns"])
    pixels = pydicom.pixels.pixel_array(ds, as_rgb=True)
    assert not pixels[:, :5].any() and not pixels[:, :, :5].any()  # the margin: black
    assert pixels[:, 5:, 5:].mean() > 30
    (item,) = ds.SequenceOfUltrasoundRegions  # exactly the requested region, not the margin
    assert (item.RegionLocationMinX0, item.RegionLocationMinY0) == (5, 5)
    assert (item.RegionLocationMaxX1, item.RegionLocationMaxY1) == (283, 189)
    assert item.ReferencePixelX0 == 100


def test_inward_snap_exports_only_whole_blocks_inside_the_region(tmp_path: Path) -> None:
    path, region, _ = _jpeg_with_text_above(tmp_path)
    manifest, (ds,) = _export(tmp_path, "inward", INWARD_PROFILE, path)
    row = manifest["files"][0]
    assert row["crop_requested"] == region.as_list()
    assert row["crop"] == [32, 48, 300, 230]
    pixels = pydicom.pixels.pixel_array(ds, as_rgb=True)
    assert pixels.shape[1:3] == (182, 268)
    assert pixels[:, :8].min() >= 0 and pixels[:, :8].mean() > 30  # content from row 0
    (item,) = ds.SequenceOfUltrasoundRegions
    assert (item.RegionLocationMinX0, item.RegionLocationMinY0) == (0, 0)
    assert item.ReferencePixelX0 == 100 - 11 and item.ReferencePixelY0 == -3
