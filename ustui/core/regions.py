"""The Sequence of Ultrasound Regions (0018,6011): reading it as boxes, and rewriting
it for a crop.

DICOM region corners are inclusive: Region Location Max X1 (0018,601C) is the last
column of the region. Boxes here are right/bottom exclusive, so ``right = MaxX1 + 1``.
Scanners often write Max X1 = Columns (one past the last column); boxes are clipped
to the image rather than rejected.
"""

from __future__ import annotations

from pydicom import Dataset

from ustui.core.boxes import Box

#: Region Data Type (0018,6014) values whose pixels are ultrasound image data and so
#: define the crop: tissue (1), colour flow (2), PW (3) and CW (4) spectral Doppler,
#: and integrated backscatter (15); M-mode is tissue or flow in an M-mode spatial
#: format. Left out: "none" (0, often the whole screen with its banners), Doppler
#: traces (5-7, drawn inside a spectral region anyway), volume and area traces and
#: physiological waveforms (8, 10-12, 16-18: ECG, pulse, phonocardiogram, pressure),
#: whose panels carry text such as heart rate, and grey and colour bars (13, 14).
IMAGE_DATA_TYPES = frozenset({1, 2, 3, 4, 15})

_SEQUENCE = "SequenceOfUltrasoundRegions"


def _size(ds: Dataset) -> tuple[int, int] | None:
    """(columns, rows) of the image, or None when the header lacks them."""
    try:
        return int(ds.Columns), int(ds.Rows)
    except (AttributeError, TypeError, ValueError):
        return None


def _items(ds: Dataset) -> list[Dataset]:
    try:
        sequence = ds.get(_SEQUENCE)
        return [item for item in sequence or [] if isinstance(item, Dataset)]
    except (TypeError, ValueError):
        return []


def _box(item: Dataset) -> Box | None:
    """The region's box (exclusive right/bottom), unclipped, or None if malformed."""
    try:
        box = Box(
            int(item.RegionLocationMinX0),
            int(item.RegionLocationMinY0),
            int(item.RegionLocationMaxX1) + 1,
            int(item.RegionLocationMaxY1) + 1,
        )
    except (AttributeError, TypeError, ValueError):
        return None
    return None if box.is_empty else box


def _data_type(item: Dataset) -> int | None:
    try:
        return int(item.RegionDataType)
    except (AttributeError, TypeError, ValueError):
        return None


def region_boxes(ds: Dataset) -> list[Box]:
    """The boxes of all well-formed regions, clipped to the image.

    Parameters
    ----------
    ds : pydicom.Dataset
        A dataset with Rows and Columns.

    Returns
    -------
    list of Box
        One box per region that has all four corners and overlaps the image, in
        sequence order; malformed items are left out.
    """
    size = _size(ds)
    if size is None:
        return []
    boxes = []
    for item in _items(ds):
        box = _box(item)
        if box is not None and not box.clip(*size).is_empty:
            boxes.append(box.clip(*size))
    return boxes


def regions_crop(ds: Dataset) -> Box | None:
    """The union of the image regions (see IMAGE_DATA_TYPES), clipped to the image.

    Parameters
    ----------
    ds : pydicom.Dataset
        A dataset with Rows and Columns.

    Returns
    -------
    Box or None
        None when there is no well-formed image region, or when their union is
        the whole image (a crop that removes nothing, banners included).
    """
    size = _size(ds)
    if size is None:
        return None
    union: Box | None = None
    for item in _items(ds):
        box = _box(item)
        if box is None or _data_type(item) not in IMAGE_DATA_TYPES:
            continue
        box = box.clip(*size)
        if not box.is_empty:
            union = box if union is None else union.union(box)
    if union is None or union == Box.full(*size):
        return None
    return union


def _shift_reference(item: Dataset, keyword: str, clipped: int) -> None:
    value = item.get(keyword)
    if clipped and value is not None:
        try:
            setattr(item, keyword, int(value) - clipped)
        except (TypeError, ValueError):
            del item[keyword]  # unreadable, and it would now point elsewhere


def rewrite_regions(ds: Dataset, crop: Box, content: Box | None = None) -> None:
    """Move every region into the cropped image's coordinates, in place.

    Each region is translated by the crop's origin and clipped to the new image
    (``crop.width`` x ``crop.height``); regions left empty, and malformed ones,
    are removed, and the sequence with them when none remain. Reference Pixel
    X0/Y0 (0018,6020)/(0018,6022) are relative to the region's top-left corner,
    so they shift by whatever clipping takes off that corner and keep pointing at
    the same tissue; physical deltas, and positions measured from the reference
    pixel (TM-line, Doppler sample volume), stay valid.

    Parameters
    ----------
    ds : pydicom.Dataset
        The output dataset, changed in place.
    crop : Box
        The crop, in the input image's pixel coordinates.
    content : Box, optional
        The part of ``crop`` written with content (see ``PixelPlan.content``);
        regions are clipped to it, never reaching into a black margin.
    """
    if _SEQUENCE not in ds:
        return
    kept = []
    for item in _items(ds):
        box = _box(item)
        if box is None:
            continue
        moved = box.translate(-crop.left, -crop.top)
        inside = (content or crop).intersect(crop).translate(-crop.left, -crop.top)
        clipped = moved.intersect(inside)
        if clipped.is_empty:
            continue
        item.RegionLocationMinX0 = clipped.left
        item.RegionLocationMinY0 = clipped.top
        item.RegionLocationMaxX1 = clipped.right - 1
        item.RegionLocationMaxY1 = clipped.bottom - 1
        _shift_reference(item, "ReferencePixelX0", clipped.left - moved.left)
        _shift_reference(item, "ReferencePixelY0", clipped.top - moved.top)
        kept.append(item)
    if kept:
        ds.SequenceOfUltrasoundRegions = kept
    else:
        del ds.SequenceOfUltrasoundRegions
