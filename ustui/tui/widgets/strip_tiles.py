"""Pre-rendered lines of coloured cells, shown through narrow column tiles.

Why tiles: when only a few cells of a wide widget change (an edge of the crop
box moved off them), Textual re-sends each changed line from the start of the
widget's run on that line, not from the changed cell. Splitting the picture into
tiles a few cells wide bounds that waste to the width of one tile, which keeps a
nudge of the crop box to a few kilobytes even on a wide frame.
"""

from __future__ import annotations

from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

#: Tile width in cells: the most a partial repaint re-sends needlessly per line.
TILE = 6


class _Tile(Widget, can_focus=False):
    """Columns ``x0`` .. ``x0 + width`` of its parent's strips."""

    def __init__(self, x0: int, width: int) -> None:
        super().__init__()
        self.x0 = x0
        self.columns = width
        self.styles.width = width
        self.styles.height = "1fr"

    def render_line(self, y: int) -> Strip:
        parent = self.parent
        assert isinstance(parent, StripTiles)
        width = self.size.width
        if y < len(parent.strips):
            return parent.strips[y].crop(self.x0, self.x0 + width)
        return Strip.blank(width)


class StripTiles(Widget, can_focus=False):
    """Shows ``strips`` (one per line) through tiles of at most TILE columns."""

    DEFAULT_CSS = """
    StripTiles {
        layout: horizontal;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.strips: list[Strip] = []
        self._tiled_width = -1

    def set_strips(self, strips: list[Strip], width: int, dirty: list[Region] | None = None) -> None:
        """Show ``strips`` (``width`` cells wide); repaint only ``dirty`` cells when given."""
        self.strips = strips
        if width != self._tiled_width:
            self._tiled_width = width
            self.remove_children()
            self.mount_all(
                _Tile(x0, min(TILE, width - x0)) for x0 in range(0, max(width, 0), TILE)
            )
            return
        tiles = list(self.query_children(_Tile))
        if dirty is None:
            for tile in tiles:
                tile.refresh()
            return
        for region in dirty:
            for tile in tiles[region.x // TILE : (region.right - 1) // TILE + 1]:
                local = region.translate((-tile.x0, 0)).intersection(
                    Region(0, 0, tile.columns, region.bottom)
                )
                if local:
                    tile.refresh(local)
