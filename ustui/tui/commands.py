"""Command palette (ctrl+p): jump to any file by name, or to the next file that needs work."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from ustui.core.printable import printable

if TYPE_CHECKING:
    from ustui.tui.screens.review import ReviewScreen

#: Files offered before the user types anything (discovery must stay cheap).
DISCOVER_LIMIT = 20


class FileCommands(Provider):
    """``go to <file>`` for every input, with its status."""

    def _review(self) -> ReviewScreen | None:
        from ustui.tui.screens.review import ReviewScreen

        return self.screen if isinstance(self.screen, ReviewScreen) else None

    async def discover(self) -> Hits:
        review = self._review()
        if review is None:
            return
        ws = review.workspace
        following = ws.next_needing_work(review.index)
        if following is not None:
            yield DiscoveryHit(
                f"next file that needs work: {ws.entries[following].name}",
                partial(review.open_file, following),
            )
        for index in range(min(len(ws.entries), DISCOVER_LIMIT)):
            status, reason = ws.status(index)
            yield DiscoveryHit(
                f"go to {printable(ws.entries[index].file.label)}",
                partial(review.open_file, index),
                help=f"{status.value} {reason}",
            )

    async def search(self, query: str) -> Hits:
        review = self._review()
        if review is None:
            return
        matcher = self.matcher(query)
        ws = review.workspace
        for index, entry in enumerate(ws.entries):
            text = f"go to {printable(entry.file.label)}"
            score = matcher.match(text)
            if score > 0:
                status, reason = ws.status(index)
                yield Hit(
                    score,
                    matcher.highlight(text),
                    partial(review.open_file, index),
                    text=text,
                    help=f"{status.value} {reason}",
                )
