"""Tags the file's header already answers, as the terminal UI offers them.

With the profile's ``header_tags = "confirm"`` the header's answers are shown
pre-selected; they become the file's tags when the user accepts them (enter) or tags
anything else on that file, having seen them. With ``"accept"`` they count at once,
as the export counts them. Plain functions over ``ustui.core.tag_header``.
"""

from __future__ import annotations

from ustui.core.profiles import Profile
from ustui.core.session import FileDecision
from ustui.core.tag_header import HeaderTags, ResolvedTags, TagConflict, resolve_tags


def resolved(decision: FileDecision, header: HeaderTags, profile: Profile) -> ResolvedTags:
    """The tags the export will use for this file."""
    accept = profile.export.header_tags == "accept"
    return resolve_tags(decision.tags, header, profile, accept_header=accept)


def missing(decision: FileDecision, header: HeaderTags, profile: Profile) -> list[str]:
    tags = resolved(decision, header, profile).values
    return [name for name in profile.required_tags if not tags.get(name)]


def pending(decision: FileDecision, header: HeaderTags) -> dict[str, str]:
    """The header's answers for fields the user has not tagged: shown pre-selected."""
    return {k: v for k, v in header.answers.items() if not decision.tags.get(k)}


def blocking(decision: FileDecision, header: HeaderTags, profile: Profile) -> list[TagConflict]:
    """Disagreements with the header that keep the file from export until confirmed."""
    if profile.export.tag_conflicts != "block" or decision.header_reviewed:
        return []
    return resolved(decision, header, profile).conflicts


def accept(decision: FileDecision, header: HeaderTags) -> dict[str, str]:
    """Take the pre-selected answers as the file's tags and confirm its disagreements
    with the header; the answers taken are returned."""
    taken = pending(decision, header)
    decision.tags.update(taken)
    decision.header_reviewed = True
    return taken
