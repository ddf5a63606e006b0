"""`?`: every key, as the user's keymap sets it, with the binding ids used to remap it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ustui.core.profiles import Profile
from ustui.tui.keymap import keymap_problems, lost_keys

#: Terminals at least this wide get the section and binding-id columns too.
WIDE_HELP = 90

#: Help sections by binding-id prefix, in the order shown.
SECTIONS = (
    ("file", "Files"),
    ("frame", "Frames"),
    ("crop", "Crop box"),
    ("handle", "Crop box"),
    ("mask", "Masks"),
    ("view", "View"),
    ("export", "Export"),
    ("app", "App"),
    ("tags", "Tagging"),
    ("tag", "Tags (from the profile)"),
)

NOTES = (
    "tab cycles the active handle: whole box, top, right, bottom, left edge — of the crop box, "
    "then of each mask. Arrows move it by 1 original pixel, shift+arrows by 10.",
    "m adds a mask (blackened in every frame) and selects it; delete removes the selected mask; "
    "escape goes back to the crop box.",
    "A crop found automatically is drawn dim until you change it or press a to accept it.",
    "When every required tag of a file is set, the cursor moves to the next file that needs work. "
    "Pressing a tag's key again clears it.",
    ". gives this file the tags of the previous tagged file, then moves on. J / K pick this file "
    "and move down / up picking the next: the next tag key tags every picked file at once "
    "(escape unpicks).",
    "i shows the header; there d puts beside each value what the export writes and why "
    "(the PS3.15 table row and the profile option); long values wrap; escape closes.",
    "Tags the file's header answers (Laterality R: side right) are shown pre-selected, "
    "'from header'; enter accepts them, and so does tagging anything else on that file. "
    "'header says …' marks a tag that disagrees with the header.",
)


def key_rows(
    bindings: Iterable[Binding], keymap: Mapping[str, str], display: Mapping[str, str]
) -> list[tuple[str, str, str, str]]:
    """(section, keys, description, id) per binding id, with the keymap applied; a key the
    keymap gave to another action is listed there only, and said to be taken here."""
    bindings = list(bindings)
    lost = lost_keys(bindings, keymap)
    rows: dict[str, tuple[str, list[str], str]] = {}
    for binding in bindings:
        if binding.id is None:
            continue
        keys = [k.strip() for k in keymap.get(binding.id, binding.key).split(",")]
        section = binding.id.split(".", 1)[0]
        taken = [display.get(k, k) for k in lost.get(binding.id, [])]
        description = binding.description
        if taken:
            description += f" (lost {', '.join(taken)} to your keymap)"
        _, shown, _ = rows.setdefault(binding.id, (section, [], description))
        for key in keys:
            label = display.get(key, key)
            if label not in shown and key not in lost.get(binding.id, []):
                shown.append(label)
    order = {prefix: n for n, (prefix, _) in enumerate(SECTIONS)}
    titles = dict(SECTIONS)
    ordered = sorted(rows.items(), key=lambda item: order.get(item[1][0], len(order)))
    return [
        (titles.get(section, section), " / ".join(shown), description, binding_id)
        for binding_id, (section, shown, description) in ordered
    ]


class HelpScreen(ModalScreen[None]):
    """A table of keys; any of escape, ? or q closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "close", id="help.close"),
    ]

    def __init__(
        self, bindings: list[Binding], profile: Profile, keymap: Mapping[str, str]
    ) -> None:
        super().__init__()
        self._bindings_shown = bindings
        self._profile = profile
        self._keymap = keymap

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body") as body:
            body.border_title = "keys — escape closes"
            problems = keymap_problems(self._bindings_shown, self._keymap)
            if problems:
                warning = Text("Your config.toml keymap has problems:\n", style="bold red")
                warning.append("\n".join(problems), style="red")
                yield Static(warning, id="help-problems")
            yield Static(self._table(), id="help-keys")
            yield Static(self._notes(), id="help-notes")

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(section, keys, action, binding id) as the table shows them."""
        keys = {b.key for b in self._bindings_shown} | {
            k for v in self._keymap.values() for k in v.split(",")
        }
        display = {key: self.app.get_key_display(Binding(key, "")) for key in keys}
        return key_rows(self._bindings_shown, self._keymap, display)

    def _table(self) -> Table:
        """Sections, keys, actions and ids; a narrow terminal keeps keys and actions
        (sections become heading rows, the ids are left out)."""
        wide = self.app.size.width >= WIDE_HELP
        table = Table(box=None, pad_edge=False, expand=True, show_header=True)
        if wide:
            table.add_column("", style="bold")
        table.add_column("key", style="bold cyan", no_wrap=True)
        table.add_column("action", ratio=1, overflow="fold")
        if wide:
            table.add_column("id (for \\[keymap])", style="dim", no_wrap=True)
        last = None
        for section, shown, description, binding_id in self.rows():
            keys = shown or "(none)"
            if wide:
                table.add_row(section if section != last else "", keys, description, binding_id)
            else:
                if section != last:
                    table.add_row("", Text(section, style="bold underline"))
                table.add_row(keys, description)
            last = section
        return table

    def _notes(self) -> Text:
        text = Text()
        for note in NOTES:
            text.append(f"• {note}\n")
        text.append(
            f"\nProfile {self._profile.name}. Remap keys in $XDG_CONFIG_HOME/ustui/config.toml "
            '(usually ~/.config/ustui/config.toml) under [keymap], e.g. "file.next" = "n,down".',
            style="dim",
        )
        return text
