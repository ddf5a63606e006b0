"""The Sequence of Ultrasound Regions: boxes, the regions crop, and the rewrite for a crop."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from conftest import real_files
from hypothesis import given
from hypothesis import strategies as st
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, UltrasoundImageStorage

from ustui.core.boxes import Box
from ustui.core.regions import region_boxes, regions_crop, rewrite_regions

ROWS, COLUMNS = 600, 800
TISSUE, COLOUR_FLOW, PW_DOPPLER, ECG, GREY_BAR, NONE = 1, 2, 3, 10, 13, 0


def _region(
    left: int,
    top: int,
    last_x: int,
    last_y: int,
    *,
    kind: int = TISSUE,
    reference: tuple[int, int] | None = None,
) -> Dataset:
    """A region item with inclusive DICOM corners, as scanners write them."""
    item = Dataset()
    item.RegionSpatialFormat = 1
    item.RegionDataType = kind
    item.RegionFlags = 0
    item.RegionLocationMinX0 = left
    item.RegionLocationMinY0 = top
    item.RegionLocationMaxX1 = last_x
    item.RegionLocationMaxY1 = last_y
    item.PhysicalUnitsXDirection = 3
    item.PhysicalUnitsYDirection = 3
    item.PhysicalDeltaX = 0.02
    item.PhysicalDeltaY = 0.02
    if reference is not None:
        item.ReferencePixelX0, item.ReferencePixelY0 = reference
        item.ReferencePixelPhysicalValueX = 0.0
        item.ReferencePixelPhysicalValueY = 0.0
    return item


def _image(*items: Dataset, rows: int = ROWS, columns: int = COLUMNS) -> Dataset:
    ds = Dataset()
    ds.Rows, ds.Columns = rows, columns
    ds.SequenceOfUltrasoundRegions = Sequence(list(items))
    return ds


def _corners(item: Dataset) -> list[int]:
    return [
        item.RegionLocationMinX0,
        item.RegionLocationMinY0,
        item.RegionLocationMaxX1,
        item.RegionLocationMaxY1,
    ]


def _round_trip(ds: Dataset, *, implicit: bool = False) -> Dataset:
    """``ds`` written as a DICOM file and read back."""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds.SOPClassUID = UltrasoundImageStorage
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return pydicom.dcmread(io.BytesIO(buffer.getvalue()))


# --- region_boxes -------------------------------------------------------------------


def test_inclusive_corners_become_exclusive_boxes_clipped_to_the_image() -> None:
    ds = _image(
        _region(120, 60, 800, 518),  # Max X1 == Columns, one past the edge, as real files do
        _region(10, 20, 19, 29),
        _region(700, 590, 900, 700),  # runs off the bottom right
    )
    assert region_boxes(ds) == [
        Box(120, 60, 800, 519),
        Box(10, 20, 20, 30),
        Box(700, 590, 800, 600),
    ]


def test_malformed_or_outside_regions_are_ignored() -> None:
    missing = _region(10, 10, 20, 20)
    del missing.RegionLocationMaxY1
    backwards = _region(50, 50, 40, 60)
    multi = _region(10, 10, 20, 20)
    multi.RegionLocationMinX0 = [1, 2]
    outside = _region(810, 10, 900, 20)
    good = _region(100, 100, 199, 199)
    ds = _image(missing, backwards, multi, outside, good)
    assert region_boxes(ds) == [Box(100, 100, 200, 200)]
    assert region_boxes(Dataset()) == []
    no_sequence = Dataset()
    no_sequence.Rows, no_sequence.Columns = ROWS, COLUMNS
    assert region_boxes(no_sequence) == []


# --- regions_crop -------------------------------------------------------------------


def test_crop_is_the_union_of_the_image_regions_only() -> None:
    ds = _image(
        _region(32, 24, 335, 415),
        _region(336, 24, 639, 415, kind=COLOUR_FLOW),
        _region(40, 430, 639, 560, kind=PW_DOPPLER),
        _region(176, 570, 742, 590, kind=ECG),
        _region(700, 40, 730, 300, kind=GREY_BAR),
        _region(0, 0, 799, 599, kind=NONE),  # "none": the whole screen, banner included
    )
    assert regions_crop(ds) == Box(32, 24, 640, 561)


def test_crop_is_clipped_to_the_image() -> None:
    assert regions_crop(_image(_region(120, 60, 800, 518))) == Box(120, 60, 800, 519)


def test_no_usable_image_region_gives_no_crop() -> None:
    no_type = _region(10, 10, 100, 100)
    del no_type.RegionDataType
    for ds in (
        _image(),
        _image(_region(0, 0, 799, 599)),  # the whole image: nothing to crop
        _image(_region(0, 0, 900, 700)),  # beyond it, clipped to the whole image
        _image(_region(100, 500, 700, 580, kind=ECG), _region(0, 0, 799, 599, kind=NONE)),
        _image(no_type),
        _image(_region(900, 10, 950, 20)),  # entirely outside
        Dataset(),
    ):
        assert regions_crop(ds) is None


# --- rewrite_regions ----------------------------------------------------------------


def test_rewrite_translates_clips_drops_and_keeps_reference_pixels() -> None:
    crop = Box(50, 80, 450, 380)  # new image: 400 x 300
    inside = _region(100, 100, 299, 299, reference=(100, 0))
    partly = _region(20, 50, 199, 149, reference=(90, 10))  # 30 px off the left, 30 off the top
    to_edge = _region(300, 200, 800, 599, kind=COLOUR_FLOW, reference=(-10, 5))
    outside = _region(600, 450, 700, 590, kind=ECG, reference=(0, 0))
    no_reference = _region(40, 90, 99, 149)
    ds = _image(inside, partly, to_edge, outside, no_reference)

    rewrite_regions(ds, crop)
    back = _round_trip(ds).SequenceOfUltrasoundRegions

    assert len(back) == 4
    first, second, third, fourth = back
    assert _corners(first) == [50, 20, 249, 219]
    assert (first.ReferencePixelX0, first.ReferencePixelY0) == (100, 0)
    assert _corners(second) == [0, 0, 149, 69]
    # The reference pixel stays on the same tissue: absolute (110, 60) in the input.
    assert (second.ReferencePixelX0, second.ReferencePixelY0) == (60, -20)
    assert _corners(third) == [250, 120, 399, 299]  # clipped right/bottom: reference unchanged
    assert (third.ReferencePixelX0, third.ReferencePixelY0) == (-10, 5)
    assert third.RegionDataType == COLOUR_FLOW
    assert _corners(fourth) == [0, 10, 49, 69]
    assert "ReferencePixelX0" not in fourth
    assert first.PhysicalDeltaX == 0.02  # physical calibration untouched


def test_rewrite_writes_values_with_their_dictionary_vrs() -> None:
    ds = _image(_region(20, 50, 199, 149, reference=(5, 5)))
    rewrite_regions(ds, Box(30, 60, 130, 110))
    item = _round_trip(ds, implicit=True).SequenceOfUltrasoundRegions[0]
    assert _corners(item) == [0, 0, 99, 49]
    assert (item.ReferencePixelX0, item.ReferencePixelY0) == (-5, -5)
    explicit = _round_trip(ds).SequenceOfUltrasoundRegions[0]
    assert explicit["RegionLocationMinX0"].VR == "UL"
    assert explicit["ReferencePixelX0"].VR == "SL"


def test_rewrite_removes_the_sequence_when_no_region_is_left() -> None:
    ds = _image(_region(0, 0, 9, 9), _region(790, 590, 799, 599))
    rewrite_regions(ds, Box(100, 100, 200, 200))
    assert "SequenceOfUltrasoundRegions" not in ds


def test_rewrite_without_regions_changes_nothing() -> None:
    ds = Dataset()
    ds.Rows, ds.Columns = ROWS, COLUMNS
    rewrite_regions(ds, Box(10, 10, 100, 100))
    assert "SequenceOfUltrasoundRegions" not in ds


def test_rewrite_drops_malformed_regions() -> None:
    broken = _region(10, 10, 100, 100)
    del broken.RegionLocationMinX0
    ds = _image(broken, _region(10, 10, 100, 100))
    rewrite_regions(ds, Box(0, 0, 200, 200))
    assert [_corners(item) for item in ds.SequenceOfUltrasoundRegions] == [[10, 10, 100, 100]]


@st.composite
def _regions_and_crop(draw: st.DrawFn) -> tuple[list[Box], list[tuple[int, int]], Box]:
    coordinate = st.integers(0, 120)
    boxes, references = [], []
    for _ in range(draw(st.integers(1, 4))):
        left, top = draw(coordinate), draw(coordinate)
        boxes.append(
            Box(left, top, left + draw(st.integers(1, 60)), top + draw(st.integers(1, 60)))
        )
        references.append((draw(st.integers(-50, 50)), draw(st.integers(-50, 50))))
    left, top = draw(st.integers(0, 100)), draw(st.integers(0, 100))
    crop = Box(left, top, left + draw(st.integers(1, 80)), top + draw(st.integers(1, 80)))
    return boxes, references, crop


@given(_regions_and_crop())
def test_rewritten_regions_lie_inside_and_point_at_the_same_pixels(
    case: tuple[list[Box], list[tuple[int, int]], Box],
) -> None:
    boxes, references, crop = case
    items = [
        _region(b.left, b.top, b.right - 1, b.bottom - 1, reference=r)
        for b, r in zip(boxes, references, strict=True)
    ]
    ds = _image(*items, rows=200, columns=200)
    rewrite_regions(ds, crop)
    kept = list(ds.get("SequenceOfUltrasoundRegions", []))
    expected = [
        (box, ref)
        for box, ref in zip(boxes, references, strict=True)
        if not box.intersect(crop).is_empty
    ]
    assert len(kept) == len(expected)
    for item, (box, (ref_x, ref_y)) in zip(kept, expected, strict=True):
        new = Box(
            item.RegionLocationMinX0,
            item.RegionLocationMinY0,
            item.RegionLocationMaxX1 + 1,
            item.RegionLocationMaxY1 + 1,
        )
        assert new == box.intersect(crop).translate(-crop.left, -crop.top)
        assert new == new.clip(crop.width, crop.height)
        # Same absolute reference pixel in the input image's coordinates.
        assert new.left + item.ReferencePixelX0 + crop.left == box.left + ref_x
        assert new.top + item.ReferencePixelY0 + crop.top == box.top + ref_y


# --- real files ---------------------------------------------------------------------


def _header(path: Path) -> Dataset:
    return pydicom.dcmread(path, stop_before_pixels=True, force=True)


@pytest.mark.parametrize("path", real_files(), ids=lambda p: p.name)
def test_real_regions_survive_their_own_crop(real_dir: Path, path: Path) -> None:
    ds = _header(path)
    crop = regions_crop(ds)
    boxes = region_boxes(ds)
    if "SequenceOfUltrasoundRegions" not in ds:
        assert crop is None and boxes == []
        return
    size = Box.full(int(ds.Columns), int(ds.Rows))
    assert len(boxes) == len(ds.SequenceOfUltrasoundRegions), "real regions are well formed"
    assert boxes and all(box == box.intersect(size) for box in boxes)
    assert crop is not None and crop == crop.intersect(size)
    before = [
        (box, item.get("ReferencePixelX0"), item.get("ReferencePixelY0"))
        for box, item in zip(boxes, ds.SequenceOfUltrasoundRegions, strict=True)
    ]
    rewrite_regions(ds, crop)
    after = list(ds.SequenceOfUltrasoundRegions)
    survivors = [entry for entry in before if not entry[0].intersect(crop).is_empty]
    assert len(after) == len(survivors)
    for item, (box, ref_x, ref_y) in zip(after, survivors, strict=True):
        new = Box(*_corners(item)[:2], item.RegionLocationMaxX1 + 1, item.RegionLocationMaxY1 + 1)
        assert new == new.clip(crop.width, crop.height)
        if ref_x is not None:
            assert new.left + item.ReferencePixelX0 + crop.left == box.left + ref_x
            assert new.top + item.ReferencePixelY0 + crop.top == box.top + ref_y
    written = _round_trip(ds).SequenceOfUltrasoundRegions
    assert [_corners(item) for item in written] == [_corners(item) for item in after]
    assert [item.get("ReferencePixelX0") for item in written] == [
        item.get("ReferencePixelX0") for item in after
    ]
