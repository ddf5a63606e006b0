"""Burned-in text of one file: read its exported area, then decide what to mask.

The one place export, the terminal UI and verify turn a file into a
:class:`~ustui.core.pixel_text.TextScan`, and a scan plus the profile's
``pixel_text`` policy (or the user's review) into masks and a manifest status.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydicom import Dataset

from ustui.core.boxes import Box
from ustui.core.frames import FrameReader, display_rgb
from ustui.core.pixel_text import (
    FoundText,
    Identity,
    TextScan,
    identity_of,
    scan_frames,
    text_masks,
)
from ustui.core.text_reader import load_reader

#: What the manifest and the UI say when no text reader is installed.
NOT_CHECKED = "not checked (no text reader installed)"


def scan_file(reader: FrameReader, area: Box, identity: Identity | Dataset) -> TextScan | None:
    """The text in ``area`` of the file's frames, or None when no text reader is installed."""
    text_reader = load_reader()
    if text_reader is None:
        return None
    if isinstance(identity, Dataset):
        identity = identity_of(identity)
    return scan_frames(
        text_reader,
        lambda index: display_rgb(reader.frame(index), reader),
        reader.number_of_frames,
        area,
        identity,
    )


@dataclass(frozen=True)
class TextDecision:
    """What to do about a file's burned-in text."""

    status: str
    """For the manifest: checked, reviewed, flagged, off, or NOT_CHECKED."""
    masks: tuple[Box, ...] = ()
    """Masks over text, in original pixel coordinates."""
    kept: tuple[FoundText, ...] = ()
    """Text left in the exported pixels."""
    clean: bool | None = None
    """True when no text is left unmasked (or a person reviewed it), False when some is;
    None when the pixels were not read."""


def decide(
    scan: TextScan | None,
    policy: str,
    *,
    reviewed: Sequence[Box] | None,
    other_masks: Sequence[Box],
    columns: int,
    rows: int,
) -> TextDecision:
    """Masks and status for a file's text, by the user's review or else by ``policy``."""
    if policy == "off":
        return TextDecision("off")
    if scan is None:
        return TextDecision(NOT_CHECKED)
    if reviewed is not None:
        masks = tuple(reviewed)
        status = "reviewed"
    else:
        masks = text_masks(scan, policy, columns=columns, rows=rows)
        status = "flagged" if policy == "flag" and scan.lines else "checked"
    covering = [*masks, *other_masks]
    kept = tuple(line for line in scan.lines if not any(_covers(m, line.box) for m in covering))
    return TextDecision(status, masks, kept, clean=reviewed is not None or not kept)


def kept_entries(kept: Sequence[FoundText], header_values: set[str]) -> list[dict[str, object]]:
    """The manifest's ``text_kept``: each line's box and text, the text withheld (None)
    when it holds a value the header de-identification removed (a transducer serial
    burned into the image, say), so the manifest never repeats it."""
    entries: list[dict[str, object]] = []
    for line in kept:
        folded = line.text.lower()
        hidden = any(
            re.search(rf"(?<![a-z0-9]){re.escape(value)}(?![a-z0-9])", folded)
            for value in header_values
            if value
        )
        entries.append({"box": line.box.as_list(), "text": None if hidden else line.text})
    return entries


def _covers(mask: Box, box: Box) -> bool:
    return mask.intersect(box) == box
