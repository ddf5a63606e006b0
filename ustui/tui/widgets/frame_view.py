"""Widgets that draw one frame, fitted to an exact number of cells.

``halfcell`` is drawn here with the Line API (two pixels per cell, any colour
terminal); ``tgp``, ``sixel`` and ``unicode`` use textual-image, fed an image
already scaled to the cells it will fill so the crop overlay lines up.
"""

from __future__ import annotations

import numpy as np
from PIL import Image as PILImage
from textual.app import ComposeResult
from textual.widget import Widget
from textual_image._terminal import get_cell_size  # cached before the app starts

from ustui.tui.imaging import StyleCache, halfcell_strips, scaled
from ustui.tui.widgets.strip_view import StripView


class HalfcellView(StripView):
    """A frame as upper-half blocks: foreground the upper pixel, background the lower one."""

    cell_aspect = 2.0
    """A cell holds one pixel across and two down."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._styles = StyleCache()

    def show(self, rgb: np.ndarray, width: int, height: int) -> None:
        self.styles.width = width
        self.styles.height = height
        self.set_strips(halfcell_strips(scaled(rgb, width, height * 2), self._styles))


class PictureView(Widget, can_focus=False):
    """A frame through textual-image (``tgp``, ``sixel`` or ``unicode``), already scaled to
    the pixels of the cells it fills, so the crop overlay lines up.

    textual_image.widget queries the terminal when imported, so it is imported only
    for these protocols (run_app does it before the app starts).
    """

    def __init__(self, protocol: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        from textual_image.widget import SixelImage, TGPImage, UnicodeImage

        kind = {"tgp": TGPImage, "sixel": SixelImage, "unicode": UnicodeImage}[protocol]
        self._picture = kind()
        self._picture.styles.width = "100%"
        self._picture.styles.height = "100%"

    @property
    def cell_aspect(self) -> float:
        cell = get_cell_size()
        return float(cell.height) / float(cell.width)

    def compose(self) -> ComposeResult:
        yield self._picture

    def show(self, rgb: np.ndarray, width: int, height: int) -> None:
        cell = get_cell_size()
        pixels = scaled(rgb, width * cell.width, height * cell.height)
        self.styles.width = width
        self.styles.height = height
        self._picture.image = PILImage.fromarray(pixels, "RGB")


def make_frame_view(protocol: str, *, id: str | None = None) -> HalfcellView | PictureView:
    """The frame widget for a resolved protocol (never ``auto``)."""
    return HalfcellView(id=id) if protocol == "halfcell" else PictureView(protocol, id=id)
