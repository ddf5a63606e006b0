"""A widget showing pre-rendered lines of coloured cells (the Line API)."""

from __future__ import annotations

from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget


class StripView(Widget, can_focus=False):
    """Shows ``strips``, one per line; callers say which cells changed, when they know."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.strips: list[Strip] = []

    def set_strips(self, strips: list[Strip], dirty: list[Region] | None = None) -> None:
        """Show ``strips``; repaint only the ``dirty`` cells when given (else everything)."""
        self.strips = strips
        if dirty is None:
            self.refresh()
        elif dirty:
            self.refresh(*dirty)

    def render_line(self, y: int) -> Strip:
        if y < len(self.strips):
            return self.strips[y]
        return Strip.blank(self.size.width)
