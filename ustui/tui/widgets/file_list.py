"""The exams and their files, one row per file with its status mark."""

from __future__ import annotations

from collections.abc import Collection

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ustui.tui.model import Entry, Status
from ustui.tui.names import distinct_names, shortened
from ustui.tui.status_text import MARK_STYLES

#: Cells for a file's row before the list knows its width.
NAME_WIDTH = 26

#: Drawn between the status mark and the name of a file picked for tagging together.
PICKED_MARK = "▪"


def file_prompt(name: str, status: Status, *, picked: bool = False) -> Text:
    """A file's row: mark, selection mark and (already shortened) name, on one line."""
    text = Text.assemble(
        (status.value, MARK_STYLES[status]),
        (PICKED_MARK, "bold reverse") if picked else " ",
        name,
        no_wrap=True,
        overflow="ellipsis",
    )
    if status is Status.EXCLUDED:
        text.stylize("dim strike", 2)
    return text


class FileList(OptionList, can_focus=False):
    """Files grouped under their exam (folder or archive); driven by the screen's keys.

    Not focusable, so the arrow keys stay with the crop box; a click picks a file.
    Every file takes exactly one row; names are cut so that they stay distinguishable
    (the reason a file cannot be exported is in the status line under the frame).
    """

    class Clicked(Message):
        """The user clicked file ``index``."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._option_of: list[int] = []
        self._entries: list[Entry] = []
        self._statuses: list[Status] = []
        self._names: list[str] = []
        self._picked: frozenset[int] = frozenset()
        self._prompts: list[Text] = []
        self._width = NAME_WIDTH

    def set_entries(self, entries: list[Entry], statuses: list[tuple[Status, str]]) -> None:
        self._entries = list(entries)
        self._statuses = [s for s, _ in statuses]
        self._layout()

    def _layout(self) -> None:
        width = max(self._width - 2, 4)  # the mark and the selection mark
        groups: dict[str, list[int]] = {}
        for index, entry in enumerate(self._entries):
            groups.setdefault(entry.exam, []).append(index)
        self._names = [""] * len(self._entries)
        for members in groups.values():
            short = distinct_names([self._entries[i].name for i in members], width)
            for index, name in zip(members, short, strict=True):
                self._names[index] = name
        self._prompts = [
            file_prompt(self._names[i], self._statuses[i], picked=i in self._picked)
            for i in range(len(self._entries))
        ]
        options: list[Option] = []
        self._option_of = []
        exam = None
        for index, entry in enumerate(self._entries):
            if entry.exam != exam:
                exam = entry.exam
                header = Text(shortened(exam, self._width), style="bold underline", no_wrap=True)
                options.append(Option(header, disabled=True))
            self._option_of.append(len(options))
            options.append(Option(self._prompts[index], id=f"file-{index}"))
        highlighted = self.highlighted
        self.set_options(options)
        self.highlighted = highlighted

    def update_entry(self, index: int, entry: Entry, status: Status, reason: str) -> None:
        """Show a file's new status; an unchanged row is not repainted."""
        self._entries[index] = entry
        self._statuses[index] = status
        self._redraw(index)

    def show_picked(self, picked: Collection[int]) -> None:
        """Mark the files picked for tagging together."""
        old, self._picked = self._picked, frozenset(picked)
        for index in old ^ self._picked:
            if 0 <= index < len(self._prompts):
                self._redraw(index)

    def _redraw(self, index: int) -> None:
        prompt = file_prompt(
            self._names[index], self._statuses[index], picked=index in self._picked
        )
        old = self._prompts[index]
        if prompt == old and prompt.spans == old.spans:
            return
        self._prompts[index] = prompt
        self.replace_option_prompt_at_index(self._option_of[index], prompt)

    def on_resize(self) -> None:
        width = max(self.scrollable_content_region.width, 8)
        if width != self._width:
            self._width = width
            if self._entries:
                self._layout()

    def select_file(self, index: int) -> None:
        if 0 <= index < len(self._option_of):
            self.highlighted = self._option_of[index]

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.post_message(self.Clicked(int(event.option.id.removeprefix("file-"))))
