"""What the TUI knows about each input file, and the status mark it shows.

Plain data (no widgets): workers fill in :class:`FileInfo`, the screen combines
it with the session's decisions.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field
from enum import Enum

from ustui.core.cropping import CropChoice, pinned_crop
from ustui.core.fan import Sector
from ustui.core.inputs import InputFile
from ustui.core.pixels import WrittenGrid
from ustui.core.printable import printable
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
    instance_uid: str = ""
    """The original SOP Instance UID: two files with one are copies, exported once."""
    grid: WrittenGrid | None = None
    """Where the export's crop and masks land (known once the file has been opened)."""
    sector: Sector | None = None
    """The ultrasound sector, for the fan mask (known once the file has been opened)."""
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
        """The folder (or archive) that holds the file, safe to show: files are grouped by it."""
        return printable(os.path.dirname(self.file.label) or ".")

    @property
    def name(self) -> str:
        """The file's name, safe to show (control characters escaped)."""
        return printable(os.path.basename(self.file.label))

    @property
    def header_tags(self) -> HeaderTags:
        return self.info.header_tags if self.info else HeaderTags()


def effective_crop(entry: Entry, decision: FileDecision) -> CropChoice | None:
    """The crop and masks the export will apply, as ``choose_crop`` composes them."""
    if entry.info is None:
        return None
    auto = entry.info.auto
    if decision.crop is not None:
        return pinned_crop(decision, decision.crop, tuple(decision.masks))
    return CropChoice(auto.box, tuple(decision.masks) or auto.masks, auto.source)


def missing_tags(
    decision: FileDecision, profile: Profile, header: HeaderTags | None = None
) -> list[str]:
    return tag_prefill.missing(decision, header or HeaderTags(), profile)


def status(
    entry: Entry, decision: FileDecision, profile: Profile, *, duplicate_of: str | None = None
) -> tuple[Status, str]:
    """The file's status and a short reason to show beside it (``duplicate_of``: the
    label of the earlier file holding the same instance)."""
    if entry.problem:
        return Status.UNSUPPORTED, entry.problem
    if duplicate_of:
        return Status.UNSUPPORTED, printable(f"duplicate of {duplicate_of}")
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
    copies: dict[str, list[int]] = field(default_factory=dict)
    """Indices of the files of each original SOP Instance UID, in list order."""

    def set_entries(self, entries: list[Entry]) -> None:
        self.entries = entries
        self.position = {e.file.key: i for i, e in enumerate(entries)}
        self.copies = {}
        self.statuses = [status(e, self.peek(i), self.profile) for i, e in enumerate(entries)]

    def learn(self, index: int, info: FileInfo | None, problem: str | None) -> list[int]:
        """Record what a worker found about file ``index``; return the files whose status
        it may change (the file, and every copy of its instance), statuses refreshed."""
        entry = self.entries[index]
        entry.info, entry.problem = info, problem
        uid = info.instance_uid if info else ""
        changed = [index]
        if uid:
            group = self.copies.setdefault(uid, [])
            if index not in group:
                bisect.insort(group, index)
            changed = group
        for i in changed:
            self.refresh(i)
        return list(changed)

    def duplicate_of(self, index: int) -> str | None:
        """The label of the first sound file before ``index`` holding the same instance
        (the one exported), or None: the export keeps the first sound copy only."""
        info = self.entries[index].info
        if info is None or not info.instance_uid:
            return None
        for other in self.copies.get(info.instance_uid, []):
            if other == index:
                return None
            entry = self.entries[other]
            if (
                entry.problem is None
                and entry.info
                and entry.info.instance_uid == info.instance_uid
            ):
                return entry.file.label
        return None

    def decision(self, index: int) -> FileDecision:
        """The file's decision, to change (created on first use)."""
        return self.session.decision(self.entries[index].file.key)

    def peek(self, index: int) -> FileDecision:
        """The file's decision, to read: files never decided on stay out of the session."""
        return self.session.files.get(self.entries[index].file.key) or FileDecision()

    def refresh(self, index: int) -> tuple[Status, str]:
        """Recompute a file's status after its decision or what is known of it changed."""
        self.statuses[index] = status(
            self.entries[index],
            self.peek(index),
            self.profile,
            duplicate_of=self.duplicate_of(index),
        )
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
