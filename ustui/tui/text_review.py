"""Reviewing the text found in a file's pixels: which boxes are masked, and toggling one.

Plain Python, no widgets: the screen keeps the scan and the selection, the session
keeps the user's choice (``FileDecision.text_masks``, None until reviewed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ustui.core.boxes import Box
from ustui.core.pixel_text import TextScan, pad, text_masks


@dataclass(frozen=True)
class TextBox:
    """One line of text as the preview draws it."""

    box: Box
    """The mask it gets (the line padded), in original pixels."""
    masked: bool
    identifying: bool


def text_boxes(
    scan: TextScan,
    reviewed: Sequence[Box] | None,
    policy: str,
    *,
    columns: int,
    rows: int,
) -> list[TextBox]:
    """Every line of ``scan`` and whether the export will mask it."""
    masks = (
        list(reviewed)
        if reviewed is not None
        else list(text_masks(scan, policy, columns=columns, rows=rows))
    )
    boxes = []
    for line in scan.lines:
        box = pad(line.box, columns=columns, rows=rows)
        masked = any(m.intersect(line.box) == line.box for m in masks)
        boxes.append(TextBox(box, masked, line.identifying))
    return boxes


def toggled(boxes: Sequence[TextBox], index: int) -> list[Box]:
    """The masks to save after the user turned box ``index`` into a mask or back."""
    return [b.box for i, b in enumerate(boxes) if (not b.masked if i == index else b.masked)]


def describe(boxes: Sequence[TextBox], reviewed: bool) -> str:
    """One line for the status: what was found and what happens to it."""
    if not boxes:
        return "no text in the image"
    masked = sum(b.masked for b in boxes)
    state = "reviewed" if reviewed else "t to review"
    return f"text found: {masked} masked, {len(boxes) - masked} kept ({state})"
