"""A full-resolution view of the active handle, to place an edge to the pixel.

One original pixel per half cell. Pixels the export drops are dimmed, masked
pixels tinted, and the pixels just outside the active edge drawn as a line. The
window stays put while the handle moves within it, and only the cells that
change are repainted, so a nudge sends a few hundred bytes.
"""

from __future__ import annotations

import numpy as np
from textual.geometry import Region

from ustui.core.boxes import Box
from ustui.tui.imaging import StyleCache, halfcell_strips
from ustui.tui.widgets.preview import Boxes
from ustui.tui.widgets.strip_view import StripView

_LINE = np.array([255, 215, 0], np.uint8)
_MASK_TINT = np.array([120, 0, 120], np.float32)
_OUTSIDE_IMAGE = np.array([40, 40, 40], np.uint8)


def anchor(box: Box, part: str) -> tuple[int, int]:
    """The pixel (x, y) the zoom centres on for ``part`` of ``box``."""
    cx, cy = (box.left + box.right) // 2, (box.top + box.bottom) // 2
    return {
        "top": (cx, box.top),
        "bottom": (cx, box.bottom),
        "left": (box.left, cy),
        "right": (box.right, cy),
    }.get(part, (box.left, box.top))


def render_window(
    rgb: np.ndarray, boxes: Boxes, x0: int, y0: int, width: int, height: int
) -> np.ndarray:
    """The ``height`` x ``width`` pixels from (x0, y0), marked up as the zoom shows them."""
    rows, columns = rgb.shape[:2]
    out = np.empty((height, width, 3), np.uint8)
    out[:] = _OUTSIDE_IMAGE
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + width, columns), min(y0 + height, rows)
    if sx1 <= sx0 or sy1 <= sy0:
        return out
    window = rgb[sy0:sy1, sx0:sx1].astype(np.float32)
    ys, xs = np.mgrid[sy0:sy1, sx0:sx1]
    crop = boxes.crop
    inside = (xs >= crop.left) & (xs < crop.right) & (ys >= crop.top) & (ys < crop.bottom)
    window[~inside] *= 0.3
    for mask in boxes.masks:
        masked = (xs >= mask.left) & (xs < mask.right) & (ys >= mask.top) & (ys < mask.bottom)
        window[masked] = window[masked] * 0.4 + _MASK_TINT * 0.6
    shown = window.astype(np.uint8)
    handle = boxes.handle
    box = boxes.masks[handle.mask_index] if handle.is_mask else crop
    parts = ("top", "right", "bottom", "left") if handle.part == "box" else (handle.part,)
    # The line sits on the pixels just outside the box, so no kept pixel is hidden.
    line = np.zeros(xs.shape, bool)
    span_x = (xs >= box.left - 1) & (xs <= box.right)
    span_y = (ys >= box.top - 1) & (ys <= box.bottom)
    if "top" in parts:
        line |= (ys == box.top - 1) & span_x
    if "bottom" in parts:
        line |= (ys == box.bottom) & span_x
    if "left" in parts:
        line |= (xs == box.left - 1) & span_y
    if "right" in parts:
        line |= (xs == box.right) & span_y
    shown[line] = _LINE
    out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = shown
    return out


class ZoomView(StripView):
    """The active handle at one original pixel per half cell."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rgb: np.ndarray | None = None
        self._boxes: Boxes | None = None
        self._origin: tuple[int, int] | None = None
        self._pixels: np.ndarray | None = None
        self._styles = StyleCache(limit=4096)

    def show(self, rgb: np.ndarray | None, boxes: Boxes | None) -> None:
        """Show ``boxes`` over ``rgb``; the window moves only when the handle leaves its middle."""
        if rgb is None or self._rgb is None or rgb.shape != self._rgb.shape:
            self._origin = None
        self._rgb = rgb
        self._boxes = boxes
        self._update()

    def on_resize(self) -> None:
        self._origin = None
        self._pixels = None
        self._update()

    def _update(self) -> None:
        width, height = self.size.width, self.size.height * 2
        if self._rgb is None or self._boxes is None or width <= 0 or height <= 0:
            self._pixels = None
            self.set_strips([])
            return
        handle = self._boxes.handle
        box = self._boxes.masks[handle.mask_index] if handle.is_mask else self._boxes.crop
        ax, ay = anchor(box, handle.part)
        origin = self._origin
        if origin is None:
            origin = (ax - width // 2, ay - height // 2)
        else:
            origin = (_follow(origin[0], ax, width), _follow(origin[1], ay, height))
        pixels = render_window(self._rgb, self._boxes, origin[0], origin[1], width, height)
        old = self._pixels
        self._origin, self._pixels = origin, pixels
        strips = halfcell_strips(pixels, self._styles)
        if old is None or old.shape != pixels.shape:
            self.set_strips(strips)
            return
        # Repaint only the cells whose pixels changed.
        changed = np.any(old != pixels, axis=2)
        changed = changed[0::2] | changed[1::2]
        dirty = []
        for y in np.flatnonzero(changed.any(axis=1)).tolist():
            xs = np.flatnonzero(changed[y])
            dirty.append(Region(int(xs[0]), y, int(xs[-1] - xs[0] + 1), 1))
        self.set_strips(strips, dirty)


def _follow(start: int, at: int, size: int) -> int:
    """The window start along one axis: unchanged while ``at`` stays in the middle half;
    once it leaves, the window jumps so ``at`` sits a quarter in from the side it was
    heading away from, leaving the most room to keep going before the next jump (each
    jump repaints the whole zoom)."""
    margin = size // 4
    if at < start + margin:
        return at - (size - margin - 1)
    if at >= start + size - margin:
        return at - margin
    return start


def zoom_label(boxes: Boxes) -> str:
    """Where the active handle is, in original pixels (shown under the zoom)."""
    handle = boxes.handle
    box = boxes.masks[handle.mask_index] if handle.is_mask else boxes.crop
    where = {
        "top": f"top y={box.top}",
        "bottom": f"bottom y={box.bottom}",
        "left": f"left x={box.left}",
        "right": f"right x={box.right}",
    }.get(handle.part, "whole box")  # its corners are in the status line
    return f"{'mask ' + str(handle.target) if handle.is_mask else 'crop'} {where}"
