"""A crop found by image analysis: the largest solid non-black area of the frames.

Scanners draw the live image (sector, fan or rectangle) as one large textured
area, and text, rulers and calipers as thin strokes separated from it by dark
gaps. So: threshold non-black pixels over a few frames, open the mask to drop
thin strokes, close it to fill dark vessels inside the image, then take the
heaviest band of rows and, within it, the heaviest band of columns.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ustui.core.boxes import Box

#: Grey level above which a pixel counts as image rather than background.
THRESHOLD = 12
#: Strokes thinner than this (text, lines, calipers) are dropped, in pixels.
STROKE = 5
#: Holes smaller than this inside the image (dark vessels, shadows) are filled.
HOLE = 15
#: A row or column takes part when this share of it is image.
ACTIVE_SHARE = 0.03
#: Gaps shorter than this share of the size do not split the image.
GAP_SHARE = 0.02
#: The image spans at least this share of each dimension; narrower bands are banners,
#: rulers or bars, never the image itself.
MIN_EXTENT_SHARE = 0.25


def _window_count(mask: np.ndarray, size: int) -> np.ndarray:
    """How many set pixels each ``size`` x ``size`` window centred on a pixel holds."""
    pad = size // 2
    padded = np.pad(mask.astype(np.int32), pad + 1)
    integral = padded.cumsum(0).cumsum(1)
    rows, columns = mask.shape
    a = integral[size : size + rows, size : size + columns]
    b = integral[0:rows, size : size + columns]
    c = integral[size : size + rows, 0:columns]
    d = integral[0:rows, 0:columns]
    return np.asarray(a - b - c + d)


def _erode(mask: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(_window_count(mask, size) == size * size)


def _dilate(mask: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(_window_count(mask, size) > 0)


def _heaviest_run(profile: np.ndarray, weights: np.ndarray, gap: int) -> tuple[int, int] | None:
    """[start, end) of the heaviest run of active entries (gaps < ``gap`` bridged) that
    spans at least MIN_EXTENT_SHARE of the profile, or None."""
    active = np.flatnonzero(profile)
    if active.size == 0:
        return None
    breaks = np.flatnonzero(np.diff(active) > gap)
    starts = np.concatenate(([active[0]], active[breaks + 1]))
    ends = np.concatenate((active[breaks], [active[-1]])) + 1
    cumulative = np.concatenate(([0.0], np.cumsum(weights, dtype=np.float64)))
    masses = np.where(
        ends - starts >= MIN_EXTENT_SHARE * profile.size, cumulative[ends] - cumulative[starts], -1
    )
    best = int(np.argmax(masses))
    return (int(starts[best]), int(ends[best])) if masses[best] > 0 else None


def _grey(frame: np.ndarray) -> np.ndarray:
    return frame.max(axis=2) if frame.ndim == 3 else frame


def analysis_crop(frames: Iterable[np.ndarray], *, rows: int, columns: int) -> Box | None:
    """The box of the live ultrasound image in display frames, or None.

    Parameters
    ----------
    frames
        A few display frames (uint8 greyscale or RGB), e.g. spread over a cine.
    rows, columns
        The image size.
    """
    mask: np.ndarray | None = None
    for frame in frames:
        lit = _grey(np.asarray(frame)) > THRESHOLD
        mask = lit if mask is None else mask | lit
    if mask is None or mask.shape != (rows, columns):
        return None
    solid = _erode(_dilate(_dilate(_erode(mask, STROKE), STROKE), HOLE), HOLE)
    if not solid.any():
        return None
    box = Box.full(columns, rows)
    for _ in range(2):  # rows, then columns within them, then once more
        region = solid[box.top : box.bottom, box.left : box.right]
        row_weight = region.sum(axis=1)
        found = _heaviest_run(
            row_weight > ACTIVE_SHARE * box.width, row_weight, max(1, int(GAP_SHARE * rows))
        )
        if found is None:
            return None
        box = Box(box.left, box.top + found[0], box.right, box.top + found[1])
        region = solid[box.top : box.bottom, box.left : box.right]
        column_weight = region.sum(axis=0)
        found = _heaviest_run(
            column_weight > ACTIVE_SHARE * box.height,
            column_weight,
            max(1, int(GAP_SHARE * columns)),
        )
        if found is None:
            return None
        box = Box(box.left + found[0], box.top, box.left + found[1], box.bottom)
    return box
