"""A yes/no question before something is written outside the session (e.g. a preset)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfirmScreen(ModalScreen[bool]):
    """``question`` with ``y``/enter to go ahead and ``n``/escape to leave it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y,enter", "answer(True)", "yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "no", id="confirm.no"),
    ]

    def __init__(self, title: str, question: Text) -> None:
        super().__init__()
        self._title = title
        self._question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-body") as body:
            body.border_title = self._title
            yield Static(self._question, id="confirm-question")
            keys = Text.assemble(("y", "bold reverse"), " yes   ", ("n", "bold reverse"), " no")
            yield Static(keys, id="confirm-keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
