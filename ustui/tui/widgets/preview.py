"""The frame preview with the crop box and mask boxes drawn over it.

The boxes are a layer above the frame: each box is four one-cell-thick edge
widgets placed with ``offset``. Moving a box moves only those widgets, so
Textual repaints the cells they leave and enter and never re-sends the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.segment import Segment
from rich.text import Text
from textual.app import ComposeResult
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from ustui.core.boxes import Box
from ustui.core.fan import Sector
from ustui.tui.editing import Handle
from ustui.tui.imaging import Fit, export_view, fit
from ustui.tui.text_review import TextBox
from ustui.tui.widgets.frame_view import make_frame_view

_SIDES = ("top", "right", "bottom", "left")


class Edge(Widget, can_focus=False):
    """One side of a box: a line of box-drawing characters in the edge's CSS colour."""

    def __init__(self, side: str, *, classes: str) -> None:
        super().__init__(classes=f"edge {side} {classes}")
        self.side = side

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if self.side in ("top", "bottom"):
            left, right = ("┌", "┐") if self.side == "top" else ("└", "┘")
            text = left + "─" * (width - 2) + right if width > 1 else left
        else:
            text = "│"
        return Strip([Segment(text, self.rich_style)], len(text))


@dataclass(frozen=True)
class Boxes:
    """What the overlay shows: the crop, the masks, the active handle, and whether the
    crop was set or accepted by the user (an automatic crop is drawn dimmer)."""

    crop: Box
    masks: tuple[Box, ...]
    handle: Handle
    reviewed: bool
    written: Box | None = None
    """The box the export writes when it differs from ``crop`` (a black margin)."""
    written_masks: tuple[Box, ...] | None = None
    """The masks as the export blackens them (widened to the encoding's blocks)."""
    fan: Sector | None = None
    """The export blacks out what lies outside this sector (fan mask)."""
    texts: tuple[TextBox, ...] = ()
    """Text found in the pixels: masked ones are drawn as masks, the others outlined."""
    text_selected: int | None = None

    @property
    def export_masks(self) -> tuple[Box, ...]:
        """Every box the export blackens: the masks (as the encoding widens them) and the
        masked text."""
        return (*(self.written_masks or self.masks), *(t.box for t in self.texts if t.masked))


class Preview(Widget, can_focus=False):
    """The current frame, with boxes over it; ``export_mode`` shows what will be exported."""

    def __init__(self, protocol: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._view = make_frame_view(protocol, id="frame")
        self._message = Static("", id="preview-message")
        self._rgb: np.ndarray | None = None
        self._boxes: Boxes | None = None
        self._fit: Fit | None = None
        self._edges: list[list[Edge]] = []
        self.export_mode = False

    def compose(self) -> ComposeResult:
        yield self._view
        yield self._message

    @property
    def frame_fit(self) -> Fit | None:
        """Where the original frame lies in the pane (None in export mode or without a frame)."""
        return None if self.export_mode else self._fit

    def show_message(self, text: str) -> None:
        """Replace the frame with a line of text (loading, or why it cannot be shown)."""
        self._rgb = None
        self._fit = None
        self._message.update(Text(text))  # names are not markup
        self._message.display = True
        self._view.display = False
        self._place_edges()

    def show_frame(self, rgb: np.ndarray) -> None:
        self._rgb = rgb
        self._message.display = False
        self._view.display = True
        self._draw()

    def set_export_mode(self, on: bool) -> None:
        self.export_mode = on
        self._draw()

    def show_boxes(self, boxes: Boxes | None) -> None:
        """Move the overlay; the frame is redrawn only in export mode, where it depends on them."""
        changed = boxes != self._boxes
        self._boxes = boxes
        if changed and self.export_mode:
            self._draw()
        else:
            self._place_edges()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        rgb = self._rgb
        if rgb is None or not self.size:
            self._place_edges()
            return
        aspect = self._view.cell_aspect
        rows, columns = rgb.shape[:2]
        self._fit = fit(columns, rows, self.size.width, self.size.height, cell_aspect=aspect)
        if self.export_mode and self._boxes is not None:
            boxes = self._boxes
            rgb = export_view(rgb, boxes.crop, boxes.export_masks, boxes.written, boxes.fan)
        placed = fit(
            rgb.shape[1], rgb.shape[0], self.size.width, self.size.height, cell_aspect=aspect
        )
        self._view.styles.offset = (placed.x, placed.y)
        self._view.show(rgb, placed.width, placed.height)
        self._place_edges()

    def _place_edges(self) -> None:
        boxes = self._boxes
        where = self.frame_fit
        drawn = [] if boxes is None or where is None else [boxes.crop, *boxes.masks]
        texts = [] if boxes is None or where is None else list(boxes.texts)
        wanted = len(drawn) + len(texts)
        while len(self._edges) < wanted:
            edges = [Edge(side, classes="") for side in _SIDES]
            self._edges.append(edges)
            self.mount_all(edges)
        for index, edges in enumerate(self._edges):
            if boxes is None or where is None or index >= wanted:
                for edge in edges:
                    edge.display = False
                continue
            text = texts[index - len(drawn)] if index >= len(drawn) else None
            active = (
                boxes.handle.target == index
                if text is None
                else (boxes.text_selected == index - len(drawn))
            )
            for edge in edges:
                edge.set_class(index == 0, "crop")
                edge.set_class(0 < index < len(drawn), "mask")
                edge.set_class(text is not None, "text")
                edge.set_class(text is not None and text.masked, "masked")
                edge.set_class(
                    active and (text is not None or boxes.handle.part in ("box", edge.side)),
                    "active",
                )
                edge.set_class(index == 0 and not boxes.reviewed, "automatic")
            _place(edges, text.box if text else drawn[index], where)


def _place(edges: list[Edge], box: Box, where: Fit) -> None:
    """Position the four edges of ``box`` (original pixels) in the pane's cells."""
    left, right = where.cell_x(box.left), where.cell_x(box.right - 1)
    top, bottom = where.cell_y(box.top), where.cell_y(box.bottom - 1)
    inner = max(bottom - top - 1, 0)
    geometry = {
        "top": (left, top, right - left + 1, 1),
        "bottom": (left, bottom, right - left + 1, 1 if bottom > top else 0),
        "left": (left, top + 1, 1, inner),
        "right": (right, top + 1, 1 if right > left else 0, inner),
    }
    for edge in edges:
        x, y, width, height = geometry[edge.side]
        edge.display = width > 0 and height > 0
        edge.styles.offset = (x, y)
        edge.styles.width = width
        edge.styles.height = height
