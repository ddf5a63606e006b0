"""The current file's tags: every field of the profile with its values and hotkeys."""

from __future__ import annotations

from rich.text import Text

from ustui.core.profiles import Profile
from ustui.core.session import FileDecision
from ustui.core.tag_header import HeaderTags
from ustui.tui import tag_prefill
from ustui.tui.widgets.text_view import TextView

PREFILLED = "reverse yellow"
"""A value the header answers, not yet accepted (enter accepts)."""


def tag_text(
    profile: Profile,
    decision: FileDecision | None,
    width: int = 80,
    header: HeaderTags | None = None,
) -> Text:
    """Each field's name (``*`` when required, yellow while missing), then its values as
    ``key value`` pairs filled into lines of ``width`` cells; the chosen one is marked ✓
    (not only by its colour), a value from the header is marked, and so is a header
    that says otherwise."""
    text = Text()
    if not profile.tags:
        text.append(f"profile {profile.name} has no tags", style="dim")
        return text
    chosen = decision.tags if decision else {}
    prefilled = tag_prefill.pending(decision or FileDecision(), header or HeaderTags())
    disagree = {c.field: c for c in (header or HeaderTags()).conflicts(chosen)}
    for n, field in enumerate(profile.tags):
        if n:
            text.append("\n")
        missing = field.required and not chosen.get(field.name) and field.name not in prefilled
        text.append(field.name, style="bold yellow" if missing else "bold")
        text.append(" *" if field.required else "", style="yellow" if missing else "dim")
        if field.name in prefilled:
            text.append(" from header", style="italic yellow")
        if field.name in disagree:
            text.append(f" header says {disagree[field.name].shown}", style="bold red")
        used = width  # start a new line before the first pair
        for value, key in field.values.items():
            pair = len(key) + len(value) + 3
            if used + pair > width:
                text.append("\n")
                used = 0
            picked = chosen.get(field.name) == value
            style = "reverse bold green" if picked else ""
            if prefilled.get(field.name) == value:
                style = PREFILLED
            text.append("✓" if picked else " ", style="bold green")
            text.append(key, style=style or "bold cyan")
            text.append(f" {value} ", style=style)
            used += pair
    if prefilled:
        text.append("\nenter accepts the header's tags", style="dim")
    return text


class TagPanel(TextView):
    """Shows :func:`tag_text`; the screen sets it whenever the file or its tags change."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._profile: Profile | None = None
        self._decision: FileDecision | None = None
        self._header: HeaderTags | None = None

    def show_tags(
        self, profile: Profile, decision: FileDecision | None, header: HeaderTags | None = None
    ) -> None:
        self._profile, self._decision, self._header = profile, decision, header
        self.show(tag_text(profile, decision, self.content_size.width or 80, header))

    def on_resize(self) -> None:
        if self._profile is not None:
            self.show_tags(self._profile, self._decision, self._header)
