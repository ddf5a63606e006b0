"""A crop found by image analysis: the box of the ultrasound image in a few frames.

Scanners draw the image (sector, fan or linear rectangle) as one large, solidly
non-black area. Text, rulers, calipers and traces are thin strokes, usually
apart from it by a dark gap; banners, tables and blanked fields are painted in
flat colours. The analysis works on a grid of blocks to stay fast on cines:

1. Per pixel, the brightest value over the frames and channels (a cine's image
   is the union of what its frames show) and, for cines, whether it changes
   between frames (the image moves, text does not).
2. A pixel is *lit* when it is brighter than the black surround. A block is
   solid when at least half of its pixels are lit and fewer than half are paint
   (the flat colour of a banner, table or blanked field).
3. An opening of the grid drops strokes and text lines; the connected solid
   areas are labelled and the one with the most moving blocks (cines) or the
   largest (single frames) is the image. Large parts above or below it join
   it: dark tissue can split one image in two.
4. Its box is refined to the pixel: each edge moves out while the next row or
   column keeps most of the lit pixels, so it follows a fan to its apex but
   stops at a dark gap or where text begins.
5. When the area is a sector (``fan.fit_sector``: two straight edges meeting at
   an apex), the box grows to hold the whole sector: wing tips and faint far
   field that the blocks missed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ustui.core.boxes import Box
from ustui.core.fan import Sector, fit_sector

#: The brightest grey level the black surround may have (some scanners lift black).
DARKEST_BACKGROUND = 32
#: Levels this close above the background are a dim image (probe in air), never paint.
NEAR_BLACK = 10
#: Length of the runs of one exact grey level that mark paint, in pixels.
PAINT_RUN = 12
#: A level is a paint colour when this share of the image lies in such runs of it.
PAINT_SHARE = 0.001
#: Pixels this close to a paint colour are paint (lossy compression blurs colours).
PAINT_TOLERANCE = 2
#: A block is solid when at least this share of its pixels is lit and less of it is paint.
SOLID_SHARE = 0.5
#: Solid areas narrower than this many blocks are strokes or text, not image.
OPENING = 5
#: Grey-level change between frames that marks a pixel as moving.
LIVE_DELTA = 24
#: Share of a block's pixels that must move for the block to be live.
LIVE_SHARE = 0.1
#: The image holds at least this share of the blocks.
MIN_IMAGE_SHARE = 0.03
#: Parts at least this share of the image's size above or below it join it.
MERGE_SHARE = 0.05
#: An edge on a dark line moves in to the first line with this share of its span lit.
EDGE_SHARE = 0.02
#: An edge moves out to the next line while that keeps this share of the line's lit pixels.
EDGE_FALL = 0.5
#: How far refinement may move an edge out of the solid blocks, in blocks.
REACH = 3
#: Pixels a fitted sector may raise the refined top by (the tip of a sharp apex).
APEX_SLACK = 3
#: The image spans at least this share of the width and of the height.
MIN_SIDE = 0.25


def _block_size(rows: int, columns: int) -> int:
    # About 80 blocks across the short side: the opening then drops anything
    # thinner than ~6 % of it (two stacked text lines), and the grid stays small.
    return max(4, min(rows, columns) // 80)


def _grey(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return frame
    grey = frame[..., 0].copy()
    for channel in range(1, frame.shape[2]):
        np.maximum(grey, frame[..., channel], out=grey)
    return grey


def _background(high: np.ndarray) -> int:
    """The grey level of the black surround: the commonest dark level."""
    histogram = np.bincount(high[::2, ::2].ravel(), minlength=256)  # a sample is plenty
    return int(np.argmax(histogram[: DARKEST_BACKGROUND + 1]))


def _paint(high: np.ndarray, background: int) -> np.ndarray:
    """Pixels in the colours banners, tables and blanked fields are painted with.

    Speckle, even smooth speckle, almost never holds one exact level over a
    long horizontal run; paint does, even in banners with a vertical gradient.
    """
    # run[:, x]: pixels x .. x + span are equal; spans double, then top up to PAINT_RUN.
    run = high[:, 1:] == high[:, :-1]
    span = 1
    while span * 2 < PAINT_RUN:
        run = run[:, :-span] & run[:, span:]
        span *= 2
    extra = PAINT_RUN - 1 - span
    run = run[:, :-extra] & run[:, extra:] if extra else run
    counts = np.bincount(high[:, : run.shape[1]][run], minlength=256)
    counts[: background + NEAR_BLACK + 1] = 0
    colours = np.zeros(256, bool)
    for level in np.flatnonzero(counts >= PAINT_SHARE * high.size):
        colours[max(0, level - PAINT_TOLERANCE) : level + PAINT_TOLERANCE + 1] = True
    return np.asarray(colours[high])


def _block_share(mask: np.ndarray, size: int) -> np.ndarray:
    """The share of set pixels in each whole ``size`` x ``size`` block of ``mask``."""
    rows, columns = mask.shape[0] // size, mask.shape[1] // size
    blocks = mask[: rows * size, : columns * size].reshape(rows, size, columns, size)
    counts = blocks.sum(axis=3, dtype=np.uint16).sum(axis=1, dtype=np.uint32)
    return np.asarray(counts / (size * size))


def _open(mask: np.ndarray, width: int) -> np.ndarray:
    """Morphological opening with an odd ``width`` square (outside the grid is empty)."""
    rows, columns = mask.shape
    half = width // 2
    padded = np.pad(mask, half)
    eroded = np.ones_like(mask)
    for dy in range(width):
        for dx in range(width):
            eroded &= padded[dy : dy + rows, dx : dx + columns]
    padded = np.pad(eroded, half)
    opened = np.zeros_like(mask)
    for dy in range(width):
        for dx in range(width):
            opened |= padded[dy : dy + rows, dx : dx + columns]
    return opened


def _components(mask: np.ndarray, weight: np.ndarray) -> list[tuple[int, int, Box]]:
    """(area, weight, bounding box) of each 4-connected component of ``mask``,
    where weight counts the component's cells set in ``weight``.

    Runs of set cells are joined row by row with a union-find: numpy has no
    labelling of its own, and the grid holds only a few thousand cells.
    """
    parent: list[int] = []

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    runs: list[tuple[int, int, int]] = []  # (row, start, end)
    above: list[int] = []
    line = np.zeros(mask.shape[1] + 2, np.int8)
    for row in range(mask.shape[0]):
        line[1:-1] = mask[row]
        edges = np.flatnonzero(np.diff(line)).tolist()
        current: list[int] = []
        first = 0
        for start, end in zip(edges[::2], edges[1::2], strict=True):
            index = len(runs)
            runs.append((row, start, end))
            parent.append(index)
            current.append(index)
            while first < len(above) and runs[above[first]][2] <= start:
                first += 1
            k = first
            while k < len(above) and runs[above[k]][1] < end:
                parent[find(above[k])] = find(index)
                k += 1
        above = current
    weights = np.zeros((mask.shape[0], mask.shape[1] + 1), np.int64)
    np.cumsum(weight, axis=1, out=weights[:, 1:])
    found: dict[int, list[int]] = {}
    for index, (row, start, end) in enumerate(runs):
        # area, weight, left, top, right, bottom; runs come top to bottom
        totals = found.setdefault(find(index), [0, 0, start, row, end, row + 1])
        totals[0] += end - start
        totals[1] += int(weights[row, end] - weights[row, start])
        totals[2] = min(totals[2], start)
        totals[4] = max(totals[4], end)
        totals[5] = row + 1
    return [(t[0], t[1], Box(t[2], t[3], t[4], t[5])) for t in found.values()]


def _above_or_below(box: Box, other: Box) -> bool:
    """Whether ``other`` shares at least half its columns with ``box``."""
    return min(box.right, other.right) - max(box.left, other.left) >= other.width / 2


def _edge(counts: np.ndarray, start: int, step: int, floor: int) -> int:
    """Where an edge at line ``start`` settles, moving by ``step`` outwards.

    From a dark line it walks inwards to the first line with ``floor`` lit pixels.
    From a lit line it walks outwards while the next line keeps at least half as
    many lit pixels: a fan narrows gradually to its apex, whereas text, traces and
    noise beyond a dark gap start abruptly.
    """
    i = start
    if counts[i] < floor:
        while 0 <= i - step < counts.size and counts[i] < floor:
            i -= step
        return i
    while 0 <= i + step < counts.size and counts[i + step] >= max(3, counts[i] * EDGE_FALL):
        i += step
    return i


def _refine(lit: np.ndarray, solid: np.ndarray, cells: Box, size: int) -> Box:
    """The grid ``cells`` as a pixel box, each edge moved to where the image ends.

    Each edge looks only at the pixels beside the solid cells on that edge (and
    ``REACH`` cells either side), so text beside a fan's narrow apex does not drag
    the edge along.
    """
    rows, columns = lit.shape
    reach = REACH * size
    inside = solid[cells.top : cells.bottom, cells.left : cells.right]

    def span(line: np.ndarray, first_cell: int, limit: int) -> tuple[int, int]:
        set_cells = np.flatnonzero(line) + first_cell
        low = int(set_cells[0]) * size - reach
        return max(0, low), min(limit, (int(set_cells[-1]) + 1) * size + reach)

    top, bottom = max(0, cells.top * size - reach), min(rows, cells.bottom * size + reach)
    left, right = max(0, cells.left * size - reach), min(columns, cells.right * size + reach)
    found = []
    for line, start, step in (
        (inside[0], cells.top * size, -1),
        (inside[-1], cells.bottom * size - 1, 1),
    ):
        low, high = span(line, cells.left, columns)
        counts = np.count_nonzero(lit[top:bottom, low:high], axis=1)
        floor = max(3, int(EDGE_SHARE * (high - low)))
        found.append(top + _edge(counts, start - top, step, floor))
    for line, start, step in (
        (inside[:, 0], cells.left * size, -1),
        (inside[:, -1], cells.right * size - 1, 1),
    ):
        low, high = span(line, cells.top, rows)
        counts = np.count_nonzero(lit[low:high, left:right], axis=0)
        floor = max(3, int(EDGE_SHARE * (high - low)))
        found.append(left + _edge(counts, start - left, step, floor))
    new_top, new_bottom, new_left, new_right = found[0], found[1] + 1, found[2], found[3] + 1
    return Box(new_left, new_top, max(new_right, new_left + 1), max(new_bottom, new_top + 1))


def _stack(
    frames: Iterable[np.ndarray], rows: int, columns: int
) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Per-pixel brightest and darkest grey over ``frames``, and the frame count."""
    high: np.ndarray | None = None
    low: np.ndarray | None = None
    count = 0
    for frame in frames:
        array = np.asarray(frame)
        if (
            array.dtype != np.uint8
            or array.ndim not in (2, 3)
            or array.shape[:2] != (rows, columns)
        ):
            return None
        grey = _grey(array)
        if high is None or low is None:
            high, low = grey.copy(), grey.copy()
        else:
            np.maximum(high, grey, out=high)
            np.minimum(low, grey, out=low)
        count += 1
    return None if high is None or low is None else (high, low, count)


