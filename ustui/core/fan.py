"""The geometry of a sector (fan) image: apex, two straight edges, near and far arcs.

Phased, curved and endocavity probes draw their image as a sector of an annulus:
its two side edges are straight lines that meet at the apex (above the image for
curved arrays), and it ends at a near arc (0 for a point apex) and a far arc.
:func:`fit_sector` finds that geometry from the lit pixels of the image area, so
that the crop can hold the whole sector, faint far field and wing tips included,
and so that what lies outside it can be masked (``fan_mask``).

Angles are measured from straight down, positive towards larger x; radii in pixels
from the apex.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ustui.core.boxes import Box

#: Each edge leans out by at least this slope (dx per dy): else the image is a rectangle.
MIN_SLOPE = 0.15
#: A sector's arcs are where this share of the wedge's pixels at that radius is lit.
ARC_SHARE = 0.1
#: Width of the radius bins, pixels; the arcs end at a gap of more than ARC_GAP bins.
ARC_BIN = 4
ARC_GAP = 5
#: Each edge needs at least this many rows, and this share of them on its line.
MIN_ROWS = 16
MIN_INLIERS = 0.3
#: Pixels a row's edge may lie off its line; line candidates tried.
ON_LINE = 4.0
RANSAC_TRIES = 300
#: A pixel counts as image when this share of the WINDOW x WINDOW pixels around it is
#: lit too: speckle is dense, noise and thin strokes are not.
WINDOW = 9
WINDOW_LIT = 0.5
#: A sector fits when at most this share of the area's image lies outside it.
MAX_OUTSIDE = 0.03
#: Share of the lit pixels in the wedge that may lie beyond the far arc (speckle noise).
FAR_QUANTILE = 0.999
#: Margin, in pixels, added around the fitted sector when it is measured or masked.
PAD = 1.0


@dataclass(frozen=True)
class Sector:
    """A sector of an annulus, in the image's pixel coordinates."""

    apex_x: float
    apex_y: float
    left_angle: float
    """Angle of the left edge from straight down, radians (negative: towards x = 0)."""
    right_angle: float
    near_radius: float
    far_radius: float

    def contains(self, xs: npt.NDArray[Any], ys: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
        """Which pixel centres lie in the sector (grown by ``PAD`` pixels)."""
        dx = xs + 0.5 - self.apex_x
        dy = ys + 0.5 - self.apex_y
        radius = np.hypot(dx, dy)
        angle = np.arctan2(dx, dy)
        slack = PAD / np.maximum(radius, 1.0)
        return np.asarray(
            (radius >= self.near_radius - PAD)
            & (radius <= self.far_radius + PAD)
            & (angle >= self.left_angle - slack)
            & (angle <= self.right_angle + slack)
        )

    def mask(self, box: Box) -> npt.NDArray[np.bool_]:
        """Inside-the-sector flags for the pixels of ``box`` (rows x columns of the box)."""
        ys, xs = np.mgrid[box.top : box.bottom, box.left : box.right]
        return self.contains(xs, ys)

    def box(self, columns: int, rows: int) -> Box:
        """The sector's bounding box, limited to the image."""
        angles = [self.left_angle, self.right_angle]
        angles += [a for a in (-math.pi / 2, 0.0, math.pi / 2) if self._between(a)]
        points = [
            (self.apex_x + r * math.sin(a), self.apex_y + r * math.cos(a))
            for a in angles
            for r in (max(self.near_radius - PAD, 0.0), self.far_radius + PAD)
        ]
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        return Box(
            math.floor(min(xs)), math.floor(min(ys)), math.ceil(max(xs)), math.ceil(max(ys))
        ).clip(columns, rows)

    def _between(self, angle: float) -> bool:
        return self.left_angle < angle < self.right_angle

    def as_dict(self) -> dict[str, float]:
        """For the manifest: apex (pixels), angles (degrees from straight down), radii."""
        return {
            "apex_x": round(self.apex_x, 1),
            "apex_y": round(self.apex_y, 1),
            "left_angle_deg": round(math.degrees(self.left_angle), 2),
            "right_angle_deg": round(math.degrees(self.right_angle), 2),
            "near_radius": round(self.near_radius, 1),
            "far_radius": round(self.far_radius, 1),
        }


def dense(lit: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Lit pixels with mostly lit surroundings (``WINDOW``): image, not noise or strokes."""
    rows, columns = lit.shape
    table = np.zeros((rows + 1, columns + 1), np.int32)
    np.cumsum(np.cumsum(lit, axis=0, dtype=np.int32), axis=1, out=table[1:, 1:])
    half = WINDOW // 2
    y0 = np.clip(np.arange(rows) - half, 0, rows)[:, None]
    y1 = np.clip(np.arange(rows) + half + 1, 0, rows)[:, None]
    x0 = np.clip(np.arange(columns) - half, 0, columns)[None, :]
    x1 = np.clip(np.arange(columns) + half + 1, 0, columns)[None, :]
    count = table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]
    return np.asarray(lit & (count >= WINDOW_LIT * WINDOW * WINDOW))


def _robust_line(
    ys: npt.NDArray[np.int64], xs: npt.NDArray[np.int64], sign: int
) -> tuple[float, float, float] | None:
    """``x = a + b y`` through most points (RANSAC over pairs, then least squares), and
    the share of points on it. Dark tissue at a sector's edge, or speckle beyond its far
    arc, puts many rows' first lit pixel elsewhere: a consensus line ignores them."""
    rng = np.random.default_rng(0)  # the same answer every run
    pairs = rng.integers(0, ys.size, (RANSAC_TRIES, 2))
    y0, y1 = ys[pairs[:, 0]].astype(float), ys[pairs[:, 1]].astype(float)
    x0, x1 = xs[pairs[:, 0]].astype(float), xs[pairs[:, 1]].astype(float)
    usable = y1 != y0
    b = np.where(usable, (x1 - x0) / np.where(usable, y1 - y0, 1), 0)
    usable &= sign * b >= MIN_SLOPE  # a sector's left edge runs down-left, its right down-right
    a = x0 - b * y0
    near = np.abs(xs[None, :] - (a[:, None] + b[:, None] * ys[None, :])) <= ON_LINE
    votes = np.where(usable, near.sum(axis=1), -1)
    keep = near[int(np.argmax(votes))]
    if keep.sum() < MIN_ROWS or votes.max() < 0:
        return None
    slope, offset = (float(v) for v in np.polyfit(ys[keep], xs[keep], 1))
    if sign * slope < MIN_SLOPE:
        return None
    residual = xs - (offset + slope * ys)
    on_line = np.abs(residual) <= ON_LINE
    # Speckle darkens the edge unevenly: the edge is the outer side of its points.
    offset += sign * float(np.quantile(sign * residual[on_line], 0.9))
    return offset, slope, float(on_line.mean())


def _arcs(
    image: npt.NDArray[np.bool_], x: float, y: float, left: float, right: float
) -> tuple[float, float] | None:
    """Near and far radius from the apex ``(x, y)``: the first and last radius at which
    ``ARC_SHARE`` of the wedge's pixels are lit. Faint far field is sparse but spread
    over the arc; a depth label or a caliper inside the wedge covers little of it."""
    ys, xs = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    dx, dy = xs + 0.5 - x, ys + 0.5 - y
    angle = np.arctan2(dx, dy)
    wedge = (angle >= left) & (angle <= right) & (dy > 0)
    radius = np.hypot(dx, dy)[wedge]
    bins = (radius // ARC_BIN).astype(np.int64)
    if bins.size == 0:
        return None
    total = np.bincount(bins)
    lit = np.bincount(bins, weights=image[wedge], minlength=total.size)
    found = np.flatnonzero((total >= 8) & (lit >= ARC_SHARE * total))
    if found.size == 0:
        return None
    # The run of lit radii holding most lit pixels; text beyond a dark gap is not image.
    runs = np.split(found, np.flatnonzero(np.diff(found) > ARC_GAP) + 1)
    best = max(runs, key=lambda run: float(lit[run].sum()))
    held = image[wedge] & (bins >= best[0]) & (bins <= best[-1])
    return float(radius[held].min()), float(radius[held].max())


def fit_sector(lit: npt.NDArray[np.bool_], area: Box) -> Sector | None:
    """The sector whose lit pixels fill ``area``, or None for a rectangle or no fit.

    Parameters
    ----------
    lit
        Per pixel of the frame, whether it shows image (brighter than the surround).
    area
        Where the image area was found; the edges are read inside it.
    """
    part = dense(lit[area.top : area.bottom, area.left : area.right])
    has = part.any(axis=1)
    first = np.argmax(part, axis=1)
    last = part.shape[1] - 1 - np.argmax(part[:, ::-1], axis=1)
    rows = np.flatnonzero(has)
    if rows.size < 2 * MIN_ROWS:
        return None
    # The edges run straight only where the row is not cut by the area's own box.
    lefts = rows[first[rows] > 1]
    rights = rows[last[rows] < part.shape[1] - 2]
    left = _robust_line(lefts, first[lefts], -1) if lefts.size >= MIN_ROWS else None
    right = _robust_line(rights, last[rights], 1) if rights.size >= MIN_ROWS else None
    if left is None or right is None or min(left[2], right[2]) < MIN_INLIERS:
        return None
    (al, bl, _), (ar, br, _) = left, right
    apex_y = (al - ar) / (br - bl)  # the lines meet here (area coordinates)
    apex_x = al + bl * apex_y
    if apex_y > rows[0] + 0.25 * (rows[-1] - rows[0]):
        return None  # lines meeting low in the area are not a sector's edges
    left_angle, right_angle = math.atan(bl), math.atan(br)
    # The arcs are read a quarter of the area's width beyond its sides too, where
    # wing tips it did not reach may lie.
    side = area.width // 4
    wide = Box(area.left - side, area.top, area.right + side, area.bottom).clip(*lit.shape[::-1])
    image = lit[wide.top : wide.bottom, wide.left : wide.right]
    ys, xs = np.nonzero(part)
    arcs = _arcs(image, apex_x + area.left - wide.left, apex_y, left_angle, right_angle)
    if arcs is None:
        return None
    sector = Sector(
        apex_x=apex_x + area.left,
        apex_y=apex_y + area.top,
        left_angle=left_angle,
        right_angle=right_angle,
        near_radius=arcs[0],
        far_radius=arcs[1],
    )
    # A rectangle's corners, or two images side by side, lie outside any sector.
    outside = ~sector.contains(xs + area.left, ys + area.top)
    return sector if outside.mean() <= MAX_OUTSIDE else None
