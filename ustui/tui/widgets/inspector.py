"""The header inspector: every element of the current file's header, and on request
what de-identification makes of each one and why.

It shows the original values (identifying ones included): it is for checking a
file, and is hidden until the user asks for it with ``i``. Long values are not
cut: they wrap within their column.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from pydicom import Dataset
from pydicom.dataelem import DataElement
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable

from ustui.core.deid_explain import Fate, element_text


def header_rows(header: Dataset) -> Iterator[tuple[str, str, str, str]]:
    """(tag, keyword, VR, value) for the file meta and every element, sequences indented."""
    meta = getattr(header, "file_meta", None)
    if meta:
        yield from _rows(meta, 0)
    yield from _rows(header, 0)


def _rows(dataset: Dataset, depth: int) -> Iterator[tuple[str, str, str, str]]:
    for element in dataset:
        yield _row(element, depth)
        if element.VR == "SQ":
            for n, item in enumerate(element.value, 1):
                yield ("", f"{'  ' * (depth + 1)}item {n}", "", "")
                yield from _rows(item, depth + 2)


def _row(element: DataElement, depth: int) -> tuple[str, str, str, str]:
    tag = f"({element.tag.group:04X},{element.tag.element:04X})"
    name = "  " * depth + (element.keyword or element.name)
    return tag, name, str(element.VR), element_text(element)


class Inspector(DataTable[str]):
    """A read-only table of the header (shown with ``i``); ``d`` puts what the export
    writes, and why, beside each original value."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,i", "close", "close", id="inspector.close"),
        Binding("d", "toggle_deid", "de-identified", id="inspector.deid"),
    ]

    class Closed(Message):
        """The user closed the inspector."""

    class DeidToggled(Message):
        """The user asked for (or away from) the de-identified view."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.deid_view = False
        self._shown: tuple[Dataset | None, str, list[Fate] | None] | None = None
        self._laid_out_for = 0
        """The width the columns were sized for."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True

    def show(self, header: Dataset | None, title: str, fates: list[Fate] | None = None) -> None:
        """The original header, or with ``fates`` each attribute before and after. Values
        wrap within their column (a row grows as tall as its longest value)."""
        self._shown = (header, title, fates)
        self._laid_out_for = self.size.width
        self.clear(columns=True)
        self.border_title = title
        room = max((self.size.width or 100) - 2, 40)
        if fates is not None:
            # Without the tag column (the keyword names the attribute): the reason gets
            # half of what is left, the two values a quarter each. Cells pad 1 each side.
            keyword = min(28, room // 4)
            rest = max(room - keyword - 8, 24)
            self.add_column("keyword", width=keyword)
            self.add_column("original", width=rest // 4)
            self.add_column("export writes", width=rest // 4)
            self.add_column("why", width=rest - 2 * (rest // 4))
            for f in fates:
                self.add_row(f.keyword, f.original, f.becomes, f.why, height=None)
        else:
            self.add_column("tag", width=11)
            self.add_column("keyword", width=28)
            self.add_column("VR", width=2)
            self.add_column("value", width=max(room - 11 - 28 - 2 - 8, 20))
            if header is not None:
                for row in header_rows(header):
                    self.add_row(*row, height=None)
        toggle = "original only" if fates is not None else "de-identified"
        self.border_subtitle = f"d: {toggle} · esc closes"

    def on_resize(self) -> None:
        # Shown before it had its size (it was hidden): size the columns again.
        if self._shown is not None and self.size.width != self._laid_out_for:
            self.show(*self._shown)

    def action_close(self) -> None:
        self.post_message(self.Closed())

    def action_toggle_deid(self) -> None:
        self.deid_view = not self.deid_view
        self.post_message(self.DeidToggled())
