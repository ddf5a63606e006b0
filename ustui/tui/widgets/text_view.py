"""A Static that repaints only when its text really changes."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class TextView(Static):
    """Static text set with :meth:`show`; an unchanged text costs no repaint (and no bytes)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._shown: Text | None = None

    def show(self, text: Text) -> None:
        if self._shown is not None and text == self._shown and text.spans == self._shown.spans:
            return
        self._shown = text
        self.update(text)
