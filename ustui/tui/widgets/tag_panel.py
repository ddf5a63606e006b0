"""The current file's tags: every field of the profile with its values and hotkeys."""

from __future__ import annotations

from rich.text import Text

from ustui.core.profiles import Profile
from ustui.core.session import FileDecision
from ustui.tui.widgets.text_view import TextView


def tag_text(profile: Profile, decision: FileDecision | None) -> Text:
    """One block per field: its name (``*`` when required), then ``key value`` per value,
    the chosen one highlighted."""
    text = Text()
    if not profile.tags:
        text.append(f"profile {profile.name} has no tags", style="dim")
        return text
    chosen = decision.tags if decision else {}
    for n, field in enumerate(profile.tags):
        if n:
            text.append("\n")
        missing = field.required and not chosen.get(field.name)
        text.append(field.name, style="bold yellow" if missing else "bold")
        text.append(" *" if field.required else "", style="yellow" if missing else "dim")
        for value, key in field.values.items():
            picked = chosen.get(field.name) == value
            text.append("\n ")
            text.append(f" {key} ", style="reverse" if picked else "bold cyan")
            text.append(f" {value}", style="bold green" if picked else "")
    return text


class TagPanel(TextView):
    """Shows :func:`tag_text`; the screen sets it whenever the file or its tags change."""

    def show_tags(self, profile: Profile, decision: FileDecision | None) -> None:
        self.show(tag_text(profile, decision))
