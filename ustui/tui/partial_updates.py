"""Send only the changed cells of a partial screen update.

Textual (8.x) writes each changed span of a line starting from the first cell of
the widget run that contains it (``ChopsUpdate.render_segments`` crops the run's
end to the span, not its start). When an edge of the crop box moves off a cell in
the middle of the frame, that re-sends the frame from the edge before it: a whole
row of coloured cells, 20-30 kB per nudge instead of 1-2 kB.

:func:`install` replaces that one method with a version that crops both ends.
It checks Textual's update object first and leaves it alone when it does not look
as expected, so a future Textual can only make output larger, never wrong.
Remove this module once Textual crops partial updates at the start.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.control import Control
from textual import _compositor

_EXPECTED = ("chops", "spans", "chop_ends")


def _render_segments(self: Any, console: Console) -> str:
    """ChopsUpdate.render_segments, each run cropped to the span on both sides."""
    sequences: list[str] = []
    append = sequences.append
    move_to = Control.move_to
    last_y = self.spans[-1][0]
    for y, x1, x2 in self.spans:
        line = self.chops[y]
        ends = self.chop_ends[y]
        for end, (x, strip) in zip(ends, line.items(), strict=False):
            if strip is None or x >= x2 or end <= x1:
                continue
            start = max(x, x1)
            if start > x or end > x2:
                strip = strip.crop(start - x, min(end, x2) - x)
            append(move_to(start, y).segment.text)
            append(strip.render(console))
        if y != last_y:
            append("\n")
    return "".join(sequences)


def install() -> bool:
    """Patch Textual's partial updates; False when its internals are not as expected."""
    update = getattr(_compositor, "ChopsUpdate", None)
    if update is None or getattr(update, "_ustui_patched", False):
        return update is not None
    init = getattr(update, "__init__", None)
    names = getattr(getattr(init, "__code__", None), "co_varnames", ())
    if not all(name in names for name in _EXPECTED) or not hasattr(update, "render_segments"):
        return False
    update.render_segments = _render_segments
    update._ustui_patched = True
    return True
