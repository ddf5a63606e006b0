"""The header inspector: every element of the current file's original header.

It shows the original values (identifying ones included): it is for checking a
file, and is hidden until the user asks for it with ``i``.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydicom import Dataset
from pydicom.dataelem import DataElement
from textual.widgets import DataTable

_BINARY_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}
_MAX_VALUE = 80


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
    if element.VR == "SQ":
        value = f"{len(element.value)} item(s)"
    elif element.VR in _BINARY_VRS or element.tag == 0x7FE00010:
        length = len(element.value) if element.value is not None else 0
        value = f"<{length} bytes>"
    else:
        value = str(element.value)
        if len(value) > _MAX_VALUE:
            value = value[: _MAX_VALUE - 1] + "…"
    return tag, name, str(element.VR), value


class Inspector(DataTable[str]):
    """A read-only table of the header (shown with ``i``)."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns("tag", "keyword", "VR", "value")

    def show(self, header: Dataset | None, title: str) -> None:
        self.clear()
        self.border_title = title
        if header is not None:
            self.add_rows(header_rows(header))
