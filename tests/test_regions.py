from __future__ import annotations

import io

from pydicom import Dataset, dcmread
from pydicom.sequence import Sequence

from ustui.core.boxes import Box
from ustui.core.regions import region_boxes, regions_crop, rewrite_regions
from ustui.core.synthetic import region_item


def _image(*items: Dataset, rows: int = 600, columns: int = 800) -> Dataset:
    ds = Dataset()
    ds.Rows, ds.Columns = rows, columns
    ds.SequenceOfUltrasoundRegions = Sequence(list(items))
    return ds


def _region(box: Box, kind: int = 1) -> Dataset:
    item = region_item(box)
    item.RegionDataType = kind
    return item


def test_inclusive_corners_become_exclusive_boxes_clipped_to_the_image() -> None:
    edge = _region(Box(120, 60, 800, 519))
    edge.RegionLocationMaxX1 = 800  # real files point one past the last column
    ds = _image(edge, _region(Box(10, 10, 20, 20)))
    assert region_boxes(ds) == [Box(120, 60, 800, 519), Box(10, 10, 20, 20)]


def test_crop_is_the_union_of_image_regions_only() -> None:
    ds = _image(
        _region(Box(32, 24, 336, 416)),
        _region(Box(336, 24, 640, 416), kind=2),
        _region(Box(176, 522, 744, 577), kind=10),  # ECG trace
        _region(Box(0, 0, 800, 600), kind=0),  # "none": the whole screen
    )
    assert regions_crop(ds) == Box(32, 24, 640, 416)


def test_no_usable_region_gives_no_crop() -> None:
    assert regions_crop(_image()) is None
    assert regions_crop(_image(_region(Box(0, 0, 800, 600)))) is None
    broken = Dataset()
    broken.RegionDataType = 1
    assert regions_crop(_image(broken)) is None


def test_rewrite_translates_clips_and_drops_regions() -> None:
    inside = _region(Box(100, 100, 300, 300))
    inside.ReferencePixelX0, inside.ReferencePixelY0 = 100, 0
    partly = _region(Box(20, 50, 200, 150))
    partly.ReferencePixelX0, partly.ReferencePixelY0 = 90, 10
    outside = _region(Box(700, 500, 790, 590), kind=10)
    ds = _image(inside, partly, outside)
    rewrite_regions(ds, Box(50, 80, 450, 380))
    written = io.BytesIO()
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(written)
    back = dcmread(io.BytesIO(written.getvalue()), force=True)
    items = back.SequenceOfUltrasoundRegions
    assert len(items) == 2
    first, second = items
    assert [first.RegionLocationMinX0, first.RegionLocationMinY0] == [50, 20]
    assert [first.RegionLocationMaxX1, first.RegionLocationMaxY1] == [249, 219]
    assert (first.ReferencePixelX0, first.ReferencePixelY0) == (100, 0)
    # Clipped by 30 px on the left: the reference point stays on the same tissue.
    assert [second.RegionLocationMinX0, second.RegionLocationMinY0] == [0, 0]
    assert [second.RegionLocationMaxX1, second.RegionLocationMaxY1] == [149, 69]
    assert (second.ReferencePixelX0, second.ReferencePixelY0) == (60, -20)


def test_rewrite_removes_the_sequence_when_nothing_is_left() -> None:
    ds = _image(_region(Box(0, 0, 10, 10)))
    rewrite_regions(ds, Box(100, 100, 200, 200))
    assert "SequenceOfUltrasoundRegions" not in ds
