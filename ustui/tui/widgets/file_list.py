"""The exams and their files, each file with its status mark."""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ustui.tui.model import Entry, Status

#: CSS-independent colours of the status marks (rich styles, 256-colour safe).
MARK_STYLES = {
    Status.READING: "dim",
    Status.READY: "bold green",
    Status.NEEDS_TAGS: "bold yellow",
    Status.NEEDS_CROP: "bold magenta",
    Status.EXCLUDED: "dim",
    Status.UNSUPPORTED: "bold red",
}


def file_prompt(entry: Entry, status: Status, reason: str) -> Text:
    """A file's line: mark and name, and the reason when the file cannot go as it is."""
    text = Text.assemble((status.value, MARK_STYLES[status]), " ", entry.name)
    if status is Status.EXCLUDED:
        text.stylize("dim strike", 2)
    if status in (Status.UNSUPPORTED, Status.NEEDS_CROP):
        text.append(f"\n  {reason}", style="dim")
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
        self._prompts: list[Text] = []

    def set_entries(self, entries: list[Entry], statuses: list[tuple[Status, str]]) -> None:
        options: list[Option] = []
        self._option_of = []
        self._prompts = []
        exam = None
        for index, (entry, (status, reason)) in enumerate(zip(entries, statuses, strict=True)):
            if entry.exam != exam:
                exam = entry.exam
                options.append(Option(Text(exam, style="bold underline"), disabled=True))
            self._option_of.append(len(options))
            self._prompts.append(file_prompt(entry, status, reason))
            options.append(Option(self._prompts[-1], id=f"file-{index}"))
        self.set_options(options)

    def update_entry(self, index: int, entry: Entry, status: Status, reason: str) -> None:
        """Show a file's new status; an unchanged line is not repainted."""
        prompt = file_prompt(entry, status, reason)
        old = self._prompts[index]
        if prompt == old and prompt.spans == old.spans:
            return
        self._prompts[index] = prompt
        self.replace_option_prompt_at_index(self._option_of[index], prompt)

    def select_file(self, index: int) -> None:
        if 0 <= index < len(self._option_of):
            self.highlighted = self._option_of[index]

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.post_message(self.Picked(int(event.option.id.removeprefix("file-"))))
