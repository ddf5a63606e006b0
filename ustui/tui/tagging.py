"""Tagging more than one file per keystroke (plain Python, no widgets).

- Files picked with ``J``/``K`` are tagged together by one tag key.
- ``.`` gives the current file the tags of the previous tagged file.
"""

from __future__ import annotations

from collections.abc import Iterable

from ustui.tui.model import Workspace


def apply_tag(workspace: Workspace, indices: Iterable[int], name: str, value: str) -> None:
    """Set tag ``name`` to ``value`` on every file of ``indices``; when they all have it
    already, clear it on all (pressing a tag key again undoes it)."""
    indices = list(indices)
    if all(workspace.peek(i).tags.get(name) == value for i in indices):
        for index in indices:
            workspace.decision(index).tags.pop(name, None)
        return
    for index in indices:
        workspace.decision(index).tags[name] = value


def previous_tagged(workspace: Workspace, index: int) -> int | None:
    """The nearest file before ``index`` (in list order, wrapping) that has tags."""
    count = len(workspace.entries)
    for step in range(1, count):
        other = (index - step) % count
        if workspace.peek(other).tags:
            return other
    return None


def copy_tags(workspace: Workspace, source: int, target: int) -> None:
    """Give file ``target`` exactly the tags of file ``source``."""
    workspace.decision(target).tags = dict(workspace.peek(source).tags)


class Picked:
    """The files picked for tagging together, in the order they were picked."""

    def __init__(self) -> None:
        self.indices: list[int] = []

    def __bool__(self) -> bool:
        return bool(self.indices)

    def extend_to(self, current: int, following: int) -> None:
        """Pick ``current`` and ``following`` (``J`` / ``K`` walk and pick)."""
        for index in (current, following):
            if index not in self.indices:
                self.indices.append(index)

    def with_current(self, current: int) -> list[int]:
        """The files a tag key applies to: the picked ones and the current one."""
        return self.indices if current in self.indices else [*self.indices, current]

    def clear(self) -> None:
        self.indices = []
