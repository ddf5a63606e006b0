"""Editing boxes with the keyboard: which handle is active and how a nudge moves it.

Pure functions; the screen keeps the state and saves the result.
"""

from __future__ import annotations

from dataclasses import dataclass

from ustui.core.boxes import Box

#: The parts of a box that `tab` cycles through, in order.
PARTS = ("box", "top", "right", "bottom", "left")


@dataclass(frozen=True)
class Handle:
    """The active handle: a part of the crop box (``target`` 0) or of mask ``target - 1``."""

    target: int = 0
    part: str = "box"

    @property
    def is_mask(self) -> bool:
        return self.target > 0

    @property
    def mask_index(self) -> int:
        return self.target - 1

    def describe(self) -> str:
        what = f"mask {self.target}" if self.is_mask else "crop"
        return f"{what} · {'whole box' if self.part == 'box' else self.part + ' edge'}"


def cycle(handle: Handle, masks: int, step: int = 1) -> Handle:
    """The next (with ``step=-1``, previous) handle: every part of the crop, then of each mask."""
    stops = [(t, p) for t in range(masks + 1) for p in PARTS]
    target = min(handle.target, masks)
    index = stops.index((target, handle.part if handle.part in PARTS else "box"))
    t, p = stops[(index + step) % len(stops)]
    return Handle(t, p)


def nudge(box: Box, part: str, dx: int, dy: int, *, columns: int, rows: int) -> Box:
    """``box`` with ``part`` moved by (dx, dy) pixels, kept inside the image and non-empty.

    Edges move only along their own axis: the top edge ignores ``dx``.
    """
    left, top, right, bottom = box.clip(columns, rows).as_list()
    if part == "box":
        dx = min(max(dx, -left), columns - right)
        dy = min(max(dy, -top), rows - bottom)
        return Box(left + dx, top + dy, right + dx, bottom + dy)
    if part == "top":
        top = min(max(top + dy, 0), bottom - 1)
    elif part == "bottom":
        bottom = min(max(bottom + dy, top + 1), rows)
    elif part == "left":
        left = min(max(left + dx, 0), right - 1)
    elif part == "right":
        right = min(max(right + dx, left + 1), columns)
    return Box(left, top, right, bottom)


def new_mask(crop: Box, *, columns: int, rows: int) -> Box:
    """A mask to start from: a quarter-size box at the crop box's top-left corner."""
    width = max(1, crop.width // 4)
    height = max(1, crop.height // 4)
    return Box(crop.left, crop.top, crop.left + width, crop.top + height).clip(columns, rows)
