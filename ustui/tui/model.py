"""What the TUI knows about each input file, and the status mark it shows.

Plain data (no widgets): workers fill in :class:`FileInfo`, the screen combines
it with the session's decisions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum

from ustui.core.cropping import CropChoice
from ustui.core.inputs import InputFile
from ustui.core.profiles import Profile
from ustui.core.session import FileDecision, Session
from ustui.core.tag_header import HeaderTags
from ustui.tui import tag_prefill


class Status(Enum):
    """Where a file stands; the value is the mark shown in the file list."""

    READING = "…"
    """The header has not been read yet."""
    READY = "✓"
    """Will be exported as it is."""
    NEEDS_TAGS = "•"
    """A required tag is missing."""
    NEEDS_CROP = "□"
    """Nothing found the image area: the whole frame would be exported."""
    EXCLUDED = "✗"
    """The user left it out of the export."""
    UNSUPPORTED = "!"
    """Cannot be cleaned, so it is never exported."""

    @property
    def needs_work(self) -> bool:
        return self in (Status.NEEDS_TAGS, Status.NEEDS_CROP, Status.READING)


@dataclass(frozen=True)
class FileInfo:
    """What the header of one file says, kept small so 1,000 files fit easily."""

    rows: int
    columns: int
    frames: int
    manufacturer: str
    model: str
    transfer_syntax: str
    fps: float
    """Playback rate of a cine (from the header, else a default)."""
    auto: CropChoice
    """The crop ustui would choose without the user (preset, regions, analysis or full)."""
    header_tags: HeaderTags = field(default_factory=HeaderTags)
    """What the header says about the profile's tags (pre-filled, checked against them)."""


@dataclass
class Entry:
    """One input file in the list."""

    file: InputFile
    info: FileInfo | None = None
    problem: str | None = None
    """Why the file cannot be exported (unreadable, unsupported codec, ...)."""

    @property
    def exam(self) -> str:
        """The folder (or archive) that holds the file: files are grouped by it."""
        return os.path.dirname(self.file.label) or "."

    @property
    def name(self) -> str:
        return os.path.basename(self.file.label)

    @property
    def header_tags(self) -> HeaderTags:
        return self.info.header_tags if self.info else HeaderTags()


def effective_crop(entry: Entry, decision: FileDecision) -> CropChoice | None:
    """The crop and masks the export will apply, as ``choose_crop`` composes them."""
    if entry.info is None:
        return None
    auto = entry.info.auto
    if decision.crop is not None:
        return CropChoice(decision.crop, tuple(decision.masks), "session")
    return CropChoice(auto.box, tuple(decision.masks) or auto.masks, auto.source)


def missing_tags(
    decision: FileDecision, profile: Profile, header: HeaderTags | None = None
) -> list[str]:
    return tag_prefill.missing(decision, header or HeaderTags(), profile)


def status(entry: Entry, decision: FileDecision, profile: Profile) -> tuple[Status, str]:
    """The file's status and a short reason to show beside it."""
    if entry.problem:
        return Status.UNSUPPORTED, entry.problem
    if decision.excluded:
        return Status.EXCLUDED, "excluded"
    missing = missing_tags(decision, profile, entry.header_tags)
    if missing:
        return Status.NEEDS_TAGS, "needs " + ", ".join(missing)
    blocked = tag_prefill.blocking(decision, entry.header_tags, profile)
    if blocked:
        return Status.NEEDS_TAGS, f"{blocked[0].describe()}: enter confirms"
    if entry.info is None:
        return Status.READING, "reading header"
    if decision.crop is None and entry.info.auto.source == "full":
        return Status.NEEDS_CROP, "no crop found"
    return Status.READY, "ready"


@dataclass
class Workspace:
    """Everything the screens share: the inputs, the session and the profile."""

    paths: list[str]
    session: Session
    profile: Profile
    entries: list[Entry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Inputs that could not be searched (shown once, then in the export summary)."""

    statuses: list[tuple[Status, str]] = field(default_factory=list)
    """Each file's status, kept current by :meth:`refresh` (1,000 files must stay cheap)."""

    position: dict[str, int] = field(default_factory=dict)
    """Index of each file by its key."""

    text_notice_given: bool = False
    """Whether the user was told that no text reader is installed (said once)."""

    def set_entries(self, entries: list[Entry]) -> None:
        self.entries = entries
        self.position = {e.file.key: i for i, e in enumerate(entries)}
        self.statuses = [status(e, self.peek(i), self.profile) for i, e in enumerate(entries)]

    def decision(self, index: int) -> FileDecision:
        """The file's decision, to change (created on first use)."""
        return self.session.decision(self.entries[index].file.key)

    def peek(self, index: int) -> FileDecision:
        """The file's decision, to read: files never decided on stay out of the session."""
        return self.session.files.get(self.entries[index].file.key) or FileDecision()

    def refresh(self, index: int) -> tuple[Status, str]:
        """Recompute a file's status after its decision or what is known of it changed."""
        self.statuses[index] = status(self.entries[index], self.peek(index), self.profile)
        return self.statuses[index]

    def status(self, index: int) -> tuple[Status, str]:
        return self.statuses[index]

    def counts(self) -> dict[Status, int]:
        counts = dict.fromkeys(Status, 0)
        for file_status, _ in self.statuses:
            counts[file_status] += 1
        return counts

    def next_needing_work(self, start: int) -> int | None:
        """The first file after ``start`` (wrapping around) that still needs work."""
        count = len(self.entries)
        for step in range(1, count):
            index = (start + step) % count
            if self.statuses[index][0].needs_work:
                return index
        return None
