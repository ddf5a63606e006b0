"""The Sequence of Ultrasound Regions (0018,6011): reading it as boxes, and rewriting
it for a crop.

DICOM region corners are inclusive; boxes here are right/bottom exclusive.
"""

from __future__ import annotations

from pydicom import Dataset

from ustui.core.boxes import Box

#: RegionDataType values holding image data worth keeping: tissue, colour flow, PW and
#: CW spectral Doppler. Waveforms (ECG, pulse, ...), grey and colour bars, and "none"
#: regions (often the whole screen, banners included) do not define the crop.
IMAGE_DATA_TYPES = frozenset({1, 2, 3, 4})


def _corners(item: Dataset) -> Box | None:
    try:
        return Box(
            int(item.RegionLocationMinX0),
            int(item.RegionLocationMinY0),
            int(item.RegionLocationMaxX1) + 1,
            int(item.RegionLocationMaxY1) + 1,
        )
    except (AttributeError, TypeError, ValueError):
        return None


def _items(ds: Dataset) -> list[Dataset]:
    try:
        return list(ds.get("SequenceOfUltrasoundRegions") or [])
    except (TypeError, ValueError):
        return []


def region_boxes(ds: Dataset) -> list[Box]:
    """Boxes of every well-formed region, clipped to the image."""
    rows, columns = int(ds.Rows), int(ds.Columns)
    boxes = []
    for item in _items(ds):
        box = _corners(item)
        if box is not None and not box.clip(columns, rows).is_empty:
            boxes.append(box.clip(columns, rows))
    return boxes


def regions_crop(ds: Dataset) -> Box | None:
    """The union of the image regions, or None when it says nothing useful.

    None when there are no image regions, or their union is the whole image (which
    would crop nothing away, burned-in banners included).
    """
    rows, columns = int(ds.Rows), int(ds.Columns)
    union: Box | None = None
    for item in _items(ds):
        box = _corners(item)
        try:
            kind = int(item.get("RegionDataType", 0))
        except (TypeError, ValueError):
            continue
        if box is None or kind not in IMAGE_DATA_TYPES:
            continue
        box = box.clip(columns, rows)
        if not box.is_empty:
            union = box if union is None else union.union(box)
    if union is None or union == Box.full(columns, rows):
        return None
    return union


def rewrite_regions(ds: Dataset, crop: Box) -> None:
    """Move every region into the cropped image's coordinates, in place.

    Regions are translated by the crop origin and clipped to the new image;
    regions left empty are removed, and the sequence with them when none remain.
    Reference pixels are relative to a region's top-left corner, so they shift by
    whatever clipping takes off that corner; physical deltas stay valid.
    """
    if "SequenceOfUltrasoundRegions" not in ds:
        return
    kept = []
    for item in _items(ds):
        box = _corners(item)
        if box is None:
            continue
        moved = box.translate(-crop.left, -crop.top)
        clipped = moved.clip(crop.width, crop.height)
        if clipped.is_empty:
            continue
        item.RegionLocationMinX0 = clipped.left
        item.RegionLocationMinY0 = clipped.top
        item.RegionLocationMaxX1 = clipped.right - 1
        item.RegionLocationMaxY1 = clipped.bottom - 1
        if "ReferencePixelX0" in item:
            item.ReferencePixelX0 = int(item.ReferencePixelX0) - (clipped.left - moved.left)
        if "ReferencePixelY0" in item:
            item.ReferencePixelY0 = int(item.ReferencePixelY0) - (clipped.top - moved.top)
        kept.append(item)
    if kept:
        ds.SequenceOfUltrasoundRegions = kept
    else:
        del ds.SequenceOfUltrasoundRegions
