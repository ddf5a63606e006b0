"""What the export writes for the boxes on screen: the crop on the encoding's grid
(a JPEG kept without re-encoding starts on its 8/16-pixel blocks, with a black
margin) and masks widened to its blocks. Plain functions for the review screen."""

from __future__ import annotations

import dataclasses

from ustui.core.boxes import Box
from ustui.core.profiles import Profile
from ustui.core.session import FileDecision
from ustui.tui.model import Entry
from ustui.tui.widgets.preview import Boxes


def written_boxes(boxes: Boxes, entry: Entry, decision: FileDecision, profile: Profile) -> Boxes:
    """``boxes`` with the written crop and masks, and the fan mask, filled in when known."""
    if entry.info is not None and entry.info.sector and fan_mask_on(decision, profile):
        boxes = dataclasses.replace(boxes, fan=entry.info.sector)
    grid = entry.info.grid if entry.info else None
    if grid is None:
        return boxes
    crop = boxes.crop.clip(entry.info.columns, entry.info.rows) if entry.info else boxes.crop
    if crop.is_empty:
        return boxes
    written = grid.crop(crop)
    masks = tuple(grid.mask(m).intersect(written) for m in boxes.masks)
    return dataclasses.replace(
        boxes,
        written=None if written == crop else written,
        written_masks=None if masks == boxes.masks else masks,
    )


def written_note(entry: Entry, box: Box) -> str:
    """A note for the status line when the export writes another box than ``box``."""
    info = entry.info
    if info is None or info.grid is None:
        return ""
    crop = box.clip(info.columns, info.rows)
    if crop.is_empty:
        return ""
    written = info.grid.crop(crop)
    if written == crop:
        return ""
    if written.intersect(crop) == written:
        return f"  writes {written.as_list()} (block grid, inside)"
    return f"  writes {written.as_list()} (block grid; margin black)"


def fan_mask_on(decision: FileDecision, profile: Profile) -> bool:
    """Whether the export blacks out what lies outside the file's sector."""
    return profile.export.fan_mask if decision.fan_mask is None else decision.fan_mask
