"""The exams and their files, each file with its status mark."""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ustui.tui.model import Entry, Status

#: Cells for a file's line (the list is 30 cells wide with its border and scrollbar).
NAME_WIDTH = 26

#: CSS-independent colours of the status marks (rich styles, 256-colour safe).
MARK_STYLES = {
    Status.READING: "dim",
    Status.READY: "bold green",
    Status.NEEDS_TAGS: "bold yellow",
    Status.NEEDS_CROP: "bold magenta",
    Status.EXCLUDED: "dim",
    Status.UNSUPPORTED: "bold red",
}


def shortened(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, cut in the middle so the end stays visible."""
    if len(text) <= width:
        return text
    keep = max(width - 1, 2)
    tail = keep * 2 // 5
    return text[: keep - tail] + "…" + text[len(text) - tail :]


def file_prompt(entry: Entry, status: Status, reason: str, width: int = NAME_WIDTH) -> Text:
    """A file's line: mark and name, and the reason when the file cannot go as it is."""
    text = Text.assemble((status.value, MARK_STYLES[status]), " ", shortened(entry.name, width - 2))
    if status is Status.EXCLUDED:
        text.stylize("dim strike", 2)
    if status in (Status.UNSUPPORTED, Status.NEEDS_CROP):
        text.append(f"\n  {shortened(reason, width - 2)}", style="dim")
    return text


class FileList(OptionList, can_focus=False):
    """Files grouped under their exam (folder or archive); driven by the screen's keys.

    Not focusable, so the arrow keys stay with the crop box; a click picks a file.
    """

    class Picked(Message):
        """The user clicked file ``index``."""

        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._option_of: list[int] = []
        self._shown: list[tuple[Entry, Status, str]] = []
        self._prompts: list[Text] = []
        self._width = NAME_WIDTH

    def set_entries(self, entries: list[Entry], statuses: list[tuple[Status, str]]) -> None:
        options: list[Option] = []
        self._option_of = []
        self._shown = [(e, s, r) for e, (s, r) in zip(entries, statuses, strict=True)]
        self._prompts = [file_prompt(*shown, self._width) for shown in self._shown]
        exam = None
        for index, entry in enumerate(entries):
            if entry.exam != exam:
                exam = entry.exam
                header = Text(shortened(exam, self._width), style="bold underline")
                options.append(Option(header, disabled=True))
            self._option_of.append(len(options))
            options.append(Option(self._prompts[index], id=f"file-{index}"))
        self.set_options(options)

    def update_entry(self, index: int, entry: Entry, status: Status, reason: str) -> None:
        """Show a file's new status; an unchanged line is not repainted."""
        self._shown[index] = (entry, status, reason)
        prompt = file_prompt(entry, status, reason, self._width)
        old = self._prompts[index]
        if prompt == old and prompt.spans == old.spans:
            return
        self._prompts[index] = prompt
        self.replace_option_prompt_at_index(self._option_of[index], prompt)

    def on_resize(self) -> None:
        width = max(self.scrollable_content_region.width, 8)
        if width != self._width and self._shown:
            self._width = width
            highlighted = self.highlighted
            entries = [e for e, _, _ in self._shown]
            self.set_entries(entries, [(s, r) for _, s, r in self._shown])
            self.highlighted = highlighted
        self._width = width

    def select_file(self, index: int) -> None:
        if 0 <= index < len(self._option_of):
            self.highlighted = self._option_of[index]

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.post_message(self.Picked(int(event.option.id.removeprefix("file-"))))
