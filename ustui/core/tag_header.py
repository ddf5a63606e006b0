"""What a file's own header says about its tags: answers to pre-fill, and disagreements.

Used by the terminal UI (pre-selected tags, "header says R") and by the export (header
answers for untagged fields when the profile or ``--accept-header-tags`` says so; a
note, or a skip, when a tag disagrees with the header). Small enough to keep per file.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom import Dataset

from ustui.core.profiles import Profile
from ustui.core.tag_dicom import attribute_answer
from ustui.core.tag_mapping import RELATED


@dataclass(frozen=True)
class Claim:
    """One header attribute that answers a tag field."""

    field: str
    keyword: str
    value: str
    """The tag value the attribute stands for (never the raw header text)."""
    shown: str
    """How the header spells it: the profile's DICOM value or code meaning."""


@dataclass(frozen=True)
class TagConflict:
    field: str
    tagged: str
    keyword: str
    header: str
    """The tag value the header stands for."""
    shown: str

    def describe(self) -> str:
        said = self.shown if self.shown == self.header else f"{self.shown} ({self.header})"
        return f"{self.field}: tagged {self.tagged}, header {self.keyword} says {said}"


@dataclass(frozen=True)
class HeaderTags:
    claims: tuple[Claim, ...] = ()

    @property
    def answers(self) -> dict[str, str]:
        """Field -> value, from the field's own attribute first, then related ones."""
        answers: dict[str, str] = {}
        for claim in self.claims:
            answers.setdefault(claim.field, claim.value)
        return answers

    def conflicts(self, tags: dict[str, str]) -> list[TagConflict]:
        """Every header attribute that says something else than the file's tags."""
        return [
            TagConflict(c.field, tags[c.field], c.keyword, c.value, c.shown)
            for c in self.claims
            if tags.get(c.field) and tags[c.field] != c.value
        ]


def read_header_tags(header: Dataset, profile: Profile) -> HeaderTags:
    claims = []
    for field in profile.tags:
        if not field.dicom:
            continue
        for keyword in (field.dicom, *RELATED.get(field.dicom, ())):
            value = attribute_answer(header, field, keyword)
            if value is not None:
                code = field.codes.get(value)
                shown = code.meaning if code else field.dicom_value(value)
                claims.append(Claim(field.name, keyword, value, shown))
    return HeaderTags(tuple(claims))


@dataclass(frozen=True)
class ResolvedTags:
    """The tags a file is exported with, and where each came from."""

    values: dict[str, str]
    sources: dict[str, str]
    """Field -> "user" (set by a person), or "header" (the header's answer, which the
    user accepted or left standing)."""
    conflicts: list[TagConflict]


def resolve_tags(
    user: dict[str, str], header: HeaderTags, profile: Profile, *, accept_header: bool
) -> ResolvedTags:
    """The user's tags, plus the header's answers for untagged fields when accepted."""
    answers = header.answers
    values = {}
    for field in profile.tags:
        value = user.get(field.name) or (answers.get(field.name) if accept_header else None)
        if value:
            values[field.name] = value
    sources = {
        name: "header" if answers.get(name) == value else "user" for name, value in values.items()
    }
    return ResolvedTags(values, sources, header.conflicts(values))
