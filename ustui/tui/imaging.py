"""Frames to terminal cells: fitting an image into a pane, and half-block strips.

Pure functions over numpy arrays, safe to call from worker threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from ustui.core.boxes import Box
from ustui.core.fan import Sector

_UPPER_HALF = "\u2580"


@dataclass(frozen=True)
class Fit:
    """Where an image of ``columns`` x ``rows`` pixels lies in a pane, in cells."""

    columns: int
    rows: int
    x: int
    """Left cell of the image inside the pane."""
    y: int
    width: int
    """Image width in cells."""
    height: int
    """Image height in cells."""

    def cell_x(self, px: int) -> int:
        """The pane column showing original pixel column ``px``."""
        px = min(max(px, 0), self.columns - 1)
        return self.x + px * self.width // self.columns

    def cell_y(self, py: int) -> int:
        """The pane row showing original pixel row ``py``."""
        py = min(max(py, 0), self.rows - 1)
        return self.y + py * self.height // self.rows


def fit(
    columns: int, rows: int, pane_width: int, pane_height: int, *, cell_aspect: float = 2.0
) -> Fit:
    """The largest undistorted placement of an image in a pane, centred.

    ``cell_aspect`` is a cell's height over its width (2 for half blocks, where a
    cell holds one pixel across and two down), so square pixels stay square.
    """
    columns, rows = max(columns, 1), max(rows, 1)
    pane_width, pane_height = max(pane_width, 1), max(pane_height, 1)
    scale = min(pane_width / columns, cell_aspect * pane_height / rows)
    width = max(1, min(pane_width, round(columns * scale)))
    height = max(1, min(pane_height, round(rows * scale / cell_aspect)))
    return Fit(
        columns,
        rows,
        (pane_width - width) // 2,
        (pane_height - height) // 2,
        width,
        height,
    )


def scaled(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """``rgb`` (rows x columns x 3, uint8) resampled to ``height`` x ``width``."""
    if rgb.shape[0] == height and rgb.shape[1] == width:
        return rgb
    image = PILImage.fromarray(np.ascontiguousarray(rgb), "RGB")
    return np.asarray(image.resize((width, height), PILImage.Resampling.BILINEAR))


def export_view(
    rgb: np.ndarray,
    crop: Box,
    masks: tuple[Box, ...] | list[Box],
    written: Box | None = None,
    fan: Sector | None = None,
) -> np.ndarray:
    """What the export will hold for this frame: masks blackened, then cut to the box
    ``written`` (default: ``crop``), black outside ``crop`` and outside ``fan``."""
    rows, columns = rgb.shape[:2]
    out = rgb.copy()
    for mask in masks:
        m = mask.clip(columns, rows)
        out[m.top : m.bottom, m.left : m.right] = 0
    c = crop.clip(columns, rows)
    if c.is_empty:
        return out
    w = (written or c).clip(columns, rows)
    if fan is not None:
        out[c.top : c.bottom, c.left : c.right][~fan.mask(c)] = 0
    view = out[w.top : w.bottom, w.left : w.right].copy()
    inside = c.translate(-w.left, -w.top)
    kept = view[inside.top : inside.bottom, inside.left : inside.right].copy()
    view[:] = 0
    view[inside.top : inside.bottom, inside.left : inside.right] = kept
    return view


class StyleCache:
    """Rich styles for (upper, lower) colour pairs, reused across lines and frames."""

    def __init__(self, limit: int = 65536) -> None:
        self._styles: dict[int, Style] = {}
        self._limit = limit

    def get(self, upper: int, lower: int) -> Style:
        key = upper << 24 | lower
        style = self._styles.get(key)
        if style is None:
            if len(self._styles) >= self._limit:
                self._styles.clear()
            lower_colour = Color.from_rgb(lower >> 16, (lower >> 8) & 255, lower & 255)
            if upper == lower:
                # Drawn as a space: a background alone is shorter to send.
                style = Style(bgcolor=lower_colour)
            else:
                upper_colour = Color.from_rgb(upper >> 16, (upper >> 8) & 255, upper & 255)
                style = Style(color=upper_colour, bgcolor=lower_colour)
            self._styles[key] = style
        return style


def packed(rgb: np.ndarray) -> np.ndarray:
    """Each pixel of an RGB uint8 array as one integer 0xRRGGBB."""
    rgb32 = rgb.astype(np.uint32)
    return (rgb32[..., 0] << 16) | (rgb32[..., 1] << 8) | rgb32[..., 2]


def halfcell_strips(rgb: np.ndarray, styles: StyleCache) -> list[Strip]:
    """One strip per pair of pixel rows, each cell an upper half block.

    Runs of identical cells share one segment, which keeps dark backgrounds cheap
    to draw and to send.
    """
    if rgb.shape[0] % 2:
        rgb = np.concatenate([rgb, np.zeros_like(rgb[:1])], axis=0)
    colours = packed(rgb)
    width = colours.shape[1]
    strips = []
    for upper_row, lower_row in zip(colours[0::2], colours[1::2], strict=True):
        # Run starts: where either colour differs from the cell before.
        change = np.flatnonzero(
            (upper_row[1:] != upper_row[:-1]) | (lower_row[1:] != lower_row[:-1])
        )
        starts = [0, *(change + 1).tolist()]
        ends = [*starts[1:], width]
        uppers = upper_row[starts].tolist()
        lowers = lower_row[starts].tolist()
        segments = [
            Segment((" " if u == lo else _UPPER_HALF) * (end - start), styles.get(u, lo))
            for start, end, u, lo in zip(starts, ends, uppers, lowers, strict=True)
        ]
        strips.append(Strip(segments, width))
    return strips
