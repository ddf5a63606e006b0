"""Sessions: the user's decisions for one set of inputs, saved after every change.

A session lives in ``$XDG_STATE_HOME/ustui/sessions/<hash>.json``, keyed by the
resolved input paths, so running the same command again resumes where the user
was. Writes are atomic and owner-only (the file names input paths). A file that
cannot be read, or that a newer ustui wrote, is set aside with a message rather
than discarded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ustui.core.atomic import write_atomic
from ustui.core.boxes import Box
from ustui.core.paths import private_dir, state_dir

logger = logging.getLogger(__name__)

VERSION = 1


@dataclass
class FileDecision:
    """What the user decided for one file."""

    crop: Box | None = None
    """The crop the user set; None leaves it to presets, regions or analysis."""
    masks: list[Box] = field(default_factory=list)
    """Boxes blackened in every frame, in original pixel coordinates."""
    tags: dict[str, str] = field(default_factory=dict)
    excluded: bool = False
    text_masks: list[Box] | None = None
    """Text boxes the user chose to mask after reviewing the text found in the pixels;
    None until reviewed, when the profile's ``pixel_text`` policy decides."""
    crop_source: str | None = None
    """Where ``crop`` came from while the user has not moved it (e.g. "regions" after
    pressing ``a``, or when adding a mask pinned it); None once the user set it."""
    fan_mask: bool | None = None
    """Black out what lies outside the detected sector; None follows the profile."""
    header_reviewed: bool = False
    """The user confirmed the tags where they disagree with the file's header (the
    profile's ``tag_conflicts = "block"`` exports such a file only then)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "crop": self.crop.as_list() if self.crop else None,
            "crop_source": self.crop_source,
            "fan_mask": self.fan_mask,
            "masks": [m.as_list() for m in self.masks],
            "tags": dict(self.tags),
            "excluded": self.excluded,
            "text_masks": (
                None if self.text_masks is None else [m.as_list() for m in self.text_masks]
            ),
            "header_reviewed": self.header_reviewed,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileDecision:
        crop = data.get("crop")
        text = data.get("text_masks")
        return cls(
            crop=Box.from_list(crop) if crop else None,
            masks=[Box.from_list(m) for m in data.get("masks", [])],
            tags={str(k): str(v) for k, v in data.get("tags", {}).items()},
            excluded=bool(data.get("excluded", False)),
            text_masks=None if text is None else [Box.from_list(m) for m in text],
            crop_source=_source(data.get("crop_source")),
            fan_mask=data["fan_mask"] if isinstance(data.get("fan_mask"), bool) else None,
            header_reviewed=bool(data.get("header_reviewed", False)),
        )


def _source(value: Any) -> str | None:
    """A pinned crop's automatic source, as saved; anything else counts as the user's."""
    return value if value in ("preset", "regions", "analysis", "full") else None


def inputs_key(inputs: Sequence[str | Path]) -> str:
    """The identity of a set of inputs: independent of order and of how paths were spelled."""
    resolved = sorted({str(Path(p).resolve()) for p in inputs})
    return hashlib.sha256("\n".join(resolved).encode()).hexdigest()[:24]


def session_path(inputs: Sequence[str | Path]) -> Path:
    return state_dir() / "sessions" / f"{inputs_key(inputs)}.json"


@dataclass
class Session:
    """Decisions per file (by ``InputFile.key``) plus where the user was."""

    path: Path
    inputs: list[str]
    profile: str | None = None
    files: dict[str, FileDecision] = field(default_factory=dict)
    cursor_file: str | None = None
    cursor_frame: int = 0
    notice: str | None = None
    """Set when an unusable session file was moved aside on load."""

    @classmethod
    def load(cls, inputs: Sequence[str | Path]) -> Session:
        """The saved session for these inputs, or a new one."""
        path = session_path(inputs)
        resolved = sorted({str(Path(p).resolve()) for p in inputs})
        session = cls(path=path, inputs=resolved)
        if not path.exists():
            return session
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if data.get("version", 0) > VERSION:
                raise ValueError(f"written by a newer ustui (format {data.get('version')})")
            session.profile = data.get("profile")
            session.files = {
                key: FileDecision.from_json(value) for key, value in data.get("files", {}).items()
            }
            session.cursor_file = data.get("cursor_file")
            session.cursor_frame = int(data.get("cursor_frame", 0))
        except (OSError, ValueError, TypeError, AttributeError, KeyError) as exc:
            aside = path.with_name(f"{path.stem}.unusable-{time.strftime('%Y%m%d-%H%M%S')}.json")
            os.replace(path, aside)
            session = cls(path=path, inputs=resolved)
            session.notice = f"session file could not be used ({exc}); moved aside to {aside}"
            # Not a warning: the notice is how the user hears of it (a log record at
            # WARNING would reach the terminal a second time, through logging's last resort).
            logger.debug("session moved aside: %s", type(exc).__name__)
        return session

    def decision(self, key: str) -> FileDecision:
        """The decision for a file, created empty on first use."""
        return self.files.setdefault(key, FileDecision())

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "inputs": self.inputs,
            "profile": self.profile,
            "cursor_file": self.cursor_file,
            "cursor_frame": self.cursor_frame,
            "files": {key: d.to_json() for key, d in self.files.items()},
        }

    def save(self) -> None:
        """Write the session atomically, readable by the owner only."""
        private_dir(self.path.parent)
        payload = json.dumps(self.to_json(), indent=1, sort_keys=True).encode()
        write_atomic(self.path, payload, mode=0o600)
