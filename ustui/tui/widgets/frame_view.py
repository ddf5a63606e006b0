"""Widgets that draw one frame, fitted to an exact number of cells.

``halfcell`` is drawn here with the Line API (two pixels per cell, any colour
terminal); ``tgp``, ``sixel`` and ``unicode`` use textual-image, fed an image
already scaled to the cells it will fill so the crop overlay lines up.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from PIL import Image as PILImage
from textual.widget import Widget

from ustui.tui.imaging import StyleCache, halfcell_strips, scaled
from ustui.tui.widgets.strip_tiles import StripTiles


class FrameView(Protocol):
    """A widget that shows ``rgb`` in ``width`` x ``height`` cells."""

    def show(self, rgb: np.ndarray, width: int, height: int) -> None: ...


class HalfcellView(StripTiles):
    """A frame as upper-half blocks: foreground the upper pixel, background the lower one."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._styles = StyleCache()

    def show(self, rgb: np.ndarray, width: int, height: int) -> None:
        self.styles.width = width
        self.styles.height = height
        self.set_strips(halfcell_strips(scaled(rgb, width, height * 2), self._styles), width)


def picture_view(protocol: str, *, id: str | None = None) -> Widget:
    """A textual-image widget for ``protocol`` (tgp, sixel or unicode) with a ``show`` method.

    textual_image.widget queries the terminal when imported, so it is imported only
    for these protocols (run_app does it before the app starts).
    """
    from textual_image.widget import SixelImage, TGPImage, UnicodeImage, get_cell_size

    base = {"tgp": TGPImage, "sixel": SixelImage, "unicode": UnicodeImage}[protocol]

    class PictureView(base):  # type: ignore[valid-type,misc]
        def show(self, rgb: np.ndarray, width: int, height: int) -> None:
            cell = get_cell_size()
            pixels = scaled(rgb, width * cell.width, height * cell.height)
            self.styles.width = width
            self.styles.height = height
            self.image = PILImage.fromarray(pixels, "RGB")

    return PictureView(id=id)  # type: ignore[no-any-return]


def make_frame_view(protocol: str, *, id: str | None = None) -> Widget:
    """The frame widget for a resolved protocol (never ``auto``)."""
    return HalfcellView(id=id) if protocol == "halfcell" else picture_view(protocol, id=id)
