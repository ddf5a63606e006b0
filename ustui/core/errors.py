"""Errors the core raises; each renders as one line naming the file and the reason."""

from __future__ import annotations


class UstuiError(Exception):
    """A problem the user can act on, shown as one line without a traceback."""

    def __init__(self, reason: str, *, source: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.source = source

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}" if self.source else self.reason


class Unsupported(UstuiError):
    """A file that cannot be cleaned and therefore must be skipped, never exported."""


class ProfileError(UstuiError):
    """A profile file that cannot be used."""