@dataclass(frozen=True)
class Analysis:
    """What image analysis found: the image's box and, for a sector image, its geometry."""

    box: Box
    sector: Sector | None = None


def analysis_crop(frames: Iterable[np.ndarray], *, rows: int, columns: int) -> Box | None:
    """The box of the ultrasound image in display frames, or None (see :func:`analyse`)."""
    found = analyse(frames, rows=rows, columns=columns)
    return found.box if found else None


def analyse(frames: Iterable[np.ndarray], *, rows: int, columns: int) -> Analysis | None:
    """The box of the ultrasound image in display frames, and its sector, or None.

    The box holds the largest solid non-black area of the frames (the sector,
    fan or linear image) and leaves out text banners, measurement tables, scale
    bars and traces that a dark gap or a painted background separates from it.
    A sector's box holds the whole fitted sector.

    Parameters
    ----------
    frames : iterable of numpy.ndarray
        A few display frames, uint8 greyscale (rows, columns) or RGB
        (rows, columns, 3), e.g. up to 8 spread over a cine.
    rows, columns : int
        The image size.

    Returns
    -------
    Analysis or None
        None when there are no frames, a frame is not uint8 of that size,
        nothing convincing is found (no large solid area, or one spanning less
        than a quarter of the width or height), or the image fills the frame.
    """
    stacked = _stack(frames, rows, columns)
    size = _block_size(rows, columns)
    if stacked is None or rows < OPENING * size or columns < OPENING * size:
        return None
    high, low, count = stacked
    background = _background(high)
    lit = high > background
    paint = _paint(high, background)
    solid = (_block_share(lit, size) >= SOLID_SHARE) & (_block_share(paint, size) < SOLID_SHARE)
    solid = _open(solid, OPENING)
    live = (
        _block_share((high - low) > LIVE_DELTA, size) >= LIVE_SHARE
        if count > 1
        else np.zeros_like(solid)
    )
    components = sorted(_components(solid, live), key=lambda c: (c[1], c[0]), reverse=True)
    if not components or components[0][0] < MIN_IMAGE_SHARE * solid.size:
        return None
    area, _, main = components[0]
    cells = main
    for other_area, _, other in components[1:]:
        if other_area >= MERGE_SHARE * area and _above_or_below(main, other):
            cells = cells.union(other)
    image = lit & ~paint
    box = _refine(image, solid, cells, size)
    if box.width < MIN_SIDE * columns or box.height < MIN_SIDE * rows:
        return None
    reach = REACH * size
    sector = fit_sector(
        image,
        Box(box.left - reach, box.top, box.right + reach, box.bottom + reach).clip(columns, rows),
    )
    if sector is not None:
        # The fit reaches wing tips and far field the blocks missed, but not far beyond
        # the refined box (a text line is never taken in), and hardly above it: the
        # refined top already follows the fan to its apex or probe face.
        grown = Box(
            box.left - box.width // 4,
            box.top - APEX_SLACK,
            box.right + box.width // 4,
            box.bottom + reach,
        )
        box = box.union(sector.box(columns, rows).intersect(grown))
    return None if box == Box.full(columns, rows) else Analysis(box, sector)
