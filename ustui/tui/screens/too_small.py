"""Shown instead of the review screen while the terminal is below the minimum size."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Static

from ustui.tui.layout import MIN_SIZE, too_small


class TooSmallScreen(Screen[None]):
    """ "terminal too small — WxH needed"; closes itself once the terminal is big enough.

    Only quitting works here: keys for a screen nobody can see would change files unseen.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "app.quit", "quit", id="app.quit"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(id="too-small")

    @staticmethod
    def message(width: int, height: int) -> str:
        needed = f"{MIN_SIZE[0]}x{MIN_SIZE[1]}"
        return f"terminal too small — {needed} needed (now {width}x{height}); q quits"

    def on_resize(self) -> None:
        width, height = self.size
        if not too_small(width, height):
            if self.is_current:  # resizes come in bursts: close once
                self.dismiss()
            return
        self.query_one("#too-small", Static).update(self.message(width, height))
